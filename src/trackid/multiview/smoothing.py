"""Triangulated trajectories smoothed with the world tracker's motion model (a Rauch-Tung-Striebel smoother).

A point triangulated at one frame carries that frame's box errors alone; the person it belongs to moves smoothly.
The stereo run is offline, so each global id's points are filtered forward with the world tracker's constant-velocity
Kalman model (`world_tracking.constant_velocity`, the same `accel_sigma` and `position_sigma`) and smoothed backward:
every point then draws on the frames before and after it. Only the ground coordinates (X, Y) are smoothed; Z, the
reprojection error and the views stay the triangulation's. A gap longer than the tracker's `max_lost_s` starts a new
segment, so a person who was lost is not interpolated through the gap.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
from numpy.typing import ArrayLike, NDArray

from trackid.multiview.triangulation import Trajectories
from trackid.multiview.world_tracking import WorldTracker, constant_velocity

__all__ = ["smooth_ground", "smooth_trajectories"]

MIN_SIGMA = 0.01  # m: a tracker set to trust positions exactly still leaves the smoother a solvable gain
WALKING_SPEED = 1.5  # m/s: the spread of a segment's unknown starting velocity, as the world tracker's

FloatArray = NDArray[np.float64]
_H = np.eye(2, 4)


def smooth_trajectories(trajectories: Trajectories, fps: float, tracker: WorldTracker | None = None) -> Trajectories:
    """`trajectories` with each global id's X, Y replaced by the smoothed estimate at the same frames (see
    `smooth_ground`)."""
    return Trajectories(
        smooth_ground(trajectories.points, fps, tracker),
        trajectories.rejected,
        trajectories.off_ground,
        trajectories.single_view,
        list(trajectories.warnings),
    )


def smooth_ground(points: ArrayLike, fps: float, tracker: WorldTracker | None = None) -> FloatArray:
    """Rows (M, >= 4) of frame, global id, X, Y, ... with X, Y smoothed per id; other columns and the row order kept.

    `tracker` gives the motion model: `accel_sigma`, `position_sigma`, `unit_per_metre` and `max_lost_s` (defaults
    of `WorldTracker()` when None; pass the site's, so its ground unit is known)."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    model = tracker if tracker is not None else WorldTracker()
    rows = np.array(points, np.float64, copy=True)
    rows = rows.reshape(len(rows), -1)
    order = np.lexsort((rows[:, 0], rows[:, 1]))  # by id, then frame
    rows = rows[order]
    _, starts = np.unique(rows[:, 1], return_index=True)
    bounds = np.r_[starts, len(rows)]
    accel = model.accel_sigma * model.unit_per_metre
    noise = (max(model.position_sigma, MIN_SIGMA) * model.unit_per_metre) ** 2 * np.eye(2)
    walk = WALKING_SPEED * model.unit_per_metre
    for a, b in pairwise(bounds.tolist()):
        times = rows[a:b, 0] / fps
        cut = np.flatnonzero(np.diff(times) > model.max_lost_s) + 1
        for lo, hi in zip(np.r_[0, cut], np.r_[cut, b - a], strict=True):
            rows[a + lo : a + hi, 2:4] = _rts(times[lo:hi], rows[a + lo : a + hi, 2:4], accel, noise, walk)
    return rows[np.argsort(order)]


def _rts(times: FloatArray, xy: FloatArray, accel: float, noise: FloatArray, walk: float) -> FloatArray:
    """Smoothed positions (N, 2) of one segment's measurements `xy` at `times` (seconds, increasing); `walk` is
    the speed (ground units / s) an unknown starting velocity may have."""
    n = len(xy)
    if n < 3:
        return xy
    means, covs = np.zeros((n, 4)), np.zeros((n, 4, 4))
    ahead_means, ahead_covs, transitions = np.zeros((n, 4)), np.zeros((n, 4, 4)), np.zeros((n, 4, 4))
    mean = np.r_[xy[0], 0.0, 0.0]
    cov = np.zeros((4, 4))
    cov[:2, :2], cov[2:, 2:] = noise, walk**2 * np.eye(2)  # as the world tracker starts a track
    for k in range(n):
        if k:
            f, q = constant_velocity(float(times[k] - times[k - 1]), accel)
            mean, cov = f @ mean, f @ cov @ f.T + q
            transitions[k] = f
        ahead_means[k], ahead_covs[k] = mean, cov
        gain = cov @ _H.T @ np.linalg.inv(_H @ cov @ _H.T + noise)
        mean = mean + gain @ (xy[k] - _H @ mean)
        cov = (np.eye(4) - gain @ _H) @ cov
        means[k], covs[k] = mean, cov
    for k in range(n - 2, -1, -1):
        back = covs[k] @ transitions[k + 1].T @ np.linalg.inv(ahead_covs[k + 1])
        means[k] = means[k] + back @ (means[k + 1] - ahead_means[k + 1])
        covs[k] = covs[k] + back @ (covs[k + 1] - ahead_covs[k + 1]) @ back.T
    return means[:, :2]
