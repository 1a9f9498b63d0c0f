"""A site's global tracks become persistent gallery identities, so a person who leaves and comes back keeps the id.

A multi-camera run (`trackid.multiview.site_tracking.track_site`) numbers its tracks afresh, and a person the
tracker lost for a while comes back as a new track. `GlobalIdentities` maps each track to an identity of the
gallery store: a track that starts where and when an identity of the same site could be again (last seen shortly
before, within walking reach of its last position, not held by another track at that time, and, when appearance
is given, looking alike) continues that identity; otherwise the track gets a new one. The store keeps each
identity's last sighting (time, ground position), so a later run or a restart continues from it.

Where the state lives: the store has no table for ground positions yet (a migration step adding
`global_identity_state(identity_id, site, last_time, last_x, last_y)` to both dialects would be the clean home).
Until then identities are real store identities carrying the `site`, and the per-site last-seen state is one JSON
object kept through the store's opaque per-camera statistics (`save_camera_stats`, keyed by the site under the
pseudo-model `STATE_MODEL`), written in the same transaction as the identities and sightings it describes.
Appearance, when given, is stored as ordinary sightings of the embedder's model, so the gallery can search these
identities too; geometry-only identities get no vectors.

Geometry alone cannot tell a newcomer from someone who left: on WILDTRACK (people enter and leave all the time) a
600 s window gives 56 identities for 313 people and halves the ground IDF1 (57.5 -> 27.5 at 1 m), while EPFL Terrace
(9 people who stay) gains (27.2 -> 34.2); a 1 s window keeps WILDTRACK (57.3) and still helps Terrace (30.5). So the
default `window_s` is `DEFAULT_WINDOW_S` = 1 s, the one both sets gain or hold with (`trackid multicam run`'s
`identities.window_s` defaults to the same); with appearance, or a site where people stay, raise it.

A recording is resolved once: `resolve` keys each call by its input (site, ground rows, fps, start time, unit), so
the same input again (a rerun of the same recording and settings) returns the recorded mapping and writes nothing,
and an input whose time span overlaps one already resolved for the site with other tracks is refused
(`RunOverlapError`): its identities would be a second copy of people the gallery already holds at those times. The
records are kept next to the state (pseudo-model `RUNS_MODEL`), one per call, with its span, mapping and counts.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import linear_sum_assignment

from trackid.identity.stores import GalleryStore

__all__ = [
    "DEFAULT_WINDOW_S",
    "RUNS_MODEL",
    "STATE_MODEL",
    "GlobalIdentities",
    "ResolvedRun",
    "RunOverlapError",
    "continued_identities",
]

STATE_MODEL = ("trackid.global-identities", "1")
"""(model_id, model_version) under which the per-site last-seen state is kept in the store's camera statistics."""
RUNS_MODEL = ("trackid.global-identities.runs", "1")
"""(model_id, model_version) under which the record of every resolved input of a site is kept, likewise."""
DEFAULT_WINDOW_S = 1.0
"""Geometry-only re-attachment window (s): the longest that holds IDF1 on WILDTRACK and gains on Terrace (above)."""


class RunOverlapError(ValueError):
    """Tracks given for a time span of a site that another, different input already covered: resolving them would
    give people a second identity. The message names the site and both spans."""


@dataclass(frozen=True, slots=True)
class ResolvedRun:
    """What `resolve_run` decided: track id -> identity id (`ids`), identities it created (`new_identities`), tracks
    that continued an identity from an earlier call (`continued`), and whether the input had been resolved before
    (`replayed`: `ids` and the counts are the recorded ones, and nothing was written)."""

    ids: dict[int, int]
    new_identities: int
    continued: int
    replayed: bool = False

    @property
    def reattached(self) -> int:
        """Tracks that took an identity someone had before them (an earlier call's, or an earlier track's here)."""
        return len(self.ids) - self.new_identities


FloatArray = NDArray[np.float64]
_UNMATCHABLE = 1e6  # cost of a pair that fails a gate; above every valid pair (<= 1) and a new identity (1)


