"""The stream ledger: what a consumer of message streams has applied, kept in the same transaction as its results.

The multi-camera service's central linker (`trackid.pipelines.multicam.central`) reads camera messages from Redis
Streams, which deliver at least once: after a crash, a broker restart or a consumer takeover a message may come
again. Each producer (a camera's edge worker) numbers its messages 1, 2, 3, ... and the linker applies them in that
order, so "which messages are applied" is one number per producer: `stream_offsets` records it in the transaction
that writes the results, and a message at or below it is a duplicate that changes nothing (the offset-in-database
pattern of exactly-once stream processing).

Beside it, the consumer's own state (`linker_state`: an opaque blob, the linker's pickled trackers) carries a
version that every save must name: a consumer that lost its lease while stalled, and wakes to commit, finds the
version moved on and its whole transaction rolls back (`StaleLedgerError`) — a fencing token, so two consumers can
never both apply one message. `global_positions` holds the linker's output, one row per global track and frame.
"""

from __future__ import annotations

import time as _time
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

from trackid.identity.stores.sql import SqlStore

__all__ = ["StaleLedgerError", "StreamLedger"]


class StaleLedgerError(RuntimeError):
    """A consumer saved its state over a version it did not load: another consumer has taken over since."""


class StreamLedger(SqlStore):
    """The stream-ledger methods of `GalleryStore`; call them inside one `transaction()` with the results."""

    def stream_offsets(self, consumer: str) -> dict[str, int]:
        """Producer -> the last message number of it that `consumer` applied."""
        rows = self._fetchall("SELECT producer, last_seq FROM stream_offsets WHERE consumer = ?", (consumer,))
        return {str(p): int(s) for p, s in rows}

    def save_stream_offsets(self, consumer: str, offsets: Mapping[str, int]) -> None:
        """Record that `consumer` has applied each producer's messages up to the number given."""
        now = _time.time()
        with self._transaction():
            self._executemany(
                "INSERT INTO stream_offsets (consumer, producer, last_seq, updated) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (consumer, producer) DO UPDATE SET last_seq = excluded.last_seq, "
                "updated = excluded.updated",
                [(consumer, producer, int(seq), now) for producer, seq in offsets.items()],
            )

    def linker_state(self, consumer: str) -> tuple[int, bytes | None]:
        """(version, state) of `consumer`; (0, None) before its first save."""
        row = self._fetchone("SELECT version, state FROM linker_state WHERE consumer = ?", (consumer,))
        return (0, None) if row is None else (int(row[0]), bytes(row[1]))

    def save_linker_state(self, consumer: str, state: bytes, *, version: int) -> int:
        """Replace `consumer`'s state, loaded at `version`; returns the new version.

        Raises:
            StaleLedgerError: the stored version is not `version` (another consumer saved since); the caller's
                transaction must roll back.
        """
        now = _time.time()
        with self._transaction():
            if version == 0:
                changed = self._execute_count(
                    "INSERT INTO linker_state (consumer, version, state, updated) VALUES (?, 1, ?, ?) "
                    "ON CONFLICT (consumer) DO NOTHING",
                    (consumer, state, now),
                )
            else:
                changed = self._execute_count(
                    "UPDATE linker_state SET version = version + 1, state = ?, updated = ? "
                    "WHERE consumer = ? AND version = ?",
                    (state, now, consumer, int(version)),
                )
            if changed != 1:
                raise StaleLedgerError(
                    f"linker state of {consumer!r} is no longer at version {version}: another consumer took over"
                )
        return int(version) + 1

    def add_global_positions(self, site: str, rows: ArrayLike) -> None:
        """Rows frame, track, identity_id, time, x, y of `site`'s global tracks; a row already stored (same frame
        and track) is kept, so a frame applied again writes nothing new."""
        table = np.asarray(rows, np.float64).reshape(-1, 6)
        with self._transaction():
            self._executemany(
                "INSERT INTO global_positions (site, frame, track, identity_id, time, x, y) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (site, frame, track) DO NOTHING",
                [(site, int(f), int(t), int(i), float(s), float(x), float(y)) for f, t, i, s, x, y in table.tolist()],
            )

    def global_positions(self, site: str, *, since_frame: int = 0) -> np.ndarray:
        """(M, 6) rows frame, track, identity_id, time, x, y of `site` from `since_frame` on, by frame and track."""
        rows: Sequence[tuple[object, ...]] = self._fetchall(
            "SELECT frame, track, identity_id, time, x, y FROM global_positions WHERE site = ? AND frame >= ? "
            "ORDER BY frame, track",
            (site, int(since_frame)),
        )
        return np.array(rows, np.float64).reshape(-1, 6)
