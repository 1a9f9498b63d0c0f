"""DriftWatch: quiet on scores drawn like the reference (false alarms counted over many synthetic cameras), loud on
a shifted camera, and its state survives a round trip through JSON. Scores are synthetic beta draws, labelled so."""

from __future__ import annotations

import json

import numpy as np
import pytest

from trackid.identity.drift import DriftWatch, drift_watch


def reference(seed: int = 0, n: int = 400) -> np.ndarray:
    return np.random.default_rng(seed).beta(5, 8, size=n)


def test_in_distribution_cameras_rarely_raise_an_alarm() -> None:
    """300 synthetic cameras of 400 scores each, drawn as the reference, each tested 8 times: the share flagged
    must stay well under 1 % (what alpha = 1e-3 and the gap and ratio conditions allow)."""
    ref = reference()
    rng = np.random.default_rng(1)
    flagged = 0
    for _ in range(300):
        watch = DriftWatch(ref)
        for chunk in rng.beta(5, 8, size=(8, 50)):
            watch.update(chunk)
        flagged += watch.drifted
    assert flagged <= 3


def test_a_shifted_camera_is_flagged_at_the_first_check() -> None:
    watch = DriftWatch(reference(), min_scores=50)
    checks = [watch.update(s) for s in np.random.default_rng(2).beta(9, 4, size=49)]
    assert checks == [None] * 49 and not watch.drifted  # not before min_scores
    check = watch.update([0.8])
    assert check is not None and check.drifted and watch.drifted
    assert check.scores_seen == 50 and check.live_median > check.reference_median


def test_a_small_shift_with_many_scores_is_not_flagged() -> None:
    """With thousands of scores a KS test finds any shift; the gap rule keeps a harmless one quiet."""
    ref = reference(n=2000)
    watch = DriftWatch(ref, min_scores=1000, window=2000)
    watch.update(np.random.default_rng(3).beta(5, 8, size=2000) + 0.03)
    assert watch.last_check is not None and watch.last_check.pvalue < 1e-3 and not watch.drifted


def test_state_round_trips_and_nan_scores_are_not_counted() -> None:
    watch = drift_watch(reference(), 20)
    watch.update([0.1, float("nan"), 0.2])
    watch.update(np.random.default_rng(4).beta(9, 4, size=30))
    assert watch.seen == 32 and watch.drifted
    again = drift_watch(reference(), 20, json.loads(json.dumps(watch.to_json())))
    assert again.seen == watch.seen and again.scores == watch.scores and again.drifted
    assert (again.min_scores, again.window) == (20, 80)


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="min_scores <= window"):
        DriftWatch(reference(), min_scores=50, window=10)
    with pytest.raises(ValueError, match="fewer than min_scores"):
        DriftWatch(reference(n=10), min_scores=50)
    with pytest.raises(ValueError, match="finite"):
        DriftWatch(np.array([0.1, np.nan]))
