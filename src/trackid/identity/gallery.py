"""The gallery as its users see it: *is this an individual we saw before, and how sure are we?*

`Gallery` ties the pieces together for one embedding model: search the store's top-k identities, turn similarities
into calibrated probabilities, decide the whole batch jointly (a query takes an identity or becomes a new one; no
identity is taken twice), remember every sighting, and log every comparison that led to a decision. Decisions are
driven by a risk policy (a probability threshold chosen for a target false-match rate), never by a raw similarity.
"""

from __future__ import annotations

import time as clock
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from trackid.identity.calibration import MatchCalibrator
from trackid.identity.matching import Match, match_queries
from trackid.identity.settings import LogRetention
from trackid.identity.stores import GalleryStore, SimilarityRecord
from trackid.types import Tracklet

__all__ = ["Gallery", "Recognition"]


@dataclass(frozen=True, slots=True)
class Recognition:
    """What happened to one query: the decision with its evidence, the sighting stored, and its identity."""

    match: Match
    sighting_id: int
    identity_id: int | None


class Gallery:
    """Recognise and remember individuals seen by one embedding model.

    Args:
        store: where identities, sightings and the similarity log live (SQLite or PostgreSQL).
        model_id, model_version: the embedder whose vectors this gallery compares; other models' vectors in the
            same store are never compared with these.
        calibrator: fitted `MatchCalibrator` mapping similarity (and quality) to P(same individual).
        threshold: minimum probability to accept a match, from a risk policy (e.g. the calibrator's
            `threshold_for_false_match_rate(0.01)`). Lower accepts more matches and more false ones.
        k: candidates per query. More lets the joint assignment resolve competing queries, at search cost.
        competitor_weight: a candidate's similarity is calibrated less this times the best similarity of any
            other identity among the query's candidates (`trackid.identity.matching.competitor_scores`); 0 (the
            default) calibrates the similarity alone. `photos tune` picks it and calibrates for it.
        create_new: a query below the threshold starts a new identity (True) or stays unassigned for review or a
            later `reprocess_unassigned` (False).
        log_retention: how long the similarity log keeps records; this gallery prunes it every
            `log_retention.prune_every` logged decisions. None never prunes.
    """

    def __init__(
        self,
        store: GalleryStore,
        *,
        model_id: str,
        model_version: str,
        calibrator: MatchCalibrator,
        threshold: float,
        k: int = 5,
        competitor_weight: float = 0.0,
        create_new: bool = True,
        log_retention: LogRetention | None = None,
    ) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be a probability in (0, 1], got {threshold}")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.store = store
        self.model_id, self.model_version = model_id, model_version
        self.calibrator = calibrator
        self.threshold = float(threshold)
        self.k = k
        if not 0.0 <= competitor_weight <= 1.0:
            raise ValueError(f"competitor_weight must be in [0, 1], got {competitor_weight}")
        self.competitor_weight = float(competitor_weight)
        self.create_new = create_new
        self.log_retention = log_retention
        self._logged_since_prune = 0

    def identify(
        self,
        tracklets: Sequence[Tracklet],
        *,
        since: float | None = None,
        site: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> list[Recognition]:
        """Decide a batch of tracklets (e.g. those a camera finished), store each as one sighting, log the decisions.

        A tracklet's pooled embedding is the query, its best crop quality the sighting's quality, its first time the
        sighting's time; `source` and a `source_key` (source, camera, track, first frame) come from it, so running
        the same video twice never stores a tracklet twice. Needs an embedding and a time on every tracklet.
        Filters and the transaction are as for `identify_vectors`.
        """
        if not tracklets:
            return []
        queries = [_tracklet_query(t) for t in tracklets]
        dims = {len(q[0]) for q in queries}
        if len(dims) > 1:
            raise ValueError(f"tracklets' embeddings differ in dimension: {sorted(dims)}")
        return self._identify(
            np.stack([q[0] for q in queries]),
            np.array([q[1] for q in queries]),
            [q[2] for q in queries],
            [q[3] for q in queries],
            [q[4] for q in queries],
            [q[5] for q in queries],
            since=since,
            site=site,
            attributes=attributes,
        )

    def identify_vectors(
        self,
        vectors: ArrayLike,
        *,
        time: float,
        quality: ArrayLike | None = None,
        site: str | None = None,
        camera: str | None = None,
        since: float | None = None,
        attributes: Mapping[str, Any] | None = None,
        sources: Sequence[Mapping[str, Any] | None] | None = None,
        source_keys: Sequence[str | None] | None = None,
    ) -> list[Recognition]:
        """Decide a batch of query vectors seen together, store them as sightings, log the comparisons.

        `since` limits candidates to identities seen after that time; `site` and `attributes` gate candidates too,
        and a new identity takes `site` and `attributes`. `sources` (one per query, e.g. `{"image": path, "box":
        [x1, y1, x2, y2]}`) let `reembed` revisit the pixels; `source_keys` make the batch idempotent (see
        `GalleryStore.add_sighting`).

        Batched end to end: all queries are searched in one index call and filtered by one SQL query, the new
        identities and sightings are inserted in bulk with one prototype fold per identity, and the whole batch
        (identities, sightings, log) is one transaction. Queries of one batch are decided jointly: no identity is
        taken twice, and two queries that both start new identities do not match each other; give one query per
        call to have each see the ones before it.
        """
        queries = np.asarray(vectors, np.float32)
        if queries.ndim != 2:
            raise ValueError(f"vectors must be (n, dim), got shape {queries.shape}")
        n = len(queries)
        qualities = np.ones(n) if quality is None else np.asarray(quality, np.float64)
        if len(qualities) != n:
            raise ValueError(f"quality has {len(qualities)} values for {n} vectors")
        where = [None] * n if sources is None else list(sources)
        if len(where) != n:
            raise ValueError(f"sources has {len(where)} entries for {n} vectors")
        keys = [None] * n if source_keys is None else list(source_keys)
        if len(keys) != n:
            raise ValueError(f"source_keys has {len(keys)} entries for {n} vectors")
        return self._identify(
            queries, qualities, [time] * n, [camera] * n, where, keys, since=since, site=site, attributes=attributes
        )

    def _identify(
        self,
        queries: np.ndarray,
        qualities: np.ndarray,
        times: Sequence[float],
        cameras: Sequence[str | None],
        sources: Sequence[Mapping[str, Any] | None],
        keys: Sequence[str | None],
        *,
        since: float | None,
        site: str | None,
        attributes: Mapping[str, Any] | None,
    ) -> list[Recognition]:
        self._register(queries.shape[1])
        matches = self._decide(queries, qualities, since=since, site=site, attributes=attributes)
        owners = [_matched_identity(m) for m in matches]
        with self.store.transaction():
            if self.create_new:
                fresh = [i for i, owner in enumerate(owners) if owner is None]
                created = self.store.create_identities(len(fresh), site=site, attributes=attributes)
                for i, identity_id in zip(fresh, created, strict=True):
                    owners[i] = identity_id
            sighting_ids = self.store.add_sightings(
                queries,
                model_id=self.model_id,
                model_version=self.model_version,
                times=list(times),
                qualities=qualities,
                site=site,
                cameras=list(cameras),
                identity_ids=owners,
                sources=list(sources),
                source_keys=list(keys),
            )
            out = [Recognition(m, s, o) for m, s, o in zip(matches, sighting_ids, owners, strict=True)]
            self._log(out)
        return out

    def reprocess_unassigned(self, progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
        """Re-decide every unassigned sighting with the current calibrator and threshold (e.g. after tuning).

        Sightings are compared by their vector of this gallery's model, whether recorded with it or added by
        `reembed`; those without one are left alone. Each assignment is committed on its own, so an interrupted run
        resumes where it stopped when started again: what it already assigned is no longer unassigned.
        """
        counts = {"reprocessed": 0, "assigned": 0, "still_unassigned": 0}
        if not self._registered():
            return counts
        pending = self.store.sightings(unassigned=True)
        vectors = self.store.vectors_of(
            [s.id for s in pending], model_id=self.model_id, model_version=self.model_version
        )
        for done, sighting in enumerate(pending, start=1):
            if progress is not None:
                progress(done, len(pending))
            if sighting.id not in vectors:
                continue
            match = self._decide(vectors[sighting.id][None], np.array([sighting.quality]))[0]
            counts["reprocessed"] += 1
            identity_id = _matched_identity(match)
            if identity_id is not None:
                self.store.assign_sighting(sighting.id, identity_id)
                counts["assigned"] += 1
            else:
                counts["still_unassigned"] += 1
            self._log([Recognition(match, sighting.id, identity_id)])
        return counts

    def refit_calibration(self) -> MatchCalibrator:
        """Refit the calibrator on the labelled pairs that human corrections produced (merges: same, splits:
        different), so the gallery learns from its mistakes. Needs pairs of both kinds."""
        registered = self._registered()
        pairs = (
            self.store.labelled_pairs(model_id=self.model_id, model_version=self.model_version) if registered else []
        )
        similarity = np.array([p.similarity for p in pairs])
        same = np.array([p.same for p in pairs], dtype=bool)
        if len(pairs) == 0 or same.all() or not same.any():
            raise ValueError(
                f"refitting needs corrections giving both same and different pairs; the store has "
                f"{int(same.sum())} same and {int((~same).sum())} different pairs for {self.model_id}"
            )
        self.calibrator = MatchCalibrator(method=self.calibrator.method).fit(similarity, same)
        return self.calibrator

    def _decide(
        self,
        queries: np.ndarray,
        qualities: np.ndarray,
        *,
        since: float | None = None,
        site: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> list[Match]:
        hits = self.store.search(
            queries,
            model_id=self.model_id,
            model_version=self.model_version,
            k=self.k,
            since=since,
            site=site,
            attributes=attributes,
        )
        ids = np.full((len(queries), self.k), -1, np.int64)
        sims = np.zeros((len(queries), self.k))
        for row, candidates in enumerate(hits):
            for col, candidate in enumerate(candidates[: self.k]):
                ids[row, col], sims[row, col] = candidate.identity_id, candidate.similarity
        quality = np.repeat(qualities[:, None], self.k, axis=1) if self._uses_quality() else None
        return match_queries(
            self.calibrator,
            ids,
            sims,
            self.threshold,
            quality=quality,
            valid=ids >= 0,
            competitor_weight=self.competitor_weight,
        )

    def _registered(self) -> bool:
        return any((m.model_id, m.model_version) == (self.model_id, self.model_version) for m in self.store.models())

    def _register(self, dim: int) -> None:
        """The first vectors of a model register it (and fix its dimension) in the store."""
        if not self._registered():
            self.store.register_model(self.model_id, self.model_version, dim)

    def _uses_quality(self) -> bool:
        return "quality" in getattr(self.calibrator, "features_", ())

    def _log(self, recognitions: list[Recognition]) -> None:
        now = clock.time()
        self.store.log_similarities(
            [
                SimilarityRecord(
                    query=r.sighting_id,
                    candidate=_matched_identity(r.match),
                    similarity=float(np.nan_to_num(r.match.similarity, nan=-1.0)),  # -1: nothing to compare with
                    probability=None if np.isnan(r.match.probability) else float(r.match.probability),
                    threshold=self.threshold,
                    decision=r.match.decision,
                    model_id=self.model_id,
                    model_version=self.model_version,
                    time=now,
                )
                for r in recognitions
            ]
        )
        retention = self.log_retention
        if retention is None:
            return
        self._logged_since_prune += len(recognitions)
        if self._logged_since_prune >= retention.prune_every:
            self._logged_since_prune = 0
            self.store.prune_similarity_log(max_age_days=retention.max_age_days, max_rows=retention.max_rows)


def _matched_identity(match: Match) -> int | None:
    """The store id a match took; None for a new or unassigned query."""
    if match.decision != "match" or match.identity_id is None:
        return None
    if not isinstance(match.identity_id, int | np.integer):
        raise TypeError(f"store identity ids are integers, got {match.identity_id!r}")
    return int(match.identity_id)


def _tracklet_query(
    tracklet: Tracklet,
) -> tuple[np.ndarray, float, float, str | None, dict[str, Any], str | None]:
    """(vector, quality, time, camera, source, source key) of one tracklet as a gallery query."""
    name = f"tracklet {tracklet.camera_id or '-'}/{tracklet.track_id}"
    if tracklet.embedding.size == 0:
        raise ValueError(f"{name} has no embedding (track with an embedder to identify tracklets)")
    known = tracklet.times[np.isfinite(tracklet.times)]
    if not len(known):
        raise ValueError(f"{name} has no time (give the frames' times, e.g. the video's frame rate)")
    best = tracklet.crop_frames[0] if tracklet.crop_frames else tracklet.first_frame
    box = tracklet.boxes[int(np.flatnonzero(tracklet.frames == best)[0])] if best in tracklet.frames else None
    source: dict[str, Any] = {
        "video": tracklet.source,
        "camera_id": tracklet.camera_id,
        "track_id": tracklet.track_id,
        "frames": [tracklet.first_frame, tracklet.last_frame],
        "frame": int(best),
        "box": None if box is None else [round(float(v), 2) for v in box],
    }
    key = (
        f"{tracklet.source}|{tracklet.camera_id}|{tracklet.track_id}|{tracklet.first_frame}"
        if tracklet.source
        else None
    )
    quality = float(tracklet.quality.max()) if len(tracklet.quality) else 1.0
    return tracklet.embedding, quality, float(known[0]), tracklet.camera_id or None, source, key
