"""Durable job state: SQLite by default, PostgreSQL when the service's `store` is a postgresql:// URL.

One `jobs` table is the truth about every job; workers and web processes only read and write it, so either can be
killed and restarted. Claiming a queued job is one atomic `UPDATE ... WHERE state = 'queued' RETURNING` (SQLite
serialises writers; PostgreSQL adds `FOR UPDATE SKIP LOCKED`), so two workers never run the same job. A running job
whose worker stopped sending heartbeats is marked `interrupted` (`interrupt_stale`); `resume` queues it again.

States: queued -> running -> complete | failed; a cancel makes a queued job `cancelled` at once and a running one
`cancelling` until its worker stops it; interrupted, failed and cancelled jobs may be resumed.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["RESUMABLE", "STATES", "TERMINAL", "Job", "JobStore", "StaleSweeper"]

STATES = ("queued", "running", "cancelling", "complete", "failed", "cancelled", "interrupted")
TERMINAL = ("complete", "failed", "cancelled")
RESUMABLE = ("interrupted", "failed", "cancelled")
_COLUMNS = (
    "id, type, request, state, phase, done, total, metrics, error, created, updated, started, finished, worker, "
    "heartbeat, attempts, cancel, run_dir"
)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    request TEXT NOT NULL,
    state TEXT NOT NULL,
    phase TEXT,
    done DOUBLE PRECISION,
    total DOUBLE PRECISION,
    metrics TEXT,
    error TEXT,
    created DOUBLE PRECISION NOT NULL,
    updated DOUBLE PRECISION NOT NULL,
    started DOUBLE PRECISION,
    finished DOUBLE PRECISION,
    worker TEXT,
    heartbeat DOUBLE PRECISION,
    attempts INTEGER NOT NULL DEFAULT 0,
    cancel INTEGER NOT NULL DEFAULT 0,
    run_dir TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_state_created ON jobs (state, created);
"""


@dataclass(frozen=True)
class Job:
    id: str
    type: str
    request: dict[str, Any]
    state: str
    phase: str | None
    done: float | None
    total: float | None
    metrics: dict[str, Any]
    error: str | None
    created: float
    updated: float
    started: float | None
    finished: float | None
    worker: str | None
    heartbeat: float | None
    attempts: int
    cancel: bool
    run_dir: str

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Job:
        values = list(row)
        values[2] = json.loads(values[2])
        values[7] = json.loads(values[7]) if values[7] else {}
        values[16] = bool(values[16])
        return cls(*values)


