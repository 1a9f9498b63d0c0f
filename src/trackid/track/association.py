"""Matching tracks to detections: cost matrices and assignment.

Assignment is optimal (Jonker-Volgenant via `lap`), so one crowded frame's choices are made jointly rather than
first-come first-served; greedy matching is kept only as the ablation baseline the benchmark compares against.
"""

from __future__ import annotations

from typing import Literal

import lap
import numpy as np
from numpy.typing import NDArray

__all__ = ["Matches", "assign", "direction_cost"]

AssignmentMethod = Literal["optimal", "greedy"]
IntArray = NDArray[np.intp]
Matches = tuple[IntArray, IntArray]
"""Matched (row indices, column indices), aligned."""

_NONE: Matches = (np.zeros(0, np.intp), np.zeros(0, np.intp))


def assign(cost: NDArray[np.float64], max_cost: float, method: AssignmentMethod = "optimal") -> Matches:
    """Pairs (row, col) minimising total cost, never pairing above `max_cost` (the gate)."""
    if cost.size == 0:
        return _NONE
    if method == "greedy":
        return _assign_greedy(cost, max_cost)
    _, row_to_col, _ = lap.lapjv(cost, extend_cost=True, cost_limit=max_cost)
    rows = np.flatnonzero(row_to_col >= 0)
    return rows, row_to_col[rows].astype(np.intp)


def direction_cost(
    track_direction: NDArray[np.float64], last_center: NDArray[np.float64], det_center: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Angle between each track's recent heading and the heading to each detection, as a fraction of pi in [0, 1].

    OC-SORT's observation-centric momentum: a detection that would make a track turn back on itself is an unlikely
    continuation even when it overlaps well. Tracks without a heading (`track_direction` all zero) get cost 0.
    """
    delta = det_center[None, :, :] - last_center[:, None, :]
    norm = np.sqrt((delta**2).sum(axis=2)) + 1e-6
    cos = (delta * track_direction[:, None, :]).sum(axis=2) / norm
    angle = np.arccos(np.clip(cos, -1.0, 1.0)) / np.pi
    has_heading = (track_direction != 0).any(axis=1)
    return np.where(has_heading[:, None], angle, 0.0)


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
