"""Learned metrics (XQDA, KISSME, regularised LDA): pair statistics against a direct count, separating identities
better than the raw features, the unit-vector transform, save/load round trips, refused input, the registry, the
`learned` embedder, and LOMO + XQDA on a real VIPeR split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from trackid.embed import (
    KISSME,
    METRICS,
    XQDA,
    ColourTextureEmbedder,
    LomoEmbedder,
    MetricEmbedder,
    PairMetric,
    RegularisedLDA,
    load_metric,
    make_embedder,
    make_metric,
)
from trackid.embed.metric import _pair_covariances
from trackid.eval.reid import evaluate_reid

KINDS = [XQDA, KISSME, RegularisedLDA]


def _two_camera_set(people: int, seed: int, d: int = 20) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Identity lives in 5 directions; 15 others carry as much nuisance (pose, light) plus a camera offset."""
    rng = np.random.default_rng(seed)
    identity = np.zeros((people, d))
    identity[:, :5] = rng.normal(size=(people, 5))
    rows, labels, cameras = [], [], []
    for camera in (0, 1):
        nuisance = np.zeros((people, d))
        nuisance[:, 5:] = rng.normal(size=(people, d - 5)) + 2.0 * camera
        rows.append(identity + nuisance + 0.2 * rng.normal(size=(people, d)))
        labels.append(np.arange(people))
        cameras.append(np.full(people, f"cam{camera}"))
    return np.concatenate(rows), np.concatenate(labels), np.concatenate(cameras)


def _rank1(probe: np.ndarray, gallery: np.ndarray) -> float:
    ids = np.arange(len(probe))
    unit = lambda v: v / np.linalg.norm(v, axis=1, keepdims=True)  # noqa: E731
    return evaluate_reid(unit(probe) @ unit(gallery).T, ids, ids).rank(1)


