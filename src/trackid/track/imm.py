"""Interacting multiple models (IMM) over all tracks: walking straight, manoeuvring, and coming to a stop.

People do not walk in straight lines: they turn, slow down and stop. An IMM runs several motion models side by side
for every track and weighs them by how well each explained the recent observations; the estimate is their
probability-weighted blend. All three models here keep the decoupled per-axis (position, velocity) structure of
`kalman.BoxKalman`, which is what lets them run as compiled loops over all tracks:

- `cruise`: constant velocity with the tracker's usual process noise;
- `manoeuvre`: constant velocity with several times that velocity noise, so the velocity follows turns quickly;
- `stop`: velocity decays towards zero (a person slowing down or standing).

Model probabilities (`probabilities`, (N, 3)) are exposed for debugging and plots.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from numpy.typing import NDArray

from trackid.track.kalman import cxcywh_to_xyxy, xyxy_to_cxcywh

__all__ = ["MODEL_NAMES", "ImmBoxFilter", "ImmNoise"]

FloatArray = NDArray[np.float64]
MODEL_NAMES = ("cruise", "manoeuvre", "stop")


@dataclass(frozen=True, slots=True)
class ImmNoise:
    """Per-frame standard deviations relative to box size, and the models' dynamics.

    Attributes:
        position, velocity, measurement: as in `KalmanNoise`, for the cruise model.
        manoeuvre_factor: the manoeuvre model's velocity noise as a multiple of the cruise model's. Higher follows
            sharper turns, but that model then explains jitter too and steals probability from cruise.
        stop_decay: fraction of its velocity the stop model keeps per frame. Lower stops faster.
        stay: probability that a track stays in its model from one frame to the next. Higher switches models more
            reluctantly: steadier on straight walks, slower to notice a turn or a stop.
    """

    position: float = 0.06
    velocity: float = 0.003
    measurement: float = 0.06
    manoeuvre_factor: float = 4.0
    stop_decay: float = 0.85
    stay: float = 0.95


class ImmBoxFilter:
    """IMM filter state for a set of tracks (rows), with the same interface as `BoxKalman` for what it shares.

    Arrays: `state` (N, 3, 5, 4) — per model: position, velocity, p_pp, p_pv, p_vv for the axes cx, cy, w, h —
    and `probabilities` (N, 3).
    """

    def __init__(self, noise: ImmNoise | None = None) -> None:
        self.noise = noise or ImmNoise()
        n = self.noise
        self._transition = np.full((3, 3), (1 - n.stay) / 2)
        np.fill_diagonal(self._transition, n.stay)
        self._velocity_std = np.array([n.velocity, n.velocity * n.manoeuvre_factor, n.velocity])
        self._velocity_keep = np.array([1.0, 1.0, n.stop_decay])
        self.noise_scale = 1.0  # multiplies every model's process noise variance, as `BoxKalman.noise_scale`
        self.state = np.zeros((0, 3, 5, 4))
        self.probabilities = np.zeros((0, 3))
        self._frozen = (self.state.copy(), self.probabilities.copy())

    def __len__(self) -> int:
        return len(self.state)

    @property
    def mean(self) -> FloatArray:
        """(N, 4) blended `cx, cy, w, h`."""
        return np.einsum("nm,nma->na", self.probabilities, self.state[:, :, 0])

    def initiate(self, xyxy: FloatArray) -> None:
        boxes = xyxy_to_cxcywh(xyxy)
        scale = boxes[:, (2, 3, 2, 3)]
        rows = np.zeros((len(boxes), 3, 5, 4))
        rows[:, :, 0] = boxes[:, None]
        rows[:, :, 2] = ((2 * self.noise.position * scale) ** 2)[:, None]
        rows[:, :, 4] = ((10 * self.noise.velocity * scale) ** 2)[:, None]
        self.state = np.concatenate([self.state, rows])
        self.probabilities = np.concatenate([self.probabilities, np.full((len(boxes), 3), 1 / 3)])
        self._frozen = (
            np.concatenate([self._frozen[0], rows]),
            np.concatenate([self._frozen[1], self.probabilities[-len(rows) :]]),
        )

    def keep(self, mask: NDArray[np.bool_]) -> None:
        self.state, self.probabilities = self.state[mask], self.probabilities[mask]
        self._frozen = (self._frozen[0][mask], self._frozen[1][mask])

    def freeze(self, rows: NDArray[np.intp]) -> None:
        """Remember the rows' state and model probabilities (a track that just lost its detection)."""
        self._frozen[0][rows], self._frozen[1][rows] = self.state[rows], self.probabilities[rows]

    def rewind(self, rows: NDArray[np.intp]) -> None:
        self.state[rows], self.probabilities[rows] = self._frozen[0][rows], self._frozen[1][rows]

    def warp(self, affine: FloatArray) -> None:
        """Move every model of every track by a camera motion (2x3 similarity map), as `BoxKalman.warp` does."""
        linear = np.asarray(affine, np.float64)[:, :2]
        shift = np.asarray(affine, np.float64)[:, 2]
        zoom = float(np.sqrt(abs(np.linalg.det(linear))))
        for state in (self.state, self._frozen[0]):
            state[:, :, 0, :2] = state[:, :, 0, :2] @ linear.T + shift
            state[:, :, 1, :2] = state[:, :, 1, :2] @ linear.T
            state[:, :, :2, 2:] *= zoom
            state[:, :, 2:] *= zoom * zoom

    def predict(self, rows: NDArray[np.intp] | None = None) -> None:
        """Mix the models by their transition probabilities, then advance each model one frame."""
        q = self.noise_scale**0.5
        _imm_predict(
            self.state,
            self.probabilities,
            np.arange(len(self)) if rows is None else rows,
            self._transition,
            self.noise.position * q,
            self._velocity_std * q,
            self._velocity_keep,
        )

    def update(self, rows: NDArray[np.intp], xyxy: FloatArray) -> None:
        """Correct every model with the measured boxes and reweigh the models by their likelihoods."""
        _imm_update(self.state, self.probabilities, rows, xyxy_to_cxcywh(xyxy), self.noise.measurement)

    def shift(self, rows: NDArray[np.intp], offset: FloatArray) -> None:
        """Move the rows' centres (every model) by `offset` (2,) pixels, as `BoxKalman.shift`."""
        self.state[rows, :, 0, :2] += offset

    def innovation_ratio(self, rows: NDArray[np.intp], xyxy: FloatArray) -> FloatArray:
        """As `BoxKalman.innovation_ratio`, for the blended prediction with the cruise model's variance."""
        mean, variance = self.mean[rows], self.state[rows, 0, 2]
        innovation_var = variance[:, :2] + (self.noise.measurement * mean[:, 2:]) ** 2
        centre = 0.5 * (xyxy[:, :2] + xyxy[:, 2:])
        return 0.5 * (((centre - mean[:, :2]) ** 2) / innovation_var).sum(axis=1)

    def boxes(self, rows: NDArray[np.intp] | None = None) -> FloatArray:
        mean = self.mean
        return cxcywh_to_xyxy(mean if rows is None else mean[rows])


