"""A site's recorded detections -> 3D trajectories in a run folder: what `trackid stereo run` runs.

The site file is `trackid multicam run`'s (every camera needs a full OpenCV calibration: a homography alone cannot
triangulate). The views are tracked into global tracks (`track_site`) and each global track's feet triangulated
(`multiview.triangulation`). With a persistence filter (`filter_model`: a `BoostedPersistence` file or a
`TransformerPersistence` ONNX file, `persistence.shipped.load_filter`) the site is run twice, without and with the
detections of transient per-camera tracks, so the report shows what the filter changed. The folder receives, each
atomically:
- `trajectories_3d.csv`: frame, time_s, global_id, x, y, z (ground units, z up), reprojection_px, views,
  x_triangulated, y_triangulated, for the run with the filter when one is given; with `smooth` (the default) x, y
  are each global track's positions smoothed with the world tracker's motion model (`multiview.smoothing`), and
  the triangulated ones stay beside them;
- `summary.json`: per run (`filter off`, `filter on`): global tracks, points, rejected and single-view points,
  detections the filter dropped, warnings;
- `report.html`: the same side by side, and with the filter a sample of its decisions in plain sentences
  (`persistence.explain`) beside `importance.png`, each one's frame importance over the track.
Cameras and the filter are loaded before the folder is touched, so a wrong file leaves an earlier run intact.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from trackid.artifacts import atomic_write_bytes, atomic_write_text
from trackid.multiview.persistence.explain import Explanation, explain
from trackid.multiview.persistence.models import PersistenceFilter
from trackid.multiview.persistence.post_filter import PostFiltered, drop_transient
from trackid.multiview.persistence.shipped import frame_rate_warning, load_filter
from trackid.multiview.site_tracking import SiteView, track_site
from trackid.multiview.smoothing import smooth_trajectories
from trackid.multiview.triangulation import Trajectories, require_projections, triangulate_tracks
from trackid.pipelines.multicam.run import load_views
from trackid.pipelines.multicam.site import SiteConfig
from trackid.reports.html import bullet_list, heading, image, page, table
from trackid.reports.plots import figure_png
from trackid.run_folder import RunFolder

__all__ = ["COMMAND", "FilterModelError", "StereoRun", "run_stereo"]

COMMAND = "stereo-run"
EXPLAINED = 6  # decisions the report explains
MAX_POINTS_LOST = 0.2  # a filter that removes more of the points than this is warned about
log = logging.getLogger(__name__)


class FilterModelError(ValueError):
    """The persistence filter's model file cannot be used (the message names it)."""


@dataclass(frozen=True)
class StereoRun:
    out: Path
    files: dict[str, Path]
    summary: dict[str, Any]


def run_stereo(
    site: SiteConfig,
    out: str | Path,
    *,
    filter_model: Path | None = None,
    smooth: bool = True,
    force: bool = False,
    on_stage: Callable[[str], None] | None = None,
) -> StereoRun:
    """Triangulate the site's global tracks into the run folder `out` (see the module).

    Raises:
        CalibrationError: a camera has no full calibration, or a calibration file is unusable.
        MotFormatError: a detections file is missing or malformed.
        FileNotFoundError, FilterModelError: the filter model is missing or cannot be used.
    """
    out = Path(out)
    views = load_views(site, on_camera=on_stage)
    require_projections([v.camera for v in views])  # before the folder is touched
    model = None
    if filter_model is not None:
        try:
            model = load_filter(filter_model)
        except ValueError as exc:
            raise FilterModelError(str(exc)) from None
    inputs = [c.detections for c in site.cameras if c.detections is not None]
    inputs += [Path(filter_model)] if filter_model is not None else []
    config = {**site.model_dump(mode="json"), "filter_model": None if filter_model is None else str(filter_model)}
    config["smooth"] = smooth
    folder = RunFolder(out, COMMAND, config, inputs, {"site": site.site}, force=force)
    with folder.running():
        figures, measured = _run(site, views)
        runs = {"filter off": figures}
        explained: list[Explanation] = []
        if model is not None:
            judged = [drop_transient(v, model, site.fps) for v in views]
            runs["filter on"], measured = _run(site, [j.view for j in judged], sum(j.dropped for j in judged))
            explained = _sample_decisions(model, judged)
            runs["filter on"]["filter"] = type(model).__name__
        if on_stage is not None:
            on_stage("triangulating")
        tracker = site.world.tracker(site.unit_per_metre)
        trajectories = smooth_trajectories(measured, site.fps, tracker) if smooth else measured
        warnings = list(trajectories.warnings) + _filter_warnings(site, runs, filter_model)
        for warning in warnings:
            log.warning("%s", warning)
        summary = {"site": site.site, "smoothed": smooth, "runs": runs, "warnings": warnings}
        files = {
            "trajectories": atomic_write_text(out / "trajectories_3d.csv", _csv(trajectories, measured, site.fps)),
            "summary": atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n"),
            "report": atomic_write_text(out / "report.html", _report(site, runs, explained, model)),
        }
        if explained:
            files["importance"] = atomic_write_bytes(out / "importance.png", _importance_png(explained))
        if on_stage is not None:
            on_stage("writing")
        files["manifest"] = folder.complete(files, warnings, points=len(trajectories.points))
    return StereoRun(out, files, summary)