class GlobalIdentities:
    """Turn a site's per-run track ids into persistent gallery identities.

    Args:
        store: the gallery store the identities live in (SQLite or PostgreSQL); several runs share it.
        site: the site's name; identities carry it and a track is only ever matched to an identity of its site.
        window_s: how long after an identity was last seen a track may still continue it. Longer re-attaches people
            who were away longer, but with geometry alone anyone reachable is a candidate, so a long window also
            lets a newcomer take the id of someone who left (reach grows with the gap); appearance narrows that.
            The default, `DEFAULT_WINDOW_S`, is chosen for geometry alone (module docstring).
        max_speed_mps: walking speed bounding where a person can be after a gap: an identity is reachable when its
            last position is within `max_speed_mps * gap + slack_m` of the track's first position. Higher tolerates
            runners and long gaps, at more candidates per track.
        unit_per_metre: ground units in a metre (1 for metres; EPFL Terrace's homography unit is 50.83 per metre).
            The store keeps positions in metres, so runs with different units share identities.
        slack_m: reach at zero gap: how far a track's first ground point may be from the last one of the same
            person (projection error, the tracker's confirmation delay). Larger re-attaches more broken tracks and
            risks swapping two people who stand close.
        model_id, model_version: the embedder whose vectors `resolve` gets as `embeddings`; needed only then.
            Its vectors are stored as sightings of the identities (the gallery's ordinary records).
        min_similarity: with embeddings, the cosine similarity a track's vector needs with one of an identity's
            remembered vectors (its store prototypes of the model, or the tracks it got in this call) for the track
            to continue it. It is a raw similarity, so it depends on the embedder: raising it refuses more look-alike
            newcomers and more true re-entries seen from another side. An identity with no vector of the model, or
            a track without a vector, is matched on geometry alone (unknown is not a contradiction).
    """

    def __init__(
        self,
        store: GalleryStore,
        site: str,
        *,
        window_s: float = DEFAULT_WINDOW_S,
        max_speed_mps: float = 2.5,
        unit_per_metre: float = 1.0,
        slack_m: float = 1.0,
        model_id: str | None = None,
        model_version: str = "",
        min_similarity: float = 0.5,
    ) -> None:
        if not isinstance(store, GalleryStore):
            raise TypeError(f"store must be a GalleryStore, got {type(store).__name__}")
        if not isinstance(site, str) or not site:
            raise ValueError(f"site must be a non-empty string, got {site!r}")
        for name, value in (("window_s", window_s), ("max_speed_mps", max_speed_mps), ("slack_m", slack_m)):
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not math.isfinite(unit_per_metre) or unit_per_metre <= 0:
            raise ValueError(f"unit_per_metre must be a finite number > 0, got {unit_per_metre!r}")
        if not -1.0 <= min_similarity <= 1.0:
            raise ValueError(f"min_similarity must be in [-1, 1], got {min_similarity!r}")
        if model_id is not None and (not isinstance(model_id, str) or not model_id):
            raise ValueError(f"model_id must be a non-empty string or None, got {model_id!r}")
        self.store = store
        self.site = site
        self.window_s = float(window_s)
        self.max_speed_mps = float(max_speed_mps)
        self.unit_per_metre = float(unit_per_metre)
        self.slack_m = float(slack_m)
        self.model_id = model_id
        self.model_version = model_version
        self.min_similarity = float(min_similarity)

    def resolve(
        self,
        ground: ArrayLike,
        *,
        fps: float,
        start_time_s: float = 0.0,
        embeddings: Mapping[int, ArrayLike] | None = None,
    ) -> dict[int, int]:
        """Track id -> gallery identity id for every track of `ground` (`resolve_run`'s `ids`)."""
        return self.resolve_run(ground, fps=fps, start_time_s=start_time_s, embeddings=embeddings).ids

    def resolve_run(
        self,
        ground: ArrayLike,
        *,
        fps: float,
        start_time_s: float = 0.0,
        embeddings: Mapping[int, ArrayLike] | None = None,
    ) -> ResolvedRun:
        """Give every track of `ground` a gallery identity; persists new identities, the tracks' vectors, every
        touched identity's last-seen time and position and the record of this input, in one transaction.

        Tracks are taken in start-time order (time = `start_time_s` + frame / `fps`, seconds; with epoch seconds
        the store's times are wall-clock). Tracks starting at the same time compete for identities through one
        minimum-cost assignment on distance / reach (a pair within reach costs < 1, a new identity costs 1), so
        one track's nearest identity is not taken when another track needs it more. Tracks starting at different
        times are decided in that order.

        Args:
            ground: (M, 4) rows frame, track id, x, y (ground units), as `GlobalTracks.ground`.
            fps: frames per second of the frame numbers.
            start_time_s: the time of frame 0.
            embeddings: track id -> the track's appearance vector (of `model_id`), for the tracks that have one.

        Raises:
            RunOverlapError: the site already has identities for part of this time span from a different input.
        """
        if not math.isfinite(fps) or fps <= 0:
            raise ValueError(f"fps must be a finite number > 0, got {fps!r}")
        if not math.isfinite(start_time_s):
            raise ValueError(f"start_time_s must be finite, got {start_time_s!r}")
        tracks = _track_summaries(ground, fps, start_time_s, self.unit_per_metre)
        vectors = self._track_vectors(tracks.ids, embeddings)
        if not len(tracks.ids):
            return ResolvedRun({}, 0, 0)
        runs = self._load_runs()
        key = _input_key(self.site, ground, fps, start_time_s, self.unit_per_metre)
        if key in runs:
            return _replayed(runs[key])
        self._refuse_overlap(runs, float(tracks.start.min()), float(tracks.end.max()))
        state = self._load_state()
        # one slot per known identity, then one per track for the identities this call may create
        spare = len(tracks.ids)
        ids = np.concatenate([state.ids, np.zeros(spare, np.int64)])
        last_t = np.concatenate([state.time, np.full(spare, np.inf)])  # inf: an empty slot, never open
        last_xy = np.concatenate([state.xy, np.zeros((spare, 2))])
        used = len(state.ids)
        by_row = {row: vectors[track] for row, track in enumerate(tracks.ids.tolist()) if track in vectors}
        looks = _Appearance(self.store, (self.model_id, self.model_version), by_row)
        owner = np.zeros(len(tracks.ids), np.int64)  # < 0: a placeholder for an identity created at the end
        new_count = 0
        for batch in _start_batches(tracks.start):
            refine = None
            if looks.active:

                def refine(valid: NDArray[np.bool_], open_: NDArray[np.intp], batch: NDArray[np.intp] = batch) -> Any:
                    return valid & looks.agree(batch, ids[open_], valid, self.min_similarity)

            slots = continued_identities(
                tracks.first[batch],
                float(tracks.start[batch[0]]),
                last_t,
                last_xy,
                window_s=self.window_s,
                max_speed_mps=self.max_speed_mps,
                slack_m=self.slack_m,
                refine=refine,
            )
            for row, slot in zip(batch.tolist(), slots.tolist(), strict=True):
                if slot >= 0:
                    owner[row] = ids[slot]
                else:
                    new_count += 1
                    slot, used = used, used + 1
                    owner[row] = ids[slot] = -new_count
                last_t[slot], last_xy[slot] = tracks.end[row], tracks.last[row]
                looks.remember(int(owner[row]), row)
        with self.store.transaction():
            created = np.array(self.store.create_identities(new_count, site=self.site), np.int64)
            owner, ids = _created(owner, created), _created(ids, created)
            if by_row:
                rows = sorted(by_row)
                assert self.model_id is not None  # checked with the vectors
                self.store.add_sightings(
                    np.stack([by_row[i] for i in rows]),
                    model_id=self.model_id,
                    model_version=self.model_version,
                    times=tracks.end[rows],
                    site=self.site,
                    identity_ids=owner[rows].tolist(),
                )
            self._save_state(_State(ids[:used], last_t[:used], last_xy[:used]))
            mapping = {int(t): int(i) for t, i in zip(tracks.ids.tolist(), owner.tolist(), strict=True)}
            resolved = ResolvedRun(mapping, new_count, int(np.isin(owner, state.ids).sum()))
            runs[key] = {
                "span": [float(tracks.start.min()), float(tracks.end.max())],
                "ids": {str(t): i for t, i in mapping.items()},
                "new_identities": resolved.new_identities,
                "continued": resolved.continued,
            }
            self.store.save_camera_stats(
                model_id=RUNS_MODEL[0], model_version=RUNS_MODEL[1], camera=self.site, adaptation={"runs": runs}
            )
        return resolved

    def last_seen(self) -> dict[int, tuple[float, float, float]]:
        """Identity id -> (time, x, y in this instance's ground units) of its latest track end, for the live
        identities of this site that a later track can still continue (see `_save_state`)."""
        state = self._load_state()
        xy = state.xy * self.unit_per_metre
        return {
            int(i): (float(t), float(x), float(y))
            for i, t, (x, y) in zip(state.ids.tolist(), state.time.tolist(), xy.tolist(), strict=True)
        }

    def _track_vectors(
        self, track_ids: NDArray[np.int64], embeddings: Mapping[int, ArrayLike] | None
    ) -> dict[int, NDArray[np.float32]]:
        """The given tracks' vectors, checked (known track, one dimension, finite, non-zero) and L2-normalised."""
        if not embeddings:
            return {}
        if self.model_id is None:
            raise ValueError("embeddings were given but no model_id: say which embedder made them")
        known = set(track_ids.tolist())
        out: dict[int, NDArray[np.float32]] = {}
        for track, vector in embeddings.items():
            if int(track) not in known:
                raise ValueError(f"embeddings has track id {track}, which is not in ground")
            v = np.asarray(vector, np.float64)
            norm = float(np.linalg.norm(v)) if v.ndim == 1 else 0.0
            if v.ndim != 1 or not np.isfinite(v).all() or norm == 0:
                raise ValueError(f"embeddings[{track}] must be a finite, non-zero 1-D vector, got shape {v.shape}")
            out[int(track)] = (v / norm).astype(np.float32)
        dims = {len(v) for v in out.values()}
        if len(dims) > 1:
            raise ValueError(f"embeddings have several dimensions {sorted(dims)}; one model gives one dimension")
        model = next(
            (m for m in self.store.models() if (m.model_id, m.model_version) == (self.model_id, self.model_version)),
            None,
        )
        if model is not None and dims != {model.dim}:
            raise ValueError(
                f"embeddings have dimension {dims.pop()}, but model {self.model_id!r} version "
                f"{self.model_version!r} has dimension {model.dim} in the store"
            )
        return out

    def _load_runs(self) -> dict[str, dict[str, Any]]:
        """This site's resolved inputs: key -> {span: [start, end] s, ids: {track: identity}, counts}."""
        stats = self.store.camera_stats(model_id=RUNS_MODEL[0], model_version=RUNS_MODEL[1]).get(self.site)
        saved = stats.adaptation if stats is not None and stats.adaptation is not None else {}
        return dict(saved.get("runs", {}))

    def _refuse_overlap(self, runs: Mapping[str, Mapping[str, Any]], start: float, end: float) -> None:
        for run in runs.values():
            first, last = run["span"]
            if start <= last and first <= end:
                raise RunOverlapError(
                    f"site {self.site!r} already has identities for {first:.3f}-{last:.3f} s from other tracks, and "
                    f"these tracks span {start:.3f}-{end:.3f} s: a recording is resolved once (the same input again "
                    "replays its identities); give a later recording a start time after the earlier ones, or use "
                    "another gallery"
                )

    def _load_state(self) -> _State:
        """This site's live identities' last sightings (deleted or merged-away identities drop out), in metres."""
        stats = self.store.camera_stats(model_id=STATE_MODEL[0], model_version=STATE_MODEL[1]).get(self.site)
        saved = stats.adaptation if stats is not None and stats.adaptation is not None else {}
        rows: Mapping[str, list[float]] = saved.get("identities", {})
        live = {i.id for i in self.store.identities() if i.site == self.site}
        kept = [(int(k), *v) for k, v in rows.items() if int(k) in live]
        table = np.array(kept, np.float64).reshape(len(kept), 4)
        return _State(table[:, 0].astype(np.int64), table[:, 1].copy(), table[:, 2:].copy())

    def _save_state(self, state: _State) -> None:
        """Write the identities that a later track can still continue: time is taken to move forward, so one last
        seen more than `window_s` before the newest sighting never will (a site's state stays small)."""
        keep = state.time >= (state.time.max(initial=-np.inf) - self.window_s)
        state = _State(state.ids[keep], state.time[keep], state.xy[keep])
        rows = {
            str(i): [t, x, y]
            for i, t, (x, y) in zip(state.ids.tolist(), state.time.tolist(), state.xy.tolist(), strict=True)
        }
        self.store.save_camera_stats(
            model_id=STATE_MODEL[0],
            model_version=STATE_MODEL[1],
            camera=self.site,
            adaptation={"identities": rows},
        )


