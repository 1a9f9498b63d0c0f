"""From top-k candidates to decisions: a batch of queries competing for identities, solved jointly.

Greedy matching (each query takes its best candidate in turn) lets an early query steal the identity that a later
query needed more, and can give one identity to two queries. Here the batch is one assignment problem: each query
either takes a candidate identity or the explicit "new identity" option, no identity is taken twice, and the total
cost sum(-log p) over matches plus -log(threshold) per new identity is minimal. That is the most probable joint
explanation of the batch in which every accepted match has p >= threshold: a match below threshold always costs
more than declaring the query new, so the threshold policy and the assignment never contradict each other.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from trackid.identity.calibration import MatchCalibrator

__all__ = ["Decision", "Match", "assign_queries", "competitor_scores", "match_queries"]

Decision = Literal["match", "new", "new_conflict"]
"""match: took `identity_id`. new: no candidate reached the threshold. new_conflict: one did, but the batch's
optimal assignment gave it to another query (worth logging: a likely duplicate or a split identity)."""


@dataclass(frozen=True, slots=True)
class Match:
    """One query's decision, with the evidence the similarity log records.

    For a new identity, `similarity` and `probability` are those of the query's best candidate (NaN without any),
    so the log shows how close the decision was.
    """

    query: int
    identity_id: Hashable | None
    similarity: float
    probability: float
    threshold: float
    decision: Decision


def match_queries(
    calibrator: MatchCalibrator,
    candidate_ids: ArrayLike,
    similarity: ArrayLike,
    threshold: float,
    quality: ArrayLike | None = None,
    time_gap_s: ArrayLike | None = None,
    valid: ArrayLike | None = None,
    competitor_weight: float = 0.0,
) -> list[Match]:
    """Calibrate (Q, K) candidate similarities (and optional qualities / time gaps), then `assign_queries`. With a
    `competitor_weight` the calibrated score is `competitor_scores`'; the raw similarity is what `Match` records."""
    sims = np.asarray(similarity, np.float64)
    if sims.ndim != 2:
        raise ValueError(f"similarity must be (queries, k), got shape {sims.shape}")
    mask = np.ones(sims.shape, bool) if valid is None else np.asarray(valid, bool)
    if mask.shape != sims.shape:
        raise ValueError(f"valid must match similarity's shape {sims.shape}, got {mask.shape}")
    extras = [None if v is None else np.asarray(v, np.float64)[mask] for v in (quality, time_gap_s)]
    proba = np.zeros(sims.shape)
    scores = sims if competitor_weight == 0.0 else competitor_scores(candidate_ids, sims, mask, competitor_weight)
    if mask.any():
        proba[mask] = calibrator.predict_proba(scores[mask], extras[0], extras[1])
    return assign_queries(candidate_ids, proba, threshold, similarity=sims, valid=mask)


def competitor_scores(
    candidate_ids: ArrayLike, similarity: ArrayLike, valid: ArrayLike, weight: float
) -> NDArray[np.float64]:
    """Each candidate's similarity less `weight` times the best similarity of any other identity in its row (0 when
    the row has none): a best match far above every other identity is more likely right than one among near-equals.
    `photos tune` replays ingest with the same rule to choose the weight and calibrate it."""
    sims = np.asarray(similarity, np.float64)
    ids = np.asarray(candidate_ids, dtype=object)
    mask = np.asarray(valid, bool)
    other = (ids[:, :, None] != ids[:, None, :]) & mask[:, None, :]  # (Q, K candidate, K competitor)
    rival = np.where(other, sims[:, None, :], -np.inf).max(axis=2, initial=-np.inf)
    return sims - weight * np.where(np.isfinite(rival), rival, 0.0)