def test_pair_covariances_equal_a_direct_sum_over_cross_camera_pairs() -> None:
    rng = np.random.default_rng(0)
    x, labels, groups = rng.normal(size=(24, 4)), rng.integers(0, 5, 24), rng.integers(0, 2, 24)
    same, different = np.zeros((4, 4)), np.zeros((4, 4))
    n_same = n_different = 0
    for i in range(24):
        for j in range(24):
            if groups[i] != groups[j]:
                outer = np.outer(x[i] - x[j], x[i] - x[j])
                if labels[i] == labels[j]:
                    same, n_same = same + outer, n_same + 1
                else:
                    different, n_different = different + outer, n_different + 1
    got_same, got_different = _pair_covariances(x, labels, groups)
    np.testing.assert_allclose(got_same, same / n_same, atol=1e-12)
    np.testing.assert_allclose(got_different, different / n_different, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_each_metric_separates_held_out_identities_better_than_the_raw_features(kind: type[PairMetric]) -> None:
    train_x, train_y, train_cams = _two_camera_set(150, seed=1)
    test_x, _, _ = _two_camera_set(100, seed=2)
    # LDA keeps identities - 1 directions by default, here every one of the 20: ask for the 5 that identify.
    params = {"n_components": 5} if kind is RegularisedLDA else {"n_components": 20} if kind is KISSME else {}
    metric = kind(**params).fit(train_x, train_y, train_cams)
    raw = _rank1(test_x[:100], test_x[100:])
    learned = metric.transform(test_x)
    assert _rank1(learned[:100], learned[100:]) > raw + 0.3
    assert learned.dtype == np.float32 and learned.shape == (200, metric.n_components_)
    np.testing.assert_allclose(np.linalg.norm(learned, axis=1), 1.0, rtol=1e-5)


def test_xqda_keeps_the_directions_where_different_pairs_vary_more_and_its_projection_is_the_metric() -> None:
    x, y, cams = _two_camera_set(150, seed=3)
    metric = XQDA().fit(x, y, cams)
    assert (metric.eigenvalues_ > 1).all() and 1 <= metric.n_components_ <= 20
    assert XQDA(n_components=2).fit(x, y, cams).n_components_ == 2
    z = metric.project(x[:3]) - metric.project(x[3:6])
    diff = x[:3] - x[3:6]
    components = metric.components_.astype(np.float64)
    np.testing.assert_allclose((z**2).sum(1), ((diff @ components) ** 2).sum(1), rtol=1e-4)


def test_without_cameras_every_pair_of_rows_counts() -> None:
    x, y, cams = _two_camera_set(60, seed=4)
    with_cams, without = XQDA().fit(x, y, cams), XQDA().fit(x, y)
    assert with_cams.digest != without.digest  # within-camera different pairs now count as different pairs


@pytest.mark.parametrize("kind", KINDS)
def test_save_and_load_round_trip_bit_identical(kind: type[PairMetric], tmp_path: Path) -> None:
    x, y, cams = _two_camera_set(80, seed=5)
    metric = kind().fit(x, y, cams) if kind is not KISSME else kind(n_components=20).fit(x, y, cams)
    path = metric.save(tmp_path / "metric.npz")
    assert path.is_file() and not list(tmp_path.glob(".*.tmp"))
    loaded = kind.load(path)
    assert type(loaded) is kind and loaded.get_params() == metric.get_params()
    assert loaded.digest == metric.digest and loaded.n_components_ == metric.n_components_
    np.testing.assert_array_equal(loaded.transform(x), metric.transform(x))
    assert type(load_metric(path)) is kind


def test_load_refuses_what_is_not_a_metric_of_that_kind_naming_the_file(tmp_path: Path) -> None:
    x, y, cams = _two_camera_set(40, seed=6)
    path = KISSME(n_components=10).fit(x, y, cams).save(tmp_path / "kissme.npz")
    with pytest.raises(ValueError, match=r"kissme\.npz holds a 'kissme' metric, not XQDA"):
        XQDA.load(path)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"junk\.npz is not a saved metric"):
        load_metric(junk)
    with pytest.raises(ValueError, match=r"missing\.npz"):
        load_metric(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", mean=np.zeros(3))
    with pytest.raises(ValueError, match=r"other\.npz"):
        load_metric(tmp_path / "other.npz")


def test_bad_input_is_refused_naming_the_argument() -> None:
    x, y, cams = _two_camera_set(20, seed=7)
    with pytest.raises(ValueError, match="y must give one identity per row"):
        XQDA().fit(x, y[:-1])
    with pytest.raises(ValueError, match="cameras must name one camera per row"):
        XQDA().fit(x, y, cams[:3])
    with pytest.raises(ValueError, match="X contains NaN"):
        XQDA().fit(np.where(np.eye(*x.shape) > 0, np.nan, x), y)
    with pytest.raises(ValueError, match="at least two identities"):
        XQDA().fit(x, np.zeros(len(x)))
    # Each person seen by one camera only: no same pair across cameras to learn from.
    with pytest.raises(ValueError, match="no pair of same identity across cameras"):
        XQDA().fit(x, np.arange(len(x)), cams)
    with pytest.raises(NotFittedError):
        XQDA().transform(x)
    fitted = XQDA().fit(x, y, cams)
    with pytest.raises(ValueError, match="X has 19 features, but XQDA was fitted on 20"):
        fitted.transform(x[:, 1:])


def test_registry_builds_each_metric_and_checks_its_parameters() -> None:
    assert sorted(METRICS) == ["kissme", "lda", "xqda"]
    assert isinstance(make_metric("xqda", reg=0.01), XQDA) and make_metric("xqda", reg=0.01).reg == 0.01
    assert isinstance(make_metric("lda"), RegularisedLDA)
    with pytest.raises(ValueError, match="metric 'kissme' has no parameter 'lambda_'"):
        make_metric("kissme", lambda_=1)
    with pytest.raises(ValueError, match="shrinkage"):
        make_metric("lda", shrinkage=2)


def test_metric_embedder_maps_a_base_embedder_into_the_learned_space(tmp_path: Path) -> None:
    base = ColourTextureEmbedder()
    rng = np.random.default_rng(8)
    crops = [rng.integers(0, 256, (64, 32, 3), dtype=np.uint8) for _ in range(12)]
    features = base.embed(crops)
    metric = RegularisedLDA(n_components=3).fit(features, np.repeat(np.arange(6), 2), np.tile(["a", "b"], 6))
    embedder = MetricEmbedder(base, metric)
    assert embedder.dim == 3 and embedder.model_id == "colour-texture-hist+lda"
    assert embedder.version == f"{base.version}+lda-{metric.digest}"
    np.testing.assert_array_equal(embedder.embed(crops), metric.transform(features))
    assert embedder.embed([]).shape == (0, 3)
    path = metric.save(tmp_path / "lda.npz")
    built = make_embedder("learned", {"base": {"name": "colour"}, "model": str(path)})
    np.testing.assert_array_equal(built.embed(crops), embedder.embed(crops))
    assert built.version == embedder.version
    with pytest.raises(ValueError, match="fitted on 264-d vectors but base embedder 'lomo' gives 26960-d"):
        MetricEmbedder(LomoEmbedder(), metric)
    with pytest.raises(ValueError, match="not fitted"):
        MetricEmbedder(base, XQDA())
    with pytest.raises(ValueError, match="embedder 'colour' has no parameter 'stripe'"):
        make_embedder("learned", {"base": {"name": "colour", "params": {"stripe": 3}}, "model": str(path)})


def test_an_ensemble_of_learned_members_fuses_their_cosines_by_weight(tmp_path: Path) -> None:
    """The fusion bench/reid.py reports (LOMO + XQDA with another base + XQDA) as one embedder from config."""
    rng = np.random.default_rng(9)
    crops = [rng.integers(0, 256, (64, 32, 3), dtype=np.uint8) for _ in range(16)]
    labels, cameras = np.repeat(np.arange(8), 2), np.tile(["a", "b"], 8)
    members, spaces = [], []
    for name, base in (("colour", ColourTextureEmbedder()), ("lomo", LomoEmbedder(n_scales=1))):
        metric = XQDA().fit(base.embed(crops), labels, cameras)
        params = {"n_scales": 1} if name == "lomo" else {}
        path = metric.save(tmp_path / f"{name}.npz")
        members.append({"name": "learned", "params": {"base": {"name": name, "params": params}, "model": str(path)}})
        spaces.append(metric.transform(base.embed(crops)))
    fused = make_embedder("ensemble", {"members": members, "weights": [0.6, 0.4]}).embed(crops)
    expected = 0.6 * spaces[0] @ spaces[0].T + 0.4 * spaces[1] @ spaces[1].T
    np.testing.assert_allclose(fused @ fused.T, expected, atol=1e-5)
    assert not np.allclose(expected, spaces[0] @ spaces[0].T, atol=1e-3)  # both members count


def test_lomo_with_xqda_reaches_35_percent_rank1_on_one_viper_split(data: Path) -> None:
    from trackid.images import read_image

    folder = data / "reid" / "viper"
    ids = sorted({p.name[:4] for p in folder.glob("*.png")})
    if len(ids) != 632:
        pytest.skip(f"VIPeR (632 people) not found at {folder}")
    embedder = LomoEmbedder()
    cam1 = embedder.embed([read_image(folder / f"{i}0001.png") for i in ids])
    cam2 = embedder.embed([read_image(folder / f"{i}0002.png") for i in ids])
    order = np.random.default_rng(0).permutation(632)
    train, test = np.sort(order[:316]), np.sort(order[316:])
    metric = XQDA().fit(np.concatenate([cam1[train], cam2[train]]), np.tile(train, 2), np.repeat([1, 2], 316))
    probe, gallery = metric.transform(cam1[test]), metric.transform(cam2[test])
    assert evaluate_reid(probe @ gallery.T, test, test).rank(1) >= 0.35
