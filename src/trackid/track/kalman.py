"""Constant-velocity Kalman filter over all tracks at once, in the box space `cx, cy, w, h`.

With a constant-velocity transition and diagonal process and measurement noise, the usual 8-D filter per track
splits exactly into four independent 2-D filters (position, velocity) per axis: the covariance never couples two
axes. So each track's covariance is three numbers per axis (`p_pp`, `p_pv`, `p_vv`), and predict/update are a
handful of scalar operations per axis — the same result as the 8x8 matrix filter at a fraction of its cost.
They run as compiled loops (numba): with the few tracks of a frame, numpy's per-call overhead would dominate.

Noise scales with the box size (width for `cx` and `w`, height for `cy` and `h`), as in DeepSORT/BoT-SORT: a box
ten times larger moves and jitters ten times more in pixels. `noise_scale` multiplies the process noise variance of
every track at once: the tracker sets it from how large the innovations of its tracks really are (a shaking camera
or a low frame rate make them larger than any fixed setting expects, a far-away crowd smaller), so the filters'
uncertainty follows the scene.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from numpy.typing import NDArray

__all__ = ["BoxKalman", "KalmanNoise", "cxcywh_to_xyxy", "xyxy_to_cxcywh"]

FloatArray = NDArray[np.float64]

_LIVE = 5  # mean, velocity, p_pp, p_pv, p_vv


@dataclass(frozen=True, slots=True)
class KalmanNoise:
    """Standard deviations relative to box size (fractions of width/height, per frame).

    Raising `velocity` lets tracks follow sudden turns and stops but makes predictions through occlusion wander;
    raising `measurement` smooths jittery detections but makes the filter slower to follow real motion.
    """

    position: float = 1.0 / 20
    velocity: float = 1.0 / 160
    measurement: float = 1.0 / 20
    initial_velocity: float = 10.0 / 160


class BoxKalman:
    """Filter state for a set of tracks: rows are tracks, columns the axes `cx, cy, w, h`.

    The whole state lives in one (N, 10, 4) array — mean, velocity, `p_pp`, `p_pv`, `p_vv`, then a frozen copy of
    those five — so adding, dropping and reordering tracks is one array operation. The frozen copy keeps the state
    a track had when it lost its detection, to re-run the filter along a virtual path when it is found again.
    """

    def __init__(self, noise: KalmanNoise | None = None) -> None:
        self.noise = noise or KalmanNoise()
        self.noise_scale = 1.0
        self._state = np.zeros((0, 2 * _LIVE, 4))

    def __len__(self) -> int:
        return len(self._state)

    @property
    def mean(self) -> FloatArray:
        """(N, 4) view of the boxes `cx, cy, w, h`."""
        return self._state[:, 0]

    @property
    def velocity(self) -> FloatArray:
        return self._state[:, 1]

    def initiate(self, xyxy: FloatArray) -> None:
        """Append one row per box, at rest, with size-relative uncertainty."""
        boxes = xyxy_to_cxcywh(xyxy)
        scale = boxes[:, (2, 3, 2, 3)]
        rows = np.zeros((len(boxes), 2 * _LIVE, 4))
        rows[:, 0] = boxes
        rows[:, 2] = (2 * self.noise.position * scale) ** 2
        rows[:, 4] = (self.noise.initial_velocity * scale) ** 2
        self._state = np.concatenate([self._state, rows])

    def keep(self, mask: NDArray[np.bool_]) -> None:
        """Drop the rows where `mask` is False."""
        self._state = self._state[mask]

    def predict(self, rows: NDArray[np.intp] | None = None) -> None:
        """Advance tracks (all, or `rows`) by one frame. A size about to become non-positive stops shrinking."""
        q = self.noise_scale**0.5
        rows = np.arange(len(self)) if rows is None else rows
        _predict(self._state, rows, self.noise.position * q, self.noise.velocity * q)

    def update(self, rows: NDArray[np.intp], xyxy: FloatArray) -> None:
        """Correct `rows` with measured boxes (corners, one per row)."""
        _update(self._state, rows, xyxy, self.noise.measurement)

    def boxes(self, rows: NDArray[np.intp] | None = None) -> FloatArray:
        """Current estimates as corner boxes (compiled: called several times a frame on a few rows)."""
        return _corner_boxes(self._state, np.arange(len(self)) if rows is None else rows)

    def warp(self, affine: FloatArray) -> None:
        """Move every track (live and frozen state) by a camera motion, a 2x3 similarity map (see `cmc`).

        Centres are mapped, velocities turned and scaled with the image, sizes and their velocities scaled; the
        covariances scale with the square of the zoom. Each axis keeps its own filter, so a rotation's coupling of
        the x and y uncertainties is left out (frame-to-frame rotations are a fraction of a degree).
        """
        linear = np.asarray(affine, np.float64)[:, :2]
        shift = np.asarray(affine, np.float64)[:, 2]
        zoom = float(np.sqrt(abs(np.linalg.det(linear))))
        for base in (0, _LIVE):  # live state, then the frozen copy
            mean, velocity = self._state[:, base], self._state[:, base + 1]
            mean[:, :2] = mean[:, :2] @ linear.T + shift
            velocity[:, :2] = velocity[:, :2] @ linear.T
            mean[:, 2:] *= zoom
            velocity[:, 2:] *= zoom
            self._state[:, base + 2 : base + _LIVE] *= zoom * zoom

    def shift(self, rows: NDArray[np.intp], offset: FloatArray) -> None:
        """Move the rows' centres by `offset` (2,) pixels, velocities unchanged (see `cmc.shift_from_tracks`)."""
        self._state[rows, 0, :2] += offset

    def innovation_ratio(self, rows: NDArray[np.intp], xyxy: FloatArray) -> FloatArray:
        """Per row, the squared innovation of the box centre over its predicted variance, averaged over x and y:
        1 on average when the noise settings describe the data (chi-square with 2 degrees of freedom, halved)."""
        return _innovation_ratio(self._state, rows, xyxy, self.noise.measurement)

    def mahalanobis(self, rows: NDArray[np.intp], xyxy: FloatArray) -> FloatArray:
        """(len(rows), len(xyxy)) squared Mahalanobis distances of measured boxes from the rows' predictions,
        summed over the four independent axes (each with its predicted variance plus the measurement noise)."""
        mean, variance = self._state[rows, 0], self._state[rows, 2]
        innovation_var = variance + (self.noise.measurement * mean[:, (2, 3, 2, 3)]) ** 2
        boxes = xyxy_to_cxcywh(np.asarray(xyxy, np.float64).reshape(-1, 4))
        return (((boxes[None, :, :] - mean[:, None, :]) ** 2) / innovation_var[:, None, :]).sum(axis=2)

    def freeze(self, rows: NDArray[np.intp]) -> None:
        """Remember the rows' current state (called when a track first misses its detection)."""
        self._state[rows, _LIVE:] = self._state[rows, :_LIVE]

    def rewind(self, rows: NDArray[np.intp]) -> None:
        """Return the rows to their frozen state."""
        self._state[rows, :_LIVE] = self._state[rows, _LIVE:]

    def reupdate(self, rows: NDArray[np.intp], last: FloatArray, new: FloatArray, gap: NDArray[np.int64]) -> None:
        """Rewind `rows` to their frozen state and filter along the straight path from `last` to `new` (corner
        boxes) over `gap` frames: OC-SORT's re-update, as one compiled loop rather than a numpy call per frame."""
        q = self.noise_scale**0.5
        self.rewind(rows)
        _reupdate(
            self._state, rows, last, new, gap, self.noise.position * q, self.noise.velocity * q, self.noise.measurement
        )


