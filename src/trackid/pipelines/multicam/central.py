"""`trackid multicam central`: the linker that turns every camera's tracklet updates into global identities.

One process serves the sites of its site files. Per site it:
1. holds the site's lease (`broker.lease_key`, a redis-py `Lock` renewed every third of `lease_ttl_s`): the sites
   partition across the consumers of the group — each takes its fair share of the free sites (consumers are
   counted by their heartbeats), so a second machine is a second consumer, and a dead one's sites pass to the others
   once its leases expire;
2. on taking a site, loads its state from the gallery store (`linker_state`: the `SiteStepper`, the
   `LiveIdentities`, each camera's last applied message number) and takes the pending entries of the stream over
   (`XAUTOCLAIM`: what a dead consumer read but never acknowledged), then reads new ones (`XREADGROUP`);
3. applies messages per camera in number order, frame by frame, once every camera has sent the frame (or ended, or
   been silent for `camera_timeout_s`): the frame goes through the site's `SiteStepper` (the computation of
   `trackid multicam run`) and the tracks through `LiveIdentities`;
4. commits in one store transaction the identities created, the positions (`global_positions`), each camera's last
   applied number (`stream_offsets`) and its state, whose version fences out a stale owner; then `XACK`s.

A message at or below its camera's applied number is a duplicate (a broker that lost acknowledgements, an edge that
sent its resend window again, a takeover): acknowledged, counted, changes nothing. A malformed one goes to the
site's dead-letter stream with the reason. A lost broker is waited for with the shared backoff; what was read but not
committed stays pending in Redis and is read again (`XREADGROUP 0`) when it is back.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import math
import pickle
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import redis
from redis.lock import Lock

from trackid.config import ConfigError
from trackid.identity.live_ids import LiveIdentities
from trackid.identity.stores import GalleryStore, StoreLockedError, make_store
from trackid.identity.stores.ledger import StaleLedgerError
from trackid.multiview.site_tracking import SiteStepper, ViewFrame
from trackid.pipelines.multicam.broker import (
    GROUP,
    Backoff,
    BrokerConfig,
    connect,
    dead_key,
    lease_key,
    stream_key,
)
from trackid.pipelines.multicam.messages import CameraMessage, MessageError, decode
from trackid.pipelines.multicam.metrics import ServiceMetrics
from trackid.pipelines.multicam.run import ground_camera
from trackid.pipelines.multicam.site import SiteConfig

__all__ = ["CentralLinker", "LinkerSummary", "SiteState", "ledger_name"]

log = logging.getLogger(__name__)
READ_COUNT = 2000
"""Entries one XREADGROUP call may return per stream."""


def ledger_name(site: str) -> str:
    """The consumer name under which a site's offsets and state are kept in the store."""
    return f"multicam-linker:{site}"


@dataclass
class SiteState:
    """What survives a linker: pickled into the store with every commit."""

    stepper: SiteStepper
    identities: LiveIdentities
    applied: dict[str, int] = field(default_factory=dict)  # camera -> last message number applied
    frame: int = 0  # last frame applied
    ended: set[str] = field(default_factory=set)
    messages: int = 0
    late: int = 0


@dataclass(frozen=True)
class LinkerSummary:
    """Per site: messages applied, duplicates dropped, dead letters, late messages dropped, identities created."""

    applied: dict[str, int]
    duplicates: int
    dead_letters: int
    late: dict[str, int]
    identities: dict[str, int]


class _Site:
    """A site this process owns: its state, lease, and the messages read but not yet applied."""

    def __init__(self, config: SiteConfig, state: SiteState, version: int, lease: Lock) -> None:
        self.config, self.state, self.version, self.lease = config, state, version, lease
        self.cameras = [c.id for c in config.cameras]
        self.buffer: dict[str, dict[int, tuple[bytes, CameraMessage]]] = {c: {} for c in self.cameras}
        self.heard = dict.fromkeys(self.cameras, time.monotonic())
        self.silent: set[str] = set()
        self.renewed = time.monotonic()
        self.identities_made = 0

    def done(self) -> bool:
        return set(self.cameras) <= self.state.ended and not any(self.buffer.values())