@dataclass(frozen=True, slots=True)
class _Tracks:
    """One row per track, in track-id order: start/end time (s) and first/last ground point (m)."""

    ids: NDArray[np.int64]
    start: FloatArray
    end: FloatArray
    first: FloatArray
    last: FloatArray


@dataclass(frozen=True, slots=True)
class _State:
    """Identities' last sightings: id, time (s), position (m)."""

    ids: NDArray[np.int64]
    time: FloatArray
    xy: FloatArray


class _Appearance:
    """Each candidate identity's remembered unit vectors: its store prototypes of the model (read once, when first
    a candidate) and the vectors of the tracks it got in this call.

    The store's `search` ranks a site's whole gallery; here geometry has already fixed the few candidates, and
    every candidate pair needs its similarity, which a top-k search cannot promise."""

    def __init__(
        self, store: GalleryStore, model: tuple[str | None, str], vectors: Mapping[int, NDArray[np.float32]]
    ) -> None:
        self.store, self.model, self.vectors = store, model, vectors  # vectors: per track row
        self.active = bool(vectors)
        self._known: dict[int, list[NDArray[np.float32]]] = {}

    def agree(
        self, rows: NDArray[np.intp], identities: NDArray[np.int64], candidates: NDArray[np.bool_], threshold: float
    ) -> NDArray[np.bool_]:
        """(len(rows), len(identities)) True where the pair may match on appearance (or appearance is unknown)."""
        ok = np.ones(candidates.shape, bool)
        for r, c in zip(*np.nonzero(candidates), strict=True):
            query = self.vectors.get(int(rows[r]))
            held = self._of(int(identities[c]))
            if query is not None and held:
                ok[r, c] = float(np.max(np.stack(held) @ query)) >= threshold
        return ok

    def remember(self, identity: int, row: int) -> None:
        vector = self.vectors.get(row)
        if vector is not None:
            self._of(identity).append(vector)

    def _of(self, identity: int) -> list[NDArray[np.float32]]:
        if identity not in self._known:
            held = [] if identity < 0 else self.store.prototypes(identity)
            self._known[identity] = [p.vector for p in held if (p.model_id, p.model_version) == self.model]
        return self._known[identity]