@numba.njit(cache=True, nogil=True)
def _imm_predict(
    state: FloatArray,
    prob: FloatArray,
    rows: NDArray[np.intp],
    transition: FloatArray,
    std_position: float,
    std_velocity: FloatArray,
    velocity_keep: FloatArray,
) -> None:
    models = state.shape[1]
    mixed = np.empty((models, 5, 4))
    for r in rows:
        s, mu = state[r], prob[r]
        predicted = np.zeros(models)
        for j in range(models):
            for i in range(models):
                predicted[j] += transition[i, j] * mu[i]
        for j in range(models):
            for axis in range(4):
                p0 = 0.0
                v0 = 0.0
                for i in range(models):
                    w = transition[i, j] * mu[i] / predicted[j]
                    p0 += w * s[i, 0, axis]
                    v0 += w * s[i, 1, axis]
                ppp = ppv = pvv = 0.0
                for i in range(models):
                    w = transition[i, j] * mu[i] / predicted[j]
                    dp, dv = s[i, 0, axis] - p0, s[i, 1, axis] - v0
                    ppp += w * (s[i, 2, axis] + dp * dp)
                    ppv += w * (s[i, 3, axis] + dp * dv)
                    pvv += w * (s[i, 4, axis] + dv * dv)
                mixed[j, 0, axis], mixed[j, 1, axis] = p0, v0
                mixed[j, 2, axis], mixed[j, 3, axis], mixed[j, 4, axis] = ppp, ppv, pvv
        for j in range(models):
            keep = velocity_keep[j]
            for axis in (2, 3):
                if mixed[j, 0, axis] + keep * mixed[j, 1, axis] <= 0:
                    mixed[j, 1, axis] = 0.0
            width, height = mixed[j, 0, 2], mixed[j, 0, 3]
            for axis in range(4):
                scale = width if axis % 2 == 0 else height
                p, v = mixed[j, 0, axis], mixed[j, 1, axis]
                ppp, ppv, pvv = mixed[j, 2, axis], mixed[j, 3, axis], mixed[j, 4, axis]
                s[j, 0, axis] = p + keep * v
                s[j, 1, axis] = keep * v
                s[j, 2, axis] = ppp + 2 * keep * ppv + keep * keep * pvv + (std_position * scale) ** 2
                s[j, 3, axis] = keep * ppv + keep * keep * pvv
                s[j, 4, axis] = keep * keep * pvv + (std_velocity[j] * scale) ** 2
        for j in range(models):
            mu[j] = predicted[j]


@numba.njit(cache=True, nogil=True)
def _imm_update(state: FloatArray, prob: FloatArray, rows: NDArray[np.intp], boxes: FloatArray, std: float) -> None:
    models = state.shape[1]
    log_like = np.empty(models)
    for k, r in enumerate(rows):
        s, mu = state[r], prob[r]
        for j in range(models):
            width, height = s[j, 0, 2], s[j, 0, 3]
            total = 0.0
            for axis in range(4):
                scale = width if axis % 2 == 0 else height
                p_pp, p_pv = s[j, 2, axis], s[j, 3, axis]
                innovation_var = p_pp + (std * scale) ** 2
                innovation = boxes[k, axis] - s[j, 0, axis]
                total -= 0.5 * (innovation * innovation / innovation_var + np.log(2 * np.pi * innovation_var))
                gain_p, gain_v = p_pp / innovation_var, p_pv / innovation_var
                s[j, 0, axis] += gain_p * innovation
                s[j, 1, axis] += gain_v * innovation
                s[j, 4, axis] -= gain_v * p_pv
                s[j, 2, axis] = (1 - gain_p) * p_pp
                s[j, 3, axis] = (1 - gain_p) * p_pv
            log_like[j] = total
        best = log_like.max()
        norm = 0.0
        for j in range(models):
            mu[j] *= np.exp(log_like[j] - best)
            norm += mu[j]
        floor_norm = 0.0
        for j in range(models):
            mu[j] = max(mu[j] / norm, 1e-6)  # a model never dies out completely, or it could never come back
            floor_norm += mu[j]
        for j in range(models):
            mu[j] /= floor_norm
