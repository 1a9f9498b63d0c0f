"""The gallery's vector index: cosine top-k over L2-normalised float32 vectors keyed by int64 identity/sighting ids.

Two interchangeable classes behind one protocol and a factory by name (`make_index("hnsw", 512)`):

- `ExactIndex`: numpy brute force. Ground truth for recall measurements and the right choice for small galleries
  (a few tens of thousands of vectors), where a matrix product is already sub-millisecond.
- `HnswIndex`: usearch HNSW, the embedded default for large galleries, with compaction that never blocks lookups.

Every index validates its input (dimension, dtype, finite, non-zero) and normalises vectors itself, so a caller can
never get a silently wrong similarity from an unnormalised or corrupt vector. Keys are non-negative: -1 pads search
results when fewer than `k` vectors are found, with similarity -inf so that no threshold ever accepts a pad.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import onnxruntime  # noqa: F401  # before usearch: loaded after it, onnxruntime segfaults (1.32 with usearch 2.26)
from numpy.typing import NDArray
from usearch.index import BatchMatches, Index

from trackid.artifacts import atomic_write_bytes

__all__ = ["INDEXES", "ExactIndex", "HnswIndex", "VectorIndex", "make_index"]


@runtime_checkable
class VectorIndex(Protocol):
    """Cosine top-k search over unit vectors with int64 keys; `add` is an upsert, `remove` ignores unknown keys."""

    dim: int

    def __len__(self) -> int: ...

    def add(self, keys: NDArray[np.int64], vectors: NDArray[np.float32]) -> None: ...

    def remove(self, keys: NDArray[np.int64]) -> None: ...

    def search(self, queries: NDArray[np.float32], k: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """(Q, k) keys (-1 padded) and cosine similarities (higher = closer, -inf padded), best first."""
        ...

    def save(self, path: str | os.PathLike[str]) -> None: ...


class ExactIndex:
    """Brute-force cosine search with numpy: exact, no parameters, O(N) per query and per write.

    Readers take one immutable `(keys, vectors)` snapshot, so searches never lock; writers replace the snapshot
    under a lock.
    """

    def __init__(self, dim: int) -> None:
        self.dim = _check_positive(dim, "dim")
        self._data: tuple[NDArray[np.int64], NDArray[np.float32]] = (
            np.empty(0, np.int64),
            np.empty((0, self.dim), np.float32),
        )
        self._write_lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data[0])

    def add(self, keys: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        new_keys, new_vectors = _check_batch(keys, vectors, self.dim)
        with self._write_lock:
            old_keys, old_vectors = self._data
            keep = ~np.isin(old_keys, new_keys)
            self._data = (
                np.concatenate([old_keys[keep], new_keys]),
                np.concatenate([old_vectors[keep], new_vectors]),
            )

    def remove(self, keys: NDArray[np.int64]) -> None:
        gone = _check_keys(keys, "keys")
        with self._write_lock:
            old_keys, old_vectors = self._data
            keep = ~np.isin(old_keys, gone)
            self._data = (old_keys[keep], old_vectors[keep])

    def search(self, queries: NDArray[np.float32], k: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        q = _unit_rows(queries, self.dim, "queries")
        k = _check_k(k)
        keys, vectors = self._data
        found = min(k, len(keys))
        out_keys, out_sims = _padded(len(q), k)
        if found:
            sims = q @ vectors.T
            top = np.argpartition(-sims, found - 1, axis=1)[:, :found]
            top_sims = np.take_along_axis(sims, top, axis=1)
            order = np.argsort(-top_sims, axis=1, kind="stable")
            out_keys[:, :found] = keys[np.take_along_axis(top, order, axis=1)]
            out_sims[:, :found] = np.take_along_axis(top_sims, order, axis=1)
        return out_keys, out_sims

    def save(self, path: str | os.PathLike[str]) -> None:
        keys, vectors = self._data
        buffer = io.BytesIO()
        np.savez(buffer, keys=keys, vectors=vectors)
        atomic_write_bytes(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ExactIndex:
        with np.load(Path(path)) as data:
            keys, vectors = data["keys"], data["vectors"]
        index = cls(vectors.shape[1])
        index.add(keys, vectors)
        return index


class HnswIndex:
    """Approximate cosine search with a usearch HNSW graph, for galleries up to millions of vectors on a CPU.

    Why usearch (not faiss): one file holds the whole index and saves/loads/memory-maps (`view=True`) without a
    rebuild; keys can be added and removed incrementally (faiss HNSW cannot remove), and search is fast on CPU with
    SIMD kernels. Removal in HNSW leaves tombstones that still cost search time, so `rebuild_in_background`
    compacts into a fresh graph while lookups continue on the current one.

    Parameters
    ----------
    dim:
        Vector dimension; every add and search is checked against it.
    connectivity:
        HNSW `M`, edges per node. Raising it improves recall on hard (clustered, high-dimensional) data and
        tolerates a lower `ef_search`; it costs memory (about 2*M*8 bytes per vector) and build time.
    ef_construction:
        Candidate list size while inserting. Raising it builds a better graph (higher recall at the same
        `ef_search`); build time grows roughly linearly with it.
    ef_search:
        Candidate list size while searching; the main recall/latency dial, changeable at any time via the
        attribute of the same name. Raising it raises recall and latency; it should be at least `k`.
    dtype:
        How the graph stores vectors: "bf16" (default) halves memory and distance cost against "f32" with no
        measurable recall loss on unit vectors (100k clustered 512-d: recall@10 0.999 vs 1.000, half the build
        time and latency; bench/gallery_scale.py); "f16" is the choice on CPUs without bf16 instructions; "i8" is
        smaller still but loses recall (0.94 on the same data). Similarities are computed in this precision.
    threads:
        Threads for batch add/search (0 = all cores). Single-query lookups run on the caller's thread.
    rebuild_threads:
        Threads for a background rebuild; default all cores but one, so lookups keep a core during compaction.
    """

    def __init__(
        self,
        dim: int,
        *,
        connectivity: int = 32,
        ef_construction: int = 200,
        ef_search: int = 64,
        dtype: str = "bf16",
        threads: int = 0,
        rebuild_threads: int | None = None,
    ) -> None:
        self.dim = _check_positive(dim, "dim")
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {_DTYPES}, got {dtype!r}")
        self.dtype = dtype
        self.connectivity = _check_positive(connectivity, "connectivity")
        self.ef_construction = _check_positive(ef_construction, "ef_construction")
        self._ef_search = _check_positive(ef_search, "ef_search")
        self.threads = threads
        self.rebuild_threads = rebuild_threads if rebuild_threads is not None else max(1, (os.cpu_count() or 2) - 1)
        self._index = self._new_usearch()
        self._read_only = False
        # Writers are serialised by `_write_lock`; `_access` keeps usearch's add (which may reallocate) apart from
        # searches of the same graph. While a rebuild runs, `_journal` records writes to replay onto the new graph.
        self._write_lock = threading.Lock()
        self._access = _ReadWriteLock()
        self._journal: list[tuple[str, NDArray[np.int64], NDArray[np.float32] | None]] | None = None
        self._tombstones = 0

    @property
    def tombstones(self) -> int:
        """Entries removed or overwritten since the graph was built: they still cost search time until a rebuild."""
        return self._tombstones

    @property
    def rebuilding(self) -> bool:
        return self._journal is not None

    @property
    def ef_search(self) -> int:
        return self._ef_search

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        self._ef_search = _check_positive(value, "ef_search")
        self._index.expansion_search = self._ef_search  # type: ignore[misc]  # usearch's setter follows its getter

    def __len__(self) -> int:
        return len(self._index)

    def add(self, keys: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        new_keys, new_vectors = _check_batch(keys, vectors, self.dim)
        self._check_writable()
        with self._write_lock:
            with self._access.writing():
                self._tombstones += _upsert(self._index, new_keys, new_vectors, self.threads)
            if self._journal is not None:
                self._journal.append(("add", new_keys, new_vectors))

    def remove(self, keys: NDArray[np.int64]) -> None:
        gone = _check_keys(keys, "keys")
        self._check_writable()
        with self._write_lock:
            with self._access.writing():
                self._tombstones += int(self._index.remove(gone.astype(np.uint64)))
            if self._journal is not None:
                self._journal.append(("remove", gone, None))

    def search(self, queries: NDArray[np.float32], k: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        q = _unit_rows(queries, self.dim, "queries")
        k = _check_k(k)
        out_keys, out_sims = _padded(len(q), k)
        index = self._index
        if len(index) == 0 or len(q) == 0:
            return out_keys, out_sims
        with self._access.reading():
            matches = index.search(q, k, threads=self.threads)
        if isinstance(matches, BatchMatches):
            counts = np.asarray(matches.counts)
            found = np.arange(k)[None, :] < counts[:, None]
            out_keys[found] = np.asarray(matches.keys)[found].astype(np.int64)
            out_sims[found] = 1.0 - np.asarray(matches.distances, dtype=np.float32)[found]
        else:
            count = len(matches.keys)
            out_keys[0, :count] = np.asarray(matches.keys).astype(np.int64)
            out_sims[0, :count] = 1.0 - np.asarray(matches.distances, dtype=np.float32)
        return out_keys, out_sims

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the whole index to one file atomically; concurrent lookups continue, writers wait."""
        with self._write_lock, self._access.reading():
            buffer = self._index.save()
        assert buffer is not None
        atomic_write_bytes(path, bytes(buffer))

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        view: bool = False,
        *,
        ef_search: int = 64,
        ef_construction: int = 200,
        threads: int = 0,
    ) -> HnswIndex:
        """Open a saved index; `view=True` memory-maps it read-only (instant open, pages loaded on demand).

        The file keeps the graph (dimension, metric, dtype, connectivity) but not `ef_construction`, which only
        governs later inserts: give the one to build with (usearch would silently use its own default, 128).
        A viewed index refuses writes until `rebuild_in_background` has swapped in an in-memory copy.
        """
        source = Path(path)
        if not source.is_file():
            raise FileNotFoundError(f"index file not found: {source}")
        loaded = Index.restore(str(source), view=view)
        if loaded is None:
            raise ValueError(f"not a usearch index file: {source}")
        index = cls(
            loaded.ndim,
            connectivity=loaded.connectivity,
            ef_construction=ef_construction,
            ef_search=ef_search,
            dtype=str(loaded.dtype).rsplit(".", 1)[-1].lower(),
            threads=threads,
        )
        loaded.expansion_search = ef_search  # type: ignore[misc]  # usearch's setter follows its getter
        loaded.expansion_add = index.ef_construction  # type: ignore[misc]
        index._index = loaded
        index._read_only = view
        return index

    def rebuild_in_background(self) -> threading.Thread:
        """Compact: build a fresh graph from the live vectors in a thread, then swap it in atomically.

        Lookups and writes keep using the current graph throughout; writes made meanwhile are journalled and
        replayed onto the new graph under the writers' lock just before the pointer swap, so lookups never wait
        for the build and no write is lost. Raises RuntimeError if a rebuild is already running.
        """
        with self._write_lock:
            if self._journal is not None:
                raise RuntimeError("a rebuild is already running on this index")
            self._journal = []
        thread = threading.Thread(target=self._rebuild, name="hnsw-rebuild", daemon=True)
        thread.start()
        return thread

    def _rebuild(self) -> None:
        try:
            source = self._index
            with self._access.reading():
                keys = np.asarray(source.keys, dtype=np.uint64).copy()
            fresh = self._new_usearch()
            for start in range(0, len(keys), _REBUILD_CHUNK):
                # Short read-lock sections, so a waiting writer (and the lookups queued behind it) never waits
                # for the whole snapshot; keys removed meanwhile come back as None and are in the journal.
                with self._access.reading():
                    rows = source.get(keys[start : start + _REBUILD_CHUNK], dtype="f32")
                assert isinstance(rows, tuple)
                present = [i for i, row in enumerate(rows) if row is not None]
                if present:
                    chunk = np.stack([np.asarray(rows[i]) for i in present]).astype(np.float32, copy=False)
                    fresh.add(keys[start : start + _REBUILD_CHUNK][present], chunk, threads=self.rebuild_threads)
            with self._write_lock:
                tombstones = 0
                for op, journal_keys, journal_vectors in self._journal or []:
                    if op == "add":
                        assert journal_vectors is not None
                        tombstones += _upsert(fresh, journal_keys, journal_vectors, self.rebuild_threads)
                    else:
                        tombstones += int(fresh.remove(journal_keys.astype(np.uint64)))
                fresh.expansion_search = self._ef_search  # type: ignore[misc]  # usearch's setter follows its getter
                self._index = fresh
                self._read_only = False
                self._tombstones = tombstones
        finally:
            with self._write_lock:
                self._journal = None

    def _new_usearch(self) -> Index:
        return Index(
            ndim=self.dim,
            metric="cos",
            dtype=self.dtype,
            connectivity=self.connectivity,
            expansion_add=self.ef_construction,
            expansion_search=self._ef_search,
        )

    def _check_writable(self) -> None:
        if self._read_only:
            raise ValueError("index was loaded with view=True and is read-only; load it with view=False to write")


