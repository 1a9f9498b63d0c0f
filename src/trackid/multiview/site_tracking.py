"""One site's views -> global tracks: every person gets one id on the ground plane and in every view that sees them.

This is what `trackid multicam run` and the bench call. Each view brings its camera and its recorded detections;
the result is the ground-plane tracks (frame, id, x, y) and each view's boxes carrying the global id (MOT rows), so
both the ground-plane metrics and the per-view TrackEval scores read one result.

`fuse-then-track`: per frame, the views' foot points are grouped by `associate_views` (a view gives a person at most
one box), groups seen by `min_views` views are people, and `WorldTracker` links them over time; a box takes the id
of the track its group fed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from trackid.multiview.association import associate_views
from trackid.multiview.cameras import GroundCamera
from trackid.multiview.world_tracking import WorldTracker
from trackid.sources.motchallenge import MotRows

__all__ = ["METHODS", "GlobalTracks", "SiteView", "track_site"]

FloatArray = NDArray[np.float64]
METHODS = ("fuse-then-track",)
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


def track_site(
    views: Sequence[SiteView],
    *,
    fps: float,
    unit_per_metre: float = 1.0,
    method: str = "fuse-then-track",
    min_views: int = 2,
    tracker: WorldTracker | None = None,
) -> GlobalTracks:
    """Global tracks of a site's recorded detections.

    Args:
        views: the cameras (names must differ).
        fps: frames per second of the detections' frame numbers (time = frame / fps).
        unit_per_metre: ground units in a metre (1 for metres).
        method: one of `METHODS`.
        min_views: views that must see a group for it to be a person (1 trusts single views, and their ghosts).
        tracker: the ground tracker to use (default: `WorldTracker(unit_per_metre)`).
    """
    names = [v.camera.name for v in views]
    if not views:
        raise ValueError("track_site needs at least one view")
    if len(set(names)) != len(names):
        raise ValueError(f"camera names must differ, got {names}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if fps <= 0 or not np.isfinite(fps):
        raise ValueError(f"fps must be a positive number, got {fps}")
    if min_views < 1:
        raise ValueError(f"min_views must be >= 1, got {min_views}")
    warnings = _input_warnings(views, min_views)
    tracker = tracker or WorldTracker(unit_per_metre=unit_per_metre)
    kept = [v.detections.score >= v.min_score for v in views]
    frames = np.unique(np.concatenate([v.detections.frame[k] for v, k in zip(views, kept, strict=True)]))
    ground: list[FloatArray] = []
    boxes: dict[str, list[FloatArray]] = {name: [] for name in names}
    for frame in frames.tolist():
        view_of, xy, cov, rows = [], [], [], []
        for v, (view, keep) in enumerate(zip(views, kept, strict=True)):
            at = np.flatnonzero(keep & (view.detections.frame == frame))
            xywh = view.detections.xywh[at]
            found = view.camera.foot_points(np.column_stack([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]]))
            view_of.append(np.full(len(at), v))
            xy.append(found.xy)
            cov.append(found.covariance)
            rows.append(at)
        view_idx, box_rows = np.concatenate(view_of), np.concatenate(rows)
        groups = associate_views(view_idx, np.concatenate(xy), np.concatenate(cov))
        people = np.flatnonzero(groups.views >= min_views)
        step = tracker.update(frame / fps, groups.xy[people], groups.covariance[people])
        ground.append(np.column_stack([np.full(len(step.ids), frame), step.ids, step.xy]))
        for track_id, person in zip(step.ids.tolist(), people[step.rows].tolist(), strict=True):
            for b in np.flatnonzero(groups.group == person).tolist():
                view = views[int(view_idx[b])]
                r = int(box_rows[b])
                d = view.detections
                boxes[view.camera.name].append(np.r_[frame, track_id, d.xywh[r], d.score[r]])
    result = GlobalTracks(
        np.concatenate(ground) if ground else np.empty((0, 4)),
        {name: np.array(rows).reshape(-1, 7) for name, rows in boxes.items()},
        warnings,
    )
    if not len(result.ground):
        result.warnings.append("no global track was found: no frame had a person seen by enough views")
    for warning in result.warnings:
        log.warning("%s", warning)
    return result


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
