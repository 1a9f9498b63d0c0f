"""Detector scores as ranks in the stream's own score distribution, so thresholds do not depend on the detector.

Detectors disagree on what a score means: FRCNN puts most true people near 1.0, YOLO-family detectors spread them
over 0.3-0.9, ACF reports unbounded margins. A threshold of 0.7 means something different to each. `ScoreScale`
maps every score to its empirical CDF over the scores seen so far in this stream (the share of recent scores at or
below it): the tracker's thresholds become quantiles. Any strictly increasing remap of the scores (s^3,
0.3 + 0.6 s, a logistic of a margin) leaves every rank, and so every decision of the tracker, unchanged.

Cold start: the first frame's own scores are the first sample, so a stream is ranked from its first frame, and no
prior in some detector's units is needed. The sample is a ring of the latest `window` scores, re-sorted whenever it
has grown by `refresh` of its size, so the estimate follows a scene that changes and costs little per frame.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

__all__ = ["ScoreScale"]


class ScoreScale:
    """Online empirical CDF of one stream's detection scores (scikit-learn style: learned state ends in `_`).

    Args:
        window: scores kept (the latest ones). Larger is steadier, smaller follows a change of scene sooner.
        refresh: the sorted sample is rebuilt once this share of new scores has arrived since the last rebuild.
            Smaller tracks the stream more closely at more sorting per frame.
    """

    def __init__(self, window: int = 20_000, refresh: float = 0.05) -> None:
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        if not 0 < refresh <= 1:
            raise ValueError(f"refresh must be in (0, 1], got {refresh}")
        self.window = window
        self.refresh = refresh
        self.reset()

    def reset(self) -> None:
        """Forget the stream (start of a new sequence)."""
        self.ring_ = np.zeros(self.window)
        self.seen_ = 0  # scores ever added
        self.sorted_ = np.zeros(0)
        self._stale = 0  # scores added since `sorted_` was built

    def update(self, scores: NDArray[np.float64]) -> None:
        """Add one frame's scores to the sample (non-finite ones are skipped: they have no rank)."""
        added = _push(self.ring_, self.seen_, scores)
        if added == 0:
            return
        self.seen_ += added
        self._stale += added
        size = min(self.seen_, self.window)
        if self._stale >= self.refresh * size or len(self.sorted_) == 0:
            self.sorted_ = np.sort(self.ring_[:size])
            self._stale = 0

    def transform(self, scores: NDArray[np.float64]) -> NDArray[np.float64]:
        """Each score's rank in (0, 1]: the share of sampled scores at or below it. 1 for the best scores seen,
        and for every score while nothing has been seen (so a tracker without a sample behaves as on raw 1.0s).
        A score that is not a number gets -inf, below any threshold."""
        if len(self.sorted_) == 0:
            return np.ones(len(scores))
        return _ranks(self.sorted_, scores)


class ScoreCalibration:
    """Online calibration of one stream's scores to the chance that a detection belongs to a real track.

    The labels are the tracker's own outcomes, so no ground truth is needed: a detection matched to a confirmed
    track is a success, any other a failure. Isotonic regression (scikit-learn) of success on the raw score gives
    a monotone map whose value at each sampled score does not change under a strictly increasing remap of the
    scores; it is read as a step function (the fitted value of the nearest sampled score below), not interpolated in
    the detector's units, so a remapped stream gets the same numbers. What this adds to ranks: the share of a
    stream's detections that are real, so a scene with few true people among much clutter is not given the same
    number of new tracks as a clean one.

    Until `min_labels` outcomes of each kind are in, `transform` returns the stream's ranks (`ScoreScale`): the
    cold start needs no prior in any detector's units.

    Args:
        window: outcomes kept (the latest). Larger is steadier; smaller follows a changing scene sooner.
        min_labels: successes and failures each needed before the calibration replaces the ranks.
        refresh: the fit is redone once this share of new outcomes has arrived since the last fit.
    """

    def __init__(self, window: int = 20_000, min_labels: int = 100, refresh: float = 0.05) -> None:
        if window < 2 * min_labels:
            raise ValueError(f"window ({window}) must hold min_labels ({min_labels}) of each outcome")
        self.window = window
        self.min_labels = min_labels
        self.refresh = refresh
        self.ranks = ScoreScale(window, refresh)
        self.reset()

    def reset(self) -> None:
        """Forget the stream (start of a new sequence)."""
        self.ranks.reset()
        self.scores_ = np.zeros(self.window)
        self.labels_ = np.zeros(self.window)
        self.seen_ = 0
        self.thresholds_ = np.zeros(0)  # sampled scores of the fit, increasing
        self.values_ = np.zeros(0)  # fitted success rate at each
        self._stale = 0

    @property
    def calibrated(self) -> bool:
        """Whether scores are read through the fit (True) or still as ranks (False)."""
        return len(self.thresholds_) > 0

    def observe(self, scores: NDArray[np.float64]) -> None:
        """Add one frame's scores to the rank sample, before they are transformed."""
        self.ranks.update(scores)

    def transform(self, scores: NDArray[np.float64]) -> NDArray[np.float64]:
        """Each score's calibrated success rate in [0, 1] (its rank during the cold start)."""
        if not self.calibrated:
            return self.ranks.transform(scores)
        at = np.searchsorted(self.thresholds_, scores, side="right") - 1
        values = self.values_[np.clip(at, 0, len(self.values_) - 1)]
        return np.where(np.isfinite(scores), values, -np.inf)

    def update(self, scores: NDArray[np.float64], success: NDArray[np.bool_]) -> None:
        """Add one frame's outcomes: `success[i]` when detection i ended in a confirmed track."""
        keep = np.isfinite(scores)
        n = _push(self.scores_, self.seen_, scores[keep])
        if n == 0:
            return
        _push(self.labels_, self.seen_, success[keep].astype(np.float64))
        self.seen_ += n
        self._stale += n
        size = min(self.seen_, self.window)
        if self._stale >= self.refresh * size:
            self._fit(size)

    def _fit(self, size: int) -> None:
        self._stale = 0
        labels = self.labels_[:size]
        positives = int(labels.sum())
        if min(positives, size - positives) < self.min_labels:
            return
        from sklearn.isotonic import IsotonicRegression

        fit = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
        fit.fit(self.scores_[:size], labels)
        self.thresholds_, self.values_ = fit.X_thresholds_, fit.y_thresholds_


@numba.njit(cache=True, nogil=True)
def _push(ring: NDArray[np.float64], seen: int, scores: NDArray[np.float64]) -> int:
    """Write the finite `scores` into the ring after the `seen` already written; returns how many were written.
    Compiled: it runs every frame on a handful of scores, where numpy's per-call overhead would dominate."""
    added = 0
    for s in scores:
        if np.isfinite(s):
            ring[(seen + added) % len(ring)] = s
            added += 1
    return added


@numba.njit(cache=True, nogil=True)
def _ranks(ordered: NDArray[np.float64], scores: NDArray[np.float64]) -> NDArray[np.float64]:
    """Share of `ordered` at or below each score; -inf for a score that is not a number."""
    out = np.searchsorted(ordered, scores, side="right") / len(ordered)
    for i in range(len(scores)):
        if not np.isfinite(scores[i]):
            out[i] = -np.inf
    return out