_DTYPES = ("f32", "bf16", "f16", "i8")
"""Scalar types usearch can store the graph's vectors in."""

_REBUILD_CHUNK = 65_536
"""Vectors copied and inserted per step of a rebuild: bounds the extra memory and each read-lock section."""

INDEXES: dict[str, Callable[..., VectorIndex]] = {"exact": ExactIndex, "hnsw": HnswIndex}
"""Index classes by the name used in configs and `make_index`."""


def make_index(kind: str, dim: int, **params: Any) -> VectorIndex:
    """Build an empty index by name ("exact", "hnsw"); `params` go to the class's `__init__`."""
    try:
        cls = INDEXES[kind]
    except KeyError:
        raise ValueError(f"kind must be one of {sorted(INDEXES)}, got {kind!r}") from None
    return cls(dim, **params)


class _ReadWriteLock:
    """Many concurrent readers or one writer; waiting writers block new readers so they are never starved."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writing = False
        self._writers_waiting = 0

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            while self._writing or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            while self._writing or self._readers:
                self._cond.wait()
            self._writers_waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


def _upsert(index: Index, keys: NDArray[np.int64], vectors: NDArray[np.float32], threads: int) -> int:
    """Add or replace; returns how many existing entries were replaced (each leaves a tombstone)."""
    ukeys = keys.astype(np.uint64)
    present = np.asarray(index.contains(ukeys), dtype=bool)
    if present.any():
        index.remove(ukeys[present])
    index.add(ukeys, vectors, threads=threads)
    return int(present.sum())


def _check_batch(keys: Any, vectors: Any, dim: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Validated keys and unit vectors; within one batch the last row for a repeated key wins (upsert order)."""
    k = _check_keys(keys, "keys")
    v = _unit_rows(vectors, dim, "vectors")
    if len(k) != len(v):
        raise ValueError(f"keys has {len(k)} entries but vectors has {len(v)} rows")
    _, last_from_end = np.unique(k[::-1], return_index=True)
    if len(last_from_end) != len(k):
        rows = np.sort(len(k) - 1 - last_from_end)
        k, v = k[rows], v[rows]
    return k, v


