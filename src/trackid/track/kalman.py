"""Constant-velocity Kalman filter over all tracks at once, in the box space `cx, cy, w, h`.

With a constant-velocity transition and diagonal process and measurement noise, the usual 8-D filter per track
splits exactly into four independent 2-D filters (position, velocity) per axis: the covariance never couples two
axes. So each track's covariance is three numbers per axis (`p_pp`, `p_pv`, `p_vv`), and predict/update are a
handful of element-wise operations on (N, 4) arrays — the same result as the 8x8 matrix filter at a fraction of
its cost, for any number of tracks.

Noise scales with the box size (width for `cx` and `w`, height for `cy` and `h`), as in DeepSORT/BoT-SORT: a box
ten times larger moves and jitters ten times more in pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["BoxKalman", "KalmanNoise", "cxcywh_to_xyxy", "xyxy_to_cxcywh"]

FloatArray = NDArray[np.float64]

_LIVE = 5  # mean, velocity, p_pp, p_pv, p_vv
_ALL = slice(None)


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

    def initiate(self, boxes: FloatArray) -> None:
        """Append one row per box (`cx, cy, w, h`), at rest, with size-relative uncertainty."""
        scale = _scale(boxes)
        rows = np.zeros((len(boxes), 2 * _LIVE, 4))
        rows[:, 0] = boxes
        rows[:, 2] = (2 * self.noise.position * scale) ** 2
        rows[:, 4] = (self.noise.initial_velocity * scale) ** 2
        self._state = np.concatenate([self._state, rows])

    def keep(self, mask: NDArray[np.bool_]) -> None:
        """Drop the rows where `mask` is False."""
        self._state = self._state[mask]

    def predict(self, rows: NDArray[np.intp] | slice = _ALL) -> None:
        """Advance tracks by one frame. A size whose velocity would make it non-positive stops shrinking."""
        s = self._state[rows]
        mean, velocity, p_pp, p_pv, p_vv = s[:, 0], s[:, 1], s[:, 2], s[:, 3], s[:, 4]
        np.copyto(velocity[:, 2:], 0.0, where=mean[:, 2:] + velocity[:, 2:] <= 0)
        scale = _scale(mean)
        mean += velocity
        p_pp += 2 * p_pv + p_vv + (self.noise.position * scale) ** 2
        p_pv += p_vv
        p_vv += (self.noise.velocity * scale) ** 2
        if not isinstance(rows, slice):
            self._state[rows] = s

    def update(self, rows: NDArray[np.intp], boxes: FloatArray) -> None:
        """Correct `rows` with measured boxes (`cx, cy, w, h`, one per row)."""
        s = self._state[rows]
        mean, velocity, p_pp, p_pv, p_vv = s[:, 0], s[:, 1], s[:, 2], s[:, 3], s[:, 4]
        r = (self.noise.measurement * _scale(mean)) ** 2
        gain_p = p_pp / (p_pp + r)
        gain_v = p_pv / (p_pp + r)
        innovation = boxes - mean
        mean += gain_p * innovation
        velocity += gain_v * innovation
        p_vv -= gain_v * p_pv
        p_pp *= 1 - gain_p
        p_pv *= 1 - gain_p
        self._state[rows] = s

    def freeze(self, rows: NDArray[np.intp]) -> None:
        """Remember the rows' current state (called when a track first misses its detection)."""
        self._state[rows, _LIVE:] = self._state[rows, :_LIVE]

    def rewind(self, rows: NDArray[np.intp]) -> None:
        """Return the rows to their frozen state."""
        self._state[rows, :_LIVE] = self._state[rows, _LIVE:]


def _scale(boxes: FloatArray) -> FloatArray:
    """Per-axis noise scale: width for cx and w, height for cy and h."""
    return boxes[:, (2, 3, 2, 3)]


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
