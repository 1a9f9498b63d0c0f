"""What the ONNX COCO detectors (NanoDet, CenterNet) share: their settings, their session, and the way back from
letterboxed network boxes to the frame's kept, suppressed detections."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from trackid.artifacts import check_model_file
from trackid.detect.coco import coco_class_ids
from trackid.detect.nms import check_detection_limits, nms_indices
from trackid.embed.model_files import cpu_session
from trackid.models import bundled_model
from trackid.registry import BackendParams
from trackid.types import Detections

__all__ = ["OnnxCocoDetector", "OnnxCocoParams"]


class OnnxCocoParams(BackendParams):
    """The settings NanoDet and CenterNet share; each model's subclass sets the defaults that suit it."""

    classes: str | tuple[str, ...] | None = Field(
        "person",
        description='COCO class names to keep (`trackid.detect.coco`), "animals" for the animal classes, or null '
        "for all 80; `class_id` is the COCO index (person = 0). Each extra class adds tracks of things that are not "
        "the subject.",
    )
    score_threshold: float = Field(ge=0, le=1, description="Minimum class score.")
    nms_threshold: float = Field(gt=0, le=1, description="IoU above which a lower-scored box of one class is dropped.")
    max_detections: int = Field(ge=1, description="Boxes kept per image, best first.")
    model_path: Path | None = Field(
        None,
        description="An ONNX export with the same inputs and outputs; null: the converted model (`trackid.models`).",
    )
    threads: int = Field(
        2,
        ge=0,
        description="onnxruntime intra-op threads (0: every core). More is faster alone, but steals cores from the "
        "embedder and tracker running beside it.",
    )


class OnnxCocoDetector:
    """Base of a COCO detector run by onnxruntime; `model` names its converted file (`trackid.models`), `what` the
    model in errors about a user's `model_path`."""

    def __init__(
        self,
        model: str,
        what: str,
        classes: str | Iterable[str] | None,
        score_threshold: float,
        nms_threshold: float,
        max_detections: int,
        model_path: str | os.PathLike[str] | None,
        threads: int,
    ) -> None:
        check_detection_limits(score_threshold, nms_threshold, max_detections)
        path = bundled_model(model) if model_path is None else check_model_file(model_path, what)
        self.model_path_ = path
        self.class_ids = coco_class_ids(classes)
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.max_detections = int(max_detections)
        self.session_ = cpu_session(path, threads)
        self.input_name_ = self.session_.get_inputs()[0].name

    def _to_frame(
        self,
        xyxy: NDArray[np.float64],
        score: NDArray[np.float64],
        class_id: NDArray[np.int64],
        ratio: float,
        pad: NDArray[np.float64],
        frame_shape: tuple[int, ...],
    ) -> Detections:
        """Input-pixel boxes -> frame pixels (undo the letterbox, clip), then per-class NMS and the best
        `max_detections`."""
        height, width = frame_shape[:2]
        xyxy = np.clip((xyxy - np.tile(pad, 2)) / ratio, 0.0, [width, height, width, height])
        order = nms_indices(xyxy, score, self.nms_threshold, class_id)[: self.max_detections]
        return Detections.from_arrays(xyxy[order], score[order], class_id[order])
