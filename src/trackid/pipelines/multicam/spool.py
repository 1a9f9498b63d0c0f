"""An edge worker's durable outbox: every message goes into a SQLite file first and is sent from there.

So a broker outage costs nothing but delay: the camera keeps tracking into the spool, and the sender drains it in
order once Redis is back. A crash of the edge itself loses nothing either: the file (WAL, one commit per message)
holds what was tracked, which messages were sent and when, and the next start continues after the last frame
spooled.

Rows keep their send time for `resend_window_s` after sending, because Redis with `appendfsync everysec` can lose
the last second of writes it acknowledged when it is killed; after a reconnect the edge sends that window again
(`resend_since`) and the linker drops what it already had (`trackid.identity.stores.ledger`).

The cap (`max_messages` unsent rows) is the one place data can be given up, and never silently:
- `block` (default for recorded sources): `append` refuses (`SpoolFullError`) and the worker waits for the sender;
- `drop-oldest` (live cameras, which cannot wait): the oldest unsent rows become one `gap` message that tells the
  linker which numbers will never come, logged as a warning with the count.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time as _time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

__all__ = ["POLICIES", "Spool", "SpoolFullError"]

_T = TypeVar("_T")

POLICIES = ("block", "drop-oldest")
log = logging.getLogger(__name__)


_P = ParamSpec("_P")


def _locked(method: Callable[Concatenate[Spool, _P], _T]) -> Callable[Concatenate[Spool, _P], _T]:
    """One statement group at a time: a transaction begun by one thread must not take in another's writes."""

    def run(self: Spool, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        with self._lock:
            return method(self, *args, **kwargs)

    run.__doc__ = method.__doc__
    return run


class SpoolFullError(RuntimeError):
    """The spool holds `max_messages` unsent messages and its policy is `block`."""


class Spool:
    """The outbox of one camera; `path` is created when missing.

    Args:
        path: the SQLite file.
        max_messages: unsent messages it may hold (see the module docstring for what happens then).
        policy: one of `POLICIES`.
        camera_id: the camera it spools for, on its log records.
    """

    def __init__(
        self, path: Path, *, max_messages: int = 100_000, policy: str = "block", camera_id: str | None = None
    ) -> None:
        if policy not in POLICIES:
            raise ValueError(f"spool policy must be one of {', '.join(POLICIES)}, got {policy!r}")
        if max_messages < 2:
            raise ValueError(f"spool max_messages must be >= 2, got {max_messages}")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._extra = {"camera_id": camera_id} if camera_id else {}
        self.max_messages = int(max_messages)
        self.policy = policy
        self.dropped = 0
        self._lock = threading.RLock()  # the worker and its sender share the connection
        # autocommit: each statement is its own durable transaction unless grouped by `with self._db`
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS messages (seq INTEGER PRIMARY KEY, frame INTEGER NOT NULL, "
            "fields TEXT NOT NULL, sent REAL)"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS messages_unsent ON messages (sent, seq)")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")

    @_locked
    def close(self) -> None:
        self._db.close()

    @_locked
    def next_seq(self) -> int:
        """The number the next message gets (numbers never repeat, even after sent rows are pruned)."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'last_seq'").fetchone()
        return 1 + (int(row[0]) if row else 0)

    @_locked
    def last_frame(self) -> int:
        """The last frame spooled (0 when none): where a restarted worker continues."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'last_frame'").fetchone()
        return int(row[0]) if row else 0

    @_locked
    def last_kind(self) -> str:
        """The kind of the last message spooled ('' when none): an `end` means the source was finished."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'last_kind'").fetchone()
        return str(row[0]) if row else ""

    @_locked
    def append(self, frame: int, fields: dict[str, str]) -> int:
        """Spool one message (its `seq` field is set here); returns its number.

        Raises:
            SpoolFullError: the cap is reached and the policy is `block`; nothing was written.
        """
        if self.unsent() >= self.max_messages:
            if self.policy == "block":
                raise SpoolFullError(f"spool {self.path} holds {self.max_messages} unsent messages")
            self._drop_oldest()
        seq = self.next_seq()
        fields = {**fields, "seq": str(seq)}
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT INTO messages (seq, frame, fields) VALUES (?, ?, ?)", (seq, frame, json.dumps(fields))
            )
            self._set("last_seq", seq)
            self._set("last_frame", frame)
            self._set("last_kind", fields.get("kind", ""))
        return seq

    @_locked
    def unsent(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM messages WHERE sent IS NULL").fetchone()[0])

    @_locked
    def pending(self, limit: int) -> list[tuple[int, dict[str, str]]]:
        """The oldest unsent messages, in order: (seq, fields)."""
        rows = self._db.execute(
            "SELECT seq, fields FROM messages WHERE sent IS NULL ORDER BY seq LIMIT ?", (int(limit),)
        ).fetchall()
        return [(int(seq), json.loads(fields)) for seq, fields in rows]

    @_locked
    def mark_sent(self, seqs: list[int], at: float | None = None) -> None:
        when = _time.time() if at is None else at
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("UPDATE messages SET sent = ? WHERE seq = ?", [(when, s) for s in seqs])

    @_locked
    def resend_since(self, since: float) -> int:
        """Mark the messages sent at or after `since` unsent again; returns how many."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            return self._db.execute("UPDATE messages SET sent = NULL WHERE sent >= ?", (since,)).rowcount

    @_locked
    def prune(self, sent_before: float) -> None:
        """Forget the messages sent before `sent_before` (outside any resend window)."""
        self._db.execute("DELETE FROM messages WHERE sent IS NOT NULL AND sent < ?", (sent_before,))

    def _drop_oldest(self) -> None:
        """Turn the oldest half of the unsent rows into one gap message (keeping numbers contiguous)."""
        rows = self._db.execute(
            "SELECT seq, fields FROM messages WHERE sent IS NULL ORDER BY seq LIMIT ?", (self.max_messages // 2,)
        ).fetchall()
        head: dict[str, Any] = json.loads(rows[0][1])
        first, last = int(head.get("first", rows[0][0])), int(rows[-1][0])  # an earlier gap grows
        fields: dict[str, Any] = json.loads(rows[-1][1])
        lost = sum(json.loads(r[1]).get("kind") != "gap" for r in rows)
        gap = {**fields, "kind": "gap", "first": str(first), "boxes": "[]"}
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM messages WHERE sent IS NULL AND seq >= ? AND seq < ?", (first, last))
            self._db.execute("UPDATE messages SET fields = ? WHERE seq = ?", (json.dumps(gap), last))
        self.dropped += lost
        log.warning(
            "spool %s full (%d unsent messages, policy drop-oldest): messages %d-%d are dropped (%d in all so far)",
            self.path,
            self.max_messages,
            first,
            last,
            self.dropped,
            extra=self._extra,
        )

    def _set(self, key: str, value: int | str) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, str(value)),
        )
