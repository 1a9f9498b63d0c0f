"""The gallery's memory: identities, their sightings and prototypes, corrections and the similarity log.

`GalleryStore` is the protocol every backend implements (SQLite + an HNSW file index by default, PostgreSQL +
pgvector at scale). The SQL that both share lives in `GalleryStore`, written with `?` placeholders; a backend
supplies the connection, transactions, vector encoding and the nearest-prototype search.

Rules every backend keeps:
- Vectors are stored L2-normalised, tagged with their embedding model (id + version, which fixes the dimension);
  a search only ever compares vectors of one model, and a vector of another dimension or an unknown model is an
  error, never a silently wrong similarity.
- An identity is remembered by at most `max_prototypes` quality-weighted prototypes per model, not by one running
  average that drifts towards whatever was seen last.
- Corrections (merge, split, relabel, delete) are events in the store; `undo` reverses the latest one, and the
  merges and splits that stand become labelled same/different sighting pairs for calibration.
- Times are seconds since the Unix epoch (UTC).
"""

from __future__ import annotations

import json
import math
import time as _time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from trackid.identity.stores.records import (
    CORRECTION_COLUMNS,
    IDENTITY_COLUMNS,
    Candidate,
    Correction,
    CorrectionKind,
    Identity,
    IntegrityReport,
    LabelledPair,
    ModelInfo,
    Prototype,
    Sighting,
    SimilarityRecord,
    as_id,
    as_unit_vector,
    attributes_json,
    check_finite,
    check_quality,
    correction_row,
    identity_row,
    load_attributes,
    source_json,
)

__all__ = ["GalleryStore", "as_unit_vector"]


