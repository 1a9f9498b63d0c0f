"""CameraAdaptation: online camera means equal to CameraCentring's batch means, frozen after the warm-up; tune's
cameras untouched; persisted statistics restore the same transform. Synthetic vectors (a camera = a shared offset)."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from trackid.embed.adaptation import CameraAdaptation
from trackid.embed.centring import CameraCentring
from trackid.embed.crops import l2_normalise

DIMS = [6, 4]
WEIGHTS = [0.7, 0.3]


def ensemble_rows(n: int, offset: float, seed: int) -> NDArray[np.float32]:
    """Rows in an ensemble's joined layout (each block a unit vector times sqrt(weight)), shifted by a camera."""
    rng = np.random.default_rng(seed)
    blocks = []
    for d, w in zip(DIMS, WEIGHTS, strict=True):
        blocks.append(np.sqrt(w) * l2_normalise((rng.normal(size=(n, d)) + offset).astype(np.float32)))
    return np.concatenate(blocks, axis=1).astype(np.float32)


def test_partial_fit_in_pieces_equals_camera_centring_on_everything() -> None:
    x = np.concatenate([ensemble_rows(30, 2.0, 0), ensemble_rows(20, -1.0, 1)])
    cams = np.array(["a"] * 30 + ["b"] * 20)
    order = np.random.default_rng(2).permutation(len(x))
    adaptation = CameraAdaptation(warmup=10, dims=DIMS, weights=WEIGHTS)
    for piece in np.array_split(order, 7):
        adaptation.partial_fit(x[piece], cams[piece])
    batch = CameraCentring(dims=DIMS, weights=WEIGHTS).fit(x, cams)
    assert adaptation.counts_ == {"a": 30, "b": 20}
    for camera in ("a", "b"):
        assert adaptation.ready(camera)
        np.testing.assert_allclose(adaptation.freeze(camera), batch.means_[camera], atol=1e-6)
    np.testing.assert_allclose(adaptation.transform(x, cams), batch.transform(x, cams), atol=1e-6)


def test_a_frozen_mean_never_moves_and_warming_cameras_pass_uncentred() -> None:
    adaptation = CameraAdaptation(warmup=5, dims=DIMS, weights=WEIGHTS)
    adaptation.partial_fit(ensemble_rows(5, 1.0, 0), ["a"] * 5)
    adaptation.partial_fit(ensemble_rows(3, 1.0, 1), ["b"] * 3)
    frozen = adaptation.freeze("a").copy()
    adaptation.partial_fit(ensemble_rows(50, -3.0, 2), ["a"] * 50)  # after freezing: not counted
    np.testing.assert_array_equal(adaptation.frozen_["a"], frozen)
    assert adaptation.counts_["a"] == 5
    assert (adaptation.state("a"), adaptation.state("b"), adaptation.state("c")) == ("adapted", "warming", "unseen")
    assert not adaptation.ready("b")
    rows = ensemble_rows(4, 1.0, 3)
    # a camera without a fixed mean is only re-normalised block by block: its rows are already unit blocks
    np.testing.assert_allclose(adaptation.transform(rows, ["b"] * 4), rows, atol=1e-6)
    assert not np.allclose(adaptation.transform(rows, ["a"] * 4), rows, atol=1e-3)


def test_tuned_cameras_keep_tunes_means_and_are_not_counted() -> None:
    x = ensemble_rows(20, 1.5, 0)
    tuned = CameraCentring(dims=DIMS, weights=WEIGHTS).fit(x, ["cam1"] * 20)
    adaptation = CameraAdaptation(warmup=3, tuned=tuned, dims=DIMS, weights=WEIGHTS)
    adaptation.partial_fit(ensemble_rows(10, -2.0, 1), ["cam1"] * 10)
    assert adaptation.counts_ == {} and adaptation.state("cam1") == "tuned"
    with pytest.raises(ValueError, match="tune's mean"):
        adaptation.freeze("cam1")
    rows = ensemble_rows(5, 1.5, 2)
    np.testing.assert_array_equal(adaptation.transform(rows, ["cam1"] * 5), tuned.transform(rows, ["cam1"] * 5))


def test_statistics_round_trip_through_json_restores_the_same_transform() -> None:
    import json

    adaptation = CameraAdaptation(warmup=4, dims=DIMS, weights=WEIGHTS)
    adaptation.partial_fit(ensemble_rows(6, 1.0, 0), ["a"] * 6)
    adaptation.partial_fit(ensemble_rows(2, -1.0, 1), ["b"] * 2)
    adaptation.freeze("a")
    saved = {c: json.loads(json.dumps(adaptation.statistics(c))) for c in ("a", "b")}
    restored = CameraAdaptation(warmup=4, dims=DIMS, weights=WEIGHTS)
    for camera, stats in saved.items():
        restored.load(camera, stats["count"], stats["total"], frozen=stats["frozen"])
    rows = ensemble_rows(3, 0.5, 2)
    np.testing.assert_array_equal(restored.transform(rows, ["a"] * 3), adaptation.transform(rows, ["a"] * 3))
    # the warming camera continues counting where it stopped
    more = ensemble_rows(2, -1.0, 3)
    for a in (adaptation, restored):
        a.partial_fit(more, ["b"] * 2)
    np.testing.assert_allclose(restored.freeze("b"), adaptation.freeze("b"), atol=1e-7)


def test_inputs_are_checked_by_name() -> None:
    with pytest.raises(ValueError, match="warmup"):
        CameraAdaptation(warmup=0).partial_fit(np.ones((1, 10)), ["a"])
    with pytest.raises(ValueError, match="cameras one per row"):
        CameraAdaptation(warmup=2).partial_fit(np.ones((2, 10)), ["a"])
    with pytest.raises(ValueError, match="no rows counted"):
        CameraAdaptation(warmup=2).freeze("a")
