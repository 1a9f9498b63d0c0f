"""The per-camera rules of `photos ingest`: camera adaptation for cameras `tune` never saw, and the drift watch.

**Adaptation** (`trackid.embed.adaptation`). A camera with no tuned mean is not matched uncentred (that merged 895
of 900 sightings into someone else's profile). Its bursts are *held back*: embedded, counted into its camera mean,
not decided. When `adaptation_warmup` crops are counted the mean is frozen (and stored) and the held bursts are
decided in their order, centred by it, then every later burst as it comes. Holding back rather than deciding early
under a stricter threshold is the choice because nothing decided before the mean is fixed could be centred by it:
a match made on uncentred vectors is a wrong merge that no later mean undoes, and a vector stored uncentred would
sit in another space than the camera's later ones.
What is still held when the ingest ends is stored as **new identities, never auto-merged**, with its uncentred
vector under the embedder's own model version (the space such vectors are in: no centred vector is compared with
it) and flagged `awaiting adaptation` in its source and the report; the camera's running sums are stored with it.
When a later ingest completes the camera's warm-up, those sightings get their centred vector (`add_sighting_vectors`)
and become candidates like any other, so a camera with a few photos per ingest still adapts.

**Drift watch** (`trackid.identity.drift`). Every decided camera's best-match similarities are compared with tune's
replayed ingest; on a shift ingest warns (log with `camera_id`, console, report) and, with `drift_action: stop`,
stops auto-matching the camera: its sightings become new identities, flagged, until re-tuned (a new `tuned.json` is
a new model version, whose watch starts afresh). A held camera's bursts are watched too, uncentred, as they would
have been decided without adaptation (against the gallery and the held bursts before them): that is how it is
flagged before its warm-up ends; its watch restarts when it is adapted, since its space changes then.

Determinism, so that a re-run after a crash ends in the store of an uninterrupted run: the store's state changes
only in transactions that also hold the sightings they came from (a burst with its drift state; a frozen mean on
its own, which fixes it for the re-run; held bursts with the running sums), and held bursts are decided in their
order, so a re-run re-counts exactly what was not committed.
"""

from __future__ import annotations

import logging
import time as clock
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from trackid.config import PhotosConfig
from trackid.embed import Embedder
from trackid.embed.adaptation import CameraAdaptation
from trackid.embed.ensemble import EnsembleEmbedder
from trackid.identity.drift import DriftCheck, DriftWatch, drift_watch
from trackid.identity.gallery import Gallery
from trackid.identity.stores import GalleryStore, SimilarityRecord
from trackid.pipelines.photos.bursts import pool_embedding
from trackid.pipelines.photos.tuned import Tuned
from trackid.sources.photos import Photo
from trackid.types import Tracklet

__all__ = ["AWAITING", "DRIFT_STOPPED", "CameraRules", "HeldBurst"]

AWAITING = "new: awaiting adaptation"
"""`camera_rule.matching` of a sighting stored unmatched because its camera's warm-up was not over."""
DRIFT_STOPPED = "new: drift stopped auto-matching"
"""`camera_rule.matching` of a sighting stored unmatched because its camera drifted (`drift_action: stop`)."""
Mode = Literal["match", "stopped", "awaiting"]
_LEAST_SCORES = 20
"""A held camera's uncentred scores are tested when its warm-up ends if at least this many came since the last test."""
log = logging.getLogger(__name__)


@dataclass
class HeldBurst:
    """One burst's individuals, embedded (each tracklet's crops' raw vectors), waiting for a decision."""

    photos: list[Photo]
    tracklets: list[Tracklet]
    vectors: list[NDArray[np.float32]]
    attributes: dict[str, Any]
    held: bool = False

    @property
    def camera(self) -> str:
        return self.photos[0].camera


@dataclass
class Decided:
    """What `CameraRules.decide` did with a burst: one decision and one sighting source per tracklet."""

    decisions: list[str]
    sightings: int


