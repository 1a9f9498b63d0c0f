"""Drift watch: is a camera's live distribution of best-match similarities still the one the threshold was tuned on?

The threshold is right only for the similarities it was chosen on. A camera whose similarities all rise (a new
camera, uncentred: everyone under its light looks alike) or all fall (a dirty lens, a new model) makes the same
threshold merge everyone or recognise no one, and nothing in a single decision shows it: the seed's deer system
ran for months with a threshold above every similarity it ever saw. So `tune` keeps the best-match similarities
of its replayed ingest (each photo against the photos before it, `tune.replay_decisions`) as the reference, and
`DriftWatch` compares each camera's live best-match similarities with it.

The rule: once `min_scores` scores are seen, and again at every further `min_scores`, the latest `window` scores
are tested against the reference two ways, each at p < `alpha`:
- *the distribution rose*: the one-sided two-sample Kolmogorov-Smirnov test (`scipy.stats.ks_2samp`, live scores
  stochastically larger), with a largest gap between the two cumulative distributions of at least `min_gap`;
- *the tail grew*: more than `tail_ratio` times the `tail` share of live scores lie above the reference's
  (1 - `tail`) quantile (a one-sided binomial test): that upper tail is where matches are made, and a camera can
  keep the reference's median while its best matches there multiply.
Only rising similarities count: they are what turns the tuned threshold into false merges. Falling ones (fewer
recognitions) also come from any ingest's start, when the gallery is small and every best match is low, so a
two-sided test flagged in-distribution cameras (the held-out half of VIPeR, measured with bench/adaptation.py).
The gap and ratio conditions keep a shift too small to matter from being flagged once a camera has given thousands
of scores; `alpha` is small because a camera is tested again and again and an ingest's scores are not independent
draws. Rates on in-distribution data (tune's held-out half, the synthetic draws of tests/test_drift.py) are in
`tuned.json`'s evidence and BENCHMARKS.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import binomtest, ks_2samp

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
    tail_share: float = float("nan")
    """The share of the latest scores above the reference's (1 - tail) quantile."""
    tail_pvalue: float = float("nan")

    def to_json(self) -> dict[str, Any]:
        return {
            "scores_seen": self.scores_seen,
            "statistic": round(self.statistic, 6),
            "pvalue": float(f"{self.pvalue:.6g}"),
            "drifted": self.drifted,
            "live_median": round(self.live_median, 6),
            "reference_median": round(self.reference_median, 6),
            "tail_share": round(self.tail_share, 6),
            "tail_pvalue": float(f"{self.tail_pvalue:.6g}"),
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
        tail, tail_ratio: the reference's upper tail (a share) and how many times that share of live scores above
            it counts as drift.

    Attributes (persisted by `to_json`): `scores` (the latest `window`), `seen` (all counted), `first_drift`
    (the check that first found a drift, or None), `last_check`.
    """

    reference: NDArray[np.float64]
    min_scores: int = 50
    window: int = 200
    alpha: float = 1e-3
    min_gap: float = 0.3
    tail: float = 0.05
    tail_ratio: float = 3.0
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
        return self.check()

    def check(self) -> DriftCheck:
        """Test the latest scores now (`update` does at every `min_scores`; a caller whose scores end early, such as
        a warm-up, tests what it has)."""
        check = self._check()
        self.last_check = check
        if check.drifted and self.first_drift is None:
            self.first_drift = check
        return check

    def _check(self) -> DriftCheck:
        live = np.asarray(self.scores)
        # alternative "less": the live CDF lies below the reference's, i.e. live similarities are larger
        result = ks_2samp(live, self.reference, alternative="less")
        statistic, pvalue = float(result.statistic), float(result.pvalue)
        above = int((live > np.quantile(self.reference, 1 - self.tail)).sum())
        tail_pvalue = float(binomtest(above, len(live), self.tail, alternative="greater").pvalue)
        tail_share = above / len(live)
        risen = pvalue < self.alpha and statistic >= self.min_gap
        grown = tail_pvalue < self.alpha and tail_share >= self.tail_ratio * self.tail
        return DriftCheck(
            scores_seen=self.seen,
            statistic=statistic,
            pvalue=pvalue,
            drifted=risen or grown,
            live_median=float(np.median(live)),
            reference_median=float(np.median(self.reference)),
            tail_share=tail_share,
            tail_pvalue=tail_pvalue,
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
