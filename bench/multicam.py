"""Multi-camera people on the ground plane (issue #17): cross-view fusion on WILDTRACK and EPFL Terrace.

    .venv/bin/python bench/multicam.py               # prints the table and appends it to BENCHMARKS.md
    .venv/bin/python bench/multicam.py --no-append --frames 100

Inputs are `../shared/data/multicam/`'s per-view detections, which are SIMULATED from the ground truth (misses in
bursts, jittered and cut boxes, double and group boxes, clutter), and the real calibrations. Per frame, each view's
boxes (score >= --min-score) become ground points (`GroundCamera.foot_points`); two fusions are compared on the same
points, keeping people seen by at least two views:
- **greedy** (the seed's approach, the issue's probe): the highest-scoring box takes, from each other view, its
  nearest box within 1.2 m, and their mean is a person;
- **ours** (`trackid.multiview.associate_views`): a minimum-cost assignment per view on the Mahalanobis distance,
  chi-square gated, information-weighted positions.
Scored with py-motmetrics (`trackid.eval.ground`): MODA and MODP at 0.5 m and 1 m (detection scores; tracking and
IDF1 come with the world tracker). EPFL Terrace's ground unit is the homographies' own, taken as 50.83 per metre
(GNN-CCA's configuration for Terrace).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from datasets import DATA
from report import append_section  # bench/ is on sys.path when a script here runs
from trackid.eval.ground import ground_metrics
from trackid.multiview import GroundCamera, associate_views

WILDTRACK_FILES = ["CVLab1", "CVLab2", "CVLab3", "CVLab4", "IDIAP1", "IDIAP2", "IDIAP3"]


@dataclass(frozen=True)
class Site:
    name: str
    views: list[str]
    cameras: list[GroundCamera]
    per_metre: float
    truth: NDArray[np.float64]
    detections: dict[str, NDArray[np.float64]]


def wildtrack(**options: object) -> Site:
    root = DATA / "multicam" / "wildtrack"
    views = [f"WILDTRACK-C{v + 1}" for v in range(7)]
    cameras = [
        GroundCamera.from_opencv(
            view,
            root / "cameras" / "intrinsic_zero" / f"intr_{name}.xml",
            root / "cameras" / "extrinsic" / f"extr_{name}.xml",
            unit=0.01,
            image_size=(1920, 1080),
            **options,
        )
        for view, name in zip(views, WILDTRACK_FILES, strict=True)
    ]
    return Site("WILDTRACK", views, cameras, 1.0, _truth(root), _detections(root, views))


def terrace(**options: object) -> Site:
    root = DATA / "multicam" / "epfl_terrace"
    views = [f"terrace1-c{v}" for v in range(4)]
    cameras = [
        GroundCamera.from_homography(view, root / "cameras" / view / "Homography.txt", image_size=(360, 288), **options)
        for view in views
    ]
    return Site("EPFL Terrace", views, cameras, 50.83, _truth(root), _detections(root, views))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--min-score", type=float, default=0.5)
    parser.add_argument("--frames", type=int, default=None, help="only the first N frames of each set")
    parser.add_argument(
        "--foot-sigma",
        type=float,
        nargs=2,
        default=None,
        help="GroundCamera.foot_sigma (share of box w, h); default: its own",
    )
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args(argv)
    header = "| set | fusion | MODA @ 0.5 m | MODP @ 0.5 m | MODA @ 1 m | MODP @ 1 m | people / frame | ms / frame |"
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    options = {} if args.foot_sigma is None else {"foot_sigma": tuple(args.foot_sigma)}
    for site in (wildtrack(**options), terrace(**options)):
        frames = np.unique(site.truth[:, 0])
        if args.frames is not None:
            frames = frames[: args.frames]
        truth = site.truth[np.isin(site.truth[:, 0], frames)]
        for name, fuse in (("greedy, 1.2 m", _greedy), ("ours: assignment per view", _assigned)):
            start = time.perf_counter()
            found = np.concatenate([_frame(site, f, fuse, args.min_score) for f in frames])
            elapsed = 1000 * (time.perf_counter() - start) / len(frames)
            half, one = (ground_metrics(truth, found, m * site.per_metre) for m in (0.5, 1.0))
            lines.append(
                f"| {site.name} | {name} | {half['MODA']:.1f} | {half['MODP']:.1f} | {one['MODA']:.1f} | "
                f"{one['MODP']:.1f} | {len(found) / len(frames):.1f} (truth {len(truth) / len(frames):.1f}) | "
                f"{elapsed:.1f} |"
            )
    table = "\n".join(lines)
    print(table)
    if not args.no_append:
        append_section(
            "multicam.py",
            [
                "SIMULATED per-view detections (see the data README), real calibrations; per frame, people seen by "
                f">= 2 views; detections with score >= {args.min_score}; foot-point pixel sigma {args.foot_sigma}",
                "greedy: the highest-scoring box takes each other view's nearest box within 1.2 m (the issue's "
                "probe); ours: trackid.multiview.associate_views (min-cost assignment per view, Mahalanobis, "
                "chi-square 0.99)",
                "MODA / MODP by py-motmetrics (trackid.eval.ground), per frame, ids ignored; EPFL ground unit taken "
                "as 50.83 per metre",
            ],
            table,
        )
    return 0


def _frame(site: Site, frame: float, fuse: Callable[..., NDArray[np.float64]], min_score: float) -> NDArray[np.float64]:
    views, xy, cov, score = [], [], [], []
    for v, (view, camera) in enumerate(zip(site.views, site.cameras, strict=True)):
        det = site.detections[view]
        det = det[(det[:, 0] == frame) & (det[:, 6] >= min_score)]
        found = camera.foot_points(
            np.column_stack([det[:, 2], det[:, 3], det[:, 2] + det[:, 4], det[:, 3] + det[:, 5]])
        )
        views.append(np.full(len(det), v))
        xy.append(found.xy)
        cov.append(found.covariance)
        score.append(det[:, 6])
    points = fuse(
        np.concatenate(views), np.concatenate(xy), np.concatenate(cov), np.concatenate(score), 1.2 * site.per_metre
    )
    return np.column_stack([np.full(len(points), frame), np.arange(len(points)), points])


def _assigned(views, xy, cov, score, radius) -> NDArray[np.float64]:
    groups = associate_views(views, xy, cov)
    return groups.xy[groups.views >= 2]


def _greedy(views, xy, cov, score, radius) -> NDArray[np.float64]:
    usable = np.isfinite(xy).all(axis=1)
    taken = ~usable
    people = []
    for i in np.argsort(-score).tolist():
        if taken[i]:
            continue
        members = [i]
        for v in np.unique(views):
            if v == views[i]:
                continue
            free = np.flatnonzero(~taken & (views == v))
            if free.size:
                d = np.linalg.norm(xy[free] - xy[i], axis=1)
                if d.min() <= radius:
                    members.append(int(free[np.argmin(d)]))
        if len(members) >= 2:
            taken[members] = True
            people.append(xy[members].mean(axis=0))
        else:
            taken[i] = True
    return np.array(people).reshape(-1, 2)


def _truth(root: Path) -> NDArray[np.float64]:
    return np.loadtxt(root / "ground_plane" / "gt.txt", delimiter=",", ndmin=2)


def _detections(root: Path, views: list[str]) -> dict[str, NDArray[np.float64]]:
    return {view: np.loadtxt(root / "det" / view / "det" / "det.txt", delimiter=",", ndmin=2) for view in views}


if __name__ == "__main__":
    raise SystemExit(main())