@numba.njit(cache=True, nogil=True)
def _predict(state: FloatArray, rows: NDArray[np.intp], std_position: float, std_velocity: float) -> None:
    for r in rows:
        s = state[r]
        for axis in (2, 3):
            if s[0, axis] + s[1, axis] <= 0:
                s[1, axis] = 0.0
        width, height = s[0, 2], s[0, 3]
        for axis in range(4):
            scale = width if axis % 2 == 0 else height
            s[0, axis] += s[1, axis]
            s[2, axis] += 2 * s[3, axis] + s[4, axis] + (std_position * scale) ** 2
            s[3, axis] += s[4, axis]
            s[4, axis] += (std_velocity * scale) ** 2


@numba.njit(cache=True, nogil=True)
def _update(state: FloatArray, rows: NDArray[np.intp], xyxy: FloatArray, std_measurement: float) -> None:
    for i, r in enumerate(rows):
        s = state[r]
        w, h = xyxy[i, 2] - xyxy[i, 0], xyxy[i, 3] - xyxy[i, 1]
        measured = (xyxy[i, 0] + 0.5 * w, xyxy[i, 1] + 0.5 * h, w, h)
        width, height = s[0, 2], s[0, 3]
        for axis in range(4):
            scale = width if axis % 2 == 0 else height
            p_pp, p_pv = s[2, axis], s[3, axis]
            innovation_var = p_pp + (std_measurement * scale) ** 2
            gain_p, gain_v = p_pp / innovation_var, p_pv / innovation_var
            innovation = measured[axis] - s[0, axis]
            s[0, axis] += gain_p * innovation
            s[1, axis] += gain_v * innovation
            s[4, axis] -= gain_v * p_pv
            s[2, axis] = (1 - gain_p) * p_pp
            s[3, axis] = (1 - gain_p) * p_pv


