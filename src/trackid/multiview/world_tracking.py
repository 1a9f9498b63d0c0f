"""Tracking people on the ground plane: fused positions of each time step linked into global tracks.

A constant-velocity Kalman filter per person in ground units and seconds, and a minimum-cost assignment (scipy's
Hungarian solver) of the step's positions to the tracks on the Mahalanobis distance of the innovation, chi-square
gated. Each position keeps the covariance the cross-view fusion gave it, so a person seen by many near views pulls
their track harder than one seen by one far view. Time is in seconds, not frames, so the same settings serve 2 fps
(WILDTRACK, people move ~1 m between steps) and 25 fps (EPFL Terrace); `unit_per_metre` states the ground unit so
that the motion noise is in metres.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import linear_sum_assignment
from scipy.stats import chi2

from trackid.multiview.association import associate_views

__all__ = ["TrackletTrust", "WorldStep", "WorldTracker", "constant_velocity"]

FloatArray = NDArray[np.float64]
_UNMATCHED = 1e9


class WorldStep(NamedTuple):
    """The reported tracks seen at one step: ids, filtered positions, and the row of the step's input each took."""

    ids: NDArray[np.int64]
    xy: FloatArray
    rows: NDArray[np.int64]


@dataclass
class _Track:
    id: int
    mean: FloatArray  # x, y, vx, vy
    cov: FloatArray
    hits: int = 1
    last_seen: float = 0.0
    row: int = -1
    born: float = 0.0
    seen_at: FloatArray = field(default_factory=lambda: np.zeros(2))


