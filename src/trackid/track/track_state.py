"""Compiled kernels over the online tracker's per-track state: arrays with one row per track (`tracker.py`).

Each runs every frame on a few dozen rows, where numpy's per-call overhead (microseconds per call, several calls
per step) would cost more than the work itself, so they are numba loops that read the rows and update them in place
(`true_rows` only avoids a ravel). What each serves: `median` and `steady_rows` the adaptive process noise,
`hidden_rows` reporting through occlusions, `translate_boxes` following the scene's motion, `record_observations`
the matched rows' bookkeeping, `resize_unobserved` the reported boxes, `headings` the direction penalty.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

__all__ = [
    "headings",
    "hidden_rows",
    "median",
    "record_observations",
    "resize_unobserved",
    "steady_rows",
    "translate_boxes",
    "true_rows",
]


def true_rows(mask: NDArray[np.bool_]) -> NDArray[np.intp]:
    """Indices of True entries of a 1-D mask (`nonzero` without `flatnonzero`'s ravel overhead)."""
    return mask.nonzero()[0]


@numba.njit(cache=True, nogil=True)
def median(values: NDArray[np.float64]) -> float:
    """np.median of a 1-D array without numpy's per-call overhead (tens of microseconds, every frame)."""
    return float(np.median(values))


@numba.njit(cache=True, nogil=True)
def hidden_rows(
    boxes: NDArray[np.float64],
    confirmed: NDArray[np.bool_],
    since_update: NDArray[np.int64],
    hits: NDArray[np.int64],
    max_lost: int,
    min_hits: int,
    min_cover: float,
) -> NDArray[np.intp]:
    """Rows of confirmed tracks lost for 1..`max_lost` frames with >= `min_hits` hits, at least `min_cover` of whose
    box lies under the box of a track observed this frame whose bottom edge is lower (any such track when
    `min_cover` is 0)."""
    out = np.empty(len(boxes), np.intp)
    count = 0
    for i in range(len(boxes)):
        if not confirmed[i] or since_update[i] < 1 or since_update[i] > max_lost or hits[i] < min_hits:
            continue
        x1, y1, x2, y2 = boxes[i]
        area = (x2 - x1) * (y2 - y1)
        hidden = min_cover == 0
        for j in range(len(boxes)):
            if hidden:
                break
            if since_update[j] != 0 or boxes[j, 3] <= y2:
                continue
            width = min(x2, boxes[j, 2]) - max(x1, boxes[j, 0])
            height = min(y2, boxes[j, 3]) - max(y1, boxes[j, 1])
            hidden = width > 0 and height > 0 and width * height >= min_cover * area
        if hidden:
            out[count] = i
            count += 1
    return out[:count]


@numba.njit(cache=True, nogil=True)
def translate_boxes(boxes: NDArray[np.float64], rows: NDArray[np.intp], shift: NDArray[np.float64]) -> None:
    """Move `boxes[rows]` by `shift` in place, computed as centre and half-size (as `cmc.warp_boxes` does)."""
    for r in rows:
        for axis in range(2):
            centre = 0.5 * (boxes[r, axis] + boxes[r, axis + 2]) + shift[axis]
            half = 0.5 * (boxes[r, axis + 2] - boxes[r, axis])
            boxes[r, axis], boxes[r, axis + 2] = centre - half, centre + half


@numba.njit(cache=True, nogil=True)
def record_observations(
    rows: NDArray[np.intp],
    boxes: NDArray[np.float64],
    scores: NDArray[np.float64],
    min_hits: int,
    last_box: NDArray[np.float64],
    last_score: NDArray[np.float64],
    since_update: NDArray[np.int64],
    hits: NDArray[np.int64],
    confirmed: NDArray[np.bool_],
    centres: NDArray[np.float64],
) -> None:
    """The bookkeeping of matched rows: last box and score, counters, and the ring of observed centres."""
    for i, r in enumerate(rows):
        last_box[r] = boxes[i]
        last_score[r] = scores[i]
        since_update[r] = 0
        hits[r] += 1
        confirmed[r] |= hits[r] >= min_hits
        centres[r, :-1] = centres[r, 1:].copy()
        centres[r, -1, 0] = 0.5 * (boxes[i, 0] + boxes[i, 2])
        centres[r, -1, 1] = 0.5 * (boxes[i, 1] + boxes[i, 3])


@numba.njit(cache=True, nogil=True)
def steady_rows(rows: NDArray[np.intp], since_update: NDArray[np.int64], hits: NDArray[np.int64]) -> NDArray[np.intp]:
    """Positions in `rows` of tracks matched the previous frame too and seen more than three times."""
    out = np.empty(len(rows), np.intp)
    count = 0
    for i, r in enumerate(rows):
        if since_update[r] == 1 and hits[r] > 3:
            out[count] = i
            count += 1
    return out[:count]


@numba.njit(cache=True, nogil=True)
def resize_unobserved(boxes: NDArray[np.float64], observed: NDArray[np.bool_], last: NDArray[np.float64]) -> None:
    """Give unobserved rows of `boxes` the size of `last` around their own centre, in place."""
    for i in range(len(boxes)):
        if observed[i]:
            continue
        for axis in range(2):
            centre = 0.5 * (boxes[i, axis] + boxes[i, axis + 2])
            half = 0.5 * (last[i, axis + 2] - last[i, axis])
            boxes[i, axis], boxes[i, axis + 2] = centre - half, centre + half


@numba.njit(cache=True, nogil=True)
def headings(
    centres: NDArray[np.float64], rows: NDArray[np.intp], span: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The rows' latest observed centres and unit headings from the centre `span` observations earlier."""
    last = np.empty((len(rows), 2))
    heading = np.empty((len(rows), 2))
    for i, r in enumerate(rows):
        hx = centres[r, -1, 0] - centres[r, -1 - span, 0]
        hy = centres[r, -1, 1] - centres[r, -1 - span, 1]
        norm = np.sqrt(hx * hx + hy * hy) + 1e-6
        last[i, 0], last[i, 1] = centres[r, -1, 0], centres[r, -1, 1]
        heading[i, 0], heading[i, 1] = hx / norm, hy / norm
    return last, heading