@numba.njit(cache=True, nogil=True)
def _reupdate(
    state: FloatArray,
    rows: NDArray[np.intp],
    last: FloatArray,
    new: FloatArray,
    gap: NDArray[np.int64],
    std_position: float,
    std_velocity: float,
    std_measurement: float,
) -> None:
    one = np.empty(1, np.intp)
    box = np.empty((1, 4))
    for i in range(len(rows)):
        one[0] = rows[i]
        for step in range(1, gap[i]):
            box[0] = last[i] + (step / gap[i]) * (new[i] - last[i])
            _update(state, one, box, std_measurement)
            _predict(state, one, std_position, std_velocity)
        box[0] = new[i]
        _update(state, one, box, std_measurement)


@numba.njit(cache=True, nogil=True)
def _corner_boxes(state: FloatArray, rows: NDArray[np.intp]) -> FloatArray:
    out = np.empty((len(rows), 4))
    for i, r in enumerate(rows):
        cx, cy, w, h = state[r, 0]
        out[i, 0], out[i, 1] = cx - 0.5 * w, cy - 0.5 * h
        out[i, 2], out[i, 3] = cx + 0.5 * w, cy + 0.5 * h
    return out


@numba.njit(cache=True, nogil=True)
def _innovation_ratio(
    state: FloatArray, rows: NDArray[np.intp], xyxy: FloatArray, std_measurement: float
) -> FloatArray:
    out = np.empty(len(rows))
    for i, r in enumerate(rows):
        s = state[r]
        total = 0.0
        for axis in range(2):
            innovation_var = s[2, axis] + (std_measurement * s[0, axis + 2]) ** 2
            innovation = 0.5 * (xyxy[i, axis] + xyxy[i, axis + 2]) - s[0, axis]
            total += innovation * innovation / innovation_var
        out[i] = 0.5 * total
    return out


def xyxy_to_cxcywh(xyxy: FloatArray) -> FloatArray:
    out = np.empty_like(xyxy)
    out[:, 2:] = xyxy[:, 2:] - xyxy[:, :2]
    out[:, :2] = xyxy[:, :2] + 0.5 * out[:, 2:]
    return out


def cxcywh_to_xyxy(boxes: FloatArray) -> FloatArray:
    out = np.empty_like(boxes)
    out[:, :2] = boxes[:, :2] - 0.5 * boxes[:, 2:]
    out[:, 2:] = boxes[:, :2] + 0.5 * boxes[:, 2:]
    return out
