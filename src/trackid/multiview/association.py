"""Cross-view association at one time step: which boxes of different views are one person on the ground.

Each box is a ground point with a covariance (`GroundCamera.foot_points`). Views are added one at a time: the
groups built so far and the new view's boxes are matched by a minimum-cost assignment (scipy's Hungarian solver) on
the Mahalanobis distance between a group's fused position and a box, gated by a chi-square bound. Because each view
is one assignment, a view gives a group at most one box, and no box is taken by two groups: the constraint that
greedy nearest-neighbour fusion breaks (two boxes of one view, one person). A group's position is the
information-weighted mean of its boxes' points, so a near, certain view counts more than a far one.

The distance is in units of each point's own spread, so the same gate serves ground planes in metres and in a
homography's own units, and frames 0.5 s or 40 ms apart.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import linear_sum_assignment
from scipy.stats import chi2

__all__ = ["GroundGroups", "ViewAgreement", "associate_views"]

FloatArray = NDArray[np.float64]
_UNMATCHED = 1e9


@dataclass(frozen=True)
class GroundGroups:
    """`group[i]` is box i's group (0..n_groups-1, -1 for a box without a usable ground point); each group's fused
    position, covariance and how many views saw it."""

    group: NDArray[np.int64]
    xy: FloatArray
    covariance: FloatArray
    views: NDArray[np.int64]


def associate_views(
    views: ArrayLike,
    xy: ArrayLike,
    covariance: ArrayLike,
    *,
    gate_probability: float = 0.99,
    tracklets: Sequence[Sequence[int]] | None = None,
    tracklet_bonus: float = 4.0,
) -> GroundGroups:
    """Group boxes of different views that stand on one ground point.

    Args:
        views: (N,) the view of each box.
        xy, covariance: (N, 2) ground points and (N, 2, 2) their covariances; rows with NaN are left out.
        gate_probability: a box joins a group only if its Mahalanobis distance lies within this share of the
            chi-square(2) distribution. Higher joins more boxes across views (fewer split people, more merged pairs).
        tracklets: per row, keys of the per-camera tracklets it belongs to (a box: its own; a track's prediction
            given as a row of its own view: every tracklet it took so far). A box costs `tracklet_bonus` less for a
            group holding its key (still gated): its camera's tracker already said which person it continues.
    """
    view = np.asarray(views).reshape(-1)
    points = np.asarray(xy, np.float64).reshape(-1, 2)
    cov = np.asarray(covariance, np.float64).reshape(-1, 2, 2)
    if not (len(view) == len(points) == len(cov)):
        raise ValueError(
            f"views, xy and covariance must have one row per box, got {len(view)}, {len(points)}, {len(cov)}"
        )
    if not 0 < gate_probability < 1:
        raise ValueError(f"gate_probability must be in (0, 1), got {gate_probability}")
    if tracklets is not None and len(tracklets) != len(view):
        raise ValueError(f"tracklets must have one entry per box, got {len(tracklets)} for {len(view)}")
    gate = float(chi2.ppf(gate_probability, df=2))
    held: list[set[int]] = []  # per group: the tracklet keys of its members
    usable = np.isfinite(points).all(axis=1) & np.isfinite(cov).all(axis=(1, 2))
    group = np.full(len(view), -1, np.int64)
    info: list[FloatArray] = []  # per group: sum of inverse covariances, and of inverse covariance x point
    weighted: list[FloatArray] = []
    counts: list[int] = []
    for v in np.unique(view[usable]):
        rows = np.flatnonzero(usable & (view == v))
        inverse = np.linalg.inv(cov[rows] + 1e-12 * np.eye(2))
        if info:
            group_cov = np.linalg.inv(np.stack(info))
            group_xy = np.einsum("gij,gj->gi", group_cov, np.stack(weighted))
            diff = points[rows][None, :, :] - group_xy[:, None, :]
            combined = np.linalg.inv(group_cov[:, None] + cov[rows][None, :])
            d2 = np.einsum("gbi,gbij,gbj->gb", diff, combined, diff)
            cost = np.where(d2 <= gate, d2, _UNMATCHED)
            if tracklets is not None:
                for b, r in enumerate(rows.tolist()):
                    for g in {g for g, keys in enumerate(held) if keys.intersection(tracklets[r])}:
                        if cost[g, b] < _UNMATCHED:
                            cost[g, b] -= tracklet_bonus
            g_idx, b_idx = linear_sum_assignment(cost)
            keep = cost[g_idx, b_idx] < _UNMATCHED
            for g, b in zip(g_idx[keep].tolist(), b_idx[keep].tolist(), strict=True):
                group[rows[b]] = g
                info[g] = info[g] + inverse[b]
                weighted[g] = weighted[g] + inverse[b] @ points[rows[b]]
                counts[g] += 1
                if tracklets is not None:
                    held[g].update(tracklets[rows[b]])
        for b in np.flatnonzero(group[rows] < 0).tolist():
            group[rows[b]] = len(info)
            info.append(inverse[b])
            weighted.append(inverse[b] @ points[rows[b]])
            counts.append(1)
            held.append(set() if tracklets is None else set(tracklets[rows[b]]))
    if not info:
        return GroundGroups(group, np.empty((0, 2)), np.empty((0, 2, 2)), np.empty(0, np.int64))
    fused_cov = np.linalg.inv(np.stack(info))
    fused_xy = np.einsum("gij,gj->gi", fused_cov, np.stack(weighted))
    return GroundGroups(group, fused_xy, fused_cov, np.array(counts, np.int64))


@dataclass
class ViewAgreement:
    """How far apart a site's views put one person (ground units, a standard deviation), estimated online.

    Views disagree beyond their boxes' jitter by their calibration and by feet hidden or cut (EPFL Terrace's
    ground truth itself averages views ~0.5 m apart). Grouping with too small a spread splits one person into two groups
    (two tracks that trade the person back and forth); too large pairs neighbours. So the spread is measured on
    the people found: each box's distance to the mean of its person's boxes, scaled by sqrt(1 - 1/k) for k
    views, has median 1.1774 s (Rayleigh). s holds the boxes' own jitter too, which their covariances
    already carry; `share` of it is added. (Subtracting the covariances' own variance instead estimated 0 on
    both sets and split people: the pixel model overstates the jitter.) `start` serves until `min_samples`
    residuals are in.

    Args:
        start: the cold-start spread (ground units); a wide one, so the first groups are not split.
        window: residuals kept (the latest), so the estimate follows a site whose conditions change.
        min_samples: residuals needed before the estimate replaces `start`.
        share: the share of the measured spread added. 1 (all of it) measures ~0.32 m on both sets; tried with
            group-with-tracks, 0.75 / 1 / 1.25 (MODA @ 0.5 m, IDF1 @ 1 m): WILDTRACK 86.7, 85.5 / 85.0, 84.6 /
            80.4, 78.9; EPFL Terrace 80.1, 74.6 / 85.8, 76.0 / 83.0, 62.9 (`bench/multicam.py`).
    """

    start: float
    window: int = 5000
    min_samples: int = 200
    share: float = 1.0
    _residuals: deque[float] = field(init=False)

    def __post_init__(self) -> None:
        self._residuals = deque(maxlen=self.window)  # the latest `window`: older ones fall out as new come in

    @property
    def sigma(self) -> float:
        if len(self._residuals) < self.min_samples:
            return self.start
        return self.share * float(np.median(np.fromiter(self._residuals, np.float64))) / 1.1774

    def observe(self, group: ArrayLike, xy: ArrayLike) -> None:
        """Take this step's residuals: `group` labels each point (`xy`) with its person (negative: none); people
        seen by two or more views count."""
        label = np.asarray(group, np.int64).reshape(-1)
        points = np.asarray(xy, np.float64).reshape(-1, 2)
        use = (label >= 0) & np.isfinite(points).all(axis=1)
        if not use.any():
            return
        _, person, k = np.unique(label[use], return_inverse=True, return_counts=True)
        centre = np.stack([np.bincount(person, points[use, d]) / k for d in range(2)], axis=1)
        several = k[person] >= 2
        if not several.any():
            return
        offset = points[use][several] - centre[person[several]]
        residual = np.linalg.norm(offset, axis=1) / np.sqrt(1 - 1 / k[person[several]])
        self._residuals.extend(residual.tolist())
