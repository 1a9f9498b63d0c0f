"""The clustering threshold, chosen from the episode itself rather than fixed.

A face embedder's distances shift with the footage (resolution, light, compression), so one constant does not
serve every video. Each episode carries two kinds of pairs that need no labels:
- **same person**: the two halves of one track (the tracker followed one face; `cleanup` splits tracks that jump);
- **different people**: two tracks on screen in the same frame (the cannot-link pairs).
The threshold is the cosine distance that separates the two sets best: the maximum of Youden's J (true-positive
minus false-positive rate, from scikit-learn's `roc_curve`), placed halfway to the next distance observed, so a
clean gap gives its middle. Without both kinds of pairs (one face on screen the whole time, or tracks too short to
halve) the caller's fallback is used and the reason is returned, for the log and the summary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.metrics import roc_curve

from trackid.cluster.constrained import cosine_distances

__all__ = ["ThresholdChoice", "half_track_distances", "threshold_from_pairs"]


@dataclass(frozen=True)
class ThresholdChoice:
    """threshold: cosine distance; source: "pairs" or "fallback"; reason: why the fallback (empty for pairs);
    same / different: how many pairs of each kind it was chosen from; separation: Youden's J at the threshold."""

    threshold: float
    source: str
    reason: str = ""
    same: int = 0
    different: int = 0
    separation: float = float("nan")


def half_track_distances(tracks: list[NDArray[np.float64]], min_vectors: int = 2) -> NDArray[np.float64]:
    """Per track with at least `min_vectors` embeddings (rows, in time order): the cosine distance between the sums
    of its first and second halves."""
    out = []
    for vectors in tracks:
        v = np.asarray(vectors, np.float64)
        if len(v) < min_vectors:
            continue
        half = len(v) // 2
        out.append(cosine_distances(np.stack([v[:half].sum(axis=0), v[half:].sum(axis=0)]))[0, 1])
    return np.asarray(out, np.float64)


def threshold_from_pairs(same: ArrayLike, different: ArrayLike, *, fallback: float) -> ThresholdChoice:
    """The distance that best separates `same` (one person) from `different` (two people); see the module."""
    s = np.asarray(same, np.float64).ravel()
    d = np.asarray(different, np.float64).ravel()
    if len(s) == 0 or len(d) == 0:
        missing = "no two faces were on screen together" if len(d) == 0 else "no track was long enough to halve"
        return ThresholdChoice(float(fallback), "fallback", f"{missing}: threshold {fallback:g} (the default)")
    distances = np.concatenate([s, d])
    truth = np.concatenate([np.ones(len(s)), np.zeros(len(d))])
    fpr, tpr, cuts = roc_curve(truth, -distances)  # a higher score (a smaller distance) says "same person"
    best = int(np.argmax(tpr - fpr))
    cut = float(-cuts[best]) if np.isfinite(cuts[best]) else float(distances.min())
    above = distances[distances > cut]
    threshold = (cut + float(above.min())) / 2 if len(above) else cut
    return ThresholdChoice(threshold, "pairs", "", len(s), len(d), float(tpr[best] - fpr[best]))
