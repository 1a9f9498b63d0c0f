"""What every SQL gallery store shares beneath its public methods: the hooks a backend implements (connection,
transactions, vector encoding, nearest-prototype search), nested transactions, row reading, and keeping prototypes
in step with sightings.

`GalleryStore` (`base.py`) builds the public interface on this, with corrections (`corrections.py`) and the similarity
log (`similarity_log.py`) as siblings over the same core. SQL is written with `?` placeholders; a backend that needs
another style translates it in its `_execute`/`_fetchall`.
"""

from __future__ import annotations

import json
import time as _time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

from trackid.identity.stores.prototypes import PrototypeSlots
from trackid.identity.stores.records import IDENTITY_COLUMNS, Identity, ModelInfo, Sighting, as_id, identity_row

__all__ = ["SqlStore"]


class SqlStore(ABC):
    """The shared core of a SQL gallery store; see `GalleryStore` for the parameters."""

    def __init__(self, *, max_prototypes: int = 5, merge_similarity: float = 0.9) -> None:
        if isinstance(max_prototypes, bool) or not isinstance(max_prototypes, int) or max_prototypes < 1:
            raise ValueError(f"max_prototypes must be a positive integer, got {max_prototypes!r}")
        if not -1.0 <= merge_similarity <= 1.0:
            raise ValueError(f"merge_similarity must be in [-1, 1], got {merge_similarity!r}")
        self.max_prototypes = max_prototypes
        self.merge_similarity = float(merge_similarity)
        self.schema_version = 0
        self._depth = 0  # nesting of `_transaction`
        self._models: dict[tuple[str, str], ModelInfo] = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def register_model(self, model_id: str, model_version: str, dim: int) -> ModelInfo:
        """Declare an embedding model (idempotent); the same id + version with another dimension is an error."""
        if not model_id or not isinstance(model_id, str):
            raise ValueError(f"model_id must be a non-empty string, got {model_id!r}")
        if not isinstance(model_version, str):
            raise ValueError(f"model_version must be a string, got {model_version!r}")
        if isinstance(dim, bool) or not isinstance(dim, int | np.integer) or dim < 1:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        with self._transaction():
            known = self._find_model(model_id, model_version)
            if known is not None:
                if known.dim != dim:
                    raise ValueError(
                        f"model {model_id!r} version {model_version!r} has dimension {known.dim} in this store, "
                        f"not {dim}; a changed model needs a new model_version"
                    )
                return known
            key = self._insert(
                "INSERT INTO models (model_id, model_version, dim) VALUES (?, ?, ?) RETURNING id",
                (model_id, model_version, int(dim)),
            )
            model = ModelInfo(key, model_id, model_version, int(dim))
            self._on_model_registered(model)
        return model

    def models(self) -> list[ModelInfo]:
        rows = self._fetchall("SELECT id, model_id, model_version, dim FROM models ORDER BY id")
        return [ModelInfo(int(r[0]), r[1], r[2], int(r[3])) for r in rows]

    def transaction(self) -> AbstractContextManager[None]:
        """Group several writes (e.g. a new identity, its sighting and the logged decision) into one atomic unit:
        after a crash either all of them are stored or none."""
        return self._transaction()

    def get_identity(self, identity_id: int) -> Identity:
        row = self._fetchone(f"SELECT {IDENTITY_COLUMNS} FROM identities WHERE id = ?", (as_id(identity_id),))
        if row is None:
            raise KeyError(f"identity_id {identity_id} does not exist")
        return identity_row(row)

    @abstractmethod
    def close(self) -> None: ...

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One atomic unit, durable when it exits; nested uses join the outer one, so composite operations (a
        correction that moves sightings and rebuilds prototypes) commit once."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._depth = 1
        try:
            with self._outer_transaction():
                yield
        finally:
            self._depth = 0

    @abstractmethod
    def _outer_transaction(self) -> AbstractContextManager[None]:
        """The backend's real transaction: begin, then commit on success or roll back on error."""

    @abstractmethod
    def _execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    @abstractmethod
    def _execute_count(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement and return the number of rows it changed."""

    @abstractmethod
    def _executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    @abstractmethod
    def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    @abstractmethod
    def _encode_vector(self, vector: NDArray[np.float32]) -> Any: ...

    @abstractmethod
    def _decode_vector(self, value: Any) -> NDArray[np.float32]: ...

    @abstractmethod
    def _nearest_prototypes(
        self, model: ModelInfo, queries: NDArray[np.float32], fetch: int
    ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
        """(Q, `fetch`) prototype ids, their identity ids and similarities: per query row of (Q, D) the nearest
        prototypes of `model`, best first, ties by prototype id, padded with id -1 (similarity -inf) when fewer
        were found. A batch is one index call (or statement), and arrays, not per-hit objects, carry it: that is
        the point."""

    @abstractmethod
    def _on_model_registered(self, model: ModelInfo) -> None:
        """Inside the registering transaction: prepare the model's vector index."""

    @abstractmethod
    def _on_prototypes_changed(self, model_key: int, upserted: list[int], removed: list[int]) -> None:
        """Inside the writing transaction: prototype rows were inserted/updated or deleted."""

    def _backend_problems(self) -> list[str]:
        return []

    def _repair_indexes(self) -> list[str]:
        return []

    def _fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        rows = self._fetchall(sql, params)
        return rows[0] if rows else None

    def _insert(self, sql: str, params: Sequence[Any]) -> int:
        row = self._fetchone(sql, params)
        assert row is not None
        return int(row[0])

    def _insert_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> list[int]:
        """Run an `INSERT ... RETURNING id` once per row; the ids in row order. Backends may batch the round trips."""
        return [self._insert(sql, row) for row in rows]

    def _id_list(self) -> str:
        """A FROM item yielding one `value` column from the parameter made by `_encode_ids` (one parameter, however
        many ids, so a batch is one statement)."""
        return "json_each(?)"

    def _encode_ids(self, ids: Sequence[int]) -> Any:
        return json.dumps([int(i) for i in ids])

    def _find_model(self, model_id: str, model_version: str) -> ModelInfo | None:
        # Model rows are never changed or deleted, so a found one is cached (every search looks its model up).
        known = self._models.get((model_id, model_version))
        if known is not None:
            return known
        row = self._fetchone(
            "SELECT id, model_id, model_version, dim FROM models WHERE model_id = ? AND model_version = ?",
            (model_id, model_version),
        )
        if row is None:
            return None
        model = ModelInfo(int(row[0]), row[1], row[2], int(row[3]))
        if self._depth == 0:  # inside a transaction the row may still be rolled back
            self._models[(model_id, model_version)] = model
        return model

    def _model_for_write(self, model_id: str, model_version: str, vector: NDArray[Any]) -> ModelInfo:
        model = self._find_model(model_id, model_version)
        if model is not None:
            return model
        if vector.ndim != 1:
            raise ValueError(f"vector must be 1-D, got shape {vector.shape}")
        return self.register_model(model_id, model_version, len(vector))

    def _live_identity(self, identity_id: int, name: str) -> Identity:
        try:
            identity = self.get_identity(identity_id)
        except KeyError:
            raise KeyError(f"{name} {identity_id} does not exist") from None
        if identity.deleted:
            raise ValueError(f"{name} {identity_id} is deleted (merged away or removed); undo to restore it")
        return identity

    def _sighting_owner(self, sighting_id: int) -> int | None:
        row = self._fetchone("SELECT identity_id FROM sightings WHERE id = ?", (as_id(sighting_id),))
        if row is None:
            raise KeyError(f"sighting_id {sighting_id} does not exist")
        return None if row[0] is None else int(row[0])

    def _sighting_ids(self, identity_id: int, limit: int | None = None) -> list[int]:
        sql = "SELECT id FROM sightings WHERE identity_id = ? ORDER BY id"
        rows = self._fetchall(sql + (" LIMIT ?" if limit else ""), (identity_id, limit) if limit else (identity_id,))
        return [int(r[0]) for r in rows]

    def _sighting_rows(
        self, where: str, params: Sequence[Any], *, order: str = "s.time, s.id", limit: int | None = None
    ) -> list[Sighting]:
        sql = (
            "SELECT s.id, s.identity_id, s.time, s.site, s.camera, s.quality, m.model_id, m.model_version, s.vector, "
            f"s.source, s.source_key FROM sightings s JOIN models m ON m.id = s.model_key WHERE {where} "
            f"ORDER BY {order}"
        )
        if limit is not None:
            sql += " LIMIT ?"
            params = (*params, int(limit))
        rows = self._fetchall(sql, params)
        return [
            Sighting(
                int(r[0]),
                None if r[1] is None else int(r[1]),
                float(r[2]),
                r[3],
                r[4],
                float(r[5]),
                r[6],
                r[7],
                self._decode_vector(r[8]),
                None if r[9] is None else json.loads(r[9]),
                r[10],
            )
            for r in rows
        ]

    def _move_sightings(self, sighting_ids: Sequence[int], identity_id: int) -> None:
        self._executemany("UPDATE sightings SET identity_id = ? WHERE id = ?", [(identity_id, s) for s in sighting_ids])

    def _assign(self, sighting_id: int, identity_id: int) -> None:
        """Point the sighting at the identity and fold each of its vectors into that identity's prototypes."""
        self._execute("UPDATE sightings SET identity_id = ? WHERE id = ?", (identity_id, sighting_id))
        rows = self._fetchall(
            "SELECT model_key, vector, quality FROM sightings WHERE id = ? UNION ALL "
            "SELECT v.model_key, v.vector, s.quality FROM sighting_vectors v JOIN sightings s ON s.id = v.sighting_id "
            "WHERE v.sighting_id = ?",
            (sighting_id, sighting_id),
        )
        for r in rows:
            self._fold_prototypes(int(r[0]), {identity_id: [(self._decode_vector(r[1]), float(r[2]))]})
        self._refresh_identities([identity_id])

    def _rebuild_prototypes(self, identity_id: int) -> None:
        """Replay the prototype policy over the identity's sightings in time order (after corrections)."""
        old = self._fetchall("SELECT id, model_key FROM prototypes WHERE identity_id = ?", (identity_id,))
        self._execute("DELETE FROM prototypes WHERE identity_id = ?", (identity_id,))
        for model_key in sorted({int(r[1]) for r in old}):
            self._on_prototypes_changed(model_key, [], [int(r[0]) for r in old if int(r[1]) == model_key])
        rows = self._fetchall(
            "SELECT model_key, vector, quality, time, id FROM sightings WHERE identity_id = ? UNION ALL "
            "SELECT v.model_key, v.vector, s.quality, s.time, s.id FROM sighting_vectors v "
            "JOIN sightings s ON s.id = v.sighting_id WHERE s.identity_id = ? ORDER BY 4, 5",
            (identity_id, identity_id),
        )
        by_model: dict[int, list[tuple[NDArray[np.float32], float]]] = {}
        for r in rows:
            by_model.setdefault(int(r[0]), []).append((self._decode_vector(r[1]), float(r[2])))
        for model_key, observations in by_model.items():
            self._fold_prototypes(model_key, {identity_id: observations})

    def _fold_prototypes(
        self, model_key: int, observations: Mapping[int, Sequence[tuple[NDArray[np.float32], float]]]
    ) -> None:
        """Fold each identity's new (unit vector, quality) observations into its prototypes of one model: one read
        of all their prototypes, one policy run per identity (`PrototypeSlots`), then the changed rows written."""
        ids = sorted(observations)
        if not ids:
            return
        rows = self._fetchall(
            "SELECT identity_id, id, vector, quality, sighting_count FROM prototypes WHERE model_key = ? "
            f"AND identity_id IN (SELECT value FROM {self._id_list()}) ORDER BY identity_id, id",
            (model_key, self._encode_ids(ids)),
        )
        held: dict[int, list[tuple[Any, ...]]] = {}
        for r in rows:
            held.setdefault(int(r[0]), []).append(r)
        inserts: list[tuple[Any, ...]] = []
        updates: list[tuple[Any, ...]] = []
        updated: list[int] = []
        now = _time.time()
        for identity_id in ids:
            observed = observations[identity_id]
            dim = len(observed[0][0]) if observed else 0
            mine = held.get(identity_id, [])
            slots = PrototypeSlots(
                [int(r[1]) for r in mine],
                np.array([self._decode_vector(r[2]) for r in mine], np.float32).reshape(len(mine), dim),
                [float(r[3]) for r in mine],
                [int(r[4]) for r in mine],
            )
            slots.fold(
                np.array([v for v, _ in observed], np.float32).reshape(len(observed), dim),
                [q for _, q in observed],
                max_prototypes=self.max_prototypes,
                merge_similarity=self.merge_similarity,
            )
            for i in slots.changed():
                encoded = self._encode_vector(slots.vectors[i])
                slot_id = slots.ids[i]
                if slot_id is None:
                    inserts.append((identity_id, model_key, encoded, slots.quality[i], slots.count[i], now))
                else:
                    updates.append((encoded, slots.quality[i], slots.count[i], now, slot_id))
                    updated.append(slot_id)
        if updates:
            self._executemany(
                "UPDATE prototypes SET vector = ?, quality = ?, sighting_count = ?, created = ? WHERE id = ?", updates
            )
        inserted = self._insert_many(
            "INSERT INTO prototypes (identity_id, model_key, vector, quality, sighting_count, created) "
            "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            inserts,
        )
        if updated or inserted:
            self._on_prototypes_changed(model_key, updated + inserted, [])

    def _refresh_identities(self, identity_ids: Sequence[int]) -> None:
        """Recompute the identities' first/last seen and sighting count from their sightings, in one statement."""
        if identity_ids:
            self._execute(
                "UPDATE identities SET "
                "first_seen = (SELECT min(time) FROM sightings s WHERE s.identity_id = identities.id), "
                "last_seen = (SELECT max(time) FROM sightings s WHERE s.identity_id = identities.id), "
                "sighting_count = (SELECT count(*) FROM sightings s WHERE s.identity_id = identities.id) "
                f"WHERE id IN (SELECT value FROM {self._id_list()})",
                (self._encode_ids(identity_ids),),
            )

    def _check_live(self, identity_ids: Sequence[int], name: str) -> None:
        """KeyError / ValueError like `_live_identity`, for many ids in one query."""
        if not identity_ids:
            return
        rows = self._fetchall(
            f"SELECT id, deleted FROM identities WHERE id IN (SELECT value FROM {self._id_list()})",
            (self._encode_ids(identity_ids),),
        )
        found = {int(r[0]): bool(r[1]) for r in rows}
        missing = sorted(set(identity_ids) - set(found))
        if missing:
            raise KeyError(f"{name} {missing[:5]} do not exist")
        deleted = sorted(i for i, gone in found.items() if gone)
        if deleted:
            raise ValueError(f"{name} {deleted[:5]} are deleted (merged away or removed); undo to restore them")

    def _model_vectors(
        self, sighting_ids: Sequence[int], model_key: int, limit: int
    ) -> list[tuple[int, NDArray[np.float32]]]:
        out: list[tuple[int, NDArray[np.float32]]] = []
        for start in range(0, len(sighting_ids), 500):
            chunk = list(sighting_ids[start : start + 500])
            marks = ", ".join("?" * len(chunk))
            rows = self._fetchall(
                f"SELECT id, vector FROM sightings WHERE model_key = ? AND id IN ({marks}) UNION ALL "
                f"SELECT sighting_id, vector FROM sighting_vectors WHERE model_key = ? AND sighting_id IN ({marks}) "
                "ORDER BY 1",
                [model_key, *chunk, model_key, *chunk],
            )
            out += [(int(r[0]), self._decode_vector(r[1])) for r in rows]
            if len(out) >= limit:
                break
        return out[:limit]
