"""Images as every stage receives them: H x W x 3 uint8 arrays in OpenCV's BGR order."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

__all__ = ["check_image", "read_image"]


def read_image(path: str | os.PathLike[str]) -> NDArray[np.uint8]:
    """Decode an image file to BGR uint8; ValueError naming the file and the fault (missing, empty, undecodable).

    OpenCV's `imread` returns None for all three without saying which; callers that skip bad files need the reason.
    """
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"{file}: image file not found")
    if file.stat().st_size == 0:
        raise ValueError(f"{file}: zero-byte file")
    image = cv2.imread(str(file), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{file}: not a decodable image (corrupt, truncated or an unsupported format)")
    return np.asarray(image, np.uint8)


def check_image(image: object, name: str = "image") -> NDArray[np.uint8]:
    """Return `image` if it is a non-empty H x W x 3 uint8 array, else raise ValueError saying what is wrong.

    Backends call this first: OpenCV and the face libraries otherwise fail deep inside C++ with messages that
    name neither the argument nor the fix.
    """
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{name} must be a numpy array (H x W x 3 uint8, BGR), got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"{name} must have dtype uint8 (H x W x 3, BGR), got {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name} must have shape (H, W, 3) with BGR channels, got {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"{name} has zero size: shape {image.shape}")
    return image
