"""OpenCV's HOG + linear SVM people detector (Dalal & Triggs 2005): no model file, no network, a robust baseline."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from trackid.detect.base import register_detector
from trackid.detect.nms import nms_indices
from trackid.images import check_image
from trackid.registry import BackendParams
from trackid.types import Detections

__all__ = ["HogPeopleDetector", "HogPeopleParams"]

WINDOW_SIZE = (64, 128)
"""(width, height) of the detection window: the smallest person box the detector reports before tightening."""


class HogPeopleParams(BackendParams):
    """The HOG people detector's settings."""

    hit_threshold: float = Field(
        0.0, description="Minimum SVM margin. Raising it drops false positives (railings, trees) and faint people."
    )
    win_stride: tuple[int, int] = Field(
        (8, 8), description="(x, y) step of the sliding window in pixels. Smaller finds more people at quadratic cost."
    )
    scale: float = Field(
        1.05,
        gt=1,
        description="Ratio between pyramid levels. Closer to 1 (e.g. 1.03) finds more sizes, slower; 1.1 is ~2x faster "
        "and misses people between levels.",
    )
    nms_threshold: float = Field(
        0.3,
        gt=0,
        le=1,
        description="IoU above which overlapping windows are merged, keeping the highest margin. Raising it keeps "
        "people who overlap apart, and more duplicate windows.",
    )
    box_fraction: tuple[float, float] = Field(
        (0.55, 0.75),
        description="(width, height) fraction of the window the person fills. The window keeps a margin of "
        "background (the person spans ~55 % of its width and ~75 % of its height, measured on PETS09-S2L1), so boxes "
        "are shrunk about their centre to match tight ground-truth boxes; (1, 1) reports raw windows.",
    )


@register_detector("hog", params=HogPeopleParams)
class HogPeopleDetector:
    """People (class 0) from `cv2.HOGDescriptor.getDefaultPeopleDetector`; ~50 ms per 768 x 576 frame on 2 cores.

    Scores are SVM margins (unbounded, ~0-3), not probabilities. The 64 x 128 window cannot match people shorter
    than ~96 px: upscale small-person footage (e.g. `TiledDetector(hog, tiles=(1, 1), upscale=2)`), at ~4x cost.

    Args: see `HogPeopleParams`.
    """

    name = "hog"

    def __init__(
        self,
        hit_threshold: float = 0.0,
        win_stride: tuple[int, int] = (8, 8),
        scale: float = 1.05,
        nms_threshold: float = 0.3,
        box_fraction: tuple[float, float] = (0.55, 0.75),
    ) -> None:
        stride = tuple(int(v) for v in win_stride)
        if len(stride) != 2 or min(stride) < 1:
            raise ValueError(f"win_stride must be two positive integers (x, y), got {win_stride!r}")
        if scale <= 1.0:
            raise ValueError(f"scale must be > 1 (ratio between pyramid levels), got {scale}")
        if not 0.0 < nms_threshold <= 1.0:
            raise ValueError(f"nms_threshold must be in (0, 1], got {nms_threshold}")
        fraction = np.asarray(box_fraction, dtype=np.float64)
        if fraction.shape != (2,) or not ((fraction > 0) & (fraction <= 1)).all():
            raise ValueError(f"box_fraction must be (width, height) fractions in (0, 1], got {box_fraction!r}")
        self.hit_threshold = float(hit_threshold)
        self.win_stride = (stride[0], stride[1])
        self.scale = float(scale)
        self.nms_threshold = float(nms_threshold)
        self.box_fraction = fraction
        self.hog_ = cv2.HOGDescriptor()
        self.hog_.setSVMDetector(np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector(), np.float32))

    def detect(self, image: NDArray[np.uint8]) -> Detections:
        check_image(image)
        if image.shape[1] < WINDOW_SIZE[0] or image.shape[0] < WINDOW_SIZE[1]:
            return Detections.empty()
        # groupThreshold=0 returns every window with its margin; OpenCV's own grouping discards the margins.
        rects, weights = self.hog_.detectMultiScale(
            image, hitThreshold=self.hit_threshold, winStride=self.win_stride, scale=self.scale, groupThreshold=0
        )
        xywh = np.asarray(rects, dtype=np.float64).reshape(-1, 4)
        score = np.asarray(weights, dtype=np.float64).reshape(-1)
        xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        keep = nms_indices(xyxy, score, self.nms_threshold)
        centre, size = xywh[keep, :2] + xywh[keep, 2:] / 2, xywh[keep, 2:] * self.box_fraction
        return Detections.from_arrays(
            np.concatenate([centre - size / 2, centre + size / 2], axis=1), score[keep], np.zeros(len(keep), np.int64)
        )
