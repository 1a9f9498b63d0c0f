"""Box maths on arrays: every function takes (N, 4) arrays and returns arrays, never loops over boxes."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["box_area", "iou_matrix", "xywh_to_xyxy", "xyxy_to_xywh"]

FloatArray = NDArray[np.float64]


def iou_matrix(a: FloatArray, b: FloatArray) -> FloatArray:
    """Intersection over union of every box in `a` (N, 4) with every box in `b` (M, 4), as an (N, M) matrix.

    Degenerate boxes (zero area) have IoU 0 with everything rather than dividing by zero.
    """
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.maximum(ix2 - ix1, 0.0) * np.maximum(iy2 - iy1, 0.0)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return inter / np.maximum(union, 1e-12)


def box_area(xyxy: FloatArray) -> FloatArray:
    return (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])


def xywh_to_xyxy(xywh: FloatArray) -> FloatArray:
    """Top-left + size (MOTChallenge) to corners."""
    out = np.array(xywh, dtype=np.float64, copy=True).reshape(-1, 4)
    out[:, 2:] += out[:, :2]
    return out


def xyxy_to_xywh(xyxy: FloatArray) -> FloatArray:
    """Corners to top-left + size (MOTChallenge)."""
    out = np.array(xyxy, dtype=np.float64, copy=True).reshape(-1, 4)
    out[:, 2:] -= out[:, :2]
    return out
