"""Camera centring as a scikit-learn-style transformer: fit / transform / fit_transform, its layouts (member blocks,
an ensemble's weighted output), the arguments it refuses, and the persisted form `tuned.json` holds."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from trackid.embed.centring import CameraCentring
from trackid.embed.colour import ColourTextureEmbedder
from trackid.embed.crops import l2_normalise
from trackid.embed.ensemble import EnsembleEmbedder

CAMERAS = np.array(["north", "north", "north", "south", "south", "south"])


def _members() -> tuple[list[np.ndarray], EnsembleEmbedder, list[np.ndarray]]:
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (64, 32, 3), dtype=np.uint8) for _ in range(6)]
    a, b = ColourTextureEmbedder(), ColourTextureEmbedder(stripes=3)
    return [l2_normalise(a.embed(crops)), l2_normalise(b.embed(crops))], EnsembleEmbedder([a, b], [0.3, 0.7]), crops


def test_fit_learns_each_cameras_mean_and_transform_removes_it_block_by_block() -> None:
    members, _, _ = _members()
    dims = [m.shape[1] for m in members]
    x = np.concatenate(members, axis=1)
    centring = CameraCentring(dims=dims)
    assert centring.fit(x, CAMERAS) is centring
    assert set(centring.means_) == {"north", "south"} and centring.n_features_in_ == x.shape[1]
    np.testing.assert_allclose(centring.means_["north"], x[:3].mean(axis=0))
    out = centring.transform(x, CAMERAS)
    for block, (lo, hi) in zip(members, [(0, dims[0]), (dims[0], sum(dims))], strict=True):
        mean = block[CAMERAS == "north"].mean(axis=0)
        expected = (block[:3] - mean) / np.linalg.norm(block[:3] - mean, axis=1, keepdims=True)
        np.testing.assert_allclose(out[:3, lo:hi], expected, atol=1e-5)
        np.testing.assert_allclose(np.linalg.norm(out[:, lo:hi], axis=1), 1.0, rtol=1e-5)
        # centred, a camera's rows no longer share a direction: their mean is (near) zero
        assert np.linalg.norm(out[:3, lo:hi].mean(axis=0)) < np.linalg.norm(mean)
    np.testing.assert_array_equal(CameraCentring(dims=dims).fit_transform(x, CAMERAS), out)


def test_an_ensembles_output_is_centred_member_by_member_with_its_weights_kept() -> None:
    members, ensemble, crops = _members()
    x = np.concatenate(members, axis=1)
    centring = CameraCentring(dims=ensemble.dims).fit(x, CAMERAS)
    expected = centring.transform(x, CAMERAS)
    centring.set_params(weights=list(ensemble.weights))
    joined = centring.transform(ensemble.embed(crops), CAMERAS)
    a = ensemble.dims[0]
    np.testing.assert_allclose(joined[:, :a] / np.sqrt(0.3), expected[:, :a], atol=1e-5)
    np.testing.assert_allclose(joined[:, a:] / np.sqrt(0.7), expected[:, a:], atol=1e-5)
    # fitted on the weighted layout, it learns the same (unweighted) means
    again = CameraCentring(dims=ensemble.dims, weights=list(ensemble.weights)).fit(ensemble.embed(crops), CAMERAS)
    np.testing.assert_allclose(again.means_["south"], centring.means_["south"], atol=1e-5)
    # a camera it was not fitted on is left as it was
    untouched = centring.transform(ensemble.embed(crops[:1]), ["east"])
    np.testing.assert_allclose(untouched, ensemble.embed(crops[:1]), atol=1e-6)


def test_the_persisted_means_load_and_keep_the_vector_spaces_name() -> None:
    """`tuned.json` stores `camera_means` as {camera: [floats]}; files written before the transformer load the same,
    and the digest (part of the stored vectors' model version) is the one those files were named by."""
    old = CameraCentring.from_json({"north": [0.6, 0.8], "south": [1.0, 0.0]})
    assert old.digest == "2d2d820963" and old.n_features_in_ == 2
    members, _, _ = _members()
    centring = CameraCentring(dims=[m.shape[1] for m in members]).fit(np.concatenate(members, axis=1), CAMERAS)
    again = CameraCentring.from_json(json.loads(json.dumps(centring.to_json())), dims=centring.dims)
    assert again.digest == centring.digest
    x = np.concatenate(members, axis=1)
    np.testing.assert_allclose(again.transform(x, CAMERAS), centring.transform(x, CAMERAS), atol=1e-6)
    assert CameraCentring.from_json({"north": centring.means_["south"]}).digest != centring.digest


def test_arguments_it_cannot_use_are_named() -> None:
    x = np.ones((4, 6), np.float32)
    cameras = ["a", "a", "b", "b"]
    with pytest.raises(NotFittedError):
        CameraCentring().transform(x, cameras)
    with pytest.raises(ValueError, match="X must be a 2-D array"):
        CameraCentring().fit(np.ones(6), ["a"])
    with pytest.raises(ValueError, match="X contains NaN"):
        CameraCentring().fit(np.full((2, 6), np.nan), ["a", "b"])
    with pytest.raises(ValueError, match=r"cameras must name one camera per row of X \(4\)"):
        CameraCentring().fit(x, ["a", "b"])
    with pytest.raises(ValueError, match="X has no rows"):
        CameraCentring().fit(np.ones((0, 6)), [])
    with pytest.raises(ValueError, match="dims must be positive and sum to X's width 6"):
        CameraCentring(dims=[2, 3]).fit(x, cameras)
    with pytest.raises(ValueError, match="weights must be 2 non-negative numbers"):
        CameraCentring(dims=[3, 3], weights=[1.0]).fit(x, cameras)
    with pytest.raises(ValueError, match="X has 4 features, but CameraCentring was fitted on 6"):
        CameraCentring().fit(x, cameras).transform(np.ones((1, 4)), ["a"])
    with pytest.raises(ValueError, match="one width for every camera"):
        CameraCentring.from_json({"a": [1.0], "b": [1.0, 0.0]})
