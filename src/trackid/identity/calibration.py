"""Calibrated match probabilities: P(same | similarity, quality, time gap), and decision policies stated as risk.

A raw cosine similarity means different things for different models, crop qualities and time gaps, so a threshold
copied from elsewhere is meaningless. `MatchCalibrator` maps the comparison to a probability fitted on labelled
pairs; policies (`threshold_for_false_match_rate`, `f1_optimal_threshold`) then pick the operating point from a risk
the user states. The fitted model is a handful of numbers, saved as JSON (no pickle: a gallery file must never
execute code on load).

The probability carries the prior of the fitting pairs: pairs drawn from a gallery of N identities have a base rate
of about 1/N, and a calibrator fitted there is calibrated for galleries of similar size.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from trackid.artifacts import atomic_write_text

__all__ = [
    "MatchCalibrator",
    "RocCurve",
    "calibration_bins",
    "expected_calibration_error",
    "f1_optimal_threshold",
    "roc_curve",
    "threshold_for_false_match_rate",
]

Method = Literal["platt", "isotonic"]
FloatArray = NDArray[np.float64]

_FORMAT = "trackid.match-calibrator/1"
_EPS = 1e-6


class MatchCalibrator:
    """P(same identity) for a comparison, from its similarity and optionally crop quality and time gap.

    Methods:
        "platt": logistic regression on [s, q, s*q, log1p(gap)] (only the columns given to `fit`). Smooth and
            monotone in s (for q in [0, 1], when the fitted slope stays positive); the s*q term lets low-quality
            crops flatten the curve, since their similarity is less informative. Best when positives are few.
        "isotonic": isotonic regression on s (monotone, free-form: fixes the S-curve's misfit in the tails that
            Platt cannot), then, when quality or time gap are given, a logistic stage on [logit(p_iso), q,
            q*logit(p_iso), log1p(gap)]. Multi-dimensional isotonic regression is not practical, so the extra
            evidence enters as a log-odds correction of the one-dimensional monotone fit. Needs more positives
            (hundreds) than Platt, and its plateaus make thresholds coarse: a threshold accepts a whole plateau.

    Args:
        method: "platt" or "isotonic".
        C: inverse L2 strength of the logistic stages. Large by default: a few features and thousands of pairs
            need no shrinkage, and shrinkage pulls probabilities towards the base rate (miscalibration).

    Attributes (after `fit`):
        features_: which optional inputs the model uses ("quality", "time_gap_s").
        coef_, intercept_: logistic stage (Platt: the whole model; isotonic: the correction, empty without extras).
        iso_x_, iso_y_: isotonic knots (similarity -> probability, linear between knots, clipped outside).
        n_positive_, n_negative_: labelled pairs seen.
    """

    def __init__(self, method: Method = "platt", C: float = 1e4) -> None:  # noqa: N803 - scikit-learn's name
        self.method = method
        self.C = C

    def fit(
        self,
        similarity: ArrayLike,
        same: ArrayLike,
        quality: ArrayLike | None = None,
        time_gap_s: ArrayLike | None = None,
    ) -> MatchCalibrator:
        if self.method not in ("platt", "isotonic"):
            raise ValueError(f"method must be 'platt' or 'isotonic', got {self.method!r}")
        if not self.C > 0:
            raise ValueError(f"C must be positive, got {self.C}")
        s = _check_scores(similarity, "similarity")
        y = _check_labels(same, len(s))
        if y.all() or not y.any():
            raise ValueError("same must contain both same (1) and different (0) pairs to fit a calibrator")
        q, gap = _check_extras(quality, time_gap_s, len(s))
        self.features_ = [name for name, v in (("quality", q), ("time_gap_s", gap)) if v is not None]
        self.n_positive_, self.n_negative_ = int(y.sum()), int((~y).sum())
        if self.method == "isotonic":
            iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(s, y.astype(np.float64))
            self.iso_x_ = np.asarray(iso.X_thresholds_, np.float64)
            self.iso_y_ = np.asarray(iso.y_thresholds_, np.float64)
        else:
            self.iso_x_ = np.empty(0)
            self.iso_y_ = np.empty(0)
        x = self._design(s, q, gap)
        if x.shape[1]:
            # Fitted on standardised columns, then folded back: similarities often span a narrow range (0.5-0.8)
            # and lbfgs then stops on a tiny gradient with a wrong fit, even a negative slope (seen on PRID 2011).
            centre, spread = x.mean(axis=0), np.maximum(x.std(axis=0), 1e-12)
            lr = LogisticRegression(C=self.C, max_iter=2000).fit((x - centre) / spread, y)
            self.coef_ = np.asarray(lr.coef_[0], np.float64) / spread
            self.intercept_ = float(lr.intercept_[0] - np.sum(self.coef_ * centre))
        else:
            self.coef_ = np.empty(0)
            self.intercept_ = 0.0
        # Kept in memory (not in JSON) so the policies can default to the fitting pairs.
        self.fit_proba_: FloatArray | None = self._predict(s, q, gap)
        self.fit_same_: NDArray[np.bool_] | None = y
        return self

    def predict_proba(
        self, similarity: ArrayLike, quality: ArrayLike | None = None, time_gap_s: ArrayLike | None = None
    ) -> FloatArray:
        """P(same) for each comparison, 1-D (scikit-learn's second column; the first is 1 - p)."""
        self._check_fitted()
        s = _check_scores(similarity, "similarity")
        q, gap = _check_extras(quality, time_gap_s, len(s))
        for name, value in (("quality", q), ("time_gap_s", gap)):
            if (name in self.features_) != (value is not None):
                state = "was" if name in self.features_ else "was not"
                raise ValueError(f"{name}: the calibrator {state} fitted with it; pass it exactly when fit did")
        return self._predict(s, q, gap)

    def threshold_for_false_match_rate(
        self,
        target: float,
        similarity: ArrayLike | None = None,
        same: ArrayLike | None = None,
        quality: ArrayLike | None = None,
        time_gap_s: ArrayLike | None = None,
    ) -> float:
        """Lowest probability threshold (accept p >= it) whose false-match rate on the pairs is <= `target`.

        Pairs default to the fitting pairs; held-out pairs give an honest estimate.
        """
        return threshold_for_false_match_rate(*self._scored_pairs(similarity, same, quality, time_gap_s), target)

    def f1_optimal_threshold(
        self,
        similarity: ArrayLike | None = None,
        same: ArrayLike | None = None,
        quality: ArrayLike | None = None,
        time_gap_s: ArrayLike | None = None,
    ) -> float:
        """Probability threshold maximising F1 of "same" on the pairs (default: the fitting pairs)."""
        return f1_optimal_threshold(*self._scored_pairs(similarity, same, quality, time_gap_s))

    def roc(
        self,
        similarity: ArrayLike | None = None,
        same: ArrayLike | None = None,
        quality: ArrayLike | None = None,
        time_gap_s: ArrayLike | None = None,
    ) -> RocCurve:
        """ROC of the calibrated probabilities on the pairs (default: the fitting pairs)."""
        return roc_curve(*self._scored_pairs(similarity, same, quality, time_gap_s))

    def to_json(self) -> str:
        self._check_fitted()
        state = {
            "format": _FORMAT,
            "params": {"method": self.method, "C": self.C},
            "features": self.features_,
            "coef": self.coef_.tolist(),
            "intercept": self.intercept_,
            "iso_x": self.iso_x_.tolist(),
            "iso_y": self.iso_y_.tolist(),
            "n_positive": self.n_positive_,
            "n_negative": self.n_negative_,
        }
        return json.dumps(state, indent=1)

    @classmethod
    def from_json(cls, text: str) -> MatchCalibrator:
        state: dict[str, Any] = json.loads(text)
        if state.get("format") != _FORMAT:
            raise ValueError(f"text: not a {_FORMAT} document (format={state.get('format')!r})")
        model = cls(**state["params"])
        model.features_ = list(state["features"])
        model.coef_ = np.asarray(state["coef"], np.float64)
        model.intercept_ = float(state["intercept"])
        model.iso_x_ = np.asarray(state["iso_x"], np.float64)
        model.iso_y_ = np.asarray(state["iso_y"], np.float64)
        model.n_positive_, model.n_negative_ = int(state["n_positive"]), int(state["n_negative"])
        model.fit_proba_, model.fit_same_ = None, None
        return model

    def save(self, path: str | Path) -> None:
        """Write the JSON atomically (temp file + rename), so a crash never leaves half a calibrator."""
        atomic_write_text(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> MatchCalibrator:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    def _design(self, s: FloatArray, q: FloatArray | None, gap: FloatArray | None) -> FloatArray:
        if self.method == "isotonic":
            if q is None and gap is None:
                return np.empty((len(s), 0))
            p = np.clip(np.interp(s, self.iso_x_, self.iso_y_), _EPS, 1 - _EPS)
            base = np.log(p / (1 - p))
        else:
            base = s
        cols = [base]
        if q is not None:
            cols += [q, base * q]
        if gap is not None:
            cols.append(np.log1p(gap))
        return np.stack(cols, axis=1)

    def _predict(self, s: FloatArray, q: FloatArray | None, gap: FloatArray | None) -> FloatArray:
        x = self._design(s, q, gap)
        if x.shape[1] == 0:
            return np.interp(s, self.iso_x_, self.iso_y_)
        # Never exactly 0 or 1: finite evidence cannot make a match certain, and a threshold of 1.0 must mean
        # "never decide automatically".
        return np.clip(np.asarray(expit(x @ self.coef_ + self.intercept_), np.float64), _EPS, 1 - _EPS)

    def _scored_pairs(
        self,
        similarity: ArrayLike | None,
        same: ArrayLike | None,
        quality: ArrayLike | None,
        time_gap_s: ArrayLike | None,
    ) -> tuple[FloatArray, NDArray[np.bool_]]:
        self._check_fitted()
        if similarity is None and same is None:
            if self.fit_proba_ is None or self.fit_same_ is None:
                raise ValueError("similarity, same: a loaded calibrator keeps no fitting pairs; pass labelled pairs")
            return self.fit_proba_, self.fit_same_
        if similarity is None or same is None:
            raise ValueError("similarity and same must be given together")
        p = self.predict_proba(similarity, quality, time_gap_s)
        return p, _check_labels(same, len(p))

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise RuntimeError("MatchCalibrator is not fitted; call fit() or load() first")


@dataclass(frozen=True)
class RocCurve:
    """ROC at every distinct score: accepting `score >= threshold[i]` gives `fpr[i]`, `tpr[i]` (descending scores)."""

    threshold: FloatArray
    fpr: FloatArray
    tpr: FloatArray
    n_positive: int
    n_negative: int


def roc_curve(scores: ArrayLike, same: ArrayLike) -> RocCurve:
    """ROC over the distinct scores (probabilities or similarities), computed exactly (no interpolation)."""
    s = _check_scores(scores, "scores")
    y = _check_labels(same, len(s))
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    # Last index of each run of equal scores: a threshold accepts a tie group entirely or not at all.
    ends = np.flatnonzero(np.r_[s_sorted[1:] != s_sorted[:-1], True])
    tp = np.cumsum(y_sorted)[ends]
    fp = (ends + 1) - tp
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    return RocCurve(
        threshold=s_sorted[ends],
        fpr=fp / max(n_neg, 1),
        tpr=tp / max(n_pos, 1),
        n_positive=n_pos,
        n_negative=n_neg,
    )


def threshold_for_false_match_rate(scores: ArrayLike, same: ArrayLike, target: float) -> float:
    """Lowest threshold (accept `score >= t`) whose false-match rate (FP / negatives) on the pairs is <= `target`.

    The lowest such threshold spends the whole risk budget, so it also has the highest recall. Returns +inf when
    even the highest score exceeds the budget (every comparison then becomes a new identity).
    """
    if not 0.0 <= target <= 1.0:
        raise ValueError(f"target must be a false-match rate in [0, 1], got {target}")
    roc = roc_curve(scores, same)
    ok = np.flatnonzero(roc.fpr <= target)
    return float(roc.threshold[ok[-1]]) if len(ok) else float("inf")


def f1_optimal_threshold(scores: ArrayLike, same: ArrayLike) -> float:
    """Threshold (accept `score >= t`) maximising F1 of the "same" decision on the pairs; the highest on ties."""
    roc = roc_curve(scores, same)
    tp = roc.tpr * roc.n_positive
    fp = roc.fpr * roc.n_negative
    f1 = 2 * tp / np.maximum(tp + fp + roc.n_positive, 1)
    return float(roc.threshold[int(np.argmax(f1))])


def expected_calibration_error(prob: ArrayLike, same: ArrayLike, n_bins: int = 15) -> float:
    """ECE: |observed same-rate - mean probability| per equal-width bin, weighted by the bin's share of pairs.

    The standard definition (Guo et al. 2017). With heavily imbalanced pairs most mass sits in the lowest bin, where
    both numbers are near 0, so a small ECE there says little about the high-probability decisions; check those
    separately (e.g. ECE of the pairs with p above some level: calibration survives selection on p).
    """
    _, confidence, observed, count = calibration_bins(prob, same, n_bins)
    return float(np.sum(count * np.abs(observed - confidence)) / count.sum())


def calibration_bins(prob: ArrayLike, same: ArrayLike, n_bins: int = 15) -> tuple[FloatArray, ...]:
    """(bin centre, mean probability, observed same-rate, pair count) of the non-empty equal-width bins."""
    p = _check_scores(prob, "prob")
    if ((p < 0) | (p > 1)).any():
        raise ValueError("prob must lie in [0, 1]")
    y = _check_labels(same, len(p))
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    index = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(index, minlength=n_bins).astype(np.float64)
    sum_p = np.bincount(index, weights=p, minlength=n_bins)
    sum_y = np.bincount(index, weights=y.astype(np.float64), minlength=n_bins)
    used = count > 0
    centre = (np.arange(n_bins) + 0.5) / n_bins
    return centre[used], sum_p[used] / count[used], sum_y[used] / count[used], count[used]


def _check_scores(values: ArrayLike, name: str) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if len(arr) == 0:
        raise ValueError(f"{name} must not be empty")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf at index {int(np.flatnonzero(~np.isfinite(arr))[0])}")
    return arr


def _check_labels(same: ArrayLike, n: int) -> NDArray[np.bool_]:
    arr = np.asarray(same)
    if arr.shape != (n,):
        raise ValueError(f"same must have one label per pair ({n},), got shape {arr.shape}")
    if arr.dtype != np.bool_:
        if not np.isin(arr, (0, 1)).all():
            raise ValueError("same must hold booleans or 0/1 labels")
        arr = arr.astype(bool)
    return arr


def _check_extras(
    quality: ArrayLike | None, time_gap_s: ArrayLike | None, n: int
) -> tuple[FloatArray | None, FloatArray | None]:
    q = gap = None
    if quality is not None:
        q = _check_scores(quality, "quality")
        if len(q) != n:
            raise ValueError(f"quality must have one value per pair ({n}), got {len(q)}")
        if ((q < 0) | (q > 1)).any():
            raise ValueError("quality must lie in [0, 1]")
    if time_gap_s is not None:
        gap = _check_scores(time_gap_s, "time_gap_s")
        if len(gap) != n:
            raise ValueError(f"time_gap_s must have one value per pair ({n}), got {len(gap)}")
        if (gap < 0).any():
            raise ValueError("time_gap_s must be >= 0 seconds")
    return q, gap