class JobStore:
    """The jobs table behind one connection per thread (web handlers run in a thread pool)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.postgres = url.startswith(("postgresql://", "postgres://"))
        self._local = threading.local()
        if not self.postgres:
            Path(url).parent.mkdir(parents=True, exist_ok=True)
        with self._cursor() as cur:
            for statement in filter(str.strip, _SCHEMA.split(";")):
                cur.execute(statement)

    # -- writes ---------------------------------------------------------------------------------------------------

    def create(self, job_type: str, request: dict[str, Any], run_dir: str | Path, job_id: str | None = None) -> Job:
        now = time.time()
        job_id = job_id or uuid.uuid4().hex
        with self._cursor() as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO jobs (id, type, request, state, created, updated, run_dir) "
                    "VALUES (?, ?, ?, 'queued', ?, ?, ?)"
                ),
                (job_id, job_type, json.dumps(request), now, now, str(run_dir)),
            )
        job = self.get(job_id)
        assert job is not None
        return job

    def claim(self, worker: str, job_id: str | None = None) -> Job | None:
        """Take the oldest queued job (or `job_id`, if still queued) for `worker`: running, attempts + 1."""
        now = time.time()
        if job_id is None:
            lock = " FOR UPDATE SKIP LOCKED" if self.postgres else ""
            target = f"(SELECT id FROM jobs WHERE state = 'queued' ORDER BY created, id LIMIT 1{lock})"
            args: tuple[Any, ...] = (worker, now, now, now)
        else:
            target, args = "?", (worker, now, now, now, job_id)
        with self._cursor() as cur:
            cur.execute(
                self._sql(
                    "UPDATE jobs SET state = 'running', worker = ?, heartbeat = ?, started = ?, updated = ?, "
                    f"attempts = attempts + 1, error = NULL, finished = NULL WHERE id = {target} AND state = 'queued' "
                    f"RETURNING {_COLUMNS}"
                ),
                args,
            )
            row = cur.fetchone()
        return None if row is None else Job.from_row(row)

    def progress(self, job_id: str, worker: str, phase: str | None, done: float | None, total: float | None) -> bool:
        """A running job's heartbeat and progress; False when the job is no longer this worker's to run."""
        now = time.time()
        changed = self._update(
            "UPDATE jobs SET phase = COALESCE(?, phase), done = COALESCE(?, done), total = COALESCE(?, total), "
            "heartbeat = ?, updated = ? WHERE id = ? AND worker = ? AND state IN ('running', 'cancelling')",
            (phase, done, total, now, now, job_id, worker),
        )
        return bool(changed)

    def finish(self, job_id: str, worker: str, state: str, metrics: dict[str, Any], error: str | None = None) -> bool:
        """End a running job as `state` (complete, failed, cancelled); False if it was not this worker's."""
        now = time.time()
        changed = self._update(
            "UPDATE jobs SET state = ?, metrics = ?, error = ?, finished = ?, updated = ? "
            "WHERE id = ? AND worker = ? AND state IN ('running', 'cancelling')",
            (state, json.dumps(metrics), error, now, now, job_id, worker),
        )
        return bool(changed)

    def cancel(self, job_id: str) -> Job | None:
        """Cancel: a queued or interrupted job at once, a running one through its worker. None: no such job."""
        now = time.time()
        self._update(
            "UPDATE jobs SET state = CASE WHEN state = 'running' THEN 'cancelling' ELSE 'cancelled' END, "
            "cancel = 1, updated = ?, finished = CASE WHEN state = 'running' THEN finished ELSE ? END "
            "WHERE id = ? AND state IN ('queued', 'running', 'interrupted')",
            (now, now, job_id),
        )
        return self.get(job_id)

    def resume(self, job_id: str) -> bool:
        """Queue an interrupted, failed or cancelled job again; False if it is in another state (or absent)."""
        now = time.time()
        states = ", ".join(f"'{s}'" for s in RESUMABLE)
        changed = self._update(
            "UPDATE jobs SET state = 'queued', cancel = 0, worker = NULL, error = NULL, finished = NULL, "
            f"updated = ? WHERE id = ? AND state IN ({states})",
            (now, job_id),
        )
        return bool(changed)

    def interrupt_stale(self, stale_s: float) -> int:
        """Mark running jobs whose worker has been silent for `stale_s` interrupted (cancelling ones cancelled)."""
        now = time.time()
        return self._update(
            "UPDATE jobs SET state = CASE WHEN state = 'cancelling' THEN 'cancelled' ELSE 'interrupted' END, "
            "updated = ?, error = CASE WHEN state = 'cancelling' THEN error "
            "ELSE 'its worker stopped (killed or lost) while it ran: resume it' END "
            "WHERE state IN ('running', 'cancelling') AND heartbeat < ?",
            (now, now - stale_s),
        )

    # -- reads ----------------------------------------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        rows = self._select(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        return Job.from_row(rows[0]) if rows else None

    def cancel_requested(self, job_id: str) -> bool:
        rows = self._select("SELECT cancel FROM jobs WHERE id = ?", (job_id,))
        return bool(rows and rows[0][0])

    def recent(self, state: str | None = None, limit: int = 100) -> list[Job]:
        where, args = ("WHERE state = ?", (state, limit)) if state else ("", (limit,))
        rows = self._select(f"SELECT {_COLUMNS} FROM jobs {where} ORDER BY created DESC, id LIMIT ?", args)
        return [Job.from_row(r) for r in rows]

    # -- connections ----------------------------------------------------------------------------------------------

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def _select(self, statement: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._cursor() as cur:
            cur.execute(self._sql(statement), args)
            return list(cur.fetchall())

    def _update(self, statement: str, args: tuple[Any, ...]) -> int:
        """Run one write statement (with `?` placeholders); the rows it changed."""
        with self._cursor() as cur:
            cur.execute(self._sql(statement), args)
            return int(cur.rowcount)

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self.postgres else statement

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect()
            self._local.connection = connection
        cur = connection.cursor()
        try:
            yield cur
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        finally:
            cur.close()

    def _connect(self) -> Any:
        if self.postgres:
            import psycopg

            return psycopg.connect(self.url)
        connection = sqlite3.connect(self.url, timeout=30, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA busy_timeout=30000")
        connection.isolation_level = "IMMEDIATE"  # every write transaction takes the write lock at once
        return connection


class StaleSweeper:
    """`interrupt_stale`, at most every quarter of `stale_s`: a status poll (or a worker's idle loop) stays a read
    (a write per poll would queue 50 polling clients behind SQLite's one writer), and a job is still shown
    interrupted within 1.25 x `stale_s` of its worker's last heartbeat."""

    def __init__(self, store: JobStore, stale_s: float) -> None:
        self.store, self.stale_s, self._last = store, stale_s, -float("inf")
        self._lock = threading.Lock()

    def due(self) -> bool:
        return time.monotonic() - self._last >= self.stale_s / 4

    def __call__(self, now: bool = False) -> None:
        with self._lock:
            if not now and not self.due():
                return
            self._last = time.monotonic()
        self.store.interrupt_stale(self.stale_s)
