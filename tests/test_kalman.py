"""The decoupled Kalman filter must be exactly the textbook 8-D constant-velocity filter, just cheaper.

`BoxKalman` takes and reports corner boxes at its edges; its state (`mean`, `velocity`) is `cx, cy, w, h`.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from trackid.track.kalman import BoxKalman, KalmanNoise, cxcywh_to_xyxy, xyxy_to_cxcywh


class MatrixKalman:
    """Textbook filter for one track: state `cx, cy, w, h, vcx, vcy, vw, vh`, full 8x8 covariance.

    Q and R are diagonal with the same size-relative standard deviations as `BoxKalman` (width for cx and w,
    height for cy and h), Q from the mean before the prediction, R from the predicted mean.
    """

    def __init__(self, box: NDArray[np.float64], noise: KalmanNoise) -> None:
        self.noise = noise
        self.x = np.concatenate([box, np.zeros(4)])
        scale = _scale(box)
        self.p = np.diag(np.concatenate([(2 * noise.position * scale) ** 2, (noise.initial_velocity * scale) ** 2]))
        self.f = np.eye(8)
        self.f[:4, 4:] = np.eye(4)
        self.h = np.eye(4, 8)

    def predict(self) -> None:
        scale = _scale(self.x[:4])
        q = np.diag(np.concatenate([(self.noise.position * scale) ** 2, (self.noise.velocity * scale) ** 2]))
        self.x = self.f @ self.x
        self.p = self.f @ self.p @ self.f.T + q

    def update(self, z: NDArray[np.float64]) -> None:
        r = np.diag((self.noise.measurement * _scale(self.x[:4])) ** 2)
        s = self.h @ self.p @ self.h.T + r
        k = self.p @ self.h.T @ np.linalg.inv(s)
        self.x = self.x + k @ (z - self.h @ self.x)
        self.p = (np.eye(8) - k @ self.h) @ self.p


def _scale(box: NDArray[np.float64]) -> NDArray[np.float64]:
    return box[[2, 3, 2, 3]]


def _random_boxes(rng: np.random.Generator, n: int) -> NDArray[np.float64]:
    return np.column_stack([rng.uniform(100, 500, (n, 2)), rng.uniform(30, 60, n), rng.uniform(80, 160, n)])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_decoupled_filter_equals_matrix_filter(seed: int) -> None:
    rng = np.random.default_rng(seed)
    noise = KalmanNoise(position=0.05, velocity=0.01, measurement=0.07, initial_velocity=0.1)
    n = 6
    boxes = _random_boxes(rng, n)
    fast = BoxKalman(noise)
    fast.initiate(cxcywh_to_xyxy(boxes))
    reference = [MatrixKalman(b, noise) for b in boxes]
    truth = boxes.copy()
    drift = rng.normal(0, 2.0, (n, 4)) * [1, 1, 0.05, 0.05]  # sizes change slowly, so no size ever reaches zero

    for _ in range(60):
        truth += drift
        if rng.random() < 0.3:  # predict only some tracks, as the tracker does while re-updating
            rows = np.flatnonzero(rng.random(n) < 0.5)
            fast.predict(rows)
        else:
            rows = np.arange(n)
            fast.predict()
        for r in rows:
            reference[r].predict()
        updated = np.flatnonzero(rng.random(n) < 0.7)  # some tracks miss their detection
        measured = truth[updated] + rng.normal(0, 1.5, (len(updated), 4))
        fast.update(updated, cxcywh_to_xyxy(measured))
        for r, z in zip(updated, measured, strict=True):
            reference[r].update(z)

        expected = np.array([k.x for k in reference])
        np.testing.assert_allclose(fast.mean, expected[:, :4], rtol=0, atol=1e-9)
        np.testing.assert_allclose(fast.velocity, expected[:, 4:], rtol=0, atol=1e-9)


def test_filter_follows_constant_velocity() -> None:
    kalman = BoxKalman()
    kalman.initiate(cxcywh_to_xyxy(np.array([[100.0, 200.0, 40.0, 100.0]])))
    for step in range(1, 40):
        kalman.predict()
        kalman.update(np.array([0]), cxcywh_to_xyxy(np.array([[100.0 + 3 * step, 200.0 - step, 40.0, 100.0]])))
    np.testing.assert_allclose(kalman.velocity[0], [3.0, -1.0, 0.0, 0.0], atol=0.05)


def test_freeze_and_rewind_restore_the_state() -> None:
    kalman = BoxKalman()
    kalman.initiate(cxcywh_to_xyxy(_random_boxes(np.random.default_rng(3), 3)))
    kalman.predict()
    kalman.update(np.array([0, 1, 2]), cxcywh_to_xyxy(kalman.mean + 1.0))
    kalman.freeze(np.array([1]))
    saved_mean, saved_velocity = kalman.mean.copy(), kalman.velocity.copy()
    for _ in range(5):
        kalman.predict()
    kalman.rewind(np.array([1]))
    np.testing.assert_array_equal(kalman.mean[1], saved_mean[1])
    np.testing.assert_array_equal(kalman.velocity[1], saved_velocity[1])
    assert not np.array_equal(kalman.mean[0], saved_mean[0])


def test_keep_drops_rows() -> None:
    kalman = BoxKalman()
    boxes = _random_boxes(np.random.default_rng(4), 4)
    kalman.initiate(cxcywh_to_xyxy(boxes))
    kalman.keep(np.array([True, False, True, False]))
    assert len(kalman) == 2
    np.testing.assert_allclose(kalman.mean, boxes[[0, 2]], rtol=0, atol=1e-9)


def test_box_conversions_round_trip() -> None:
    xyxy = np.array([[10.0, 20.0, 50.0, 120.0]])
    cxcywh = xyxy_to_cxcywh(xyxy)
    assert cxcywh.tolist() == [[30.0, 70.0, 40.0, 100.0]]
    np.testing.assert_array_equal(cxcywh_to_xyxy(cxcywh), xyxy)


def test_mahalanobis_distance_grows_with_the_miss_and_shrinks_with_uncertainty() -> None:
    kalman = BoxKalman()
    kalman.initiate(np.array([[100.0, 100, 140, 200], [100.0, 100, 140, 200]]))
    for _ in range(5):  # row 1 is predicted through a gap: its uncertainty grows
        kalman.predict(np.array([1]))
    near, far = [100.0 + 2, 100, 140 + 2, 200], [100.0 + 20, 100, 140 + 20, 200]
    d2 = kalman.mahalanobis(np.array([0, 1]), np.array([near, far]))
    assert d2.shape == (2, 2)
    assert d2[0, 1] > d2[0, 0] > 0  # a larger miss is further
    assert d2[1, 1] < d2[0, 1]  # the same miss is nearer for the more uncertain track


def test_innovation_ratio_is_one_on_data_from_the_model() -> None:
    """Tracks simulated with exactly the filter's noise: the normalised innovation averages 1 (its median ln 2)."""
    rng = np.random.default_rng(5)
    noise = KalmanNoise(position=0.02, velocity=0.004, measurement=0.03)
    n, size = 400, np.array([40.0, 100.0])
    truth = np.concatenate([rng.uniform(200, 800, (n, 2)), np.tile(size, (n, 1))], axis=1)
    speed = rng.normal(0, 1.0, (n, 2))
    kalman = BoxKalman(noise)
    kalman.initiate(cxcywh_to_xyxy(truth))
    rows = np.arange(n)
    ratios = []
    for _ in range(60):
        speed += rng.normal(0, 1, (n, 2)) * noise.velocity * size
        truth[:, :2] += speed + rng.normal(0, 1, (n, 2)) * noise.position * size
        measured = truth.copy()
        measured[:, :2] += rng.normal(0, 1, (n, 2)) * noise.measurement * size
        kalman.predict()
        ratios.append(kalman.innovation_ratio(rows, cxcywh_to_xyxy(measured)))
        kalman.update(rows, cxcywh_to_xyxy(measured))
    settled = np.concatenate(ratios[20:])
    assert 0.9 < settled.mean() < 1.1
    assert abs(np.median(settled) - np.log(2)) < 0.07


def test_noise_scale_widens_the_prediction_and_shift_moves_only_the_rows() -> None:
    boxes = np.array([[100.0, 50, 140, 150], [400, 300, 460, 420]])
    steady, shaken = BoxKalman(), BoxKalman()
    for kalman in (steady, shaken):
        kalman.initiate(boxes)
    shaken.noise_scale = 4.0
    steady.predict()
    shaken.predict()
    far = np.array([[130.0, 50, 170, 150]])
    assert shaken.mahalanobis(np.array([0]), far)[0, 0] < steady.mahalanobis(np.array([0]), far)[0, 0]
    np.testing.assert_allclose(shaken.boxes(), steady.boxes())  # the mean does not depend on the noise
    shaken.shift(np.array([1]), np.array([10.0, -5.0]))
    np.testing.assert_allclose(shaken.boxes()[0], steady.boxes()[0])
    np.testing.assert_allclose(shaken.boxes()[1], steady.boxes()[1] + [10, -5, 10, -5])
