"""Persistence filters: estimators (scikit-learn style) that say how likely a track is a real, persistent object.

All take `TrackRecord`s and labels 1 (persistent) / 0 (transient) in `fit`, and give `predict_proba` (n, 2) and
`predict`. They are compared by `bench/persistence.py` on held-out sequences; the default is whichever wins there.
- `LengthRule`: persistent when the track has at least `min_frames` frames; `fit` picks the length with the best
  balanced accuracy on the training tracks. The baseline any learnt filter has to beat.
- `BoostedPersistence`: scikit-learn's `HistGradientBoostingClassifier` on `summary_features`, classes weighted to
  balance (transient tracks are the minority the filter exists for); the shipped default, since it beat the
  transformer on held-out sequences (BENCHMARKS.md, bench/persistence.py).
Any of them works online: call `predict_proba` on `track.prefix(n)` as the track grows. `deletion_importance` says
which frames a decision rested on for any filter: how far the score moves without each of them.
"""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import balanced_accuracy_score

from trackid.multiview.persistence.features import summary_feature_names, summary_matrix
from trackid.multiview.persistence.tracks import TrackRecord

__all__ = ["BoostedPersistence", "LengthRule", "PersistenceFilter", "check_labels", "deletion_importance"]


class PersistenceFilter(Protocol):
    """What the post-filter, the explanations and the stereo run need of a fitted filter."""

    importance_method: str  # how `frame_importance` is measured, in words for the report

    def predict_proba(self, tracks: Sequence[TrackRecord]) -> NDArray[np.float64]: ...

    def predict(self, tracks: Sequence[TrackRecord]) -> NDArray[np.int64]: ...

    def frame_importance(self, track: TrackRecord) -> tuple[NDArray[np.int64], NDArray[np.float64]]: ...


_SETTINGS = ("max_iter", "learning_rate", "max_leaf_nodes", "random_state", "appearance")
"""What `BoostedPersistence.save` keeps of its settings."""


class LengthRule:
    """Persistent when a track has at least `min_frames` frames (`fit` chooses it; None until then)."""

    importance_method = "deletion: how far p(persistent) moves when the frame is left out"

    def __init__(self, min_frames: int | None = None, max_frames: int = 200) -> None:
        self.min_frames = min_frames
        self.max_frames = max_frames

    def fit(self, tracks: Sequence[TrackRecord], labels: ArrayLike) -> LengthRule:
        y = check_labels(labels, len(tracks))
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

    def frame_importance(self, track: TrackRecord) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        return deletion_importance(self, track)


