"""A user's YOLO-style ONNX detector, run by onnxruntime: letterbox in, raw predictions decoded and NMS'd here.

Most YOLO exports (v5/v7 with objectness, v8/v11 without) end in one raw prediction tensor and leave decoding and NMS
to the caller. Exports with NMS built in (end-to-end, (1, N, 6) outputs) are not this format.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from trackid.artifacts import check_model_file
from trackid.detect.base import register_detector
from trackid.detect.nms import check_detection_limits, nms_indices
from trackid.images import check_image
from trackid.registry import BackendParams
from trackid.types import Detections

__all__ = ["OnnxYoloDetector", "OnnxYoloParams", "letterbox"]

OutputFormat = Literal["auto", "yolov8", "yolov5"]

PAD_VALUE = 114
"""Grey used for letterbox borders, as in the Ultralytics training pipeline the models expect."""


class OnnxYoloParams(BackendParams):
    """A user's YOLO-style ONNX detector's settings."""

    model_path: Path = Field(description="The `.onnx` file.")
    input_size: tuple[int, int] | None = Field(
        None,
        description="(width, height) of the network input; required when the model's input size is dynamic and must "
        "match it when static. Larger finds smaller objects at quadratic cost.",
    )
    score_threshold: float = Field(
        0.25,
        ge=0,
        le=1,
        description="Minimum (objectness x) class score. Lowering it raises recall and false positives.",
    )
    nms_threshold: float = Field(
        0.45,
        gt=0,
        le=1,
        description="IoU above which a lower-scored box of the same class is suppressed. Raising it keeps more people "
        "in crowds and more duplicates.",
    )
    output_format: OutputFormat = Field(
        "auto",
        description='"yolov8" (no objectness), "yolov5" (objectness x class score), or "auto": yolov8 when the '
        "predictions are channel-first; models with fewer predictions than channels need it named.",
    )
    class_ids: tuple[int, ...] | None = Field(
        None, description="Keep only these class indices (e.g. [0] for COCO person); null keeps all."
    )
    class_agnostic_nms: bool = Field(
        False,
        description="Suppress across classes, for models that label one object with several classes; risks merging "
        "two objects of different classes that overlap.",
    )
    max_detections: int = Field(300, ge=1, description="Boxes kept per image, best first.")
    threads: int | None = Field(
        None,
        ge=1,
        description="onnxruntime intra-op threads; null lets onnxruntime use every core, which steals them from the "
        "embedder and tracker.",
    )


@register_detector("onnx-yolo", params=OnnxYoloParams)
class OnnxYoloDetector:
    """Boxes from a YOLO-style ONNX model with one image input (1, 3, H, W) RGB in [0, 1] and raw predictions.

    Output formats (batch 1):
        - "yolov8": (1, 4 + C, N) rows `cx, cy, w, h, C class scores`, no objectness (YOLOv8/v11).
        - "yolov5": (1, N, 5 + C) rows `cx, cy, w, h, objectness, C class scores`; score = objectness x class
          score (YOLOv5/v7).
        - "auto": "yolov8" when the second axis is the shorter one (predictions are channel-first), else "yolov5".
          Models with fewer predictions than channels (toy models) need the format named.
    Box coordinates are in input pixels; they are mapped back through the letterbox to image pixels.

    Args: see `OnnxYoloParams`.
    """

    name = "onnx-yolo"

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        input_size: tuple[int, int] | None = None,
        score_threshold: float = 0.25,
        nms_threshold: float = 0.45,
        output_format: OutputFormat = "auto",
        class_ids: tuple[int, ...] | None = None,
        class_agnostic_nms: bool = False,
        max_detections: int = 300,
        threads: int | None = None,
    ) -> None:
        import onnxruntime as ort

        path = check_model_file(model_path, "ONNX model (model_path)")
        if output_format not in ("auto", "yolov8", "yolov5"):
            raise ValueError(f"output_format must be 'auto', 'yolov8' or 'yolov5', got {output_format!r}")
        check_detection_limits(score_threshold, nms_threshold, max_detections)
        options = ort.SessionOptions()
        if threads is not None:
            if threads < 1:
                raise ValueError(f"threads must be positive, got {threads}")
            options.intra_op_num_threads = threads
        try:
            self.session_ = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable models
            raise ValueError(f"model_path {path} is not a loadable ONNX model: {exc}") from exc
        model_input = self.session_.get_inputs()[0]
        self.input_name_ = model_input.name
        self.input_dtype_ = np.float16 if model_input.type == "tensor(float16)" else np.float32
        self.input_size = _input_size(path, model_input.shape, input_size)
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.output_format = output_format
        self.class_ids = None if class_ids is None else np.asarray(class_ids, np.int64)
        self.class_agnostic_nms = bool(class_agnostic_nms)
        self.max_detections = int(max_detections)

    def detect(self, image: NDArray[np.uint8]) -> Detections:
        check_image(image)
        canvas, ratio, pad = letterbox(image, self.input_size)
        blob = cv2.dnn.blobFromImage(canvas, 1.0 / 255.0, swapRB=True).astype(self.input_dtype_, copy=False)
        raw = np.asarray(self.session_.run(None, {self.input_name_: blob})[0], np.float32)
        xywh, score, class_id = self._decode(raw)
        keep = score >= self.score_threshold
        if self.class_ids is not None:
            keep &= np.isin(class_id, self.class_ids)
        xywh, score, class_id = xywh[keep], score[keep], class_id[keep]
        centre = (xywh[:, :2] - pad) / ratio
        half = xywh[:, 2:] / (2.0 * ratio)
        height, width = image.shape[:2]
        xyxy = np.clip(np.concatenate([centre - half, centre + half], axis=1), 0.0, [width, height, width, height])
        order = nms_indices(xyxy, score, self.nms_threshold, None if self.class_agnostic_nms else class_id)
        order = order[: self.max_detections]
        return Detections.from_arrays(xyxy[order], score[order], class_id[order])

    def _decode(self, raw: NDArray[np.float32]) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
        """(cx, cy, w, h) in input pixels, best class score and class index of every prediction."""
        if raw.ndim == 3 and raw.shape[0] == 1:
            raw = raw[0]
        if raw.ndim != 2:
            raise ValueError(f"model output must be (1, 4 + C, N) or (1, N, 5 + C), got shape {raw.shape}")
        fmt = self.output_format
        if fmt == "auto":
            fmt = "yolov8" if raw.shape[0] < raw.shape[1] else "yolov5"
        pred = raw.T if fmt == "yolov8" else raw
        if pred.shape[1] < 5:
            raise ValueError(f"model output {raw.shape} has too few channels for output_format {fmt!r}")
        classes = pred[:, 4:] if fmt == "yolov8" else pred[:, 5:]
        if fmt == "yolov5":
            classes = pred[:, 4:5] * (classes if classes.shape[1] else np.ones_like(pred[:, 4:5]))
        class_id = np.argmax(classes, axis=1)
        score = np.take_along_axis(classes, class_id[:, None], axis=1)[:, 0]
        return pred[:, :4].astype(np.float64), score.astype(np.float64), class_id.astype(np.int64)


def letterbox(image: NDArray[np.uint8], size: tuple[int, int]) -> tuple[NDArray[np.uint8], float, NDArray[np.float64]]:
    """Resize keeping the aspect ratio and pad to `size` (width, height), centred.

    Returns the canvas, the scale factor and the (x, y) padding, so that `image_xy = (input_xy - pad) / scale`.
    """
    height, width = image.shape[:2]
    ratio = min(size[0] / width, size[1] / height)
    new_w, new_h = max(1, round(width * ratio)), max(1, round(height * ratio))
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR if ratio > 1 else cv2.INTER_AREA)
    left, top = (size[0] - new_w) // 2, (size[1] - new_h) // 2
    canvas = cv2.copyMakeBorder(
        resized, top, size[1] - new_h - top, left, size[0] - new_w - left, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3
    )
    return np.asarray(canvas, dtype=np.uint8), ratio, np.array([left, top], np.float64)


def _input_size(
    path: os.PathLike[str], shape: list[int | str | None], input_size: tuple[int, int] | None
) -> tuple[int, int]:
    """The (width, height) to feed: the model's static size, else `input_size`; they must agree when both exist."""
    if len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != 3):
        raise ValueError(f"model {path} must take one (1, 3, H, W) image input, its input has shape {shape}")
    static = (shape[3], shape[2]) if isinstance(shape[2], int) and isinstance(shape[3], int) else None
    if input_size is not None:
        size = tuple(int(v) for v in input_size)
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f"input_size must be (width, height) positive integers, got {input_size!r}")
        if static is not None and size != static:
            raise ValueError(f"input_size {size} does not match the model's fixed input (width, height) {static}")
        return size[0], size[1]
    if static is None:
        raise ValueError(f"model {path} has a dynamic input size; pass input_size=(width, height)")
    return static
