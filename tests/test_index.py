"""The gallery's vector index: HNSW against exact search, upsert/remove, persistence, validation, rebuild."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from trackid.identity.index import ExactIndex, HnswIndex, VectorIndex, make_index

DIM = 32


def clustered(n: int, dim: int = DIM, clusters: int = 100, noise: float = 0.6, seed: int = 0) -> NDArray[np.float32]:
    """Unit vectors around random centres: the shape of a re-ID gallery (several sightings per identity)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = centres[rng.integers(0, clusters, n)] + noise / np.sqrt(dim) * rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def keys_of(n: int, start: int = 0) -> NDArray[np.int64]:
    return np.arange(start, start + n, dtype=np.int64)


@pytest.fixture(params=["exact", "hnsw"])
def index(request: pytest.FixtureRequest) -> VectorIndex:
    return make_index(request.param, DIM)


@pytest.mark.parametrize(("dtype", "atol"), [("f32", 1e-5), ("bf16", 3e-3)])
def test_hnsw_recall_at_10_against_exact(dtype: str, atol: float) -> None:
    """bf16 storage (the default) keeps recall; its similarities are within bf16 rounding (~1e-3) of exact."""
    everything = clustered(5200)
    data, queries = everything[:5000], everything[5000:]
    exact, hnsw = ExactIndex(DIM), HnswIndex(DIM, dtype=dtype)
    for idx in (exact, hnsw):
        idx.add(keys_of(len(data)), data)
    truth, _ = exact.search(queries, 10)
    found, sims = hnsw.search(queries, 10)
    recall = np.mean([len(np.intersect1d(t, f)) / 10 for t, f in zip(truth, found, strict=True)])
    assert recall >= 0.95
    assert np.all(np.diff(sims, axis=1) <= 1e-6), "similarities must be sorted best first"
    np.testing.assert_allclose(sims, np.einsum("qd,qkd->qk", queries, data[found]), atol=atol)


def test_search_returns_similarities_best_first_and_pads(index: VectorIndex) -> None:
    vectors = np.eye(DIM, dtype=np.float32)[:3] * 5.0  # unnormalised on purpose: the index normalises
    index.add(np.array([10, 20, 30]), vectors)
    keys, sims = index.search(np.eye(DIM, dtype=np.float32)[:1], 5)
    assert keys.shape == sims.shape == (1, 5)
    assert keys.dtype == np.int64 and sims.dtype == np.float32
    assert keys[0, 0] == 10 and sims[0, 0] == pytest.approx(1.0)
    assert set(keys[0, :3]) == {10, 20, 30}
    assert list(keys[0, 3:]) == [-1, -1] and np.all(np.isneginf(sims[0, 3:]))


def test_search_on_empty_index(index: VectorIndex) -> None:
    keys, sims = index.search(np.ones((2, DIM), np.float32), 3)
    assert keys.shape == (2, 3) and np.all(keys == -1) and np.all(np.isneginf(sims))
    assert len(index) == 0


def test_add_is_an_upsert_and_remove_deletes(index: VectorIndex) -> None:
    eye = np.eye(DIM, dtype=np.float32)
    index.add(np.array([1, 2]), eye[:2])
    index.add(np.array([1]), eye[5:6])  # key 1 moves
    assert len(index) == 2
    keys, _ = index.search(eye[5:6], 1)
    assert keys[0, 0] == 1
    keys, sims = index.search(eye[:1], 1)
    assert keys[0, 0] != 1 or sims[0, 0] < 0.5
    index.add(np.array([7, 7]), eye[[3, 4]])  # within one batch the last row wins
    assert index.search(eye[4:5], 1)[0][0, 0] == 7 and len(index) == 3
    index.remove(np.array([2, 999]))  # unknown keys are ignored
    assert len(index) == 2
    assert 2 not in index.search(eye[1:2], 3)[0]


@pytest.mark.parametrize("view", [False, True])
def test_hnsw_save_load_round_trip(tmp_path: Path, view: bool) -> None:
    data = clustered(500)
    index = HnswIndex(DIM, connectivity=8, ef_search=40)
    index.add(keys_of(500), data)
    path = tmp_path / "gallery" / "index.usearch"
    index.save(path)
    loaded = HnswIndex.load(path, view=view, ef_search=40)
    assert len(loaded) == 500 and loaded.dim == DIM and loaded.connectivity == 8
    np.testing.assert_array_equal(loaded.search(data[:20], 5)[0], index.search(data[:20], 5)[0])
    if view:
        with pytest.raises(ValueError, match="read-only"):
            loaded.add(keys_of(1, 1000), data[:1])
        loaded.rebuild_in_background().join()  # compaction swaps in a writable in-memory copy
        loaded.add(keys_of(1, 1000), data[:1])
        assert len(loaded) == 501