def _run(site: SiteConfig, views: list[SiteView], dropped: int = 0) -> tuple[dict[str, Any], Trajectories]:
    """The site tracked and triangulated: (its figures for summary.json, its trajectories)."""
    tracks = track_site(views, **site.tracking_options())
    trajectories = triangulate_tracks(tracks, [v.camera for v in views])
    log.info("%d global tracks, %d triangulated points", len(tracks.ids), len(trajectories.points))
    return {
        "global_tracks": len(tracks.ids),
        "points": len(trajectories.points),
        "rejected_by_reprojection": trajectories.rejected,
        "off_the_ground": trajectories.off_ground,
        "single_view": trajectories.single_view,
        "detections_dropped": dropped,
        "median_reprojection_px": round(float(np.median(trajectories.points[:, 5])), 2)
        if len(trajectories.points)
        else None,
        "warnings": tracks.warnings + trajectories.warnings,
    }, trajectories


def _csv(trajectories: Trajectories, measured: Trajectories, fps: float) -> str:
    lines = ["frame,time_s,global_id,x,y,z,reprojection_px,views,x_triangulated,y_triangulated\n"]
    rows = np.column_stack([trajectories.points, measured.points[:, 2:4]])
    for frame, gid, x, y, z, error, views, tx, ty in rows.tolist():
        lines.append(
            f"{int(frame)},{frame / fps:.3f},{int(gid)},{x:.4f},{y:.4f},{z:.4f},{error:.2f},{int(views)},"
            f"{tx:.4f},{ty:.4f}\n"
        )
    return "".join(lines)


def _filter_warnings(site: SiteConfig, runs: dict[str, dict[str, Any]], filter_model: Path | None) -> list[str]:
    """What the summary must say about a filter that may not suit the site."""
    out = [w for w in [frame_rate_warning(filter_model, site.fps)] if w is not None]
    if "filter on" in runs and runs["filter off"]["points"]:
        lost = 1 - runs["filter on"]["points"] / runs["filter off"]["points"]
        if lost > MAX_POINTS_LOST:
            out.append(
                f"the filter removed {lost:.0%} of the triangulated points: check that it suits this site's detector "
                "and frame rate before trusting the filtered trajectories"
            )
    return out


def _sample_decisions(model: PersistenceFilter, judged: list[PostFiltered]) -> list[Explanation]:
    """Up to `EXPLAINED` // 2 decisions of each kind (transient, persistent), longest tracks first, explained."""
    out = []
    for verdict in (0, 1):
        tracks = [t for j in judged for t, v in zip(j.tracks, j.verdicts, strict=True) if v == verdict and len(t) > 2]
        for track in sorted(tracks, key=len, reverse=True)[: EXPLAINED // 2]:
            out.append(explain(model, track))
    return out


def _importance_png(explained: list[Explanation]) -> bytes:
    fig = Figure(figsize=(8, 1.6 * len(explained) + 0.6))
    axes = fig.subplots(len(explained), 1, squeeze=False)[:, 0]
    for ax, e in zip(axes, explained, strict=True):
        ax.bar(e.frames, e.importance, width=max(1.0, float(np.ptp(e.frames)) / max(len(e.frames), 1)))
        ax.set_title(f"{e.sequence} track {e.track_id}: p(persistent) {e.persistent:.2f}", fontsize=9)
        ax.set_ylabel("importance")
    axes[-1].set_xlabel("frame")
    fig.tight_layout()
    return figure_png(fig)


def _report(
    site: SiteConfig, runs: dict[str, dict[str, Any]], explained: list[Explanation], model: PersistenceFilter | None
) -> str:
    keys = ["global_tracks", "points", "rejected_by_reprojection", "off_the_ground", "single_view"]
    keys += ["detections_dropped", "median_reprojection_px"]
    rows = [[k, *(str(r[k]) for r in runs.values())] for k in keys]
    parts = [heading(f"3D trajectories of {site.site}"), table(["", *runs], rows)]
    if explained:
        parts += [
            heading("The filter's decisions, explained (a sample)", 2),
            bullet_list(e.sentence for e in explained),
            heading(f"Frame importance ({model.importance_method if model else ''}) over each track", 2),
            image("importance.png"),
        ]
    return page(f"stereo {site.site}", *parts)
