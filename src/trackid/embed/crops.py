"""Cutting boxes out of a frame, and checking and resizing crops before they reach a model.

Every embedder validates its input here so a bad crop fails with a message naming which one and why, instead of an
opaque error deep inside OpenCV or onnxruntime.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray

from trackid.images import check_image

__all__ = ["check_crops", "clamp_boxes", "crop_boxes", "l2_normalise", "resize_stack"]


def crop_boxes(image: NDArray[np.uint8], xyxy: ArrayLike) -> list[NDArray[np.uint8]]:
    """Views of `image` under each box, clamped to the frame; a box with no pixels inside gives a (0, 0, 3) crop.

    Empty crops keep the list aligned with the boxes; test `crop.size` before embedding (embedders reject them).

    Box corners are rounded outward-inclusive (floor of x1/y1, ceil of x2/y2) so a box never loses its edge pixels.
    """
    check_image(image, "image")
    boxes, valid = clamp_boxes(xyxy, image.shape[1], image.shape[0])
    x1y1 = np.floor(boxes[:, :2]).astype(np.int64)
    x2y2 = np.ceil(boxes[:, 2:]).astype(np.int64)
    empty = image[:0, :0]
    return [
        image[y1:y2, x1:x2] if ok else empty
        for (x1, y1), (x2, y2), ok in zip(x1y1.tolist(), x2y2.tolist(), valid.tolist(), strict=True)
    ]


def clamp_boxes(xyxy: ArrayLike, width: int, height: int) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Boxes clipped to `[0, width] x [0, height]` and a mask of those with positive area after clipping.

    Non-finite or inverted boxes are not an error here (detectors emit them at frame edges); they come back invalid.
    """
    boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    finite = np.asarray(np.isfinite(boxes).all(axis=1))
    clipped = np.where(finite[:, None], boxes, 0.0)
    clipped = np.clip(clipped, 0.0, [width, height, width, height])
    valid = finite & (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    return clipped, valid


def check_crops(crops: Sequence[Any]) -> None:
    """Validate every crop, naming the first bad one by index."""
    for i, crop in enumerate(crops):
        check_image(crop, f"crops[{i}]")


def resize_stack(crops: Sequence[NDArray[np.uint8]], height: int, width: int) -> NDArray[np.uint8]:
    """(N, height, width, 3) uint8, each crop resized with bilinear interpolation (the resize the models saw)."""
    out = np.empty((len(crops), height, width, 3), np.uint8)
    for i, crop in enumerate(crops):
        if crop.shape[0] == height and crop.shape[1] == width:
            out[i] = crop
        else:
            cv2.resize(crop, (width, height), dst=out[i], interpolation=cv2.INTER_LINEAR)
    return out


def l2_normalise(x: NDArray[Any]) -> NDArray[np.float32]:
    """Rows scaled to unit length as float32; an all-zero row stays zero rather than becoming NaN."""
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)