def assign_queries(
    candidate_ids: ArrayLike,
    probability: ArrayLike,
    threshold: float,
    similarity: ArrayLike | None = None,
    valid: ArrayLike | None = None,
) -> list[Match]:
    """Jointly decide a batch: each query matches one candidate identity (p >= threshold) or becomes new.

    Args:
        candidate_ids: (Q, K) identity ids from the index's top-k search. An identity may appear several times
            in a row (several prototypes); its best probability counts.
        probability: (Q, K) calibrated P(same) of each candidate.
        threshold: accept a match only when p >= threshold (from a policy, e.g. a target false-match rate).
        similarity: (Q, K) raw similarities, only recorded in the `Match` records.
        valid: (Q, K) mask of real candidates, for rows with fewer than K hits (default: all valid).

    Returns:
        One `Match` per query, in query order.
    """
    p = np.asarray(probability, np.float64)
    if p.ndim != 2:
        raise ValueError(f"probability must be (queries, k), got shape {p.shape}")
    ids = np.asarray(candidate_ids, dtype=object)
    if ids.shape != p.shape:
        raise ValueError(f"candidate_ids must match probability's shape {p.shape}, got {ids.shape}")
    sims = np.full(p.shape, np.nan) if similarity is None else np.asarray(similarity, np.float64)
    if sims.shape != p.shape:
        raise ValueError(f"similarity must match probability's shape {p.shape}, got {sims.shape}")
    mask = np.ones(p.shape, bool) if valid is None else np.asarray(valid, bool)
    if mask.shape != p.shape:
        raise ValueError(f"valid must match probability's shape {p.shape}, got {mask.shape}")
    if not np.isfinite(p[mask]).all() or ((p[mask] < 0) | (p[mask] > 1)).any():
        raise ValueError("probability must be finite and in [0, 1] for every valid candidate")
    if not 0.0 < threshold <= 1.0 and threshold != float("inf"):
        raise ValueError(f"threshold must be a probability in (0, 1] or inf, got {threshold}")

    n_queries, k = p.shape
    rows, cols = np.nonzero(mask)
    unique_ids, column = _factorise(ids[rows, cols])
    n_ids = len(unique_ids)
    allowed = p[rows, cols] >= threshold
    taken = _assign_allowed(rows[allowed], column[allowed], p[rows, cols][allowed], threshold, n_queries, n_ids)
    # Per query, the evidence to record: the chosen identity's best candidate, else the best candidate overall.
    masked_p = np.where(mask, p, -np.inf)
    cand_col = np.full(p.shape, -1)
    cand_col[rows, cols] = column
    chosen = (cand_col == taken[:, None]) & mask
    if k:
        best_of_chosen = np.argmax(np.where(chosen, p, -np.inf), axis=1)
        pick = np.where(chosen.any(axis=1), best_of_chosen, np.argmax(masked_p, axis=1))
    else:
        pick = np.zeros(n_queries, np.intp)
    has_any: NDArray[np.bool_] = np.asarray(mask.any(axis=1))
    best_p = masked_p.max(axis=1, initial=-np.inf)
    out = []
    for q in range(n_queries):
        j = int(pick[q]) if has_any[q] else -1
        is_match = int(taken[q]) >= 0
        if is_match:
            decision: Decision = "match"
        else:
            decision = "new_conflict" if best_p[q] >= threshold else "new"
        out.append(
            Match(
                query=q,
                identity_id=unique_ids[taken[q]] if is_match else None,
                similarity=float(sims[q, j]) if j >= 0 else float("nan"),
                probability=float(p[q, j]) if j >= 0 else float("nan"),
                threshold=float(threshold),
                decision=decision,
            )
        )
    return out


def _assign_allowed(
    query: NDArray[np.intp],
    column: NDArray[np.intp],
    probability: NDArray[np.float64],
    threshold: float,
    n_queries: int,
    n_ids: int,
) -> NDArray[np.intp]:
    """The optimal assignment over the allowed (query, identity) edges: per query the identity column it takes, or
    -1 for new. Each query has a private "new" option costing -log(threshold), so the problem splits into the
    connected components of the allowed edges; each is solved on its own small dense matrix. The same optimum as
    one dense (Q, ids + Q) matrix, but a batch of 10,000 queries costs 10,000 tiny problems, not 10^9 cells.
    """
    taken = np.full(n_queries, -1, np.intp)
    if not len(query):
        return taken
    cost = -np.log(probability)
    owners = np.zeros(n_ids, np.intp)
    np.add.at(owners, np.unique(np.stack([query, column]), axis=1)[1], 1)
    if owners.max() == 1:  # no identity is wanted by two queries: each takes its own best candidate
        order = np.lexsort((cost, query))
        first = np.flatnonzero(np.diff(query[order], prepend=-1))
        taken[query[order][first]] = column[order][first]
        return taken
    graph = coo_matrix((np.ones(len(query)), (query, n_queries + column)), shape=(n_queries + n_ids,) * 2)
    _, label = connected_components(graph, directed=False)
    new_cost = -np.log(threshold) if np.isfinite(threshold) else 0.0
    order = np.argsort(label[query], kind="stable")
    starts = np.flatnonzero(np.diff(label[query][order], prepend=-1))
    for edges in np.split(order, starts[1:]):
        qs, q_at = np.unique(query[edges], return_inverse=True)
        cs, c_at = np.unique(column[edges], return_inverse=True)
        sub = np.full((len(qs), len(cs) + len(qs)), np.inf)
        np.minimum.at(sub, (q_at, c_at), cost[edges])  # an identity may be a candidate through several prototypes
        sub[np.arange(len(qs)), len(cs) + np.arange(len(qs))] = new_cost
        r, c = linear_sum_assignment(sub)
        took = c < len(cs)
        taken[qs[r[took]]] = cs[c[took]]
    return taken


def _factorise(values: NDArray[np.object_]) -> tuple[list[Hashable], NDArray[np.intp]]:
    """Distinct ids in first-seen order and each value's index; works for any hashable ids (int, str, UUID)."""
    index: dict[Hashable, int] = {}
    codes = np.fromiter((index.setdefault(v, len(index)) for v in values), dtype=np.intp, count=len(values))
    return list(index), codes
