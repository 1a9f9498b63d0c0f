"""One site's views -> global tracks: every person gets one id on the ground plane and in every view that sees them.

This is what `trackid multicam run` and the bench call. Each view brings its camera and its recorded detections;
the result is the ground-plane tracks (frame, id, x, y) and each view's boxes carrying the global id (MOT rows), so
both the ground-plane metrics and the per-view TrackEval scores read one result.

`fuse-then-track`: per frame, the views' foot points are grouped by `associate_views` (a view gives a person at most
one box), groups seen by `min_views` views are people, and `WorldTracker` links them over time; a box takes the id
of the track its group fed.

`group-with-tracks`: per frame, the tracks' predicted positions join the cross-view grouping as one more view
(`WorldTracker.update_views`), so a box goes with the track it fits and the other views' boxes that agree with it;
groups without a track start one once `min_views` views see them; a box takes the id of its group's track.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

from trackid.geometry import iou_matrix, xywh_to_xyxy
from trackid.multiview.association import ViewAgreement, associate_views
from trackid.multiview.cameras import GroundCamera
from trackid.multiview.world_tracking import WorldTracker
from trackid.sources.motchallenge import MotRows
from trackid.track.tracker import make_tracker
from trackid.types import Detections

__all__ = [
    "METHODS",
    "CameraTracklets",
    "GlobalTracks",
    "SiteStep",
    "SiteStepper",
    "SiteView",
    "ViewFrame",
    "camera_tracklet_keys",
    "frame_rows",
    "track_site",
]

FloatArray = NDArray[np.float64]
METHODS = ("group-with-tracks", "fuse-then-track")
WALKING_M_S = (0.05, 5.0)
"""Median speeds of the moving tracks (m/s) outside which the ground unit or the frame rate is probably wrong."""
COLD_DISAGREEMENT_M = 0.3
"""The views' disagreement assumed until `ViewAgreement` has measured the site's own."""
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SiteView:
    """One camera of the site: its ground mapping, its detections (MOT rows, frames 1-based) and the score a box
    needs to count (a per-camera threshold: detectors and lighting differ between cameras)."""

    camera: GroundCamera
    detections: MotRows
    min_score: float = 0.5


@dataclass(frozen=True)
class GlobalTracks:
    """`ground`: (M, 4) frame, global id, x, y (ground units); `views`: per camera name, (K, 7) MOT rows frame, id,
    x, y, w, h, score of its boxes that belong to a global track; `warnings`: what was unusual about the input."""

    ground: FloatArray
    views: dict[str, FloatArray]
    warnings: list[str] = field(default_factory=list)

    @property
    def ids(self) -> NDArray[np.int64]:
        return np.unique(self.ground[:, 1]).astype(np.int64)


class ViewFrame(NamedTuple):
    """What one camera saw in one frame: (k, 4) boxes x, y, w, h (pixels), their (k,) scores, and per box the key
    of the camera's own tracklet it belongs to (-1: none), or None when the camera's tracklets are not linked."""

    xywh: FloatArray
    score: FloatArray
    tracklet: NDArray[np.int64] | None = None


class SiteStep(NamedTuple):
    """One frame's result: (n, 4) ground rows frame, global id, x, y, and per camera (the site's order) the (k, 7)
    MOT rows frame, id, x, y, w, h, score of its boxes that belong to a global track."""

    ground: FloatArray
    boxes: list[FloatArray]


class SiteStepper:
    """The site's tracking one frame at a time: what `track_site` loops over and the multi-camera service's central
    linker feeds from its streams, so the recorded run and the online one are the same computation.

    Its state (the ground tracker, the measured view disagreement) is plain Python and numpy, so the linker can
    snapshot it with `pickle` into the transaction that commits the frame it has seen.
    Args as `track_site`'s, with the cameras (in the order `step` gets their frames) instead of the views.
    """

    def __init__(
        self,
        cameras: Sequence[GroundCamera],
        *,
        fps: float,
        unit_per_metre: float = 1.0,
        method: str = METHODS[0],
        min_views: int = 2,
        tracker: WorldTracker | None = None,
        view_tracklets: bool = True,
        view_disagreement_m: float | None = None,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        if fps <= 0 or not np.isfinite(fps):
            raise ValueError(f"fps must be a positive number, got {fps}")
        if min_views < 1:
            raise ValueError(f"min_views must be >= 1, got {min_views}")
        if view_disagreement_m is not None and not view_disagreement_m >= 0:
            raise ValueError(f"view_disagreement_m must be >= 0, got {view_disagreement_m}")
        self.cameras = list(cameras)
        self.fps = float(fps)
        self.unit_per_metre = float(unit_per_metre)
        self.method = method
        self.min_views = int(min_views)
        self.view_tracklets = bool(view_tracklets)
        self.view_disagreement_m = view_disagreement_m
        self.agreement = (
            None if view_disagreement_m is not None else ViewAgreement(COLD_DISAGREEMENT_M * unit_per_metre)
        )
        self.tracker = tracker or WorldTracker(unit_per_metre=unit_per_metre)

    def step(self, frame: int, seen: Sequence[ViewFrame]) -> SiteStep:
        """Track one frame (frame numbers must increase); `seen` has one `ViewFrame` per camera, in order."""
        if len(seen) != len(self.cameras):
            raise ValueError(f"step needs one ViewFrame per camera ({len(self.cameras)}), got {len(seen)}")
        pairs = zip(self.cameras, seen, strict=True)
        feet = [cam.foot_points(xywh_to_xyxy(np.asarray(s.xywh, np.float64))) for cam, s in pairs]
        view_idx = np.concatenate([np.full(len(s.score), v) for v, s in enumerate(seen)]).astype(np.int64)
        box_rows = np.concatenate([np.arange(len(s.score)) for s in seen]).astype(np.int64)
        points = np.concatenate([f.xy for f in feet]).reshape(-1, 2)
        covs = np.concatenate([f.covariance for f in feet]).reshape(-1, 2, 2)
        label = np.concatenate(
            [np.full(len(s.score), -1, np.int64) if s.tracklet is None else np.asarray(s.tracklet) for s in seen]
        ).astype(np.int64)
        agreement, tracker, min_views = self.agreement, self.tracker, self.min_views
        spread = agreement.sigma if agreement is not None else self.view_disagreement_m * self.unit_per_metre  # type: ignore[operator]
        disagreement = spread**2 * np.eye(2)
        time = frame / self.fps
        if self.method == "group-with-tracks":
            step, box_ids = tracker.update_views(
                time,
                view_idx,
                points,
                covs + disagreement,
                min_views=min_views,
                tracklets=label if self.view_tracklets else None,
            )
            if agreement is not None:
                agreement.observe(np.where(box_ids > 0, box_ids, -1), points)
        else:
            groups = associate_views(view_idx, points, covs + disagreement)
            if agreement is not None:
                agreement.observe(np.where(groups.views[groups.group] >= min_views, groups.group, -1), points)
            # one view's groups only continue a track that took their tracklet (`WorldTracker.update`)
            people = np.flatnonzero((groups.views >= min_views) | self.view_tracklets)
            members = None
            if self.view_tracklets:
                members = [label[(groups.group == g) & (label >= 0)].tolist() for g in people.tolist()]
            step = tracker.update(
                time, groups.xy[people], groups.covariance[people], members, groups.views[people] >= min_views
            )
            owner = np.zeros(len(people) + 1, np.int64)
            owner[step.rows] = step.ids
            box_ids = np.zeros(len(view_idx), np.int64)
            member = np.isin(groups.group, people)
            box_ids[member] = owner[np.searchsorted(people, groups.group[member])]
        ground = np.column_stack([np.full(len(step.ids), frame), step.ids, step.xy]).reshape(-1, 4)
        boxes = []
        for v, s in enumerate(seen):
            mine = np.flatnonzero((view_idx == v) & (box_ids > 0))
            r = box_rows[mine]
            xywh, score = np.asarray(s.xywh, np.float64).reshape(-1, 4), np.asarray(s.score, np.float64)
            boxes.append(np.column_stack([np.full(len(r), frame), box_ids[mine], xywh[r], score[r]]).reshape(-1, 7))
        return SiteStep(ground.astype(np.float64), boxes)

    def log_agreement(self) -> None:
        if self.agreement is not None:
            log.info("views disagree by %.3f m (estimated)", self.agreement.sigma / self.unit_per_metre)


def track_site(
    views: Sequence[SiteView],
    *,
    fps: float,
    unit_per_metre: float = 1.0,
    method: str = METHODS[0],
    min_views: int = 2,
    tracker: WorldTracker | None = None,
    view_tracklets: bool = True,
    view_disagreement_m: float | None = None,
) -> GlobalTracks:
    """Global tracks of a site's recorded detections.

    Args:
        views: the cameras (names must differ).
        fps: frames per second of the detections' frame numbers (time = frame / fps).
        unit_per_metre: ground units in a metre (1 for metres).
        method: one of `METHODS`.
        min_views: views that must see a group for it to be a person (1 trusts single views, and their ghosts).
        tracker: the ground tracker to use (default: `WorldTracker(unit_per_metre)`).
        view_tracklets: first track each camera on its own (trackid's tracker, in pixels, at `fps`), and let its
            tracklets steer the ground tracker by their measured reliability (`WorldTracker.trust`):
            track-then-link. IDF1 @ 1 m without / with: EPFL Terrace (25 fps) 38.2 / 85.4, WILDTRACK (2 fps) 89.1 /
            89.6 (`bench/multicam.py`).
        view_disagreement_m: how far (metres, standard deviation) two views put one person apart beyond their boxes'
            own jitter (calibration, feet hidden), added to each box's covariance when views are grouped. 0 splits
            people whose views disagree; too much pairs neighbours. None (default): measured on the site's own
            groups as they come (`ViewAgreement`), from a cold start of `COLD_DISAGREEMENT_M`.
    """
    names = [v.camera.name for v in views]
    if not views:
        raise ValueError("track_site needs at least one view")
    if len(set(names)) != len(names):
        raise ValueError(f"camera names must differ, got {names}")
    stepper = SiteStepper(
        [v.camera for v in views],
        fps=fps,
        unit_per_metre=unit_per_metre,
        method=method,
        min_views=min_views,
        tracker=tracker,
        view_tracklets=view_tracklets,
        view_disagreement_m=view_disagreement_m,
    )
    warnings = _input_warnings(views, min_views)
    keys = [camera_tracklet_keys(v, view.detections, fps) if view_tracklets else None for v, view in enumerate(views)]
    # per camera, once: its kept rows in frame order (each frame a slice of them)
    kept = [_rows_by_frame(view) for view in views]
    frames = np.unique(
        np.concatenate([view.detections.frame[order] for view, (order, _) in zip(views, kept, strict=True)])
    )
    ground: list[FloatArray] = []
    boxes: dict[str, list[FloatArray]] = {name: [] for name in names}
    for frame in frames.tolist():
        seen = []
        for v, (order, frame_of) in enumerate(kept):
            at = order[np.searchsorted(frame_of, frame) : np.searchsorted(frame_of, frame, side="right")]
            d, key = views[v].detections, keys[v]
            seen.append(ViewFrame(d.xywh[at], d.score[at], None if key is None else key[at]))
        step = stepper.step(frame, seen)
        ground.append(step.ground)
        for name, rows in zip(names, step.boxes, strict=True):
            boxes[name].append(rows)
    stepper.log_agreement()
    result = GlobalTracks(
        np.concatenate(ground) if ground else np.empty((0, 4)),
        {name: np.concatenate(rows) if rows else np.empty((0, 7)) for name, rows in boxes.items()},
        warnings,
    )
    if not len(result.ground):
        result.warnings.append("no global track was found: no frame had a person seen by enough views")
    speed = _walking_speed(result.ground, fps) / unit_per_metre
    if np.isfinite(speed) and not WALKING_M_S[0] <= speed <= WALKING_M_S[1]:
        result.warnings.append(
            f"people move a median {speed:.3g} m/s: is unit_per_metre ({unit_per_metre:g} ground units a metre) or "
            f"fps ({fps:g}) right? People walk at ~1.4 m/s; the tracker's motion settings are in metres and seconds"
        )
    for warning in result.warnings:
        log.warning("%s", warning)
    return result


def _rows_by_frame(view: SiteView) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The rows of the view's boxes that pass its `min_score`, ordered by frame (file order within one), and their
    frames: one frame's rows are the slice `searchsorted` finds, where a scan of every row each frame is quadratic."""
    d = view.detections
    keep = np.flatnonzero(d.score >= view.min_score)
    order = keep[np.argsort(d.frame[keep], kind="stable")]
    return order, d.frame[order]


def _walking_speed(ground: FloatArray, fps: float) -> float:
    """The median speed (ground units per second) of the tracks over half a second or more (so a position's jitter
    does not read as speed at 25 fps): each position against its track's first one 0.5-1 s later; NaN when too
    few."""
    lag = max(1, round(fps / 2))
    rows = ground[np.lexsort((ground[:, 0], ground[:, 1]))]
    key = rows[:, 1] * (4 * float(rows[:, 0].max(initial=0)) + 4 * lag) + rows[:, 0]
    later = np.minimum(np.searchsorted(key, key + lag), len(rows) - 1)
    gap = rows[later, 0] - rows[:, 0]
    paired = (rows[later, 1] == rows[:, 1]) & (gap >= lag) & (gap <= 2 * lag)
    if np.count_nonzero(paired) < 10:
        return float("nan")
    distance = np.linalg.norm(rows[later, 2:4] - rows[:, 2:4], axis=1)
    return float(np.median(distance[paired] * fps / gap[paired]))


def camera_tracklet_keys(v: int, detections: MotRows, fps: float) -> NDArray[np.int64]:
    """Per detection row, the key of the tracklet trackid's own tracker gave it in this camera (view v in the high
    bits, so keys are unique across cameras), -1 where it gave none (`CameraTracklets`, every frame 1..last)."""
    tracklets = CameraTracklets(fps)
    keys = np.full(len(detections), -1, np.int64)
    for f, rows in frame_rows(detections):
        ids = tracklets.update(f, detections.xywh[rows], detections.score[rows])
        keys[rows] = np.where(ids >= 0, (v << 32) + ids, -1)
    return keys


def frame_rows(detections: MotRows) -> Iterator[tuple[int, slice]]:
    """Every frame number 1..last of a detections file (sorted by frame) with the slice of its rows (empty for a
    frame without any): how a camera's recorded detections are replayed frame by frame."""
    starts = np.searchsorted(detections.frame, np.arange(1, int(detections.frame.max(initial=0)) + 2))
    for f in range(len(starts) - 1):
        yield f + 1, slice(int(starts[f]), int(starts[f + 1]))


class CameraTracklets:
    """One camera's own tracking, a frame at a time: which of trackid's tracks each detection belongs to.

    The tracker reports its own (filtered) boxes, so each frame's reported boxes are matched back to the detections
    by IoU (Hungarian, >= 0.5). An edge worker of the multi-camera service runs this on its camera; a recorded run
    runs it on every camera (`camera_tracklet_keys`): the same tracklets either way. Every frame must be given, in
    order, empty ones too (the tracker counts the frames a track is missed).
    """

    def __init__(self, fps: float) -> None:
        self.fps = float(fps)
        self.tracker = make_tracker("trackid", fps)

    def update(self, frame: int, xywh: FloatArray, score: FloatArray) -> NDArray[np.int64]:
        """Per detection, its track id in this camera (>= 1), -1 where the tracker reports none."""
        boxes = xywh_to_xyxy(np.asarray(xywh, np.float64).reshape(-1, 4))
        ids = np.full(len(boxes), -1, np.int64)
        out = self.tracker.update(Detections.from_arrays(boxes, np.asarray(score, np.float64), time=frame / self.fps))
        observed = out.score > 0
        if not observed.any() or not len(boxes):
            return ids
        overlap = iou_matrix(out.xyxy[observed], boxes)
        t, d = linear_sum_assignment(-overlap)
        good = overlap[t, d] >= 0.5
        ids[d[good]] = out.track_id[observed][t[good]]
        return ids


def _input_warnings(views: Sequence[SiteView], min_views: int) -> list[str]:
    warnings = []
    for view in views:
        d = view.detections
        if not len(d):
            warnings.append(f"camera {view.camera.name!r}: no detections")
        elif not (d.score >= view.min_score).any():
            warnings.append(
                f"camera {view.camera.name!r}: min_score {view.min_score:g} drops all {len(d)} detections "
                f"(scores {d.score.min():g} to {d.score.max():g})"
            )
    if len(views) < min_views:
        warnings.append(f"{len(views)} camera(s) but a person needs {min_views} views: nothing can be found")
    return warnings