@dataclass
class CameraReport:
    """The ingest report's view of the cameras (`ingest_report.json` → `cameras`)."""

    states: dict[str, str] = field(default_factory=dict)
    adapted_now: dict[str, int] = field(default_factory=dict)
    """Cameras whose warm-up ended in this ingest -> bursts held back until then."""
    awaiting: dict[str, int] = field(default_factory=dict)
    """Cameras still warming at the end -> sightings stored unmatched."""
    drifted: dict[str, dict[str, Any]] = field(default_factory=dict)
    flagged_before_adaptation: dict[str, dict[str, Any]] = field(default_factory=dict)
    stopped_sightings: dict[str, int] = field(default_factory=dict)
    promoted: dict[str, int] = field(default_factory=dict)
    """Sightings of earlier ingests' warm-ups that got their centred vector in this one."""

    def to_json(self, adaptation: CameraAdaptation | None) -> dict[str, Any]:
        counts = {} if adaptation is None else adaptation.counts_
        return {
            "adapted": sorted(c for c, s in self.states.items() if s == "adapted"),
            "unadapted": sorted(c for c, s in self.states.items() if s in ("warming", "uncentred")),
            "drifted": sorted(self.drifted),
            "states": dict(sorted(self.states.items())),
            "warmup_counts": {c: counts[c] for c in sorted(counts)},
            "adapted_in_this_ingest": self.adapted_now,
            "awaiting_adaptation": self.awaiting,
            "drift": self.drifted,
            "flagged_before_adaptation": self.flagged_before_adaptation,
            "stopped_sightings": self.stopped_sightings,
            "promoted_sightings": self.promoted,
        }


