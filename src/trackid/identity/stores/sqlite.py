"""The embedded gallery store: one SQLite file (WAL) plus one vector index file per model beside it.

The database is the source of truth, vectors included (float32 BLOBs). Each model's prototypes are also held in a
`VectorIndex` (HNSW by default) for fast search; its file (`<db>.model<key>.<kind>`) is only a cache: it is saved
on `close`, and on open it is loaded only if the database says nothing changed since it was saved, else rebuilt
from the prototypes table. So a crash can lose no acknowledged write, only the time of a rebuild.

Durability: WAL with `synchronous=FULL` fsyncs the log at every commit, so a sighting whose id was returned
survives power loss and OS crashes too. `NORMAL` would survive a killed process (the WAL is in the page cache)
but may lose the last commits on power loss, which breaks "acknowledged = durable"; batch writes to amortise the
fsync instead.

One process has a store open at a time, enforced by an exclusive lock on `<db>.lock` held from open to close (the
holder's pid is written in it): each open store keeps its own in-memory index, which would not see another
process's writes, so two concurrent ingests would each miss the other's identities. A second open fails at once
with `StoreLockedError` naming the store and the holder; the kernel releases the lock of a killed process.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from trackid.identity.index import ExactIndex, HnswIndex, VectorIndex, make_index
from trackid.identity.stores.base import GalleryStore, StoreError, StoreLockedError
from trackid.identity.stores.migrations import SCHEMA_VERSION_DDL, pending
from trackid.identity.stores.migrations.sqlite import MIGRATIONS
from trackid.identity.stores.params import STORES, SqliteParams
from trackid.identity.stores.records import ModelInfo

__all__ = ["SqliteGalleryStore"]


@STORES.register("sqlite", params=SqliteParams)
class SqliteGalleryStore(GalleryStore):
    """`GalleryStore` in a SQLite file; see the module docstring for what lives where.

    Parameters
    ----------
    path:
        The database file; index files and the lock file are written beside it.
    create:
        Create the file (and its folder) if missing; False raises `StoreError` instead (a misspelt path).
    index_kind:
        "hnsw" (approximate, scales to millions) or "exact" (brute force, exact, fine up to tens of thousands).
    index_params:
        Passed to the index class (e.g. `ef_search` for HNSW: higher recall, slower search). A saved index file
        built with another graph (connectivity, dtype) is rebuilt with these on open; `ef_construction` applies to
        the inserts that follow.
    compact_after:
        HNSW only: once the entries removed or replaced since the graph was built (prototype updates replace)
        reach this fraction of the index size, the index is rebuilt in the background and swapped in; lookups
        and writes continue meanwhile. Lower keeps searches on a cleaner graph, at more rebuild CPU.
    max_prototypes, merge_similarity:
        See `GalleryStore`.
    """

    COMPACT_MIN_TOMBSTONES = 1000
    """Below this many tombstones a rebuild is not worth a thread: a small graph's search barely notices them."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = True,
        index_kind: str = "hnsw",
        index_params: dict[str, Any] | None = None,
        compact_after: float = 0.25,
        max_prototypes: int = 5,
        merge_similarity: float = 0.9,
    ) -> None:
        super().__init__(max_prototypes=max_prototypes, merge_similarity=merge_similarity)
        if index_kind not in ("hnsw", "exact"):
            raise ValueError(f"index_kind must be 'hnsw' or 'exact', got {index_kind!r}")
        if not compact_after > 0:
            raise ValueError(f"compact_after must be > 0, got {compact_after!r}")
        self.compact_after = float(compact_after)
        self.path = Path(path)
        if self.path.is_dir():
            raise StoreError(f"{self.path}: a folder, not a gallery store file")
        if not create and not self.path.is_file():
            raise StoreError(f"{self.path}: no such gallery store (nothing was created; check the path)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.index_kind = index_kind
        self.index_params = dict(index_params or {})
        self._touched: dict[int, set[int]] = {}
        self._indexes: dict[int, VectorIndex] = {}
        self._lock = _lock(self.path)
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so DDL in migrations is transactional too.
            self._conn = sqlite3.connect(self.path, isolation_level=None)
            for pragma in ("journal_mode = WAL", "synchronous = FULL", "foreign_keys = ON", "busy_timeout = 10000"):
                self._conn.execute(f"PRAGMA {pragma}")
            self._check_is_gallery()
            self._migrate()
            for model in self.models():
                self._indexes[model.key] = self._open_index(model)
        except sqlite3.DatabaseError as exc:
            self._release()
            raise StoreError(f"{self.path}: not a readable gallery store ({exc})") from None
        except BaseException:
            self._release()
            raise

    def close(self) -> None:
        """Save the index files (so the next open skips the rebuild), close the database and release the lock."""
        if self._conn is None:
            return
        self.save_indexes()
        self._release()

    def save_indexes(self) -> None:
        """Write every model's index file atomically and record which prototype writes it contains."""
        for key, index in self._indexes.items():
            seq = self._meta(f"prototype_seq:{key}")
            index.save(self._index_path(key))
            with self._transaction():
                self._set_meta(f"index_seq:{key}", seq)

    def compact(self, *, wait: bool = False) -> int:
        """Start a background rebuild of every HNSW index that has tombstones; returns how many started.

        Runs by itself after writes (see `compact_after`); call it to compact now, e.g. after a large deletion.
        `wait=True` blocks until the rebuilds are swapped in.
        """
        threads = [
            index.rebuild_in_background()
            for index in self._indexes.values()
            if isinstance(index, HnswIndex) and index.tombstones and not index.rebuilding
        ]
        for thread in threads if wait else ():
            thread.join()
        return len(threads)

    def index_path(self, model_id: str, model_version: str) -> Path:
        model = self._find_model(model_id, model_version)
        if model is None:
            raise ValueError(f"no vectors of model_id {model_id!r} model_version {model_version!r} in this store")
        return self._index_path(model.key)

    # -- GalleryStore hooks ----------------------------------------------------------------------------------

    @contextmanager
    def _outer_transaction(self) -> Iterator[None]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            self._touched.clear()
            raise
        else:
            self._conn.execute("COMMIT")
            self._sync_indexes()

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._conn.execute(sql, tuple(params))

    def _execute_count(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._conn.execute(sql, tuple(params)).rowcount

    def _executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn.executemany(sql, [tuple(r) for r in rows])

    def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._conn.execute(sql, tuple(params)).fetchall()

    def _encode_vector(self, vector: NDArray[np.float32]) -> bytes:
        return np.ascontiguousarray(vector, dtype="<f4").tobytes()

    def _decode_vector(self, value: Any) -> NDArray[np.float32]:
        return np.frombuffer(value, dtype="<f4").astype(np.float32)

    def _nearest_prototypes(
        self, model: ModelInfo, queries: NDArray[np.float32], fetch: int
    ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
        if model.key not in self._indexes:  # registered by another process since this one opened
            self._indexes[model.key] = self._open_index(model)
        keys, _ = self._indexes[model.key].search(queries, fetch)
        wanted = np.unique(keys[keys >= 0])
        protos = np.full(keys.shape, -1, np.int64)
        owners = np.full(keys.shape, -1, np.int64)
        sims = np.full(keys.shape, -np.inf)
        if not len(wanted):
            return protos, owners, sims
        # The index finds the candidates; their similarities are recomputed from the float32 rows, so that what is
        # calibrated and logged is exact whatever precision the index stores (bf16 by default).
        rows = self._fetchall(
            f"SELECT id, identity_id, vector FROM prototypes WHERE id IN (SELECT value FROM {self._id_list()})",
            (self._encode_ids(wanted.tolist()),),
        )
        if not rows:  # every candidate deleted since the index found it
            return protos, owners, sims
        found = np.fromiter((r[0] for r in rows), np.int64, len(rows))
        order = np.argsort(found)
        found = found[order]
        held = np.fromiter((r[1] for r in rows), np.int64, len(rows))[order]
        vectors = np.frombuffer(b"".join(r[2] for r in rows), dtype="<f4").reshape(len(rows), -1)[order]
        at = np.minimum(np.searchsorted(found, keys), len(found) - 1)
        present = (keys >= 0) & (found[at] == keys)  # a pad, or a row deleted since the index found it, is absent
        # one (F, D) @ (D,) product per query, as a query searched alone gets: a batch scores bit for bit the same
        scored = np.matmul(vectors[at], queries[:, :, None])[:, :, 0]
        scored[~present] = -np.inf
        # best first, ties by prototype id; absent ones sort last by their -inf
        best = np.lexsort((np.where(present, keys, np.iinfo(np.int64).max), -scored), axis=1)
        chosen = np.take_along_axis(present, best, axis=1)
        protos[chosen] = np.take_along_axis(keys, best, axis=1)[chosen]
        owners[chosen] = held[np.take_along_axis(at, best, axis=1)[chosen]]
        sims[chosen] = np.take_along_axis(scored, best, axis=1)[chosen]
        return protos, owners, sims

    def _on_model_registered(self, model: ModelInfo) -> None:
        self._indexes[model.key] = make_index(self.index_kind, model.dim, **self.index_params)

    def _on_prototypes_changed(self, model_key: int, upserted: list[int], removed: list[int]) -> None:
        self._touched.setdefault(model_key, set()).update(upserted, removed)
        self._conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, 1) ON CONFLICT (key) DO UPDATE SET value = value + 1",
            (f"prototype_seq:{model_key}",),
        )

    def _backend_problems(self) -> list[str]:
        problems = [f"sqlite integrity_check: {r[0]}" for r in self._fetchall("PRAGMA integrity_check") if r[0] != "ok"]
        problems += [f"sqlite foreign_key_check: {tuple(r)}" for r in self._fetchall("PRAGMA foreign_key_check")]
        return problems

    def _repair_indexes(self) -> list[str]:
        """Rebuild any index whose size or sampled contents disagree with the prototypes table."""
        repaired = []
        for model in self.models():
            index = self._indexes.get(model.key)
            if index is None or not self._index_matches(model, index):
                self._indexes[model.key] = self._rebuilt_index(model)
                repaired.append(f"index of model {model.model_id} {model.model_version} rebuilt from the database")
        return repaired

    # -- helpers ------------------------------------------------------------------------------------------------

    def _release(self) -> None:
        if getattr(self, "_conn", None) is not None:
            self._conn.close()
        self._conn = None  # type: ignore[assignment]  # a closed store fails loudly on use
        os.close(self._lock)

    def _check_is_gallery(self) -> None:
        """Refuse another program's SQLite database rather than adding the gallery's tables to it."""
        tables = {r[0] for r in self._fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and "schema_version" not in tables:
            raise StoreError(
                f"{self.path}: a SQLite database, but not a gallery store (tables: {', '.join(sorted(tables))})"
            )

    def _migrate(self) -> None:
        self._conn.execute(SCHEMA_VERSION_DDL)
        with self._transaction():
            current = self._fetchall("SELECT coalesce(max(version), 0) FROM schema_version")[0][0]
            for step in pending(MIGRATIONS, int(current)):
                for statement in step.statements:
                    self._conn.execute(statement)
                self._conn.execute(
                    "INSERT INTO schema_version (version, name, applied) VALUES (?, ?, ?)",
                    (step.version, step.name, time.time()),
                )
            self.schema_version = int(self._fetchall("SELECT max(version) FROM schema_version")[0][0])

    def _index_path(self, model_key: int) -> Path:
        return self.path.with_name(f"{self.path.name}.model{model_key}.{self.index_kind}")

    def _open_index(self, model: ModelInfo) -> VectorIndex:
        """The saved index file if it holds exactly the database's prototypes, else a rebuild from the table."""
        path = self._index_path(model.key)
        fresh = path.is_file() and self._meta(f"index_seq:{model.key}") == self._meta(f"prototype_seq:{model.key}")
        if fresh:
            params = {k: v for k, v in self.index_params.items() if k in ("ef_search", "ef_construction", "threads")}
            index: VectorIndex = HnswIndex.load(path, **params) if self.index_kind == "hnsw" else ExactIndex.load(path)
            if index.dim == model.dim and self._same_build(index):
                return index
        return self._rebuilt_index(model)

    def _rebuilt_index(self, model: ModelInfo) -> VectorIndex:
        index = make_index(self.index_kind, model.dim, **self.index_params)
        rows = self._fetchall("SELECT id, vector FROM prototypes WHERE model_key = ? ORDER BY id", (model.key,))
        if rows:
            keys = np.array([r[0] for r in rows], dtype=np.int64)
            index.add(keys, np.stack([self._decode_vector(r[1]) for r in rows]))
        return index

    def _same_build(self, index: VectorIndex) -> bool:
        """Whether a loaded index has the graph this store is configured for (connectivity, dtype). The file does
        not keep `ef_construction` (it only governs later inserts, and the load applies the configured one), so
        comparing it would rebuild every saved index on every open."""
        if not isinstance(index, HnswIndex):
            return True
        wanted = make_index(self.index_kind, index.dim, **self.index_params)
        assert isinstance(wanted, HnswIndex)
        return (index.connectivity, index.dtype) == (wanted.connectivity, wanted.dtype)

    def _index_matches(self, model: ModelInfo, index: VectorIndex) -> bool:
        count = self._fetchall("SELECT count(*) FROM prototypes WHERE model_key = ?", (model.key,))[0][0]
        if len(index) != count:
            return False
        sample = self._fetchall(
            "SELECT id, vector FROM prototypes WHERE model_key = ? ORDER BY random() LIMIT 64", (model.key,)
        )
        if not sample:
            return True
        # Each sampled prototype must be found under its own key. HNSW search is approximate, so look among the
        # top 16 rather than demanding rank 1: a rare near-miss must not pass for a damaged index.
        keys, _ = index.search(np.stack([self._decode_vector(r[1]) for r in sample]), min(16, count))
        wanted = np.array([r[0] for r in sample], np.int64)[:, None]
        return bool((keys == wanted).any(axis=1).all())

    def _sync_indexes(self) -> None:
        """After a commit: make each touched index hold exactly the committed prototype rows."""
        touched, self._touched = self._touched, {}
        for model_key, ids in touched.items():
            rows = self._fetchall(
                f"SELECT id, vector FROM prototypes WHERE id IN ({', '.join('?' * len(ids))})", sorted(ids)
            )
            index = self._indexes[model_key]
            present = {int(r[0]) for r in rows}
            gone = sorted(ids - present)
            if gone:
                index.remove(np.array(gone, dtype=np.int64))
            if rows:
                index.add(np.array([r[0] for r in rows], np.int64), np.stack([self._decode_vector(r[1]) for r in rows]))
            if (
                isinstance(index, HnswIndex)
                and not index.rebuilding
                and index.tombstones >= max(self.compact_after * len(index), self.COMPACT_MIN_TOMBSTONES)
            ):
                index.rebuild_in_background()

    def _meta(self, key: str) -> int:
        rows = self._fetchall("SELECT value FROM meta WHERE key = ?", (key,))
        return int(rows[0][0]) if rows else 0

    def _set_meta(self, key: str, value: int) -> None:
        self._conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )


def _lock(path: Path) -> int:
    """Hold `<path>.lock` exclusively (released when its descriptor closes, or the process dies) and write our pid in
    it; raise StoreLockedError naming the holder if another open store has it."""
    lock_path = path.with_name(f"{path.name}.lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        who = f"this process (pid {holder})" if holder == str(os.getpid()) else f"another process (pid {holder})"
        raise StoreLockedError(
            f"{path}: already open in {who}; one process uses an embedded store at a time (each keeps its own index "
            "of it), so wait for that one to finish, or use PostgreSQL for concurrent writers"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd
