"""3D trajectories on WILDTRACK (7 calibrated views): triangulated feet against the ground-plane truth, with and
without the persistence filter.

    .venv/bin/python bench/stereo.py [--frames 400] [--no-append]

The site's SIMULATED detections (`../shared/data/multicam/wildtrack`, see its README) go through `track_site`
(cross-view association and the world tracker of [cross-camera]); every (frame, global id) seen by two views or
more is triangulated from its boxes' foot points (`multiview.triangulation`, DLT over all views, reprojection and
ground checks; also without the ground check, to show what it removes).
With the filter, each view is first tracked on its own (trackid) and the detections of the tracks the persistence
filter calls transient are removed; the filter is the one `trackid stereo run --filter` takes by default (`shipped`,
or `--filter`: `boosted`, `transformer` or a file), fitted on the MOT15 / MOT17 / PETS tracks of
`bench/persistence.py` (real detectors; none of WILDTRACK). Scored per frame against the ground truth:
- the ground error of each point matched (Hungarian, within 1 m) to a person: median and 90th percentile;
- spurious points: further than 1 m from every person in the frame;
- people covered: the share of ground-truth (frame, person) pairs with a matched point.
The site tracker's own ground positions (homography feet fused on the ground) are scored the same way for reference.
Smoothing (`multiview.smoothing`: the world tracker's constant-velocity model, forward filter and backward smoother,
the tracker's defaults) is scored on the triangulated feet, and in a second table on the site tracker's ground
positions of WILDTRACK (2 fps) and of EPFL Terrace (25 fps, homographies only: no triangulation there).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from scipy.optimize import linear_sum_assignment

from multicam import terrace, wildtrack
from report import append_section
from trackid.multiview.persistence.post_filter import drop_transient
from trackid.multiview.persistence.shipped import filter_file, load_filter
from trackid.multiview.site_tracking import track_site
from trackid.multiview.smoothing import smooth_ground, smooth_trajectories
from trackid.multiview.triangulation import triangulate_tracks
from trackid.multiview.world_tracking import WorldTracker

GATE_M = 1.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=None, help="first N frames only (default: all 400)")
    parser.add_argument("--filter", default="shipped", help="the persistence filter, as `trackid stereo run` takes it")
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args(argv)
    site = wildtrack()
    views = site.views(args.frames)
    model = load_filter(filter_file(args.filter))
    rows = []
    filtered = [drop_transient(v, model, site.fps).view for v in views]
    for label, site_views in (("filter off", views), ("filter on", filtered)):
        tracks = track_site(site_views, fps=site.fps, unit_per_metre=site.per_metre)
        trajectories = triangulate_tracks(tracks, site.cameras)
        unchecked = triangulate_tracks(tracks, site.cameras, ground_check=None)
        smoothed = smooth_trajectories(trajectories, site.fps, WorldTracker(unit_per_metre=site.per_metre))
        checks = f"{trajectories.rejected} + {trajectories.off_ground}"
        for kind, points, rejected in (
            ("triangulated feet", trajectories.points[:, :4], checks),
            ("triangulated, smoothed (world tracker's model)", smoothed.points[:, :4], checks),
            ("triangulated, no ground check", unchecked.points[:, :4], f"{unchecked.rejected} + 0"),
            ("site tracker (ground)", tracks.ground, "-"),
        ):
            rows.append((label, kind, _score(points, site.truth, site.per_metre, args.frames), rejected))
            print(rows[-1], flush=True)
    base = {kind: s["spurious"] for label, kind, s, _ in rows if label == "filter off"}
    table = (
        "| filter | positions | points | median ground error (m) | p90 (m) | spurious points (> 1 m from everyone) | "
        "spurious change | people covered | rejected by reprojection + off the ground |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
    )
    for label, kind, s, rejected in rows:
        change = (s["spurious"] - base[kind]) / max(base[kind], 1)
        table += (
            f"| {label} | {kind} | {s['points']} | {s['median']:.3f} | {s['p90']:.3f} | {s['spurious']} "
            f"({s['spurious'] / max(s['points'], 1):.1%}) | {change:+.0%} | {s['covered']:.1%} | {rejected} |\n"
        )
    spurious = {(label, kind): s["spurious"] for label, kind, s, _ in rows}
    raw = spurious[("filter off", "triangulated, no ground check")]
    table += (
        f"\nSpurious triangulated points against plain triangulation ({raw}): ground check "
        f"{spurious[('filter off', 'triangulated feet')] / max(raw, 1) - 1:+.0%}, ground check and filter "
        f"{spurious[('filter on', 'triangulated feet')] / max(raw, 1) - 1:+.0%}.\n"
    )
    table += "\n" + _smoothing_table(args.frames)
    print(table)
    if not args.no_append:
        append_section(
            "stereo.py",
            [
                f"WILDTRACK, 7 views, {args.frames or 400} frames at 2 fps, SIMULATED detections (score >= 0.5); "
                "positions matched to the ground truth per frame (Hungarian, 1 m gate)",
                f"filter: {args.filter} ({type(model).__name__}, fitted on the MOT15/MOT17/PETS tracks of "
                "bench/persistence.py); the detections of per-view tracks it calls transient removed before the site "
                "is tracked",
            ],
            table,
        )
    return 0


def _smoothing_table(frames: int | None) -> str:
    """Each site's ground positions (the site tracker's) scored as measured and smoothed."""
    out = (
        "| site | positions | median ground error (m) | p90 (m) | spurious | people covered |\n"
        "|---|---|---|---|---|---|\n"
    )
    for site in (wildtrack(), terrace()):
        tracks = track_site(site.views(frames), fps=site.fps, unit_per_metre=site.per_metre)
        tracker = WorldTracker(unit_per_metre=site.per_metre)
        for kind, points in (
            ("site tracker (ground)", tracks.ground),
            ("site tracker, smoothed", smooth_ground(tracks.ground, site.fps, tracker)),
        ):
            s = _score(points, site.truth, site.per_metre, frames)
            out += (
                f"| {site.name} ({site.fps:g} fps) | {kind} | {s['median']:.3f} | {s['p90']:.3f} | {s['spurious']} "
                f"| {s['covered']:.1%} |\n"
            )
    return out


def _score(points: np.ndarray, truth: np.ndarray, per_metre: float, frames: int | None) -> dict[str, float]:
    """points (M, 4) frame, id, X, Y against truth (frame, id, X, Y), in ground units (`per_metre` a metre)."""
    if frames is not None:
        truth = truth[truth[:, 0] <= frames]
    errors, spurious, covered = [], 0, 0
    for frame in np.unique(truth[:, 0]):
        p = points[points[:, 0] == frame, 2:4] / per_metre
        t = truth[truth[:, 0] == frame, 2:4] / per_metre
        if not len(p):
            continue
        distance = np.linalg.norm(p[:, None] - t[None], axis=2)
        spurious += int((distance.min(axis=1) > GATE_M).sum())
        rows, cols = linear_sum_assignment(np.where(distance <= GATE_M, distance, 1e6))
        ok = distance[rows, cols] <= GATE_M
        errors += distance[rows, cols][ok].tolist()
        covered += int(ok.sum())
    e = np.array(errors) if errors else np.array([np.nan])
    return {
        "points": len(points),
        "median": float(np.median(e)),
        "p90": float(np.percentile(e, 90)),
        "spurious": spurious,
        "covered": covered / max(len(truth), 1),
    }


if __name__ == "__main__":
    sys.exit(main())
