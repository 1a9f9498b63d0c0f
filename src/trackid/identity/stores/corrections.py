"""Corrections: people fix the gallery (merge, split, relabel, delete) and the gallery learns from it.

Each correction is an event row with what `undo` needs to reverse it; `undo` reverses the latest one still standing
(a stack). Merges and splits that stand become labelled same/different sighting pairs (`labelled_pairs`), the
training data that `Gallery.refit_calibration` uses.
"""

from __future__ import annotations

import json
import time as _time
from collections.abc import Sequence
from typing import Any

import numpy as np

from trackid.identity.stores.records import (
    CORRECTION_COLUMNS,
    Correction,
    CorrectionKind,
    LabelledPair,
    as_id,
    check_finite,
    correction_row,
)
from trackid.identity.stores.sql import SqlStore

__all__ = ["Corrections"]


class Corrections(SqlStore):
    """The correction methods of `GalleryStore`."""

    SAMPLE_LIMIT = 256
    """Sightings of the other side a merge/split records for labelled pairs (the moved ones are all recorded)."""

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
                self._refresh_identities([changed])
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
                self._refresh_identities([changed])
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
            self._refresh_identities([changed])