class GalleryStore(ABC):
    """`GalleryStore` over a SQL connection; subclasses provide the database-specific hooks at the end.

    Parameters
    ----------
    max_prototypes:
        Prototypes kept per identity and model. Raising it remembers more poses/lightings (better recall across
        viewpoints) at the cost of more vectors per identity to search and a higher chance that one bad sighting
        keeps a slot.
    merge_similarity:
        A new sighting this similar (cosine) to an existing prototype is folded into it, quality-weighted, instead
        of taking a slot. Raising it keeps prototypes more distinct but fills the slots sooner; lowering it
        averages more and blurs distinct appearances.
    """

    SAMPLE_LIMIT = 256
    """Sightings of the other side a merge/split records for labelled pairs (the moved ones are all recorded)."""

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

    def __enter__(self) -> GalleryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- models -------------------------------------------------------------------------------------------------

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

    # -- identities ---------------------------------------------------------------------------------------------

    def create_identity(
        self, *, label: str | None = None, site: str | None = None, attributes: Mapping[str, Any] | None = None
    ) -> Identity:
        attrs = attributes_json(attributes)
        with self._transaction():
            new_id = self._insert(
                "INSERT INTO identities (label, site, attributes, created) VALUES (?, ?, ?, ?) RETURNING id",
                (label, site, attrs, _time.time()),
            )
        return self.get_identity(new_id)

    def get_identity(self, identity_id: int) -> Identity:
        row = self._fetchone(f"SELECT {IDENTITY_COLUMNS} FROM identities WHERE id = ?", (as_id(identity_id),))
        if row is None:
            raise KeyError(f"identity_id {identity_id} does not exist")
        return identity_row(row)

    def identities(self, *, include_deleted: bool = False) -> list[Identity]:
        where = "" if include_deleted else " WHERE deleted = 0"
        return [
            identity_row(r) for r in self._fetchall(f"SELECT {IDENTITY_COLUMNS} FROM identities{where} ORDER BY id")
        ]

    # -- sightings ----------------------------------------------------------------------------------------------

    def add_sighting(
        self,
        vector: ArrayLike,
        *,
        model_id: str,
        model_version: str,
        time: float,
        quality: float = 1.0,
        site: str | None = None,
        camera: str | None = None,
        identity_id: int | None = None,
        source: Mapping[str, Any] | None = None,
        source_key: str | None = None,
    ) -> Sighting:
        """Store a sighting (registering its model on first use); with `identity_id`, assign it too.

        The sighting is durable when this returns; its id is the acknowledgement. `source` (JSON-serialisable)
        records where its pixels are, so that `reembed` can compute vectors of another model later. `source_key`
        is a unique idempotency key (e.g. a photo's content hash + detection): storing a key twice is an error,
        and `stored_source_keys` tells a resumed pipeline what it already wrote.
        """
        if source_key is not None and (not isinstance(source_key, str) or not source_key):
            raise ValueError(f"source_key must be a non-empty string, got {source_key!r}")
        when = check_finite(time, "time")
        q = check_quality(quality)
        source_text = source_json(source)
        with self._transaction():
            model = self._model_for_write(model_id, model_version, np.asarray(vector))
            unit = as_unit_vector(vector, model.dim)
            if identity_id is not None:
                self._live_identity(identity_id, "identity_id")
            if source_key is not None and self.stored_source_keys([source_key]):
                raise ValueError(f"source_key {source_key!r} is already stored (a sighting is never written twice)")
            new_id = self._insert(
                "INSERT INTO sightings (identity_id, time, site, camera, quality, model_key, vector, source, "
                "source_key) VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (when, site, camera, q, model.key, self._encode_vector(unit), source_text, source_key),
            )
            if identity_id is not None:
                self._assign(new_id, identity_id)
        return self.get_sighting(new_id)

    def stored_source_keys(self, keys: Sequence[str]) -> set[str]:
        """Which of `keys` are stored as some sighting's `source_key`."""
        found: set[str] = set()
        unique = sorted(set(keys))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            found.update(
                r[0] for r in self._fetchall(f"SELECT source_key FROM sightings WHERE source_key IN ({marks})", chunk)
            )
        return found

    def transaction(self) -> AbstractContextManager[None]:
        """Group several writes (e.g. a new identity, its sighting and the logged decision) into one atomic unit:
        after a crash either all of them are stored or none."""
        return self._transaction()

    def add_sighting_vectors(
        self, sighting_ids: Sequence[int], vectors: ArrayLike, *, model_id: str, model_version: str
    ) -> int:
        """Record vectors of another model for existing sightings (what `reembed` writes), in one transaction.

        Each is folded into its identity's prototypes of that model, so the identity becomes searchable with it.
        A sighting that already has a vector of the model keeps it: re-running an interrupted `reembed` adds only
        what is missing, never a duplicate. Returns how many vectors were added.
        """
        ids = [as_id(s) for s in sighting_ids]
        arr = np.asarray(vectors)
        if arr.ndim != 2 or len(arr) != len(ids):
            raise ValueError(f"vectors must be ({len(ids)}, dim) for {len(ids)} sighting_ids, got shape {arr.shape}")
        if not ids:
            return 0
        added = 0
        with self._transaction():
            model = self._model_for_write(model_id, model_version, arr[0])
            units = [as_unit_vector(v, model.dim, f"vectors[{i}]") for i, v in enumerate(arr)]
            held = {i for i, _ in self._model_vectors(ids, model.key, len(ids))}
            folds: dict[int, list[tuple[NDArray[np.float32], float]]] = {}
            for sighting_id, unit in zip(ids, units, strict=True):
                if sighting_id in held:
                    continue
                row = self._fetchone("SELECT identity_id, quality FROM sightings WHERE id = ?", (sighting_id,))
                if row is None:
                    raise KeyError(f"sighting_id {sighting_id} does not exist")
                self._execute(
                    "INSERT INTO sighting_vectors (sighting_id, model_key, vector) VALUES (?, ?, ?)",
                    (sighting_id, model.key, self._encode_vector(unit)),
                )
                held.add(sighting_id)
                added += 1
                if row[0] is not None:
                    folds.setdefault(int(row[0]), []).append((unit, float(row[1])))
            for identity_id, observations in folds.items():
                self._fold_into_prototypes(identity_id, model.key, observations)
        return added

    def sightings_without_model(
        self, model_id: str, model_version: str, *, after: int = 0, limit: int = 256
    ) -> list[Sighting]:
        """Up to `limit` sightings with id > `after` that have no vector of this model yet, in id order (a
        `reembed` pages through them; what it has written drops out, so a restart resumes)."""
        model = self._find_model(model_id, model_version)
        if model is None:
            return self._sighting_rows("s.id > ?", (int(after),), order="s.id", limit=limit)
        return self._sighting_rows(
            "s.id > ? AND s.model_key <> ? AND NOT EXISTS "
            "(SELECT 1 FROM sighting_vectors v WHERE v.sighting_id = s.id AND v.model_key = ?)",
            (int(after), model.key, model.key),
            order="s.id",
            limit=limit,
        )

    def count_without_model(self, model_id: str, model_version: str) -> int:
        """How many sightings `sightings_without_model` would still page through (for progress bars)."""
        model = self._find_model(model_id, model_version)
        if model is None:
            return int(self._fetchall("SELECT count(*) FROM sightings")[0][0])
        return int(
            self._fetchall(
                "SELECT count(*) FROM sightings s WHERE s.model_key <> ? AND NOT EXISTS "
                "(SELECT 1 FROM sighting_vectors v WHERE v.sighting_id = s.id AND v.model_key = ?)",
                (model.key, model.key),
            )[0][0]
        )

    def vectors_of(
        self, sighting_ids: Sequence[int], *, model_id: str, model_version: str
    ) -> dict[int, NDArray[np.float32]]:
        """The given sightings' vectors of one model (recorded with it or added by `reembed`); missing ones are
        absent from the result."""
        model = self._find_model(model_id, model_version)
        if model is None:
            return {}
        ids = [as_id(s) for s in sighting_ids]
        return dict(self._model_vectors(ids, model.key, len(ids)))

    def get_sighting(self, sighting_id: int) -> Sighting:
        rows = self._sighting_rows("s.id = ?", (as_id(sighting_id),))
        if not rows:
            raise KeyError(f"sighting_id {sighting_id} does not exist")
        return rows[0]

    def sightings(self, identity_id: int | None = None, *, unassigned: bool = False) -> list[Sighting]:
        """Sightings of one identity, the unassigned ones, or (neither given) all, in time order."""
        if identity_id is not None and unassigned:
            raise ValueError("give identity_id or unassigned=True, not both")
        if identity_id is not None:
            self.get_identity(identity_id)
            return self._sighting_rows("s.identity_id = ?", (as_id(identity_id),))
        return self._sighting_rows("s.identity_id IS NULL" if unassigned else "1 = 1", ())

    def assign_sighting(self, sighting_id: int, identity_id: int) -> None:
        """Attach a sighting to a (live) identity, moving it from its previous one if any."""
        with self._transaction():
            previous = self._sighting_owner(sighting_id)
            self._live_identity(identity_id, "identity_id")
            if previous == identity_id:
                return
            self._assign(sighting_id, identity_id)
            if previous is not None:
                self._rebuild_prototypes(previous)
                self._refresh_identity(previous)

    def unassign_sighting(self, sighting_id: int) -> None:
        with self._transaction():
            previous = self._sighting_owner(sighting_id)
            if previous is None:
                return
            self._execute("UPDATE sightings SET identity_id = NULL WHERE id = ?", (as_id(sighting_id),))
            self._rebuild_prototypes(previous)
            self._refresh_identity(previous)

    def prototypes(self, identity_id: int) -> list[Prototype]:
        self.get_identity(identity_id)
        rows = self._fetchall(
            "SELECT p.id, p.identity_id, p.vector, p.quality, p.sighting_count, m.model_id, m.model_version, "
            "p.created FROM prototypes p JOIN models m ON m.id = p.model_key WHERE p.identity_id = ? "
            "ORDER BY p.model_key, p.id",
            (as_id(identity_id),),
        )
        return [
            Prototype(int(r[0]), int(r[1]), self._decode_vector(r[2]), float(r[3]), int(r[4]), r[5], r[6], float(r[7]))
            for r in rows
        ]

    # -- search -------------------------------------------------------------------------------------------------

    def search(
        self,
        queries: ArrayLike,
        *,
        model_id: str,
        model_version: str,
        k: int = 5,
        since: float | None = None,
        until: float | None = None,
        site: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> list[list[Candidate]]:
        """Top-`k` live identities per query (one (D,) vector or (Q, D) rows), best prototype similarity first.

        Only prototypes of `model_id` + `model_version` are compared. Filters: `since`/`until` keep identities
        with a sighting in that window; `site` keeps identities whose site is `site` or that were sighted there;
        `attributes` are hard gates: an identity whose attribute differs is excluded, one lacking it is kept
        (unknown is not a contradiction).
        """
        model = self._find_model(model_id, model_version)
        if model is None:
            raise ValueError(
                f"no vectors of model_id {model_id!r} model_version {model_version!r} in this store "
                "(register_model it first); vectors of different models are never compared"
            )
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        arr = np.asarray(queries)
        rows = arr[None, :] if arr.ndim == 1 else arr
        if rows.ndim != 2:
            raise ValueError(f"queries must be one vector or a (Q, D) array, got shape {arr.shape}")
        units = [as_unit_vector(row, model.dim, f"queries[{i}]") for i, row in enumerate(rows)]
        window = None
        if since is not None or until is not None:
            window = (
                -math.inf if since is None else check_finite(since, "since"),
                math.inf if until is None else check_finite(until, "until"),
            )
        gates = dict(attributes or {})
        return [self._search_one(model, unit, int(k), window, site, gates) for unit in units]

    # -- corrections --------------------------------------------------------------------------------------------

    def merge(self, into_id: int, from_id: int) -> Correction:
        """`from_id` was the same individual as `into_id`: move its sightings over and retire it."""
        if into_id == from_id:
            raise ValueError(f"into_id and from_id are the same identity ({into_id})")
        with self._transaction():
            self._live_identity(into_id, "into_id")
            self._live_identity(from_id, "from_id")
            kept = self._sighting_ids(into_id, limit=self.SAMPLE_LIMIT)
            moved = self._sighting_ids(from_id)
            self._execute("UPDATE sightings SET identity_id = ? WHERE identity_id = ?", (into_id, from_id))
            self._execute("UPDATE identities SET deleted = 1 WHERE id = ?", (from_id,))
            for changed in (into_id, from_id):
                self._rebuild_prototypes(changed)
                self._refresh_identity(changed)
            payload = {"moved": moved, "kept": kept}
            return self._record_correction("merge", into_id, from_id, payload)

    def split(
        self,
        identity_id: int,
        *,
        sighting_ids: Sequence[int] | None = None,
        at: float | None = None,
        label: str | None = None,
    ) -> Correction:
        """Move some sightings (the given ids, or those at/after time `at`) to a new identity.

        The new identity copies site and attributes and is `other_identity_id` of the returned correction.
        """
        if (sighting_ids is None) == (at is None):
            raise ValueError("give exactly one of sighting_ids or at")
        with self._transaction():
            source = self._live_identity(identity_id, "identity_id")
            owned = self._sighting_ids(identity_id)
            if sighting_ids is not None:
                moved = sorted({as_id(s) for s in sighting_ids})
                foreign = sorted(set(moved) - set(owned))
                if foreign:
                    raise ValueError(f"sighting_ids {foreign} do not belong to identity {identity_id}")
            else:
                cut = check_finite(at, "at")
                rows = self._fetchall(
                    "SELECT id FROM sightings WHERE identity_id = ? AND time >= ? ORDER BY id", (identity_id, cut)
                )
                moved = [int(r[0]) for r in rows]
            if not moved or len(moved) == len(owned):
                raise ValueError(
                    f"a split must leave sightings on both sides; it would move {len(moved)} of {len(owned)}"
                )
            new_id = self._insert(
                "INSERT INTO identities (label, site, attributes, created) VALUES (?, ?, ?, ?) RETURNING id",
                (label, source.site, json.dumps(dict(source.attributes), sort_keys=True), _time.time()),
            )
            self._move_sightings(moved, new_id)
            remaining = [s for s in owned if s not in set(moved)][: self.SAMPLE_LIMIT]
            for changed in (identity_id, new_id):
                self._rebuild_prototypes(changed)
                self._refresh_identity(changed)
            return self._record_correction("split", identity_id, new_id, {"moved": moved, "kept": remaining})

    def relabel(self, identity_id: int, label: str | None) -> Correction:
        with self._transaction():
            old = self._live_identity(identity_id, "identity_id").label
            self._execute("UPDATE identities SET label = ? WHERE id = ?", (label, identity_id))
            return self._record_correction("relabel", identity_id, None, {"old": old, "new": label})

    def delete_identity(self, identity_id: int) -> Correction:
        """Hide an identity from search and listings; its rows stay so that `undo` can restore it."""
        with self._transaction():
            self._live_identity(identity_id, "identity_id")
            self._execute("UPDATE identities SET deleted = 1 WHERE id = ?", (identity_id,))
            return self._record_correction("delete", identity_id, None, {})

    def undo(self) -> Correction:
        """Reverse the latest correction not yet undone (repeatable: a stack); returns the 'undo' event."""
        with self._transaction():
            row = self._fetchone(
                f"SELECT {CORRECTION_COLUMNS} FROM corrections WHERE kind <> 'undo' AND undone_by IS NULL "
                "ORDER BY id DESC LIMIT 1"
            )
            if row is None:
                raise ValueError("there is no correction to undo")
            target = correction_row(row)
            self._reverse(target)
            event = self._record_correction("undo", target.identity_id, target.other_identity_id, {"undone": target.id})
            self._execute("UPDATE corrections SET undone_by = ? WHERE id = ?", (event.id, target.id))
            return event

    def corrections(self) -> list[Correction]:
        return [correction_row(r) for r in self._fetchall(f"SELECT {CORRECTION_COLUMNS} FROM corrections ORDER BY id")]

    def labelled_pairs(self, *, model_id: str, model_version: str, max_per_side: int = 16) -> list[LabelledPair]:
        """Same pairs from merges and different pairs from splits that still stand, with their similarity.

        Each correction contributes up to `max_per_side` sightings of each side of this model (so one big merge
        does not swamp the calibration set); pairs never mix models.
        """
        model = self._find_model(model_id, model_version)
        if model is None:
            raise ValueError(f"no vectors of model_id {model_id!r} model_version {model_version!r} in this store")
        pairs: list[LabelledPair] = []
        for event in self.corrections():
            if event.kind not in ("merge", "split") or event.undone_by is not None:
                continue
            side_a = self._model_vectors(event.payload["moved"], model.key, max_per_side)
            side_b = self._model_vectors(event.payload["kept"], model.key, max_per_side)
            for a_id, a_vec in side_a:
                for b_id, b_vec in side_b:
                    similarity = float(np.dot(a_vec, b_vec))
                    pairs.append(LabelledPair(a_id, b_id, similarity, event.kind == "merge", event.id))
        return pairs

    # -- similarity log -----------------------------------------------------------------------------------------

    def log_similarities(self, records: Sequence[SimilarityRecord]) -> None:
        rows = []
        for i, r in enumerate(records):
            check_finite(r.similarity, f"records[{i}].similarity")
            check_finite(r.time, f"records[{i}].time")
            rows.append(
                (
                    r.query,
                    r.candidate,
                    r.similarity,
                    r.probability,
                    r.threshold,
                    r.decision,
                    r.model_id,
                    r.model_version,
                    r.time,
                )
            )
        with self._transaction():
            self._executemany(
                "INSERT INTO similarity_log (query_sighting_id, candidate_identity_id, similarity, probability, "
                "threshold, decision, model_id, model_version, time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def similarity_log(self, *, since: float | None = None, limit: int | None = None) -> list[SimilarityRecord]:
        """Logged comparisons in insertion order, optionally from `since` on and only the latest `limit`."""
        sql = (
            "SELECT query_sighting_id, candidate_identity_id, similarity, probability, threshold, decision, "
            "model_id, model_version, time, id FROM similarity_log WHERE time >= ? ORDER BY id DESC"
        )
        params: tuple[Any, ...] = (-math.inf if since is None else float(since),)
        if limit is not None:
            sql += " LIMIT ?"
            params += (int(limit),)
        rows = self._fetchall(sql, params)
        return [
            SimilarityRecord(
                None if r[0] is None else int(r[0]),
                None if r[1] is None else int(r[1]),
                float(r[2]),
                None if r[3] is None else float(r[3]),
                None if r[4] is None else float(r[4]),
                r[5],
                r[6],
                r[7],
                float(r[8]),
            )
            for r in reversed(rows)
        ]

    def prune_similarity_log(
        self, *, max_age_days: float | None = None, max_rows: int | None = None, now: float | None = None
    ) -> int:
        """Retention: drop records older than `max_age_days` and all but the newest `max_rows`; returns the count."""
        removed = 0
        with self._transaction():
            if max_age_days is not None:
                cutoff = (_time.time() if now is None else now) - float(max_age_days) * 86400.0
                removed += self._execute_count("DELETE FROM similarity_log WHERE time < ?", (cutoff,))
            if max_rows is not None:
                if max_rows < 0:
                    raise ValueError(f"max_rows must be >= 0, got {max_rows}")
                removed += self._execute_count(
                    "DELETE FROM similarity_log WHERE id NOT IN "
                    "(SELECT id FROM similarity_log ORDER BY time DESC, id DESC LIMIT ?)",
                    (int(max_rows),),
                )
        return removed

    # -- integrity ----------------------------------------------------------------------------------------------

    def check_integrity(self) -> IntegrityReport:
        """Cross-check derived data against the rows it derives from; backends add their own checks."""
        problems = list(self._backend_problems())
        stale = self._fetchall(
            "SELECT i.id FROM identities i WHERE i.sighting_count <> "
            "(SELECT count(*) FROM sightings s WHERE s.identity_id = i.id)"
        )
        problems += [f"identity {r[0]}: sighting_count differs from its sightings" for r in stale]
        crowded = self._fetchall(
            "SELECT identity_id, model_key, count(*) FROM prototypes GROUP BY identity_id, model_key "
            "HAVING count(*) > ?",
            (self.max_prototypes,),
        )
        problems += [f"identity {r[0]}: {r[2]} prototypes of model {r[1]} > {self.max_prototypes}" for r in crowded]
        orphans = self._fetchall(
            "SELECT count(*) FROM prototypes p WHERE NOT EXISTS "
            "(SELECT 1 FROM sightings s WHERE s.identity_id = p.identity_id AND s.model_key = p.model_key) "
            "AND NOT EXISTS (SELECT 1 FROM sighting_vectors v JOIN sightings s ON s.id = v.sighting_id "
            "WHERE s.identity_id = p.identity_id AND v.model_key = p.model_key)"
        )
        if orphans[0][0]:
            problems.append(f"{orphans[0][0]} prototypes belong to no sighting of their identity and model")
        return IntegrityReport(tuple(problems), tuple(self._repair_indexes()))

    # -- hooks for backends -------------------------------------------------------------------------------------

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
        self, model: ModelInfo, query: NDArray[np.float32], fetch: int
    ) -> list[tuple[int, int, float]]:
        """(prototype id, identity id, similarity) of up to `fetch` nearest prototypes of `model`, best first."""

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

    # -- shared helpers -----------------------------------------------------------------------------------------

    def _fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        rows = self._fetchall(sql, params)
        return rows[0] if rows else None

    def _insert(self, sql: str, params: Sequence[Any]) -> int:
        row = self._fetchone(sql, params)
        assert row is not None
        return int(row[0])

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
            self._fold_into_prototypes(identity_id, int(r[0]), [(self._decode_vector(r[1]), float(r[2]))])
        self._refresh_identity(identity_id)

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
            self._fold_into_prototypes(identity_id, model_key, observations)

    def _fold_into_prototypes(
        self, identity_id: int, model_key: int, observations: list[tuple[NDArray[np.float32], float]]
    ) -> None:
        rows = self._fetchall(
            "SELECT id, vector, quality, sighting_count FROM prototypes WHERE identity_id = ? AND model_key = ? "
            "ORDER BY id",
            (identity_id, model_key),
        )
        slots = [_Slot(int(r[0]), self._decode_vector(r[1]), float(r[2]), int(r[3])) for r in rows]
        for vector, quality in observations:
            _update_slots(slots, vector, quality, self.max_prototypes, self.merge_similarity)
        upserted = []
        now = _time.time()
        for slot in slots:
            if slot.id is None:
                slot.id = self._insert(
                    "INSERT INTO prototypes (identity_id, model_key, vector, quality, sighting_count, created) "
                    "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                    (identity_id, model_key, self._encode_vector(slot.vector), slot.quality, slot.count, now),
                )
            elif slot.dirty:
                self._execute(
                    "UPDATE prototypes SET vector = ?, quality = ?, sighting_count = ?, created = ? WHERE id = ?",
                    (self._encode_vector(slot.vector), slot.quality, slot.count, now, slot.id),
                )
            else:
                continue
            upserted.append(slot.id)
        if upserted:
            self._on_prototypes_changed(model_key, upserted, [])

    def _refresh_identity(self, identity_id: int) -> None:
        self._execute(
            "UPDATE identities SET "
            "first_seen = (SELECT min(time) FROM sightings WHERE identity_id = ?), "
            "last_seen = (SELECT max(time) FROM sightings WHERE identity_id = ?), "
            "sighting_count = (SELECT count(*) FROM sightings WHERE identity_id = ?) WHERE id = ?",
            (identity_id, identity_id, identity_id, identity_id),
        )

    def _search_one(
        self,
        model: ModelInfo,
        query: NDArray[np.float32],
        k: int,
        window: tuple[float, float] | None,
        site: str | None,
        gates: dict[str, Any],
    ) -> list[Candidate]:
        """Over-fetch prototypes, keep each passing identity's best, widen the fetch until `k` pass or none left."""
        fetch = 4 * k * self.max_prototypes
        while True:
            hits = self._nearest_prototypes(model, query, fetch)
            allowed = self._passing_identities({h[1] for h in hits}, window, site, gates)
            best: dict[int, Candidate] = {}
            for proto_id, identity_id, similarity in hits:
                if identity_id in allowed and identity_id not in best:
                    best[identity_id] = Candidate(identity_id, float(similarity), proto_id)
            if len(best) >= k or len(hits) < fetch:
                return sorted(best.values(), key=lambda c: -c.similarity)[:k]
            fetch *= 4

    def _passing_identities(
        self, ids: set[int], window: tuple[float, float] | None, site: str | None, gates: dict[str, Any]
    ) -> set[int]:
        if not ids:
            return set()
        marks = ", ".join("?" * len(ids))
        # attributes are only read (and parsed) when there are gates: this runs on every search
        columns = "i.id, i.attributes" if gates else "i.id, NULL"
        sql = f"SELECT {columns} FROM identities i WHERE i.deleted = 0 AND i.id IN ({marks})"
        params: list[Any] = sorted(ids)
        if window is not None:
            sql += " AND EXISTS (SELECT 1 FROM sightings s WHERE s.identity_id = i.id AND s.time >= ? AND s.time <= ?)"
            params += list(window)
        if site is not None:
            sql += " AND (i.site = ? OR EXISTS (SELECT 1 FROM sightings s WHERE s.identity_id = i.id AND s.site = ?))"
            params += [site, site]
        rows = self._fetchall(sql, params)
        if not gates:
            return {int(r[0]) for r in rows}
        passing = set()
        for identity_id, attrs in rows:
            known = load_attributes(attrs)
            if all(key not in known or known[key] == value for key, value in gates.items()):
                passing.add(int(identity_id))
        return passing

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

    def _record_correction(
        self, kind: CorrectionKind, identity_id: int | None, other_id: int | None, payload: dict[str, Any]
    ) -> Correction:
        new_id = self._insert(
            "INSERT INTO corrections (kind, identity_id, other_identity_id, payload, time) "
            "VALUES (?, ?, ?, ?, ?) RETURNING id",
            (kind, identity_id, other_id, json.dumps(payload), _time.time()),
        )
        row = self._fetchone(f"SELECT {CORRECTION_COLUMNS} FROM corrections WHERE id = ?", (new_id,))
        assert row is not None
        return correction_row(row)

    def _reverse(self, event: Correction) -> None:
        main, other = event.identity_id, event.other_identity_id
        assert main is not None
        if event.kind == "relabel":
            self._execute("UPDATE identities SET label = ? WHERE id = ?", (event.payload["old"], main))
            return
        if event.kind == "delete":
            self._execute("UPDATE identities SET deleted = 0 WHERE id = ?", (main,))
            return
        assert other is not None
        if event.kind == "merge":
            # Only the merged-in sightings still on `main` go back: later assignments to `main` stay.
            self._executemany(
                "UPDATE sightings SET identity_id = ? WHERE id = ? AND identity_id = ?",
                [(other, int(s), main) for s in event.payload["moved"]],
            )
            self._execute("UPDATE identities SET deleted = 0 WHERE id = ?", (other,))
        else:
            # The split-off identity is retired, so everything on it (including later assignments) goes back.
            self._execute("UPDATE sightings SET identity_id = ? WHERE identity_id = ?", (main, other))
            self._execute("UPDATE identities SET deleted = 1 WHERE id = ?", (other,))
        for changed in (main, other):
            self._rebuild_prototypes(changed)
            self._refresh_identity(changed)


@dataclass(slots=True, eq=False)
class _Slot:
    """A prototype being updated in memory; `id` None until inserted."""

    id: int | None
    vector: NDArray[np.float32]
    quality: float
    count: int
    dirty: bool = field(default=False)


def _update_slots(
    slots: list[_Slot], vector: NDArray[np.float32], quality: float, max_prototypes: int, merge_similarity: float
) -> None:
    """Fold one unit vector into an identity's prototypes, in place.

    Close to an existing prototype: quality-weighted average into it (its weight grows, so a well-supported
    prototype moves little, which keeps it from drifting). Otherwise a free slot takes it, or it replaces the
    lowest-quality prototype if it is better; else it is not remembered (the sighting itself still is).
    Quality-0 sightings never change prototypes.
    """
    if quality <= 0:
        return
    if slots:
        sims = np.array([float(np.dot(s.vector, vector)) for s in slots])
        closest = int(np.argmax(sims))
        if sims[closest] >= merge_similarity:
            slot = slots[closest]
            mixed = slot.quality * slot.vector + quality * vector
            slot.vector = (mixed / np.linalg.norm(mixed)).astype(np.float32)
            slot.quality += quality
            slot.count += 1
            slot.dirty = True
            return
    if len(slots) < max_prototypes:
        slots.append(_Slot(None, vector, quality, 1, True))
        return
    weakest = min(range(len(slots)), key=lambda i: slots[i].quality)
    if quality > slots[weakest].quality:
        slots[weakest].vector, slots[weakest].quality, slots[weakest].count = vector, quality, 1
        slots[weakest].dirty = True