@dataclass
class WorldTracker:
    """Global tracks from per-step ground positions.

    Args:
        unit_per_metre: ground units in a metre (1 for metres; EPFL Terrace's homographies ~50.83).
        accel_sigma: people's acceleration noise, m/s^2. Higher follows turns sooner, and lets tracks jump to
            neighbours more readily. 0.5 and `position_sigma` 0.15 were chosen on both sets whole, group-with-tracks
            (`bench/multicam.py`; IDF1 @ 1 m, WILDTRACK / EPFL Terrace): accel 0.5 / 1.0 at position 0.2: 85.6 /
            77.8 and 78.1 / 79.7; at 0.15: 84.4 / 79.6 and 81.3 / 73.1; 0.5 at 0.1: 86.4 / 69.4. Terrace's 9 people
            make its IDF1 jumpy (one swap of two long tracks moves it by 5-10 points); WILDTRACK alone would pick
            (0.5, 0.1), Terrace alone (0.5, 0.15) or (1.0, 0.2). (This grid held the views' spread at 0.3 m.)
        gate_probability: a position may join a track within this share of chi-square(2) of its innovation.
        min_hits: positions a track needs before it is reported (one-step false positives never are).
        min_age_s: seconds a track must have lived before it is reported, too: hits alone mean 1 s at 2 fps but
            80 ms at 25 fps, where a person's views that split for a few frames would start a duplicate.
        max_lost_s: a track not seen for longer ends; a person back after it gets a new id.
        position_sigma: metres added (as variance) to every position's covariance: the fusion's covariance says how
            well the views agree, not how far all of them are off together (foot points sit ~0.3 m off along the
            viewing ray), and a filter that believes 5 cm loses people who are 30 cm off (see `accel_sigma` for how
            0.15 was chosen).
        trust: how much the cameras' own tracklets count (`TrackletTrust`, measured as the site runs).
        handover_s: seconds a camera tracklet's boxes must keep going to another live track before that track owns
            it. Without it, one step where geometry puts a box with a neighbour hands the neighbour the tracklet,
            and with it the person (EPFL Terrace: 484 such hand-overs between tracks alive together). Tried 0 / 0.3
            / 1 / 2 / 4 (IDF1 @ 1 m, WILDTRACK / EPFL Terrace): 84.6 / 76.0, 84.9 / 77.0, 87.7 / 76.8, 86.3 /
            79.6, 86.7 / 77.5; MODA @ 0.5 m 85.0 / 85.8 at 0, 88.0 / 91.2 at 2 (`bench/multicam.py`). WILDTRACK
            alone would pick 1, Terrace alone 2.
        birth_gate: a group (or position) inside this share of chi-square(2) of a tracked person's prediction does
            not start a track: people do not materialise inside another's footprint, so there it is that person's
            views disagreeing (or a box the per-view assignment left over), and a duplicate born there competes
            for the person's boxes until the two swap. 0 turns it off. Tried 0 / 0.5 / 0.75 / 0.9 / 0.95 / 0.99
            (IDF1 @ 1 m, mean over the set as given and jittered by 0.5 px (WILDTRACK seeds 1-2, Terrace 1-3),
            WILDTRACK / EPFL Terrace): 86.1 / 77.3, 88.7 / 84.5, 89.7 / 86.5, 88.2 / 84.9, 87.7 / 84.1, 84.8 / 84.5;
            MODA @ 0.5 m 87.9 / 90.8 at 0.75, 87.5 / 91.0 at 0 (`bench/multicam.py --sweep-birth-gate`). Each set
            alone picks 0.75.
    """

    unit_per_metre: float = 1.0
    accel_sigma: float = 0.5
    gate_probability: float = 0.99
    min_hits: int = 2
    min_age_s: float = 0.5
    max_lost_s: float = 1.5
    position_sigma: float = 0.15
    trust: TrackletTrust = field(default_factory=lambda: TrackletTrust())
    handover_s: float = 2.0
    birth_gate: float = 0.75
    _tracks: list[_Track] = field(default_factory=list, init=False)
    _next_id: int = field(default=1, init=False)
    _time: float | None = field(default=None, init=False)
    _tracklet_owner: dict[int, int] = field(default_factory=dict, init=False)
    _challenger: dict[int, tuple[int, float]] = field(default_factory=dict, init=False)

    def update(
        self,
        time: float,
        xy: ArrayLike,
        covariance: ArrayLike,
        tracklets: Sequence[Sequence[int]] | None = None,
        confirmed: ArrayLike | None = None,
    ) -> WorldStep:
        """Advance to `time` (seconds) with this step's positions (N, 2) and covariances (N, 2, 2); returns the
        reported tracks seen at this step, each at the position it took (the filter's own lags behind turns).

        `tracklets`: per position, the keys of the per-camera tracklets whose boxes it fuses (any integers unique
        across cameras). A track that took one of those tracklets before pays `trust.bonus` less for this
        position: a camera's own tracker knows which box continues which (pure at 25 fps), where positions alone
        mix up people who pass close. The gate still applies, so a tracklet that switched people cannot drag a
        track across the plane.

        `confirmed`: per position, whether enough views saw it to start a track (default: all). An unconfirmed
        position (one view) may only continue a track that took one of its tracklets: a person seen by one camera
        for a while keeps their track, while one camera's ghosts and clutter never start one."""
        points = np.asarray(xy, np.float64).reshape(-1, 2)
        cov = np.asarray(covariance, np.float64).reshape(-1, 2, 2)
        cov = cov + (self.position_sigma * self.unit_per_metre) ** 2 * np.eye(2)
        if tracklets is not None and len(tracklets) != len(points):
            raise ValueError(f"tracklets must have one entry per position, got {len(tracklets)} for {len(points)}")
        starts = np.ones(len(points), bool) if confirmed is None else np.asarray(confirmed, bool).reshape(-1)
        if len(starts) != len(points):
            raise ValueError(f"confirmed must have one entry per position, got {len(starts)} for {len(points)}")
        self._advance(time)
        assigned = self._assign(points, cov, tracklets, starts)
        live = {t.id for t in self._tracks}
        for t, p in assigned:
            self._correct(self._tracks[t], points[p], cov[p])
            self._tracks[t].row = p
            self._tracks[t].seen_at = points[p]
            if tracklets is not None:
                for key in tracklets[p]:
                    self._hand_over(int(key), self._tracks[t].id, live)
        matched = {p for _, p in assigned}
        established = len(self._tracks)
        for p in np.flatnonzero(starts).tolist():
            if p not in matched and not self._inside_a_track(points[p], cov[p], established):
                self._start(points[p], cov[p], p)
                self._tracks[-1].seen_at = points[p]
        self._prune()
        shown = self._shown()
        return _step(shown, np.array([t.row for t in shown], np.int64))

    def update_views(
        self,
        time: float,
        views: ArrayLike,
        xy: ArrayLike,
        covariance: ArrayLike,
        *,
        min_views: int = 2,
        tracklets: ArrayLike | None = None,
    ) -> tuple[WorldStep, NDArray[np.int64]]:
        """Advance to `time` with this step's boxes of every view, unfused: the tracks' predictions join the
        cross-view grouping as a view of their own, so a box is grouped with the track it fits and with the boxes of
        other views that agree with it, and groups without a track start one once `min_views` views see them.

        Where lines of sight cross, a per-step fusion alone can pair two people's boxes into a ghost; a track knows
        where its person is going. The grouping is `associate_views` (one minimum-cost assignment per view, so a
        view gives a track at most one box and no box goes to two tracks). `tracklets` (per box, the key of its
        camera's tracklet, unique across cameras; negative = none) make a box cheaper for the track that took its
        tracklet before (`trust.bonus`).

        Returns the reported tracks seen at this step, at the position their boxes give (the filter's own lags
        behind turns at 2 fps, while two views fused are a median 0.1 m off; `WorldStep.rows` is -1: a track fuses
        several boxes), and per box the id of the reported track it went to (0: none).
        """
        view = np.asarray(views).reshape(-1)
        points = np.asarray(xy, np.float64).reshape(-1, 2)
        cov = np.asarray(covariance, np.float64).reshape(-1, 2, 2)
        labels = np.full(len(view), -1) if tracklets is None else np.asarray(tracklets).reshape(-1)
        if not (len(view) == len(points) == len(cov) == len(labels)):
            raise ValueError("views, xy, covariance and tracklets must have one row per box")
        self._advance(time)
        bias = (self.position_sigma * self.unit_per_metre) ** 2 * np.eye(2)
        n_tracks = len(self._tracks)
        prior_xy = np.array([t.mean[:2] for t in self._tracks]).reshape(-1, 2)
        prior_cov = np.array([t.cov[:2, :2] + bias for t in self._tracks]).reshape(-1, 2, 2)
        first = int(view.min(initial=0)) - 1  # the tracks' own view, grouped before every camera
        keys: list[list[int]] | None = None
        if tracklets is not None:
            owned: dict[int, list[int]] = {}
            for key, owner in self._tracklet_owner.items():
                owned.setdefault(owner, []).append(key)
            keys = [owned.get(t.id, []) for t in self._tracks] + [[k] if k >= 0 else [] for k in labels.tolist()]
        rows_view = np.r_[np.full(n_tracks, first), view]
        rows_xy, rows_cov = np.vstack([prior_xy, points]), np.concatenate([prior_cov, cov])
        groups = associate_views(rows_view, rows_xy, rows_cov, gate_probability=self.gate_probability)
        if tracklets is not None:
            self._check_tracklets(groups.group, labels, n_tracks)
            if self.trust.bonus > 0:
                groups = associate_views(
                    rows_view,
                    rows_xy,
                    rows_cov,
                    gate_probability=self.gate_probability,
                    tracklets=keys,
                    tracklet_bonus=self.trust.bonus,
                )
        box_group = groups.group[n_tracks:]
        track_of_group = np.full(len(groups.xy), -1, np.int64)
        track_of_group[groups.group[:n_tracks]] = np.arange(n_tracks)
        seen = np.bincount(box_group[box_group >= 0], minlength=len(groups.xy))
        for g in np.flatnonzero(seen > 0).tolist():
            members = box_group == g
            fused, fused_cov = _fuse(points[members], cov[members])
            if track_of_group[g] >= 0:
                track = self._tracks[track_of_group[g]]
                if seen[g] < min_views and not (self.trust.continues and self._continues(track, labels[members])):
                    track_of_group[g] = -1  # one view alone neither confirms a track nor feeds a duplicate
                    continue
                self._correct(track, fused, fused_cov + bias)
                track.seen_at = fused
            elif seen[g] >= min_views and not self._inside_a_track(fused, fused_cov + bias, n_tracks):
                track_of_group[g] = len(self._tracks)
                self._start(fused, fused_cov + bias, -1)
                self._tracks[-1].seen_at = fused
        claimed = np.where(box_group >= 0, track_of_group[np.maximum(box_group, 0)], -1)
        live = {t.id for t in self._tracks}
        for b in np.flatnonzero((claimed >= 0) & (labels >= 0)).tolist():
            self._hand_over(int(labels[b]), self._tracks[claimed[b]].id, live)
        shown = self._shown()
        reported = {id(t): t.id for t in shown}
        box_ids = np.array([reported.get(id(self._tracks[c]), 0) if c >= 0 else 0 for c in claimed.tolist()], np.int64)
        self._prune()
        return _step(shown, np.full(len(shown), -1, np.int64)), box_ids

    def _inside_a_track(self, point: FloatArray, cov: FloatArray, n_tracks: int) -> bool:
        """Whether a would-be new track sits within `birth_gate` of one of the first `n_tracks` tracks (the ones
        that were there before this step) that has been seen `min_hits` times."""
        if self.birth_gate <= 0:
            return False
        old = [t for t in self._tracks[:n_tracks] if t.hits >= self.min_hits]
        if not old:
            return False
        d2 = _mahalanobis(old, point[None], cov[None])
        return bool((d2 < chi2.ppf(self.birth_gate, df=2)).any())

    def tracklet_owner(self, key: int) -> int:
        """The id of the track that owns this camera tracklet key (0: none)."""
        return self._tracklet_owner.get(int(key), 0)

    def _hand_over(self, key: int, track_id: int, live: set[int]) -> None:
        """Give a tracklet to the track its box went to; from another `live` track only once it has gone there for
        `handover_s`: one step's mistake by geometry must not take a track's tracklet (and its person) away."""
        owner = self._tracklet_owner.get(key)
        if owner is None or owner == track_id or owner not in live:
            self._tracklet_owner[key] = track_id
            self._challenger.pop(key, None)
            return
        now = float(self._time or 0.0)
        rival, since = self._challenger.get(key, (track_id, now))
        if rival != track_id:
            rival, since = track_id, now
        if now - since >= self.handover_s:
            self._tracklet_owner[key] = track_id
            self._challenger.pop(key, None)
        else:
            self._challenger[key] = (rival, since)

    def _check_tracklets(self, group: NDArray[np.int64], labels: NDArray[np.int64], n_tracks: int) -> None:
        """Per box whose tracklet a live track took: did geometry alone (`group`, tracks' rows first) put it there."""
        index = {t.id: i for i, t in enumerate(self._tracks)}
        owner = np.array([index.get(self._tracklet_owner.get(int(k), 0), -1) if k >= 0 else -1 for k in labels])
        box_group = group[n_tracks:]
        check = (owner >= 0) & (box_group >= 0)
        self.trust.observe(box_group[check] == group[owner[check]])

    def _continues(self, track: _Track, labels: NDArray[np.int64]) -> bool:
        """Whether one of these boxes continues a camera tracklet the track already took."""
        return any(self._tracklet_owner.get(int(k)) == track.id for k in labels.tolist() if k >= 0)

    def _advance(self, time: float) -> None:
        dt = 0.0 if self._time is None else float(time) - self._time
        if dt < 0:
            raise ValueError(f"time must not go back: {time} after {self._time}")
        self._time = float(time)
        self._predict(dt)

    def _prune(self) -> None:
        """End the tracks lost too long, and forget which tracklets they held (ids are never reused, so an ended
        owner counts as none everywhere; kept, the tables would grow with every tracklet of the run)."""
        now = float(self._time or 0.0)
        self._tracks = [t for t in self._tracks if now - t.last_seen <= self.max_lost_s]
        live = {t.id for t in self._tracks}
        ended = [key for key, owner in self._tracklet_owner.items() if owner not in live]
        for key in ended:
            del self._tracklet_owner[key]
            self._challenger.pop(key, None)

    def _shown(self) -> list[_Track]:
        return [
            t
            for t in self._tracks
            if t.last_seen == self._time and t.hits >= self.min_hits and t.last_seen - t.born >= self.min_age_s
        ]

    def _predict(self, dt: float) -> None:
        f, q = constant_velocity(dt, self.accel_sigma * self.unit_per_metre)
        for track in self._tracks:
            track.mean = f @ track.mean
            track.cov = f @ track.cov @ f.T + q

    def _assign(
        self,
        points: FloatArray,
        cov: FloatArray,
        tracklets: Sequence[Sequence[int]] | None = None,
        confirmed: NDArray[np.bool_] | None = None,
    ) -> list[tuple[int, int]]:
        if not self._tracks or not len(points):
            return []
        d2 = _mahalanobis(self._tracks, points, cov)
        cost = np.where(d2 <= chi2.ppf(self.gate_probability, df=2), d2, _UNMATCHED)
        owned = np.zeros(cost.shape, bool)
        if tracklets is not None and self._tracklet_owner:
            ids = {t.id: i for i, t in enumerate(self._tracks)}
            for p, keys in enumerate(tracklets):
                owners = {ids[o] for k in keys if (o := self._tracklet_owner.get(k)) is not None and o in ids}
                owned[list(owners), p] = True
            gated = cost < _UNMATCHED
            if gated.any():
                best = np.where(gated.any(axis=0), np.argmin(cost, axis=0), -1)  # geometry's pick per position
                check = owned.any(axis=0) & (best >= 0)
                self.trust.observe(owned[best[check], np.flatnonzero(check)])
            cost = np.where(owned & gated, cost - self.trust.bonus, cost)
        if confirmed is not None:
            cost = np.where(confirmed[None, :] | (owned & self.trust.continues), cost, _UNMATCHED)
        rows, cols = linear_sum_assignment(cost)
        keep = cost[rows, cols] < _UNMATCHED
        return list(zip(rows[keep].tolist(), cols[keep].tolist(), strict=True))

    def _correct(self, track: _Track, point: FloatArray, cov: FloatArray) -> None:
        h = np.eye(2, 4)
        s = h @ track.cov @ h.T + cov
        gain = track.cov @ h.T @ np.linalg.inv(s)
        track.mean = track.mean + gain @ (point - h @ track.mean)
        track.cov = (np.eye(4) - gain @ h) @ track.cov
        track.hits += 1
        track.last_seen = float(self._time or 0.0)

    def _start(self, point: FloatArray, cov: FloatArray, row: int) -> None:
        speed = (1.5 * self.unit_per_metre) ** 2  # walking pace: unknown direction, up to ~1.5 m/s
        start = np.zeros((4, 4))
        start[:2, :2], start[2:, 2:] = cov, speed * np.eye(2)
        now = float(self._time or 0.0)
        self._tracks.append(_Track(self._next_id, np.r_[point, 0.0, 0.0], start, last_seen=now, row=row, born=now))
        self._next_id += 1