def test_a_loaded_hnsw_index_inserts_with_the_ef_construction_it_is_given(tmp_path: Path) -> None:
    """The file does not keep ef_construction: a load must apply the configured one, not usearch's default (128)."""
    index = HnswIndex(DIM, connectivity=8, ef_construction=200)
    index.add(keys_of(50), clustered(50))
    index.save(tmp_path / "index.usearch")
    loaded = HnswIndex.load(tmp_path / "index.usearch", ef_construction=200)
    assert loaded.ef_construction == 200 and loaded._index.expansion_add == 200
    assert HnswIndex.load(tmp_path / "index.usearch", ef_construction=40)._index.expansion_add == 40


def test_exact_save_load_round_trip(tmp_path: Path) -> None:
    data = clustered(50)
    index = ExactIndex(DIM)
    index.add(keys_of(50), data)
    index.save(tmp_path / "exact.npz")
    loaded = ExactIndex.load(tmp_path / "exact.npz")
    np.testing.assert_array_equal(loaded.search(data, 3)[0], index.search(data, 3)[0])


@pytest.mark.parametrize(
    ("keys", "vectors", "message"),
    [
        (np.array([1]), np.ones((1, DIM + 1), np.float32), r"vectors must have shape \(n, 32\)"),
        (np.array([1, 2]), np.stack([np.ones(DIM), np.full(DIM, np.nan)]).astype(np.float32), "vectors row 1 .*NaN"),
        (np.array([1]), np.full((1, DIM), np.inf, np.float32), "vectors row 0 is not finite"),
        (np.array([1, 2]), np.stack([np.ones(DIM), np.zeros(DIM)]).astype(np.float32), "vectors row 1 has zero norm"),
        (np.array([1.0]), np.ones((1, DIM), np.float32), "keys must be integers"),
        (np.array([-3]), np.ones((1, DIM), np.float32), "keys must be >= 0"),
        (np.array([1, 2]), np.ones((1, DIM), np.float32), "keys has 2 entries but vectors has 1"),
        (np.array([1]), np.ones((1, DIM), np.int32), "vectors must be floating point"),
    ],
)
def test_add_validation_names_the_argument(
    index: VectorIndex, keys: NDArray[np.int64], vectors: NDArray[np.float32], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        index.add(keys, vectors)
    assert len(index) == 0


def test_search_and_factory_validation(index: VectorIndex) -> None:
    with pytest.raises(ValueError, match="queries must have shape"):
        index.search(np.ones(DIM, np.float32), 1)
    with pytest.raises(ValueError, match="queries row 0 is not finite"):
        index.search(np.full((1, DIM), np.nan, np.float32), 1)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        index.search(np.ones((1, DIM), np.float32), 0)
    with pytest.raises(ValueError, match="kind must be one of"):
        make_index("annoy", DIM)
    with pytest.raises(ValueError, match="ef_search must be a positive integer"):
        make_index("hnsw", DIM, ef_search=0)


def test_lookups_continue_during_background_rebuild() -> None:
    data = clustered(20_000, seed=2)
    index = HnswIndex(DIM, ef_search=64)
    index.add(keys_of(15_000), data[:15_000])
    index.remove(keys_of(1000))  # tombstones that the rebuild compacts away
    assert index.tombstones == 1000 and not index.rebuilding
    errors: list[BaseException] = []
    searches = 0
    stop = threading.Event()

    def lookups() -> None:
        nonlocal searches
        while not stop.is_set():
            try:
                keys, _ = index.search(data[searches % 20_000][None, :], 5)
                assert keys.shape == (1, 5)
                searches += 1
            except BaseException as error:
                errors.append(error)
                return

    reader = threading.Thread(target=lookups)
    reader.start()
    rebuild = index.rebuild_in_background()
    with pytest.raises(RuntimeError, match="already running"):
        index.rebuild_in_background()
    for start in range(15_000, 20_000, 500):  # writes during the rebuild are replayed onto the new graph
        index.add(keys_of(500, start), data[start : start + 500])
    index.remove(keys_of(10, 1000))
    rebuild.join(timeout=30)
    stop.set()
    reader.join()
    assert not rebuild.is_alive() and not errors and searches > 0
    assert index.tombstones == 10 and not index.rebuilding  # only the removals replayed onto the new graph
    assert len(index) == 20_000 - 1010
    found, _ = index.search(data[1010:], 1)
    assert np.mean(found[:, 0] == keys_of(20_000 - 1010, 1010)) >= 0.99
    removed, _ = index.search(data[:1010], 10)
    assert not np.isin(removed, keys_of(1010)).any()


def test_the_gallery_first_then_the_models_loads_without_crashing() -> None:
    # usearch loaded before onnxruntime made the process segfault; the index module now loads onnxruntime first
    code = "import trackid.identity.stores, trackid.track.tracker, onnxruntime; print('ok')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-500:]
