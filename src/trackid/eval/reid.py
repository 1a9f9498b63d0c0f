"""Re-identification ranking metrics: CMC (rank-k) and mAP, with the field's standard definitions.

As in the Market-1501 / Open-ReID evaluation code: each query ranks the whole gallery by descending similarity;
gallery entries of the same identity *and* the same camera as the query are removed (they are trivially easy, not
re-identification); a query whose identity has no remaining gallery entry is skipped. CMC at rank k is the share of
queries whose first correct entry is within the top k; AP is the mean of precision at the rank of each correct
entry, and mAP the mean over queries. With one gallery image per identity (VIPeR, cross-camera), AP = 1 / rank.
Ties in similarity are broken by gallery order (stable sort), as the reference code does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["ReidScores", "evaluate_reid"]


@dataclass(frozen=True)
class ReidScores:
    """`cmc[k - 1]` is the rank-k accuracy in [0, 1]; `mean_ap` in [0, 1]; `n_queries` scored (others skipped)."""

    cmc: NDArray[np.float64]
    mean_ap: float
    n_queries: int

    def rank(self, k: int) -> float:
        return float(self.cmc[min(k, len(self.cmc)) - 1])


def evaluate_reid(
    similarity: ArrayLike,
    query_ids: ArrayLike,
    gallery_ids: ArrayLike,
    query_cams: ArrayLike | None = None,
    gallery_cams: ArrayLike | None = None,
    max_rank: int = 50,
) -> ReidScores:
    """CMC up to `max_rank` and mAP of a (queries, gallery) similarity matrix (higher = more alike).

    Cameras default to "all different", i.e. nothing is removed (a cross-camera query / gallery split).
    """
    sim = np.asarray(similarity, np.float64)
    if sim.ndim != 2 or 0 in sim.shape:
        raise ValueError(f"similarity must be a non-empty (queries, gallery) matrix, got shape {sim.shape}")
    if not np.isfinite(sim).all():
        raise ValueError("similarity contains NaN or inf")
    n_q, n_g = sim.shape
    qid, gid = _vector(query_ids, n_q, "query_ids"), _vector(gallery_ids, n_g, "gallery_ids")
    if (query_cams is None) != (gallery_cams is None):
        raise ValueError("query_cams and gallery_cams must be given together")
    if max_rank < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}")

    order = np.argsort(-sim, axis=1, kind="stable")
    correct = gid[order] == qid[:, None]
    if query_cams is not None and gallery_cams is not None:
        qcam, gcam = _vector(query_cams, n_q, "query_cams"), _vector(gallery_cams, n_g, "gallery_cams")
        keep = ~(correct & (gcam[order] == qcam[:, None]))
    else:
        keep = np.ones_like(correct)
    # Compact each row to its kept entries, in ranked order: removed entries do not occupy a rank.
    ranked_correct = np.zeros_like(correct)
    position = np.cumsum(keep, axis=1) - 1
    r, c = np.nonzero(keep)
    ranked_correct[r, position[r, c]] = correct[r, c]
    n_correct = ranked_correct.sum(axis=1)
    scored = n_correct > 0
    if not scored.any():
        raise ValueError("no query has a correct gallery entry (check query_ids / gallery_ids)")
    hits = ranked_correct[scored]
    first = np.argmax(hits, axis=1)
    depth = min(max_rank, n_g)
    cmc = (first[:, None] < np.arange(1, depth + 1)[None, :]).mean(axis=0)
    cum_hits = np.cumsum(hits, axis=1)
    precision = cum_hits / np.arange(1, n_g + 1)[None, :]
    ap = (precision * hits).sum(axis=1) / n_correct[scored]
    return ReidScores(cmc=cmc, mean_ap=float(ap.mean()), n_queries=int(scored.sum()))


def _vector(values: ArrayLike, n: int, name: str) -> NDArray[np.generic]:
    arr = np.asarray(values)
    if arr.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {arr.shape}")
    return arr