def continued_identities(
    first: FloatArray,
    t0: float,
    last_t: FloatArray,
    last_xy: FloatArray,
    *,
    window_s: float,
    max_speed_mps: float,
    slack_m: float,
    refine: Callable[[NDArray[np.bool_], NDArray[np.intp]], NDArray[np.bool_]] | None = None,
) -> NDArray[np.intp]:
    """For tracks starting together at `t0` at positions `first` (metres), the slot of the identity each continues
    (an index into `last_t` / `last_xy`, the identities' last sightings), -1 for a new identity: one minimum-cost
    assignment on distance / reach among the identities last seen strictly before `t0` and at most `window_s`
    before, within reach. `refine(valid, open_)` may veto pairs (appearance). Shared by the recorded runs'
    `GlobalIdentities` and the service's online `LiveIdentities`."""
    gap = t0 - last_t
    # strictly before: an identity seen at t0 is held by a track still running then
    open_ = np.flatnonzero((gap > 0) & (gap <= window_s))
    distance = np.linalg.norm(first[:, None, :] - last_xy[None, open_, :], axis=2)
    reach = max_speed_mps * gap[open_] + slack_m
    valid = distance <= reach
    if refine is not None and valid.any():
        valid = refine(valid, open_)
    chosen = _assign(np.where(valid, distance / np.maximum(reach, 1e-12), np.inf))
    return np.where(chosen >= 0, open_[np.maximum(chosen, 0)] if len(open_) else -1, -1).astype(np.intp)


