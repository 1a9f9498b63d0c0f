"""Smoothing triangulated trajectories with the world tracker's motion model."""

from __future__ import annotations

import numpy as np

from trackid.multiview.smoothing import smooth_ground
from trackid.multiview.world_tracking import WorldTracker


def _walk(person: int, frames: np.ndarray, fps: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(rows frame, id, X, Y, extra) of a person walking a gentle curve at 1.2 m/s, seen with 0.15 m noise; truth."""
    t = frames / fps
    truth = np.column_stack([1.2 * t, 2.0 * np.sin(0.2 * t) + person * 5.0])
    seen = truth + rng.normal(0, 0.15, truth.shape)
    return np.column_stack([frames, np.full(len(frames), person), seen, np.arange(len(frames))]), truth


def test_smoothing_brings_a_noisy_walk_closer_to_the_path_at_2_and_25_fps() -> None:
    rng = np.random.default_rng(0)
    for fps in (2.0, 25.0):
        rows, truth = _walk(1, np.arange(0, 40 * fps), fps, rng)
        smoothed = smooth_ground(rows, fps)
        raw_error = np.linalg.norm(rows[:, 2:4] - truth, axis=1).mean()
        error = np.linalg.norm(smoothed[:, 2:4] - truth, axis=1).mean()
        assert error < 0.8 * raw_error, (fps, error, raw_error)
        assert np.array_equal(smoothed[:, [0, 1, 4]], rows[:, [0, 1, 4]])  # frames, ids, other columns kept


def test_people_are_smoothed_apart_and_rows_keep_their_order() -> None:
    rng = np.random.default_rng(1)
    a, _ = _walk(1, np.arange(0, 60), 2.0, rng)
    b, _ = _walk(2, np.arange(10, 50), 2.0, rng)
    rows = np.concatenate([a, b])[rng.permutation(100)]
    smoothed = smooth_ground(rows, 2.0)
    assert np.array_equal(smoothed[:, :2], rows[:, :2])
    assert np.abs(smoothed[:, 3] - rows[:, 3]).max() < 1.0  # no pull towards the other person, 5 m away


def test_a_gap_longer_than_the_tracker_keeps_is_not_smoothed_across() -> None:
    """Two segments of one id, the second 3 m off: each is smoothed alone, so the jump is not spread into either."""
    frames = np.r_[np.arange(0, 20), np.arange(25, 45)]  # 2.5 s apart at 2 fps
    rows = np.column_stack([frames, np.ones(40), np.where(frames < 20, 0.0, 3.0), np.zeros(40)])
    smoothed = smooth_ground(rows, 2.0, WorldTracker(max_lost_s=1.5))
    assert np.allclose(smoothed[:, 2], rows[:, 2], atol=1e-6)
    joined = smooth_ground(rows, 2.0, WorldTracker(max_lost_s=10.0))
    assert np.abs(joined[:, 2] - rows[:, 2]).max() > 0.1  # the same rows with the gap bridged do move
