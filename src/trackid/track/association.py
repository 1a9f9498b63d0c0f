"""Matching tracks to detections: cost matrices and assignment.

Assignment is optimal (scipy's `linear_sum_assignment`, a Jonker-Volgenant variant in C++: on the 2-30 track
matrices of a frame it is ~10x faster than `lap` because it has almost no call overhead), so one crowded frame's
choices are made jointly rather than first-come first-served; greedy matching is kept only as the ablation
baseline the benchmark compares against.
"""

from __future__ import annotations

from typing import Literal

import numba
import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

__all__ = ["GATED", "Matches", "assign", "gated_cost"]

AssignmentMethod = Literal["optimal", "greedy"]
IntArray = NDArray[np.intp]
FloatArray = NDArray[np.float64]
Matches = tuple[IntArray, IntArray]
"""Matched (row indices, column indices), aligned."""

GATED = 1e6
"""Cost of a pair the gate forbids; far above any allowed cost, so it never displaces an allowed pair."""
MAX_COST = 1e5

_NONE: Matches = (np.zeros(0, np.intp), np.zeros(0, np.intp))


def assign(cost: FloatArray, max_cost: float = MAX_COST, method: AssignmentMethod = "optimal") -> Matches:
    """Pairs (row, col) minimising total cost, never pairing above `max_cost` (by default: never a GATED pair)."""
    if cost.size == 0:
        return _NONE
    if method == "greedy":
        return _assign_greedy(cost, max_cost)
    # Forbidden pairs carry a cost far above any allowed one, so the optimum first maximises the number of allowed
    # pairs, then minimises their cost; forbidden pairs it had to include are dropped afterwards.
    rows, cols = linear_sum_assignment(cost)
    keep = cost[rows, cols] <= max_cost
    return rows[keep], cols[keep]


@numba.njit(cache=True, nogil=True)
def gated_cost(
    track_boxes: FloatArray,
    track_class: NDArray[np.int64],
    heading: FloatArray,
    last_centre: FloatArray,
    det_boxes: FloatArray,
    det_class: NDArray[np.int64],
    det_score: FloatArray,
    iou_gate: float,
    direction_weight: float,
    height_iou: bool,
    score_weighted: bool,
) -> FloatArray:
    """(T, D) cost `1 - similarity + direction_weight * score * turn / pi`; pairs whose plain IoU is below
    `iou_gate`, or of another class, cost `GATED`.

    The similarity is IoU, optionally multiplied by the overlap ratio of the vertical extents (`height_iou`,
    Hybrid-SORT) and by the detection score (`score_weighted`, ByteTrack's score fusion).

    The turn term is OC-SORT's observation-centric momentum: the angle between a track's recent heading (unit
    vector; zero when unknown, which disables the term) and the direction from its last observed centre to the
    detection. A detection that would make a track turn back on itself is an unlikely continuation even when it
    overlaps well. Compiled (numba): one pass over the pairs instead of ~30 numpy calls on tiny arrays.
    """
    cost = np.empty((len(track_boxes), len(det_boxes)))
    for i in range(len(track_boxes)):
        tx1, ty1, tx2, ty2 = track_boxes[i]
        track_area = (tx2 - tx1) * (ty2 - ty1)
        hx, hy = heading[i]
        for j in range(len(det_boxes)):
            dx1, dy1, dx2, dy2 = det_boxes[j]
            inter = max(min(tx2, dx2) - max(tx1, dx1), 0.0) * max(min(ty2, dy2) - max(ty1, dy1), 0.0)
            iou = inter / max(track_area + (dx2 - dx1) * (dy2 - dy1) - inter, 1e-12)
            if iou < iou_gate or track_class[i] != det_class[j]:
                cost[i, j] = GATED
                continue
            sim = iou
            if height_iou:
                sim *= max(min(ty2, dy2) - max(ty1, dy1), 0.0) / (max(ty2, dy2) - min(ty1, dy1))
            if score_weighted:
                sim *= det_score[j]
            cost[i, j] = 1.0 - sim
            if direction_weight > 0 and (hx != 0 or hy != 0):
                ux = 0.5 * (dx1 + dx2) - last_centre[i, 0]
                uy = 0.5 * (dy1 + dy2) - last_centre[i, 1]
                cos = (ux * hx + uy * hy) / (np.sqrt(ux * ux + uy * uy) + 1e-6)
                turn = np.arccos(min(max(cos, -1.0), 1.0)) / np.pi
                cost[i, j] += direction_weight * det_score[j] * turn
    return cost


def _assign_greedy(cost: NDArray[np.float64], max_cost: float) -> Matches:
    """Cheapest pair first, skipping taken rows/columns: the common baseline, for ablations only."""
    order = np.argsort(cost, axis=None, kind="stable")
    rows_taken = np.zeros(cost.shape[0], bool)
    cols_taken = np.zeros(cost.shape[1], bool)
    rows, cols = [], []
    for r, c in zip(*np.unravel_index(order, cost.shape), strict=True):
        if cost[r, c] > max_cost:
            break
        if not rows_taken[r] and not cols_taken[c]:
            rows_taken[r] = cols_taken[c] = True
            rows.append(r)
            cols.append(c)
    return np.asarray(rows, np.intp), np.asarray(cols, np.intp)
