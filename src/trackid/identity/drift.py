"""Drift watch: is a camera's live distribution of best-match similarities still the one the threshold was tuned on?

The threshold is right only for the similarities it was chosen on. A camera whose similarities all rise (a new
camera, uncentred: everyone under its light looks alike) or all fall (a dirty lens, a new model) makes the same
threshold merge everyone or recognise no one, and nothing in a single decision shows it: the seed's deer system
ran for months with a threshold above every similarity it ever saw. So `tune` keeps the best-match similarities of
its replayed ingest (each photo against the photos before it, `tune._replay`) as the reference, and `DriftWatch`
compares each camera's live best-match similarities with it.

The rule: once `min_scores` scores are seen, and again at every further `min_scores`, the latest `window` scores
are compared with the reference by the two-sample Kolmogorov-Smirnov test (`scipy.stats.ks_2samp`); the camera has
drifted when p < `alpha` *and* the largest gap between the two distributions (the KS statistic) is at least
`min_gap`. The gap condition keeps a shift too small to matter from being flagged once a camera has given thousands
of scores; `alpha` is small because a camera is tested again and again and an ingest's scores are not independent
draws (a growing gallery raises every best match a little). On in-distribution data (the held-out half of the
tuning set, VIPeR and PRID 2011, `bench/adaptation.py`) it flagged nothing; see BENCHMARKS.md for the figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import ks_2samp

__all__ = ["DriftCheck", "DriftWatch", "drift_watch"]


@dataclass(frozen=True, slots=True)
class DriftCheck:
    """One comparison of a camera's latest scores with the reference."""

    scores_seen: int
    statistic: float
    pvalue: float
    drifted: bool
    live_median: float
    reference_median: float

    def to_json(self) -> dict[str, Any]:
        return {
            "scores_seen": self.scores_seen,
            "statistic": round(self.statistic, 6),
            "pvalue": float(f"{self.pvalue:.6g}"),
            "drifted": self.drifted,
            "live_median": round(self.live_median, 6),
            "reference_median": round(self.reference_median, 6),
        }


@dataclass
class DriftWatch:
    """One camera's live best-match similarities, tested against `reference` (see the module docstring).

    Args:
        reference: the tuned best-match similarities (at least `min_scores` of them).
        min_scores: scores between two tests. Raising it detects later but on firmer evidence.
        window: the latest scores a test compares (>= `min_scores`). Raising it detects smaller shifts and
            forgets older behaviour more slowly.
        alpha: the p-value below which (with `min_gap`) the camera has drifted. Lowering it raises fewer false
            alarms and needs a larger shift.
        min_gap: the least KS statistic (largest gap between the two cumulative distributions) that counts.

    Attributes (persisted by `to_json`): `scores` (the latest `window`), `seen` (all counted), `first_drift`
    (the check that first found a drift, or None), `last_check`.
    """

    reference: NDArray[np.float64]
    min_scores: int = 50
    window: int = 200
    alpha: float = 1e-3
    min_gap: float = 0.2
    scores: list[float] = field(default_factory=list)
    seen: int = 0
    first_drift: DriftCheck | None = None
    last_check: DriftCheck | None = None

    def __post_init__(self) -> None:
        self.reference = np.asarray(self.reference, np.float64)
        if self.reference.ndim != 1 or not np.isfinite(self.reference).all():
            raise ValueError("reference must be a 1-D array of finite similarities")
        if self.min_scores < 1 or self.window < self.min_scores:
            raise ValueError(f"need 1 <= min_scores <= window, got {self.min_scores} and {self.window}")
        if len(self.reference) < self.min_scores:
            raise ValueError(f"reference has {len(self.reference)} scores, fewer than min_scores {self.min_scores}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")

    @property
    def drifted(self) -> bool:
        return self.first_drift is not None

    def update(self, similarities: ArrayLike) -> DriftCheck | None:
        """Count new best-match similarities (NaN: no candidate, left out); returns the check made, if one was
        due. Once drifted, a camera stays drifted (re-tuning starts a new watch)."""
        new = np.asarray(similarities, np.float64).ravel()
        new = new[np.isfinite(new)]
        if not len(new):
            return None
        before = self.seen
        self.seen += len(new)
        self.scores = [*self.scores, *new.tolist()][-self.window :]
        if self.seen // self.min_scores == before // self.min_scores:
            return None
        check = self._check()
        self.last_check = check
        if check.drifted and self.first_drift is None:
            self.first_drift = check
        return check

    def _check(self) -> DriftCheck:
        live = np.asarray(self.scores)
        result = ks_2samp(live, self.reference)
        statistic, pvalue = float(result.statistic), float(result.pvalue)
        return DriftCheck(
            scores_seen=self.seen,
            statistic=statistic,
            pvalue=pvalue,
            drifted=pvalue < self.alpha and statistic >= self.min_gap,
            live_median=float(np.median(live)),
            reference_median=float(np.median(self.reference)),
        )

    def to_json(self) -> dict[str, Any]:
        """The live state (not the reference, which `tuned.json` holds)."""
        return {
            "scores": self.scores,
            "seen": self.seen,
            "first_drift": None if self.first_drift is None else self.first_drift.to_json(),
            "last_check": None if self.last_check is None else self.last_check.to_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], reference: ArrayLike, **params: Any) -> DriftWatch:
        first, last = data.get("first_drift"), data.get("last_check")
        return cls(
            np.asarray(reference, np.float64),
            scores=[float(s) for s in data.get("scores", [])],
            seen=int(data.get("seen", 0)),
            first_drift=None if first is None else DriftCheck(**first),
            last_check=None if last is None else DriftCheck(**last),
            **params,
        )


def drift_watch(reference: ArrayLike, min_scores: int, state: Mapping[str, Any] | None = None) -> DriftWatch:
    """The watch photos use (`PhotosConfig.drift_min_scores`; a window of 4x that) over `reference`, continuing
    from a persisted `state` when given. A reference shorter than `min_scores` tests at its own length."""
    ref = np.asarray(reference, np.float64)
    every = max(1, min(int(min_scores), len(ref)))
    if state is None:
        return DriftWatch(ref, min_scores=every, window=4 * every)
    return DriftWatch.from_json(state, ref, min_scores=every, window=4 * every)
