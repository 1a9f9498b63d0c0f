"""The gallery's memory: identities, their sightings and prototypes, corrections and the similarity log.

`GalleryStore` is the interface every backend implements (SQLite + an HNSW file index by default, PostgreSQL +
pgvector at scale), an abstract class holding the SQL both share: models, identities, sightings, search and the
integrity check here; corrections, the similarity log and camera statistics in their own modules over the same core
(`sql.py`). A backend supplies the connection, transactions, vector encoding and the nearest-prototype search.

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

import math
import time as _time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from trackid.identity.stores.camera_stats import CameraStatistics
from trackid.identity.stores.corrections import Corrections
from trackid.identity.stores.ledger import StreamLedger
from trackid.identity.stores.records import (
    IDENTITY_COLUMNS,
    Candidate,
    Identity,
    IntegrityReport,
    ModelInfo,
    Prototype,
    Sighting,
    as_id,
    as_unit_rows,
    as_unit_vector,
    attributes_json,
    check_finite,
    check_quality,
    identity_row,
    load_attributes,
    source_json,
)
from trackid.identity.stores.similarity_log import SimilarityLog

__all__ = ["GalleryStore", "StoreError", "StoreLockedError", "as_unit_vector"]


class StoreError(ValueError):
    """A store that cannot be opened: missing (when it must exist), not a gallery store, damaged or unreachable. The
    message names the store (credentials masked) and what is wrong."""


class StoreLockedError(StoreError):
    """An embedded store another process (or another open store in this one) already has open."""


class GalleryStore(Corrections, SimilarityLog, CameraStatistics, StreamLedger):
    """A gallery store over a SQL connection; a backend subclasses it and provides the hooks of `SqlStore`.

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

    SEARCH_CHUNK = 256
    """Queries searched together: one index call and one filter query each; bounds the prototype rows held at once."""

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

    def create_identities(
        self, count: int, *, site: str | None = None, attributes: Mapping[str, Any] | None = None
    ) -> list[int]:
        """`count` new unlabelled identities sharing `site` and `attributes`, in one statement batch; their ids."""
        attrs = attributes_json(attributes)
        now = _time.time()
        with self._transaction():
            return self._insert_many(
                "INSERT INTO identities (label, site, attributes, created) VALUES (NULL, ?, ?, ?) RETURNING id",
                [(site, attrs, now)] * int(count),
            )

    def identities(self, *, include_deleted: bool = False) -> list[Identity]:
        where = "" if include_deleted else " WHERE deleted = 0"
        return [
            identity_row(r) for r in self._fetchall(f"SELECT {IDENTITY_COLUMNS} FROM identities{where} ORDER BY id")
        ]

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

    def add_sightings(
        self,
        vectors: ArrayLike,
        *,
        model_id: str,
        model_version: str,
        times: ArrayLike,
        qualities: ArrayLike | None = None,
        site: str | None = None,
        cameras: Sequence[str | None] | None = None,
        identity_ids: Sequence[int | None] | None = None,
        sources: Sequence[Mapping[str, Any] | None] | None = None,
        source_keys: Sequence[str | None] | None = None,
    ) -> list[int]:
        """`add_sighting` for a batch (N, D), in one transaction: the rows are inserted together, each identity's
        prototypes are folded once for all its new sightings, and each touched identity is refreshed once. The
        same rows and prototypes result as adding them one by one in order; the ids come back in input order."""
        arr = np.asarray(vectors)
        if arr.ndim != 2:
            raise ValueError(f"vectors must be (n, dim), got shape {arr.shape}")
        n = len(arr)
        when = [check_finite(t, f"times[{i}]") for i, t in enumerate(_per_row(times, n, "times"))]
        quality = [check_quality(q) for q in _per_row(1.0 if qualities is None else qualities, n, "qualities")]
        camera = _per_row(cameras, n, "cameras")
        owner = _per_row(identity_ids, n, "identity_ids")
        source = [source_json(x) for x in _per_row(sources, n, "sources")]
        keys = _per_row(source_keys, n, "source_keys")
        given = [key for key in keys if key is not None]
        if any(not isinstance(key, str) or not key for key in given):
            raise ValueError(f"source_keys must be non-empty strings, got {[k for k in given if not k]!r}")
        if len(set(given)) < len(given):
            raise ValueError("source_keys repeat within the batch (a sighting is never written twice)")
        if n == 0:
            return []
        with self._transaction():
            model = self._model_for_write(model_id, model_version, arr[0])
            units = as_unit_rows(arr, model.dim, "vectors")
            wanted = sorted({as_id(i) for i in owner if i is not None})
            self._check_live(wanted, "identity_ids")
            stored = self.stored_source_keys(given)
            if stored:
                raise ValueError(
                    f"source_keys {sorted(stored)[:5]} are already stored (a sighting is never written twice)"
                )
            ids = self._insert_many(
                "INSERT INTO sightings (identity_id, time, site, camera, quality, model_key, vector, source, "
                "source_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                [
                    (owner[i], when[i], site, camera[i], quality[i], model.key, encoded, source[i], keys[i])
                    for i, encoded in enumerate(map(self._encode_vector, units))
                ],
            )
            folds: dict[int, list[tuple[NDArray[np.float32], float]]] = {}
            for i, identity_id in enumerate(owner):
                if identity_id is not None:
                    folds.setdefault(int(identity_id), []).append((units[i], quality[i]))
            self._fold_prototypes(model.key, folds)
            self._refresh_identities(sorted(folds))
        return ids

    def sources(self, *, page: int = 10_000) -> Iterator[tuple[int, dict[str, Any]]]:
        """(sighting id, recorded source) of every sighting that has one, in id order, without their vectors, read
        `page` rows at a time: what a resumed pipeline checks its inputs against, at any store size."""
        after = 0
        while True:
            rows = self._fetchall(
                "SELECT id, source FROM sightings WHERE id > ? AND source IS NOT NULL ORDER BY id LIMIT ?",
                (after, int(page)),
            )
            for sighting_id, source in rows:
                yield int(sighting_id), load_attributes(source)
            if len(rows) < page:
                return
            after = int(rows[-1][0])

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
            self._fold_prototypes(model.key, folds)
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
                self._refresh_identities([previous])

    def unassign_sighting(self, sighting_id: int) -> None:
        with self._transaction():
            previous = self._sighting_owner(sighting_id)
            if previous is None:
                return
            self._execute("UPDATE sightings SET identity_id = NULL WHERE id = ?", (as_id(sighting_id),))
            self._rebuild_prototypes(previous)
            self._refresh_identities([previous])

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
        units = as_unit_rows(rows, model.dim, "queries")
        window = None
        if since is not None or until is not None:
            window = (
                -math.inf if since is None else check_finite(since, "since"),
                math.inf if until is None else check_finite(until, "until"),
            )
        gates = dict(attributes or {})
        found: list[list[Candidate]] = []
        for start in range(0, len(units), self.SEARCH_CHUNK):
            found += self._search_many(model, units[start : start + self.SEARCH_CHUNK], int(k), window, site, gates)
        return found

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

    def _search_many(
        self,
        model: ModelInfo,
        queries: NDArray[np.float32],
        k: int,
        window: tuple[float, float] | None,
        site: str | None,
        gates: dict[str, Any],
    ) -> list[list[Candidate]]:
        """Over-fetch prototypes for all queries in one index call, filter all their identities with one SQL query,
        keep each passing identity's best (array operations over the whole batch, never a loop over hits); queries
        with fewer than `k` passing widen their fetch and go again."""
        out: list[list[Candidate]] = [[] for _ in range(len(queries))]
        pending = np.arange(len(queries))
        fetch = 4 * k * self.max_prototypes
        while len(pending):
            protos, owners, sims = self._nearest_prototypes(model, queries[pending], fetch)
            found = protos >= 0
            allowed = self._passing_identities(set(np.unique(owners[found]).tolist()), window, site, gates)
            passing = found & np.isin(owners, np.fromiter(allowed, np.int64, len(allowed)))
            row, rank = _best_per_identity(owners, passing)
            # rows come back ordered by (row, rank): a row's candidates are contiguous and best first
            starts = np.searchsorted(row, np.arange(len(pending) + 1))
            done = (np.diff(starts) >= k) | (found.sum(axis=1) < fetch)
            for at in np.flatnonzero(done).tolist():
                take = slice(starts[at], min(starts[at] + k, starts[at + 1]))
                cols = rank[take]
                picked = zip(owners[at, cols].tolist(), sims[at, cols].tolist(), protos[at, cols].tolist(), strict=True)
                out[int(pending[at])] = [Candidate(i, s, p) for i, s, p in picked]
            pending = pending[~done]
            fetch *= 4
        return out

    def _passing_identities(
        self, ids: set[int], window: tuple[float, float] | None, site: str | None, gates: dict[str, Any]
    ) -> set[int]:
        if not ids:
            return set()
        # attributes are only read (and parsed) when there are gates: this runs on every search
        columns = "i.id, i.attributes" if gates else "i.id, NULL"
        sql = (
            f"SELECT {columns} FROM identities i WHERE i.deleted = 0 AND i.id IN (SELECT value FROM {self._id_list()})"
        )
        params: list[Any] = [self._encode_ids(sorted(ids))]
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


def _best_per_identity(owners: NDArray[np.int64], keep: NDArray[np.bool_]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """(row, column) of each row's first kept entry per identity, ordered by row then column: with columns best
    first, each identity's best prototype in the order the identities rank."""
    row, col = np.nonzero(keep)  # row-major: by row, then column
    owner = owners[row, col]
    by_identity = np.lexsort((col, owner, row))
    r, o = row[by_identity], owner[by_identity]
    first = np.ones(len(r), bool)
    first[1:] = (r[1:] != r[:-1]) | (o[1:] != o[:-1])
    best = np.sort(by_identity[first])  # back to (row, column) order
    return row[best], col[best]


def _per_row(value: Any, n: int, name: str) -> list[Any]:
    """A per-row argument as a list of `n`: None -> all None, a scalar -> repeated, a sequence -> checked length."""
    if value is None or isinstance(value, str | float | int):
        return [value] * n
    values = value.tolist() if isinstance(value, np.ndarray) else list(value)
    if len(values) != n:
        raise ValueError(f"{name} has {len(values)} entries for {n} vectors")
    return values