class CentralLinker:
    """The linker over `sites` (their `service.broker` must agree; the first one's is used).

    Args:
        sites: the site files' configs; each needs an `identities.gallery`, and all share one gallery.
        name: this consumer's name in the group (unique per process: a restart may reuse it).
        metrics_port: serve `/metrics` here (0: none).
        stop: set it to stop (what was read and not committed stays pending for the next owner).
    """

    def __init__(
        self,
        sites: Sequence[SiteConfig],
        *,
        name: str,
        metrics_port: int = 0,
        stop: threading.Event | None = None,
    ) -> None:
        if not sites:
            raise ValueError("central needs at least one site")
        galleries = {s.identities.gallery if s.identities else None for s in sites}
        if None in galleries:
            missing = [s.site for s in sites if s.identities is None]
            raise ConfigError(f"site(s) {', '.join(missing)} have no identities.gallery: the linker stores identities")
        if len(galleries) != 1:
            raise ConfigError(f"the sites name different galleries ({', '.join(map(str, galleries))}); use one")
        self.sites = {s.site: s for s in sites}
        self.gallery = str(galleries.pop())
        self.broker: BrokerConfig = sites[0].service.broker
        self.name = name
        self.stop = stop or threading.Event()
        self.metrics = ServiceMetrics(metrics_port, consumer=name)
        self.owned: dict[str, _Site] = {}
        self.store: GalleryStore | None = None
        self.duplicates = 0
        self.dead_letters = 0
        self._completed: dict[str, _Site] = {}
        # (frame, spooled at the edge, committed here; Unix s) of the last million camera messages
        self.latencies: collections.deque[tuple[int, float, float]] = collections.deque(maxlen=1_000_000)
        self._rounds = 0  # lease rounds run; the first only announces this consumer

    # ---- the loop ---------------------------------------------------------------------------------------------
    def run(self, *, until_done: bool = False) -> LinkerSummary:
        """Serve until `stop` (or, with `until_done`, until every site's cameras have ended and all is applied)."""
        client = connect(self.broker, name=f"trackid-central-{self.name}")
        backoff = Backoff(self.broker)
        lost_at: float | None = None
        next_leases = 0.0
        try:
            while not self.stop.is_set():
                try:
                    if lost_at is not None:
                        client.ping()
                        log.warning("broker %s is back after %.1f s", self.broker.masked_url(), time.time() - lost_at)
                        lost_at = None
                        backoff.reset()
                        self.metrics["reconnects"].inc()
                        self._after_reconnect(client)
                    self.metrics["broker_up"].set(1)
                    if time.monotonic() >= next_leases:
                        self._manage_leases(client)
                        if until_done and self._others_done():
                            break
                        next_leases = time.monotonic() + self.sites[next(iter(self.sites))].service.lease_ttl_s / 3
                    self._read(client)
                    for site in list(self.owned.values()):
                        self._apply_and_commit(client, site)
                    if until_done and len(self._completed) == len(self.sites):
                        break
                except redis.AuthenticationError as error:
                    lost_at = lost_at or time.time()
                    log.error(
                        "broker %s refused the credentials (user %s, password from %s): %s; retrying every %.0f s",
                        self.broker.masked_url(),
                        self.broker.username or "default",
                        self.broker.password_file or f"${self.broker.password_env}",
                        error,
                        self.broker.backoff_max_s,
                    )
                    self.metrics["broker_up"].set(0)
                    self.stop.wait(self.broker.backoff_max_s)
                except (redis.ConnectionError, redis.TimeoutError) as error:
                    if lost_at is None:
                        lost_at = time.time()
                        log.warning("broker %s lost (%s); retrying", self.broker.masked_url(), error)
                    self.metrics["broker_up"].set(0)
                    self.stop.wait(backoff.next())
        finally:
            for site in list(self.owned.values()):
                self._release(site)
            if self.store is not None:
                self.store.close()
        every = {**self._completed, **self.owned}
        return LinkerSummary(
            {k: s.state.messages for k, s in every.items()},
            self.duplicates,
            self.dead_letters,
            {k: s.state.late for k, s in every.items()},
            {k: s.identities_made for k, s in every.items()},
        )

    # ---- ownership --------------------------------------------------------------------------------------------
    def _manage_leases(self, client: redis.Redis) -> None:
        ttl = self.sites[next(iter(self.sites))].service.lease_ttl_s
        now = time.time()
        heartbeat = f"{self.broker.prefix}:consumers"
        client.zadd(heartbeat, {self.name: now})
        client.zremrangebyscore(heartbeat, 0, now - ttl)
        share = math.ceil(len(self.sites) / max(1, int(client.zcard(heartbeat))))
        for site in list(self.owned.values()):
            try:
                site.lease.reacquire()
            except redis.exceptions.LockError:
                log.warning("site %s: lease lost to another linker; letting it go", site.config.site)
                self.owned.pop(site.config.site)
        while len(self.owned) > share:  # a consumer joined: hand a site over (its state is committed)
            surplus = self.owned[sorted(self.owned)[-1]]
            log.info("site %s: handed over (%d consumers share %d sites)", surplus.config.site, share, len(self.sites))
            self._release(surplus)
        self._rounds += 1
        if self._rounds == 1:  # first round: let the others' heartbeats arrive before taking a share
            return
        for name, config in self.sites.items():
            if name in self.owned or name in self._completed or len(self.owned) >= share:
                continue
            if self._open_store() is None:
                return
            lease = Lock(client, lease_key(self.broker, name), timeout=ttl, thread_local=False)
            if lease.acquire(blocking=False):
                self._take(client, config, lease)
        self.metrics["sites_owned"].set(len(self.owned))

    def _others_done(self) -> bool:
        """With `until_done`: whether the sites other linkers serve are finished too, by the state their owners
        committed (every camera ended); the sites served here count by their own end messages."""
        if self.store is None or self._rounds < 2:
            return False
        for name, config in self.sites.items():
            if name in self._completed:
                continue
            if name in self.owned:
                return False
            _, blob = self.store.linker_state(ledger_name(name))
            if blob is None or not {c.id for c in config.cameras} <= pickle.loads(blob).ended:
                return False
        return True

    def _open_store(self) -> GalleryStore | None:
        if self.store is None:
            try:
                self.store = make_store(self.gallery)
            except StoreLockedError:
                log.info("gallery %s is open in another linker: standing by", self.gallery)
                return None
        return self.store

    def _take(self, client: redis.Redis, config: SiteConfig, lease: Lock) -> None:
        assert self.store is not None
        name = config.site
        _ensure_group(client, stream_key(self.broker, name))
        version, blob = self.store.linker_state(ledger_name(name))
        state = pickle.loads(blob) if blob is not None else _fresh_state(config)
        site = _Site(config, state, version, lease)
        self.owned[name] = site
        log.info(
            "site %s: taken over at frame %d (state version %d, %d messages applied before)",
            name,
            state.frame,
            version,
            state.messages,
        )
        self._claim_pending(client, site)

    def _claim_pending(self, client: redis.Redis, site: _Site) -> None:
        """Every entry of the site's stream read by some consumer and never acknowledged becomes ours: we hold the
        lease, so its earlier reader is gone (or fenced by the state version)."""
        stream = stream_key(self.broker, site.config.site)
        cursor: Any = "0-0"
        while True:
            cursor, entries, *_ = client.xautoclaim(
                stream, GROUP, self.name, min_idle_time=0, start_id=cursor, count=1000
            )
            self._take_entries(client, site, entries)
            if cursor in (b"0-0", "0-0"):
                break

    def _after_reconnect(self, client: redis.Redis) -> None:
        """The broker may have restarted: recreate the group if it is gone, and read what we hold pending again."""
        for site in list(self.owned.values()):
            _ensure_group(client, stream_key(self.broker, site.config.site))
            site.heard = dict.fromkeys(site.cameras, time.monotonic())
            self._claim_pending(client, site)

    def _release(self, site: _Site) -> None:
        # expired, or the broker is gone: the lease lapses by itself
        with contextlib.suppress(redis.exceptions.LockError, redis.ConnectionError, redis.TimeoutError):
            site.lease.release()
        self.owned.pop(site.config.site, None)

    # ---- reading ----------------------------------------------------------------------------------------------
    def _read(self, client: redis.Redis) -> None:
        if not self.owned:
            self.stop.wait(0.2)
            return
        streams = {stream_key(self.broker, name): ">" for name in self.owned}
        try:
            replies: Any = client.xreadgroup(GROUP, self.name, streams, count=READ_COUNT, block=100)  # type: ignore[arg-type]
        except redis.ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
            for name in self.owned:
                _ensure_group(client, stream_key(self.broker, name))
            return
        by_stream = {stream_key(self.broker, name): site for name, site in self.owned.items()}
        for stream, entries in replies or []:
            key = stream.decode() if isinstance(stream, bytes) else stream
            self._take_entries(client, by_stream[key], entries)

    def _take_entries(self, client: redis.Redis, site: _Site, entries: Sequence[Any]) -> None:
        stream = stream_key(self.broker, site.config.site)
        done: list[bytes] = []
        for entry_id, fields in entries:
            if fields is None:  # claimed but trimmed away meanwhile
                done.append(entry_id)
                continue
            try:
                message = decode(fields)
                if message.site != site.config.site or message.camera not in site.buffer:
                    raise MessageError(
                        f"camera {message.camera!r} of site {message.site!r} is not a camera of site "
                        f"{site.config.site!r} (cameras: {', '.join(site.cameras)})"
                    )
            except MessageError as error:
                self._dead_letter(client, site, entry_id, fields, str(error))
                done.append(entry_id)
                continue
            self._heard(site, message.camera)
            if message.seq <= site.state.applied.get(message.camera, 0) or message.seq in site.buffer[message.camera]:
                # applied already, or read already (an edge's resend, a broker that lost an acknowledgement)
                self.duplicates += 1
                self.metrics["duplicates"].inc()
                done.append(entry_id)
                continue
            site.buffer[message.camera][message.seq] = (entry_id, message)
        if done:
            client.xack(stream, GROUP, *done)
        self.metrics["lag"].set(sum(len(b) for s in self.owned.values() for b in s.buffer.values()))

    def _heard(self, site: _Site, camera: str) -> None:
        """A camera is silent when the others send and it does not; when the whole site was quiet (every camera
        starting, a network cut), the first one to speak again must not make the rest late: each gets its wait anew."""
        now = time.monotonic()
        quiet = now - max(site.heard.values())
        if quiet >= site.config.service.camera_timeout_s:
            log.info(
                "site %s: sending again after %.0f s of quiet; waiting for each camera anew", site.config.site, quiet
            )
            site.heard = dict.fromkeys(site.cameras, now)
            site.silent.clear()
        site.heard[camera] = now

    def _dead_letter(self, client: redis.Redis, site: _Site, entry_id: bytes, fields: dict[Any, Any], why: str) -> None:
        self.dead_letters += 1
        self.metrics["dead_letters"].inc()
        raw = {(k.decode() if isinstance(k, bytes) else str(k)): v for k, v in fields.items()}
        letter = {**{f"field.{k}": v for k, v in raw.items()}, "reason": why, "entry": entry_id}
        client.xadd(dead_key(self.broker, site.config.site), letter)  # type: ignore[arg-type]
        log.warning("site %s: entry %s moved to the dead-letter stream: %s", site.config.site, _text(entry_id), why)

    # ---- applying ---------------------------------------------------------------------------------------------
    def _apply_and_commit(self, client: redis.Redis, site: _Site) -> None:
        assert self.store is not None
        state, config = site.state, site.config
        fps = config.fps
        start = config.identities.start_time_s if config.identities else 0.0
        rows: list[np.ndarray] = []
        consumed: list[bytes] = []
        spooled: list[tuple[int, float]] = []  # (frame, spooled at)
        while True:
            heads = self._heads(site)
            if heads is None:
                break
            if not heads:
                break
            # gaps, ends and late messages are consumed on their own
            special = [(c, m) for c, (_, m) in heads.items() if m.kind != "frame" or m.frame <= state.frame]
            if special:
                for camera, message in special:
                    entry_id, _ = site.buffer[camera].pop(message.seq)
                    consumed.append(entry_id)
                    state.applied[camera] = message.seq
                    state.messages += 1
                    if message.kind == "end":
                        state.ended.add(camera)
                    elif message.kind == "gap":
                        log.warning(
                            "site %s camera %s: messages %d-%d were dropped by its spool",
                            config.site,
                            camera,
                            message.first,
                            message.seq,
                            extra={"camera_id": camera},
                        )
                    else:
                        state.late += 1
                        self.metrics["late"].inc()
                continue
            frame = min(m.frame for _, m in heads.values())
            seen = []
            for v, camera in enumerate(site.cameras):
                head = heads.get(camera)
                if head is None or head[1].frame != frame:
                    seen.append(_NOTHING if config.world.view_tracklets else _NOTHING_UNLINKED)
                    continue
                entry_id, message = site.buffer[camera].pop(head[1].seq)
                consumed.append(entry_id)
                spooled.append((message.frame, message.spooled))
                state.applied[camera] = message.seq
                state.messages += 1
                b = message.boxes
                tracks = None
                if config.world.view_tracklets:
                    ids = b[:, 5].astype(np.int64)
                    tracks = np.where(ids >= 0, (v << 32) + ids, -1)
                seen.append(ViewFrame(b[:, :4], b[:, 4], tracks))
            state.frame = frame
            if sum(len(s.score) for s in seen):
                step = state.stepper.step(frame, seen)
                if len(step.ground):
                    owners = state.identities.observe(
                        start + frame / fps, step.ground[:, 1].astype(np.int64), step.ground[:, 2:]
                    )
                    rows.append(
                        np.column_stack(
                            [
                                step.ground[:, :2],
                                owners,
                                np.full(len(owners), start + frame / fps),
                                step.ground[:, 2:],
                            ]
                        )
                    )
        if not consumed:
            self._maybe_complete(site)
            return
        table = np.concatenate(rows) if rows else np.empty((0, 6))
        try:
            with self.store.transaction():
                mapping = state.identities.create_pending(self.store)
                links = state.identities.take_links(mapping)
                if mapping and len(table):
                    table[:, 2] = [mapping.get(int(i), int(i)) for i in table[:, 2]]
                self.store.add_global_positions(config.site, table)
                self.store.save_stream_offsets(ledger_name(config.site), state.applied)
                site.version = self.store.save_linker_state(
                    ledger_name(config.site), pickle.dumps(state), version=site.version
                )
        except StaleLedgerError as error:
            log.warning("site %s: %s; letting it go", config.site, error)
            self._release(site)
            return
        site.identities_made += len(mapping)
        for track, identity, continued in links:
            log.info(
                "site %s: global track %d -> identity %d (%s)",
                config.site,
                track,
                identity,
                "continued: seen within the window" if continued else "new",
                extra={"track_id": track, "identity_id": identity},
            )
        client.xack(stream_key(self.broker, config.site), GROUP, *consumed)
        now = time.time()
        for frame, t in spooled:
            self.metrics["latency"].observe(max(0.0, now - t))
            self.latencies.append((frame, t, now))
        self.metrics["applied"].inc(len(consumed))
        self._maybe_complete(site)

    def _heads(self, site: _Site) -> dict[str, tuple[bytes, CameraMessage]] | None:
        """Each live camera's next message, or None while a camera that is still sending has not sent it."""
        heads = {}
        now = time.monotonic()
        timeout = site.config.service.camera_timeout_s
        for camera in site.cameras:
            buffered = site.buffer[camera]
            nxt = site.state.applied.get(camera, 0) + 1
            if camera in site.state.ended:
                if nxt not in buffered:
                    continue
                site.state.ended.discard(camera)  # a later segment: the camera is back
                log.info(
                    "site %s camera %s: sends again after its end",
                    site.config.site,
                    camera,
                    extra={"camera_id": camera},
                )
            if nxt in buffered:
                heads[camera] = buffered[nxt]
                if camera in site.silent:
                    site.silent.discard(camera)
                    log.warning("site %s camera %s: heard again", site.config.site, camera, extra={"camera_id": camera})
                continue
            if now - site.heard[camera] < timeout:
                return None  # wait for it
            if buffered:  # later numbers are here, the next one never came: give the hole up
                skip_to = min(buffered)
                log.error(
                    "site %s camera %s: messages %d-%d never arrived; going on without them",
                    site.config.site,
                    camera,
                    nxt,
                    skip_to - 1,
                    extra={"camera_id": camera},
                )
                site.state.applied[camera] = skip_to - 1
                heads[camera] = buffered[skip_to]
                continue
            if camera not in site.silent:
                site.silent.add(camera)
                log.warning(
                    "site %s camera %s: silent for %.0f s; going on without it",
                    site.config.site,
                    camera,
                    timeout,
                    extra={"camera_id": camera},
                )
        return heads

    def _maybe_complete(self, site: _Site) -> None:
        if site.done() and site.config.site not in self._completed:
            log.info("site %s: every camera ended; %d messages applied", site.config.site, site.state.messages)
            self._completed[site.config.site] = site


def _fresh_state(config: SiteConfig) -> SiteState:
    ids = config.identities
    assert ids is not None
    stepper = SiteStepper([ground_camera(c) for c in config.cameras], **config.tracking_options())
    identities = LiveIdentities(
        config.site, window_s=ids.window_s, max_speed_mps=ids.max_speed_mps, unit_per_metre=config.unit_per_metre
    )
    return SiteState(stepper, identities)


def _ensure_group(client: redis.Redis, stream: str) -> None:
    try:
        client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    except redis.ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


_NOTHING = ViewFrame(np.empty((0, 4)), np.empty(0), np.empty(0, np.int64))
_NOTHING_UNLINKED = ViewFrame(np.empty((0, 4)), np.empty(0), None)
