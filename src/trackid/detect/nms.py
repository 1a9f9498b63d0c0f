"""Non-maximum suppression on box arrays, shared by the backends and the tiling wrapper.

OpenCV's `NMSBoxes` does the greedy, inherently sequential part in C++; here it is only fed and read back as arrays.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from trackid.geometry import xyxy_to_xywh
from trackid.types import Detections

__all__ = ["check_detection_limits", "nms_indices", "suppress"]


def check_detection_limits(score_threshold: float, nms_threshold: float, max_detections: int) -> None:
    """The score, NMS and count limits every network detector takes, checked with messages naming them."""
    if not 0.0 <= score_threshold <= 1.0:
        raise ValueError(f"score_threshold must be in [0, 1], got {score_threshold}")
    if not 0.0 < nms_threshold <= 1.0:
        raise ValueError(f"nms_threshold must be in (0, 1], got {nms_threshold}")
    if max_detections < 1:
        raise ValueError(f"max_detections must be positive, got {max_detections}")


def nms_indices(
    xyxy: NDArray[np.float64],
    score: NDArray[np.float64],
    iou_threshold: float,
    class_id: NDArray[np.int64] | None = None,
) -> NDArray[np.int64]:
    """Indices of the boxes greedy NMS keeps, best score first; with `class_id`, boxes only suppress their class."""
    if not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold}")
    if len(xyxy) == 0:
        return np.zeros(0, np.int64)
    # OpenCV requires a non-negative score threshold; shifting scores to start at 1 keeps order and every box.
    xywh, shifted = xyxy_to_xywh(xyxy).tolist(), (score - np.min(score) + 1.0).tolist()
    if class_id is None:
        keep = cv2.dnn.NMSBoxes(xywh, shifted, 0.0, iou_threshold)
    else:
        keep = cv2.dnn.NMSBoxesBatched(xywh, shifted, class_id.tolist(), 0.0, iou_threshold)
    return np.asarray(keep, dtype=np.int64).reshape(-1)


def suppress(detections: Detections, iou_threshold: float, per_class: bool = True) -> Detections:
    """The detections that survive NMS, best score first."""
    keep = nms_indices(detections.xyxy, detections.score, iou_threshold, detections.class_id if per_class else None)
    return detections[keep]