class CameraRules:
    """Routes each burst by its camera's state and decides it (see the module docstring).

    `route(burst)` returns the bursts to decide now, in order (none while the camera warms up, all its held ones
    when the warm-up ends); `decide(burst, ...)` writes one; `finish(...)` stores what is still held.
    """

    def __init__(
        self, store: GalleryStore, gallery: Gallery, tuned: Tuned, embedder: Embedder, config: PhotosConfig
    ) -> None:
        self.store, self.gallery, self.tuned, self.embedder, self.config = store, gallery, tuned, embedder, config
        self.model_id, self.model_version = gallery.model_id, gallery.model_version
        self.raw_version = embedder.version
        self.report = CameraReport()
        self.warnings: list[str] = []
        self.adaptation: CameraAdaptation | None = None
        if tuned.centring is not None and config.adaptation_warmup > 0:
            dims, weights = _layout(embedder)
            self.adaptation = CameraAdaptation(config.adaptation_warmup, tuned.centring, dims, weights)
        self.watches: dict[str, DriftWatch] = {}
        self.shadow: dict[str, DriftWatch] = {}
        self.held: dict[str, list[HeldBurst]] = {}
        self._held_raw: list[NDArray[np.float32]] = []
        for camera, stats in store.camera_stats(model_id=self.model_id, model_version=self.model_version).items():
            if stats.adaptation is not None and self.adaptation is not None:
                a = stats.adaptation
                self.adaptation.load(camera, a["count"], a["total"], frozen=a["frozen"])
            if stats.drift is not None and self._decided_reference is not None:
                self.watches[camera] = drift_watch(self._decided_reference, config.drift_min_scores, stats.drift)

    def state(self, camera: str) -> str:
        if self.adaptation is not None:
            state = self.adaptation.state(camera)
            return "warming" if state == "unseen" else state
        known = self.tuned.centring is not None and camera in self.tuned.centring.means_
        return "tuned" if known else "uncentred"

    def route(self, burst: HeldBurst) -> list[tuple[HeldBurst, Mode]]:
        """The bursts to decide now, with how: held bursts come back, in order, when their camera's warm-up ends."""
        camera = burst.camera
        self.report.states[camera] = self.state(camera)
        if self.state(camera) != "warming" or self.adaptation is None:
            return [(burst, self._mode(camera))]
        if burst.vectors:
            self.adaptation.partial_fit(np.concatenate(burst.vectors), [camera] * sum(len(v) for v in burst.vectors))
            self._watch_held(burst)
        burst.held = True
        self.held.setdefault(camera, []).append(burst)
        if not self.adaptation.ready(camera):
            return []
        self._freeze(camera)
        waiting = self.held.pop(camera)
        self.report.adapted_now[camera] = len(waiting)
        return [(b, self._mode(camera)) for b in waiting]

    def decide(
        self,
        burst: HeldBurst,
        mode: Mode,
        *,
        site: str,
        sources: Sequence[dict[str, Any]],
        keys: Sequence[str],
        quality: Sequence[float],
    ) -> Decided:
        """Write one burst: matched by the gallery (its drift state in the same transaction) or stored as new."""
        camera = burst.camera
        state = self.state(camera)
        raw = mode == "awaiting"
        crops = np.concatenate(burst.vectors)
        centred = crops if raw else self._centre(crops, camera)
        bounds = np.cumsum([len(v) for v in burst.vectors])[:-1]
        parts = np.split(centred, bounds)
        pooled = np.stack([pool_embedding(t, v) for t, v in zip(burst.tracklets, parts, strict=True)])
        matching = {"match": "auto", "stopped": DRIFT_STOPPED, "awaiting": AWAITING}[mode]
        rule = {"state": state, "held": burst.held, "matching": matching}
        tagged = [{**s, "camera_rule": rule} for s in sources]
        time = burst.photos[0].time
        with self.store.transaction():
            if mode != "match":
                version = self.raw_version if raw else self.model_version
                decisions = self._store_new(
                    pooled,
                    version,
                    burst.attributes,
                    tagged,
                    keys,
                    time=time,
                    quality=quality,
                    site=site,
                    camera=camera,
                )
                if mode == "stopped":
                    self.report.stopped_sightings[camera] = self.report.stopped_sightings.get(camera, 0) + len(keys)
                return Decided(decisions, len(decisions))
            decided = self.gallery.identify_vectors(
                pooled,
                time=time,
                quality=quality,
                site=site,
                camera=camera,
                attributes=burst.attributes or None,
                sources=tagged,
                source_keys=list(keys),
            )
            self._watch_decided(
                camera, [r.match.probability if self._watch_probability else r.match.similarity for r in decided]
            )
        return Decided([r.match.decision for r in decided], len(decided))

    def finish(self) -> list[HeldBurst]:
        """The bursts still held (decide each with mode "awaiting" inside `finishing`), in order."""
        left = [b for bursts in self.held.values() for b in bursts]
        for camera, bursts in self.held.items():
            self.report.awaiting[camera] = sum(len(b.tracklets) for b in bursts)
            message = (
                f"camera {camera!r}: its warm-up is not over ({self._count(camera)} of {self.config.adaptation_warmup} "
                f"crops), so its {self.report.awaiting[camera]} sightings are stored as new, unmatched identities "
                "(flagged 'awaiting adaptation'); a later ingest with more of its photos adapts it and makes them "
                "matchable (or lower photos.adaptation_warmup, or tune with its photos)"
            )
            self._warn(message, camera)
        return sorted(left, key=lambda b: (b.photos[0].time, b.camera, str(b.photos[0].path)))

    def save_warming(self) -> None:
        """Store the running sums of the cameras still warming (call in the transaction holding their bursts)."""
        assert self.adaptation is not None or not self.held
        for camera in self.held:
            self._save(camera, adaptation=self.adaptation.statistics(camera) if self.adaptation else None)
        self.held.clear()

    def _mode(self, camera: str) -> Mode:
        watch = self.watches.get(camera)
        return "stopped" if watch is not None and watch.drifted and self.config.drift_action == "stop" else "match"

    def _centre(self, vectors: NDArray[np.float32], camera: str) -> NDArray[np.float32]:
        if self.adaptation is None:
            return self.tuned.adjust(self.embedder, vectors, [camera] * len(vectors))
        return self.adaptation.transform(vectors, [camera] * len(vectors))

    def _count(self, camera: str) -> int:
        return 0 if self.adaptation is None else self.adaptation.counts_.get(camera, 0)

    def _freeze(self, camera: str) -> None:
        """Fix the camera's mean and store it (its own transaction: the re-run after a crash reuses it), then give
        the sightings earlier ingests stored awaiting it their centred vectors."""
        assert self.adaptation is not None
        self.adaptation.freeze(camera)
        with self.store.transaction():
            self._save(camera, adaptation=self.adaptation.statistics(camera))
            promoted = self._promote(camera)
        if promoted:
            self.report.promoted[camera] = promoted
        self.report.states[camera] = "adapted"
        shadow = self.shadow.pop(camera, None)  # the camera's space changes: its decided scores start a new watch
        if shadow is not None and not shadow.drifted and shadow.seen % shadow.min_scores >= _LEAST_SCORES:
            self._flag_held(camera, shadow.check())
        log.info(
            "camera %r adapted: its mean is fixed from %d crops",
            camera,
            self._count(camera),
            extra={"camera_id": camera},
        )

    def _promote(self, camera: str) -> int:
        if not self._registered(self.raw_version):
            return 0
        waiting: list[int] = []
        after = 0
        while page := self.store.sightings_without_model(self.model_id, self.model_version, after=after):
            rule = [(s.source or {}).get("camera_rule") or {} for s in page]
            waiting += [
                s.id for s, r in zip(page, rule, strict=True) if s.camera == camera and r.get("matching") == AWAITING
            ]
            after = page[-1].id
        raw = self.store.vectors_of(waiting, model_id=self.model_id, model_version=self.raw_version)
        ids = [i for i in waiting if i in raw]
        if not ids:
            return 0
        centred = self._centre(np.stack([raw[i] for i in ids]), camera)
        return self.store.add_sighting_vectors(ids, centred, model_id=self.model_id, model_version=self.model_version)

    @property
    def _watch_probability(self) -> bool:
        """Decided cameras are watched on their decision probabilities where tune recorded them."""
        return self.tuned.decision_reference is not None

    @property
    def _decided_reference(self) -> Any:
        return self.tuned.decision_reference if self._watch_probability else self.tuned.drift_reference

    def _watch_decided(self, camera: str, similarities: Sequence[float]) -> None:
        if self._decided_reference is None:
            return
        similarities = [s for s in similarities if np.isfinite(s)]  # a first sighting has no candidate to score
        watch = self.watches.get(camera)
        if watch is None:
            watch = self.watches[camera] = drift_watch(self._decided_reference, self.config.drift_min_scores)
        was = watch.drifted
        check = watch.update(similarities)
        self._save(camera, drift=watch.to_json())
        if check is not None and check.drifted and not was:
            self.report.drifted[camera] = check.to_json()
            action = (
                "auto-matching of its photos stops until `photos tune` runs again with its photos (its sightings "
                "become new identities, flagged)"
                if self.config.drift_action == "stop"
                else "its photos are still matched (photos.drift_action: warn)"
            )
            self._warn(f"camera {camera!r}: {_shift(check)}; {action}", camera)

    def _watch_held(self, burst: HeldBurst) -> None:
        """What the burst's best matches would be uncentred, as without adaptation: against the gallery and the
        held bursts before it. Watched, never decided on."""
        if self.tuned.drift_reference is None:
            return
        raw = np.stack([pool_embedding(t, v) for t, v in zip(burst.tracklets, burst.vectors, strict=True)])
        best = np.full(len(raw), np.nan)
        if self._held_raw:
            best = np.max(raw @ np.stack(self._held_raw).T, axis=1)
        if self._registered(self.model_version):
            hits = self.store.search(raw, model_id=self.model_id, model_version=self.model_version, k=1)
            found = np.array([h[0].similarity if h else np.nan for h in hits])
            best = np.fmax(best, found)
        self._held_raw += list(raw)
        camera = burst.camera
        watch = self.shadow.setdefault(camera, drift_watch(self.tuned.drift_reference, self.config.drift_min_scores))
        was = watch.drifted
        check = watch.update(best)
        if check is not None and not was:
            self._flag_held(camera, check)

    def _flag_held(self, camera: str, check: DriftCheck) -> None:
        if check.drifted:
            self.report.flagged_before_adaptation[camera] = {**check.to_json(), "warmup_count": self._count(camera)}
            self._warn(
                f"camera {camera!r} (not seen by `photos tune`): uncentred, {_shift(check)}; its photos are held back "
                f"until its camera mean is learnt ({self._count(camera)} of {self.config.adaptation_warmup} crops)",
                camera,
            )

    def _store_new(
        self,
        vectors: NDArray[np.float32],
        version: str,
        attributes: Mapping[str, Any],
        sources: Sequence[Mapping[str, Any]],
        keys: Sequence[str],
        *,
        time: float,
        quality: Sequence[float],
        site: str,
        camera: str,
    ) -> list[str]:
        """Each vector as a sighting of a new identity, logged as a "new" decision with no candidate compared."""
        n = len(vectors)
        if not self._registered(version):
            self.store.register_model(self.model_id, version, vectors.shape[1])
        owners = self.store.create_identities(n, site=site, attributes=attributes or None)
        sightings = self.store.add_sightings(
            vectors,
            model_id=self.model_id,
            model_version=version,
            times=[time] * n,
            qualities=quality,
            site=site,
            cameras=[camera] * n,
            identity_ids=list(owners),
            sources=list(sources),
            source_keys=list(keys),
        )
        now = clock.time()
        self.store.log_similarities(
            [
                SimilarityRecord(s, None, -1.0, None, self.gallery.threshold, "new", self.model_id, version, now)
                for s in sightings
            ]
        )
        return ["new"] * n

    def _registered(self, version: str) -> bool:
        return any(m.model_id == self.model_id and m.model_version == version for m in self.store.models())

    def _save(self, camera: str, **parts: Mapping[str, Any] | None) -> None:
        self.store.save_camera_stats(model_id=self.model_id, model_version=self.model_version, camera=camera, **parts)

    def _warn(self, message: str, camera: str) -> None:
        self.warnings.append(message)
        log.warning(message, extra={"camera_id": camera})


def _shift(check: DriftCheck) -> str:
    return (
        f"its best-match similarities left the tuned distribution (median {check.live_median:.3f} against "
        f"{check.reference_median:.3f}; KS statistic {check.statistic:.2f}, p = {check.pvalue:.1e}, after "
        f"{check.scores_seen} scores)"
    )


def _layout(embedder: Embedder) -> tuple[list[int], list[float]]:
    if isinstance(embedder, EnsembleEmbedder):
        return list(embedder.dims), [float(w) for w in embedder.weights]
    return [embedder.dim], [1.0]