class BoostedPersistence:
    """Gradient-boosted trees on each track's summary features.

    Args:
        max_iter, learning_rate, max_leaf_nodes: `HistGradientBoostingClassifier`'s; more iterations or leaves fit
            the training sequences closer and risk learning their detector rather than what a false positive is.
        random_state: seeds the early-stopping split, so a fit is repeatable.
        appearance: also use the appearance-consistency features (`features.APPEARANCE_FEATURES`), for detections
            that carry embeddings; off by default, see `features`.
        model_path: a file `save` wrote (`SHIPPED_BOOSTED`: ours) to fit from instead of tracks.

    `save` writes the training set (summary features, labels, feature names, these settings), not the trees: the
    trees are refitted from it when it is loaded (about a second), so the file works with whatever scikit-learn is
    installed, where pickled trees would tie it to one version and run arbitrary code when read.
    """

    importance_method = "deletion: how far p(persistent) moves when the frame is left out"

    def __init__(
        self,
        max_iter: int = 200,
        learning_rate: float = 0.05,
        max_leaf_nodes: int = 15,
        random_state: int = 0,
        appearance: bool = False,
        model_path: str | Path | None = None,
    ) -> None:
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.random_state = random_state
        self.appearance = appearance
        self.model_path = model_path
        if model_path is not None:
            self.load(model_path)

    def fit(self, tracks: Sequence[TrackRecord], labels: ArrayLike) -> BoostedPersistence:
        y = check_labels(labels, len(tracks))
        return self._fit_matrix(summary_matrix(tracks, self.appearance), y)

    def _fit_matrix(self, x: NDArray[np.float32], y: NDArray[np.int64]) -> BoostedPersistence:
        self.training_ = (x, y)
        self.model_ = HistGradientBoostingClassifier(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            class_weight="balanced",
            random_state=self.random_state,
        ).fit(x, y)
        return self

    def save(self, path: str | Path) -> Path:
        """Write what the fit used (see the class), atomically."""
        from trackid.artifacts import atomic_write_bytes

        x, y = self.training_
        settings = {k: getattr(self, k) for k in _SETTINGS}
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            features=x,
            labels=y.astype(np.int8),
            feature_names=np.array(summary_feature_names(self.appearance)),
            settings=np.array(json.dumps(settings)),
        )
        return atomic_write_bytes(Path(path), buffer.getvalue())

    def load(self, path: str | Path) -> BoostedPersistence:
        """Fit from a file `save` wrote; ValueError when it is not one, or was written for other features."""
        try:
            with np.load(Path(path), allow_pickle=False) as saved:
                x, y = saved["features"].astype(np.float32), saved["labels"].astype(np.int64)
                names = tuple(str(n) for n in saved["feature_names"])
                settings = json.loads(str(saved["settings"]))
        except (OSError, KeyError, ValueError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: not a saved BoostedPersistence ({exc})") from None
        expected = summary_feature_names(bool(settings.get("appearance", False)))
        if names != expected:
            raise ValueError(
                f"{path}: saved for {len(names)} other features than this trackid's {len(expected)}; "
                "rebuild it (bench/persistence.py --save-boosted)"
            )
        for key in _SETTINGS:
            setattr(self, key, settings.get(key, getattr(self, key)))
        return self._fit_matrix(x, check_labels(y, len(y)))

    def predict_proba(self, tracks: Sequence[TrackRecord]) -> NDArray[np.float64]:
        if not tracks:
            return np.zeros((0, 2))
        return np.asarray(self.model_.predict_proba(summary_matrix(tracks, self.appearance)), np.float64)

    def predict(self, tracks: Sequence[TrackRecord]) -> NDArray[np.int64]:
        return (self.predict_proba(tracks)[:, 1] >= 0.5).astype(np.int64)

    def frame_importance(self, track: TrackRecord) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """(frames, importance summing to 1) by `deletion_importance`: trees have no attention to read."""
        return deletion_importance(self, track)


def deletion_importance(
    model: PersistenceFilter, track: TrackRecord, max_frames: int = 32
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """(frames, importance summing to 1): how far p(persistent) moves when each frame is left out (occlusion, the
    test any explanation has to pass); a track longer than `max_frames` is cut into that many stretches, each left
    out whole and reported by its middle frame. Equal importance where nothing moves the score."""
    n = len(track)
    if n < 2:
        return track.frames.copy(), np.ones(n)
    edges = np.linspace(0, n, min(n, max_frames) + 1).round().astype(np.int64)
    everything = np.arange(n)
    stretches = [everything[a:b] for a, b in itertools.pairwise(edges)]
    base = float(model.predict_proba([track])[0, 1])
    without = [track.select(np.setdiff1d(everything, rows)) for rows in stretches]
    moved = np.abs(model.predict_proba(without)[:, 1] - base)
    middle = np.array([rows[len(rows) // 2] for rows in stretches])
    total = float(moved.sum())
    weight = moved / total if total > 0 else np.full(len(stretches), 1.0 / len(stretches))
    return track.frames[middle], weight


def check_labels(labels: ArrayLike, tracks: int) -> NDArray[np.int64]:
    """`labels` as 0/1 integers, one per each of `tracks` tracks, both classes present; ValueError naming what is
    wrong."""
    y = np.asarray(labels, np.int64).ravel()
    if len(y) != tracks:
        raise ValueError(f"labels has {len(y)} entries for {tracks} tracks")
    if not set(np.unique(y).tolist()) <= {0, 1}:
        raise ValueError("labels must be 0 (transient) or 1 (persistent); drop the ignored (-1) tracks first")
    if len(np.unique(y)) < 2:
        raise ValueError("labels hold one class only: a filter needs persistent and transient tracks to learn from")
    return y
