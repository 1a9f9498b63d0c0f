"""The similarity log: every comparison that led to a decision, so thresholds can be tuned from data and a
decision explained later; with retention, so it does not grow without bound."""

from __future__ import annotations

import math
import time as _time
from collections.abc import Sequence
from typing import Any

from trackid.identity.stores.records import SimilarityRecord, check_finite
from trackid.identity.stores.sql import SqlStore

__all__ = ["SimilarityLog"]


class SimilarityLog(SqlStore):
    """The similarity-log methods of `GalleryStore`."""

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
