"""Agglomerative clustering of tracks into identities, with cannot-link and must-link constraints.

Two faces in one frame are two people, whatever their embeddings say; a track the tracker split at an occlusion is
one. So the clustering takes both as constraints, not as hints:
- must-link pairs are merged first (union-find), unless the merge would join a cannot-link pair (cannot-link wins,
  and the dropped must-link is reported);
- a cannot-link pair's distance is set far beyond any threshold, so average linkage (scikit-learn's
  `AgglomerativeClustering` on the precomputed cosine distances) never puts the two in one cluster: the average over
  n x m pairs with one of them at `_APART` stays above the threshold for any n x m below 10^9.

The threshold is the caller's: `threshold.py` chooses it from the data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.cluster import AgglomerativeClustering

__all__ = ["ConstrainedClusters", "cluster_with_constraints", "cosine_distances"]

_APART = 1e9


@dataclass(frozen=True)
class ConstrainedClusters:
    """labels: cluster per item (0.., in order of first appearance); dropped_must_links: pairs given as must-link that
    would have joined a cannot-link pair."""

    labels: NDArray[np.int64]
    threshold: float
    dropped_must_links: list[tuple[int, int]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return int(self.labels.max(initial=-1)) + 1


def cosine_distances(vectors: ArrayLike) -> NDArray[np.float64]:
    """1 - cosine similarity of the rows (zero rows count as orthogonal to everything)."""
    v = np.asarray(vectors, np.float64)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    unit = np.divide(v, norms, out=np.zeros_like(v), where=norms > 0)
    return np.clip(1.0 - unit @ unit.T, 0.0, 2.0)


def cluster_with_constraints(
    vectors: ArrayLike,
    threshold: float,
    *,
    cannot_link: Iterable[tuple[int, int]] = (),
    must_link: Iterable[tuple[int, int]] = (),
) -> ConstrainedClusters:
    """Cluster the rows of `vectors` (one per track: its pooled embedding) at cosine distance `threshold`.

    Raises:
        ValueError: `vectors` is not 2-D, a pair names a row that does not exist, or a pair links a row to itself.
    """
    v = np.asarray(vectors, np.float64)
    if v.ndim != 2:
        raise ValueError(f"vectors must be (n, d), got shape {v.shape}")
    n = len(v)
    apart = _checked_pairs(cannot_link, n, "cannot_link")
    together = _checked_pairs(must_link, n, "must_link")
    groups, dropped = _merge_must_links(n, together, apart)
    if n == 0:
        return ConstrainedClusters(np.zeros(0, np.int64), float(threshold), dropped)
    members = [np.flatnonzero(groups == g) for g in range(int(groups.max()) + 1)]
    if len(members) == 1:
        return ConstrainedClusters(np.zeros(n, np.int64), float(threshold), dropped)
    pooled = np.stack([v[m].sum(axis=0) for m in members])
    distances = cosine_distances(pooled)
    for a, b in apart:
        distances[groups[a], groups[b]] = distances[groups[b], groups[a]] = _APART
    np.fill_diagonal(distances, 0.0)
    model = AgglomerativeClustering(
        n_clusters=None, metric="precomputed", linkage="average", distance_threshold=float(threshold)
    )
    group_labels = model.fit_predict(distances)
    return ConstrainedClusters(_in_order(group_labels[groups]), float(threshold), dropped)


def _checked_pairs(pairs: Iterable[tuple[int, int]], n: int, name: str) -> list[tuple[int, int]]:
    out = []
    for a, b in pairs:
        a, b = int(a), int(b)
        if not (0 <= a < n and 0 <= b < n):
            raise ValueError(f"{name} pair ({a}, {b}) names a row outside 0..{n - 1}")
        if a == b:
            raise ValueError(f"{name} pair ({a}, {b}) links a row to itself")
        out.append((a, b))
    return out


def _merge_must_links(
    n: int, together: list[tuple[int, int]], apart: list[tuple[int, int]]
) -> tuple[NDArray[np.int64], list[tuple[int, int]]]:
    """Union-find over the must-links, skipping any that would put a cannot-link pair in one group."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    dropped = []
    for a, b in together:
        ra, rb = root(a), root(b)
        if ra == rb:
            continue
        merged = {i for i in range(n) if root(i) in (ra, rb)}
        if any(x in merged and y in merged for x, y in apart):
            dropped.append((a, b))
            continue
        parent[rb] = ra
    return _in_order(np.array([root(i) for i in range(n)], np.int64)), dropped


def _in_order(labels: NDArray[np.int64]) -> NDArray[np.int64]:
    """Relabel 0.. in order of first appearance (stable, readable ids)."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first))
    return rank[inverse].astype(np.int64)