def _input_key(site: str, ground: ArrayLike, fps: float, start_time_s: float, unit_per_metre: float) -> str:
    """A content id of one `resolve` input: the same rows (in any order) at the same time give the same key."""
    rows = np.asarray(ground, np.float64).reshape(-1, 4)
    rows = np.ascontiguousarray(rows[np.lexsort((rows[:, 1], rows[:, 0]))])
    digest = hashlib.sha256(repr((site, float(fps), float(start_time_s), float(unit_per_metre))).encode())
    digest.update(rows.tobytes())
    return digest.hexdigest()[:32]


def _replayed(run: Mapping[str, Any]) -> ResolvedRun:
    ids = {int(t): int(i) for t, i in run["ids"].items()}
    return ResolvedRun(ids, int(run["new_identities"]), int(run["continued"]), replayed=True)


def _created(ids: NDArray[np.int64], created: NDArray[np.int64]) -> NDArray[np.int64]:
    """Placeholders -1, -2, ... replaced by the identities created for them, in that order."""
    out = ids.copy()
    out[ids < 0] = created[-ids[ids < 0] - 1]
    return out


def _track_summaries(ground: ArrayLike, fps: float, start_time_s: float, unit_per_metre: float) -> _Tracks:
    rows = np.asarray(ground, np.float64)
    if rows.ndim != 2 or rows.shape[1] != 4:
        raise ValueError(f"ground must be (M, 4) rows frame, track id, x, y; got shape {rows.shape}")
    if not np.isfinite(rows).all():
        raise ValueError("ground has non-finite values (NaN or inf)")
    if (rows[:, 1] != np.round(rows[:, 1])).any():
        raise ValueError("ground's track ids (column 1) must be integers")
    rows = rows[np.lexsort((rows[:, 0], rows[:, 1]))]
    ids, first = np.unique(rows[:, 1], return_index=True)
    last = np.append(first[1:], len(rows)) - 1 if len(rows) else first
    time = start_time_s + rows[:, 0] / fps
    xy = rows[:, 2:] / unit_per_metre
    return _Tracks(ids.astype(np.int64), time[first], time[last], xy[first], xy[last])


def _start_batches(start: FloatArray) -> list[NDArray[np.intp]]:
    """Track rows grouped by equal start time, earliest group first (ties in track-id order)."""
    order = np.argsort(start, kind="stable")
    cuts = np.flatnonzero(np.diff(start[order])) + 1
    return np.split(order, cuts) if len(order) else []


def _assign(cost: FloatArray) -> NDArray[np.intp]:
    """Per row, the column it takes (-1: a new identity) minimising the summed cost, where a new identity costs 1
    and an infinite cost is a pair that may not match."""
    rows, columns = cost.shape
    chosen = np.full(rows, -1, np.intp)
    finite = np.isfinite(cost)
    if not finite.any():
        return chosen
    padded = np.full((rows, columns + rows), _UNMATCHABLE)
    padded[:, :columns] = np.where(finite, cost, _UNMATCHABLE)
    padded[np.arange(rows), columns + np.arange(rows)] = 1.0
    r, c = linear_sum_assignment(padded)
    keep = c < columns
    keep[keep] = finite[r[keep], c[keep]]
    chosen[r[keep]] = c[keep]
    return chosen
