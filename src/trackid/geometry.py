"""Box maths and multi-view triangulation on arrays: every function takes arrays and returns arrays, never loops over
boxes or points."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["box_area", "iou_matrix", "triangulate", "xywh_to_xyxy", "xyxy_to_xywh"]

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


def triangulate(projections: FloatArray, pixels: FloatArray) -> tuple[FloatArray, FloatArray, NDArray[np.int64]]:
    """Points seen by several calibrated cameras, by the direct linear transform (Hartley & Zisserman, 12.2), all
    points in one batched SVD (OpenCV's `triangulatePoints` takes two views).

    Args:
        projections: (V, 3, 4) camera matrices (pixels from world points).
        pixels: (V, N, 2) each point's pixel in each view; NaN where a view does not see it.

    Returns:
        (N, 3) world points (NaN where fewer than two views see it), (N,) mean reprojection error in pixels over the
        views that see it, and (N,) how many views that is.
    """
    p = np.asarray(projections, np.float64)
    uv = np.asarray(pixels, np.float64)
    seen = np.isfinite(uv).all(axis=2)  # (V, N)
    u, v = np.nan_to_num(uv[..., 0])[..., None], np.nan_to_num(uv[..., 1])[..., None]
    rows = np.concatenate([u * p[:, None, 2] - p[:, None, 0], v * p[:, None, 2] - p[:, None, 1]], axis=0)
    rows = rows * np.concatenate([seen, seen], axis=0)[..., None]  # (2V, N, 4); unseen views give zero rows
    rows /= np.maximum(np.linalg.norm(rows, axis=2, keepdims=True), 1e-12)
    _, _, vt = np.linalg.svd(np.transpose(rows, (1, 0, 2)))
    homogeneous = vt[:, -1]
    views = seen.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        points = homogeneous[:, :3] / homogeneous[:, 3:]
        projected = np.einsum("vij,nj->vni", p, np.column_stack([points, np.ones(len(points))]))
        reprojected = projected[..., :2] / projected[..., 2:]
    errors = np.where(seen, np.linalg.norm(reprojected - uv, axis=2), 0.0).sum(axis=0) / np.maximum(views, 1)
    bad = views < 2
    points[bad] = np.nan
    errors[bad] = np.nan
    return points, errors, views.astype(np.int64)