def constant_velocity(dt: float, accel_sigma: float) -> tuple[FloatArray, FloatArray]:
    """The (x, y, vx, vy) transition over `dt` seconds and its process noise for a white acceleration of
    `accel_sigma` (ground units / s^2): the motion model of the world tracker and of `multiview.smoothing`."""
    f = np.eye(4)
    f[0, 2] = f[1, 3] = dt
    g = np.array([[dt**2 / 2, 0], [0, dt**2 / 2], [dt, 0], [0, dt]])
    return f, accel_sigma**2 * g @ g.T


def _step(shown: list[_Track], rows: NDArray[np.int64]) -> WorldStep:
    """The reported tracks' ids and the positions they were seen at, with the input `rows` they took."""
    return WorldStep(
        np.array([t.id for t in shown], np.int64), np.array([t.seen_at for t in shown]).reshape(-1, 2), rows
    )


def _mahalanobis(tracks: Sequence[_Track], points: FloatArray, cov: FloatArray) -> FloatArray:
    """(T, P) squared Mahalanobis distances of positions (P, 2) with covariances (P, 2, 2) from the tracks'
    predicted positions, on the innovation covariance (track's plus position's)."""
    means = np.stack([t.mean[:2] for t in tracks])
    track_cov = np.stack([t.cov[:2, :2] for t in tracks])
    diff = points[None, :, :] - means[:, None, :]
    innovation = np.linalg.inv(track_cov[:, None] + cov[None, :])
    return np.einsum("tpi,tpij,tpj->tp", diff, innovation, diff)