def _check_keys(keys: Any, name: str) -> NDArray[np.int64]:
    arr = np.asarray(keys)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {arr.shape}")
    if arr.size and not (np.issubdtype(arr.dtype, np.integer) and np.can_cast(arr.dtype, np.int64)):
        raise ValueError(f"{name} must be integers castable to int64, got dtype {arr.dtype}")
    out = arr.astype(np.int64)
    if out.size and out.min() < 0:
        raise ValueError(f"{name} must be >= 0 (-1 marks padding in search results), got {out.min()}")
    return out


def _unit_rows(x: Any, dim: int, name: str) -> NDArray[np.float32]:
    arr = np.asarray(x)
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise ValueError(f"{name} must have shape (n, {dim}), got {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{name} must be floating point, got dtype {arr.dtype}")
    out = arr.astype(np.float32)
    bad = ~np.isfinite(out).all(axis=1)
    if bad.any():
        raise ValueError(f"{name} row {int(np.flatnonzero(bad)[0])} is not finite (NaN or inf)")
    norms = np.linalg.norm(out, axis=1)
    if (norms == 0).any():
        raise ValueError(f"{name} row {int(np.flatnonzero(norms == 0)[0])} has zero norm (cosine is undefined)")
    return out / norms[:, None]


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _check_positive(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _padded(n: int, k: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    return np.full((n, k), -1, np.int64), np.full((n, k), -np.inf, np.float32)
