"""How workers find jobs: from the store on one machine, or from a Redis Stream shared by many machines.

The store stays the truth either way: a worker runs a job only after claiming it there (an atomic update from
`queued`), so a message delivered twice, or a job both published and found in the store, still runs once.
- `StoreQueue` (no `queue` set): each worker claims the oldest queued job; workers on one machine share the
  SQLite file.
- `RedisQueue` (`queue: redis://...`): the web process adds each new or resumed job's id to the stream
  `trackid:jobs`, and workers read it as one consumer group (`XREADGROUP`), so adding a machine means starting a
  worker there (with a PostgreSQL store every machine can reach). A message is acknowledged once its job ended; one
  whose worker died is taken over by another after `stale_s` (`XAUTOCLAIM`). Jobs queued while Redis was down are
  found in the store after `stale_s` as well.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

from trackid.service.settings import ServiceSettings
from trackid.service.store import Job, JobStore

__all__ = ["GROUP", "STREAM", "JobQueue", "RedisQueue", "StoreQueue", "make_queue", "publish"]

STREAM = "trackid:jobs"
GROUP = "workers"
log = logging.getLogger(__name__)


class JobQueue(Protocol):
    blocks: bool
    """Whether `take` itself waits (so the worker need not sleep between empty takes)."""

    def take(self, wait_s: float) -> Job | None: ...

    def done(self, job: Job) -> None: ...

    def describe(self) -> str: ...


class StoreQueue:
    blocks = False

    def __init__(self, store: JobStore, worker: str) -> None:
        self.store, self.worker = store, worker

    def take(self, wait_s: float) -> Job | None:
        return self.store.claim(self.worker)

    def done(self, job: Job) -> None:
        pass

    def describe(self) -> str:
        return f"the job store {self.store.url}"


class RedisQueue:
    blocks = True

    def __init__(self, url: str, store: JobStore, worker: str, stale_s: float) -> None:
        import redis

        self.url, self.store, self.worker, self.stale_s = url, store, worker, stale_s
        self.redis = redis.Redis.from_url(url, socket_timeout=30, socket_connect_timeout=5)
        self._messages: dict[str, bytes] = {}
        self._swept = 0.0
        _ensure_group(self.redis)

    def take(self, wait_s: float) -> Job | None:
        import redis

        try:
            for message_id, job_id in self._read(wait_s):
                job = self.store.claim(self.worker, job_id)
                if job is None:  # already run, running elsewhere, or cancelled: nothing to do
                    self.redis.xack(STREAM, GROUP, message_id)
                    continue
                self._messages[job.id] = message_id
                return job
        except redis.RedisError as exc:
            log.warning("job queue %s unreachable (%s): taking jobs from the store meanwhile", self.url, exc)
            time.sleep(min(wait_s, 1.0))
        return self._from_store()

    def done(self, job: Job) -> None:
        import redis

        message_id = self._messages.pop(job.id, None)
        if message_id is not None:
            try:
                self.redis.xack(STREAM, GROUP, message_id)
            except redis.RedisError as exc:  # the job's state is in the store; a redelivery finds it ended
                log.warning("could not acknowledge job %s on %s (%s)", job.id, self.url, exc)

    def describe(self) -> str:
        return f"the Redis stream {STREAM} at {self.url} (group {GROUP})"

    def _read(self, wait_s: float) -> list[tuple[bytes, str]]:
        """Messages for this worker: one a dead worker left pending past `stale_s`, else the next new one."""
        claimed: Any = self.redis.xautoclaim(STREAM, GROUP, self.worker, int(self.stale_s * 1000), count=1)
        entries: Any = claimed[1] if claimed and len(claimed) > 1 else []
        if not entries:
            response: Any = self.redis.xreadgroup(GROUP, self.worker, {STREAM: ">"}, count=1, block=int(wait_s * 1000))
            entries = response[0][1] if response else []
        return [(mid, fields[b"job"].decode()) for mid, fields in entries if fields and b"job" in fields]

    def _from_store(self) -> Job | None:
        """A job queued for longer than `stale_s` that no message brought (published while Redis was down)."""
        now = time.time()
        if now - self._swept < self.stale_s:
            return None
        self._swept = now
        for job in reversed(self.store.recent("queued", limit=50)):
            if now - job.updated >= self.stale_s:
                claimed = self.store.claim(self.worker, job.id)
                if claimed is not None:
                    return claimed
        return None


def make_queue(settings: ServiceSettings, store: JobStore, worker: str) -> JobQueue:
    if settings.queue is None:
        return StoreQueue(store, worker)
    return RedisQueue(settings.queue, store, worker, settings.stale_s)


def publish(settings: ServiceSettings, job_id: str) -> None:
    """Tell the workers of a shared queue about a queued job (nothing to do without one). A broker that is down
    loses nothing: the job waits in the store, where workers find it after `stale_s`."""
    if settings.queue is None:
        return
    import redis

    try:
        client = redis.Redis.from_url(settings.queue, socket_timeout=5, socket_connect_timeout=2)
        _ensure_group(client)
        client.xadd(STREAM, {"job": job_id}, maxlen=100_000, approximate=True)
    except redis.RedisError as exc:
        log.warning("job queue %s unreachable (%s): job %s waits in the store", settings.queue, exc, job_id)


def _ensure_group(client: object) -> None:
    import redis

    try:
        client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)  # type: ignore[attr-defined]
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