def _fuse(points: FloatArray, cov: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Information-weighted mean of points (K, 2) with covariances (K, 2, 2), and its covariance."""
    inverse = np.linalg.inv(cov + 1e-12 * np.eye(2))
    fused_cov = np.linalg.inv(inverse.sum(axis=0))
    return fused_cov @ np.einsum("kij,kj->i", inverse, points), fused_cov


@dataclass
class TrackletTrust:
    """How often a camera's tracklet is right about who its box is, measured online, and what that is worth.

    A tracklet the ground tracker already gave to a track says "this box is that person". At 25 fps a camera's
    tracker is nearly always right (EPFL Terrace: 91 % of such boxes are grouped with their track by geometry
    alone); at 2 fps people move a body width between frames and it often is not (WILDTRACK: 60 %). So the word of a
    tracklet is weighed by its measured rate p: as a likelihood ratio, it is worth 2 ln(p / (1 - p)) in the
    association's cost units (a Mahalanobis d^2 is -2 ln of a likelihood), and a box seen by one view alone may
    continue its track only while p >= `continue_rate`. Until `min_samples` boxes are in, p is `start`.

    Args:
        start: the rate assumed before any is measured (0.5: tracklets count for nothing).
        window: latest checks kept, so the rate follows a camera whose conditions change.
        min_samples: checks needed before the measured rate replaces `start`.
        continue_rate: the rate from which one view's box, by its tracklet, keeps a track alive (0.8: 4 to 1).
    """

    start: float = 0.5
    window: int = 5000
    min_samples: int = 200
    continue_rate: float = 0.8
    _checks: deque[bool] = field(default_factory=deque, init=False)
    _agreed: int = field(default=0, init=False)  # how many of `_checks` are True (read every step, so kept)

    @property
    def rate(self) -> float:
        if len(self._checks) < self.min_samples:
            return self.start
        return self._agreed / len(self._checks)

    @property
    def bonus(self) -> float:
        p = min(max(self.rate, 1e-3), 1 - 1e-3)
        return max(0.0, 2.0 * float(np.log(p / (1 - p))))

    @property
    def continues(self) -> bool:
        return self.rate >= self.continue_rate

    def observe(self, agreed: ArrayLike) -> None:
        """Take this step's checks: per box with an owned tracklet, whether geometry alone put it with the owner."""
        new = np.asarray(agreed, bool).reshape(-1).tolist()
        self._checks.extend(new)
        self._agreed += sum(new)
        while len(self._checks) > self.window:
            self._agreed -= self._checks.popleft()
