"""Global tracks -> 3D trajectories: each person's foot point triangulated from every view that sees them.

A ground-plane homography maps one view's foot point to the ground; with full calibrations (`GroundCamera.projection`)
the views of one person can be intersected instead (`geometry.triangulate`, the DLT over all of them at once), which
averages the views' box errors in 3D rather than on the ground, and tells by the reprojection error when the views'
boxes do not belong to one point (a wrong association, a box cut by the image edge, a ghost). A point whose mean
reprojection error exceeds `max_reprojection` of its boxes' median height is rejected and counted: a share of the
box, not pixels, so a person far from the cameras is held to the same standard as one close by. Before that, a point
seen by three views or more whose views disagree is intersected once more without the view furthest from it, and a
box cut by the image's bottom edge does not vote for the feet it does not show. Last, feet belong on the ground: a
point far above or below it, for the site (`GROUND_CHECK`), is two views that do not see one person.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from trackid.geometry import triangulate
from trackid.multiview.cameras import CalibrationError, GroundCamera
from trackid.multiview.site_tracking import GlobalTracks

__all__ = ["GROUND_CHECK", "MAX_REPROJECTION", "Trajectories", "require_projections", "triangulate_tracks"]

MAX_REPROJECTION = 0.1
"""Mean reprojection error allowed, as a share of the boxes' median height; WILDTRACK's labelled boxes reproject
within 3 % (5.8 px of ~200 px people) and its simulated detections' jitter is ~3 % of the box."""

GROUND_CHECK = 3.0
"""Feet lie on the ground: a point further from it than this many times the site's median height of its points
is refused. Two views always intersect up to a small reprojection error, so the height is their only check: on
WILDTRACK (120 frames) the gate at 3x the median (~0.1 m) removes 72 % of the points more than 1 m from everyone
and keeps 96 % of the others (`bench/stereo.py`). Relative to the site's own median, so a coarser calibration widens
it by itself."""


@dataclass(frozen=True)
class Trajectories:
    """`points`: (M, 7) frame, global id, X, Y, Z (ground units, Z up), mean reprojection error (px), views;
    `rejected`: points refused by the reprojection check; `off_ground`: refused by the ground check;
    `single_view`: points seen by one view only (not triangulable, left out)."""

    points: NDArray[np.float64]
    rejected: int = 0
    off_ground: int = 0
    single_view: int = 0
    warnings: list[str] = field(default_factory=list)


def triangulate_tracks(
    tracks: GlobalTracks,
    cameras: Sequence[GroundCamera],
    *,
    max_reprojection: float = MAX_REPROJECTION,
    ground_check: float | None = GROUND_CHECK,
) -> Trajectories:
    """The foot point of every (frame, global id) of `tracks` seen by two views or more, triangulated (see the
    module; `ground_check` None turns the height check off)."""
    require_projections(cameras)
    rows = [tracks.views.get(c.name, np.empty((0, 7))) for c in cameras]
    keys = np.unique(np.concatenate([r[:, :2] for r in rows]), axis=0)
    if not len(keys):
        return Trajectories(np.empty((0, 7)), warnings=["no global track to triangulate"])
    pixels = np.full((len(cameras), len(keys), 2), np.nan)
    heights = np.full((len(cameras), len(keys)), np.nan)
    for v, (r, camera) in enumerate(zip(rows, cameras, strict=True)):
        if not len(r):
            continue
        at = _index_of(keys, r[:, :2])
        feet = np.column_stack([r[:, 2] + r[:, 4] / 2, r[:, 3] + r[:, 5]])
        if camera.image_size is not None:  # a box cut by the image's bottom edge does not show the feet
            feet[r[:, 3] + r[:, 5] >= camera.image_size[1] - 1] = np.nan
        pixels[v, at] = feet
        heights[v, at] = r[:, 5]
    projections = np.stack([np.asarray(c.projection) for c in cameras])
    with np.errstate(invalid="ignore"):
        scale = np.nanmedian(np.where(np.isfinite(pixels[..., 0]), heights, np.nan), axis=0)
    points, error, views = triangulate(projections, pixels)
    # one robust round: where the views disagree, drop the view furthest from the point and intersect the rest
    retry = (views >= 3) & (error > max_reprojection * scale)
    if retry.any():
        pixels = _without_worst_view(projections, pixels, points, retry)
        points[retry], error[retry], views[retry] = (a[retry] for a in triangulate(projections, pixels))
    two = views >= 2
    good = two & (error <= max_reprojection * scale)
    rejected = int((two & ~good).sum())
    off_ground = 0
    if ground_check is not None and good.any():
        height = np.abs(points[:, 2])
        grounded = height <= ground_check * float(np.median(height[good]))
        off_ground = int((good & ~grounded).sum())
        good &= grounded
    table = np.column_stack([keys, points, error, views])[good]
    warnings = []
    if rejected > 0.2 * max(int(two.sum()), 1):
        warnings.append(
            f"{rejected} of {int(two.sum())} triangulated points reprojected further than {max_reprojection:.0%} of "
            "their boxes' height: are the calibrations those of these views?"
        )
    return Trajectories(table, rejected, off_ground, int((~two).sum()), warnings)


def require_projections(cameras: Sequence[GroundCamera]) -> None:
    """CalibrationError naming the cameras without a full calibration (a homography alone cannot triangulate)."""
    missing = [c.name for c in cameras if c.projection is None]
    if missing:
        raise CalibrationError(
            f"{', '.join(missing)}: triangulation needs full calibrations, an OpenCV calibration (intrinsics and "
            "extrinsics) per camera, not a homography"
        )


def _without_worst_view(
    projections: NDArray[np.float64], pixels: NDArray[np.float64], points: NDArray[np.float64], which: NDArray[np.bool_]
) -> NDArray[np.float64]:
    """`pixels` with, for the points `which`, the view that reprojects furthest from `points` blanked out."""
    homogeneous = np.column_stack([points, np.ones(len(points))])
    projected = np.einsum("vij,nj->vni", projections, homogeneous)
    with np.errstate(divide="ignore", invalid="ignore"):
        residual = np.linalg.norm(projected[..., :2] / projected[..., 2:] - pixels, axis=2)
    worst = np.argmax(np.where(np.isfinite(residual), residual, -1.0), axis=0)
    out = pixels.copy()
    columns = np.flatnonzero(which)
    out[worst[columns], columns] = np.nan
    return out


def _index_of(keys: NDArray[np.float64], rows: NDArray[np.float64]) -> NDArray[np.int64]:
    """Row of `keys` (unique (frame, id) pairs, sorted) of each of `rows` (pairs among them)."""
    width = keys[:, 1].max() + 1
    return np.searchsorted(keys[:, 0] * width + keys[:, 1], rows[:, 0] * width + rows[:, 1]).astype(np.int64)
