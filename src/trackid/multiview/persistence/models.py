"""Persistence filters: estimators (scikit-learn style) that say how likely a track is a real, persistent object.

All take `TrackRecord`s and labels 1 (persistent) / 0 (transient) in `fit`, and give `predict_proba` (n, 2) and
`predict`. They are compared by `bench/persistence.py` on held-out sequences; the default is whichever wins there.
- `LengthRule`: persistent when the track has at least `min_frames` frames; `fit` picks the length with the best
  balanced accuracy on the training tracks. The baseline any learnt filter has to beat.
- `BoostedPersistence`: scikit-learn's `HistGradientBoostingClassifier` on `summary_features`, classes weighted to
  balance (transient tracks are the minority the filter exists for).
Any of them works online: call `predict_proba` on `track.prefix(n)` as the track grows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import balanced_accuracy_score

from trackid.multiview.persistence.features import summary_matrix
from trackid.multiview.persistence.tracks import TrackRecord

__all__ = ["BoostedPersistence", "LengthRule", "check_labels"]


class LengthRule:
    """Persistent when a track has at least `min_frames` frames (`fit` chooses it; None until then)."""

    def __init__(self, min_frames: int | None = None, max_frames: int = 200) -> None:
        self.min_frames = min_frames
        self.max_frames = max_frames

    def fit(self, tracks: Sequence[TrackRecord], labels: ArrayLike) -> LengthRule:
        y = check_labels(tracks, labels)
        lengths = np.array([len(t) for t in tracks])
        candidates = np.arange(1, self.max_frames + 1)
        scores = [balanced_accuracy_score(y, lengths >= k) for k in candidates]
        self.min_frames_ = int(candidates[int(np.argmax(scores))]) if self.min_frames is None else self.min_frames
        return self

    def predict_proba(self, tracks: Sequence[TrackRecord]) -> NDArray[np.float64]:
        keep = np.array([len(t) >= self.min_frames_ for t in tracks], np.float64)
        return np.stack([1 - keep, keep], axis=1).reshape(-1, 2)

    def predict(self, tracks: Sequence[TrackRecord]) -> NDArray[np.int64]:
        return (self.predict_proba(tracks)[:, 1] >= 0.5).astype(np.int64)


class BoostedPersistence:
    """Gradient-boosted trees on each track's summary features.

    Args:
        max_iter, learning_rate, max_leaf_nodes: `HistGradientBoostingClassifier`'s; more iterations or leaves fit
            the training sequences closer and risk learning their detector rather than what a false positive is.
        random_state: seeds the early-stopping split, so a fit is repeatable.
    """

    def __init__(
        self, max_iter: int = 200, learning_rate: float = 0.05, max_leaf_nodes: int = 15, random_state: int = 0
    ) -> None:
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.random_state = random_state

    def fit(self, tracks: Sequence[TrackRecord], labels: ArrayLike) -> BoostedPersistence:
        y = check_labels(tracks, labels)
        self.model_ = HistGradientBoostingClassifier(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            class_weight="balanced",
            random_state=self.random_state,
        ).fit(summary_matrix(tracks), y)
        return self

    def predict_proba(self, tracks: Sequence[TrackRecord]) -> NDArray[np.float64]:
        if not tracks:
            return np.zeros((0, 2))
        return np.asarray(self.model_.predict_proba(summary_matrix(tracks)), np.float64)

    def predict(self, tracks: Sequence[TrackRecord]) -> NDArray[np.int64]:
        return (self.predict_proba(tracks)[:, 1] >= 0.5).astype(np.int64)


def check_labels(tracks: Sequence[TrackRecord], labels: ArrayLike) -> NDArray[np.int64]:
    """`labels` as 0/1 integers, one per track, both classes present; ValueError naming what is wrong."""
    y = np.asarray(labels, np.int64).ravel()
    if len(y) != len(tracks):
        raise ValueError(f"labels has {len(y)} entries for {len(tracks)} tracks")
    if not set(np.unique(y).tolist()) <= {0, 1}:
        raise ValueError("labels must be 0 (transient) or 1 (persistent); drop the ignored (-1) tracks first")
    if len(np.unique(y)) < 2:
        raise ValueError("labels hold one class only: a filter needs persistent and transient tracks to learn from")
    return y
