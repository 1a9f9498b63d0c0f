"""Several embedders as one: weighted concatenation, and fusion of per-member similarity scores.

Concatenating unit vectors scaled by sqrt(w_i / sum w) gives a unit vector whose cosine with another is exactly
the weighted mean of the members' cosines, so a gallery, an index or a tracker can treat the ensemble as a single
embedder while it still behaves as score-level fusion.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from trackid.embed.base import Embedder, make_embedder, register_embedder
from trackid.embed.crops import check_crops, l2_normalise

__all__ = ["EnsembleEmbedder", "fuse_scores"]


@register_embedder("ensemble")
class EnsembleEmbedder:
    """Weighted concatenation of member embeddings.

    Args:
        members: embedders, or config mappings `{"name": ..., "params": {...}}` built with `make_embedder`.
        weights: non-negative relative weights (default equal); each member's share of the cosine similarity.
    """

    def __init__(self, members: Sequence[Embedder | Mapping[str, Any]], weights: Sequence[float] | None = None) -> None:
        if not members:
            raise ValueError("members must name at least one embedder")
        self.members: list[Embedder] = [_build_member(m) for m in members]
        w = np.ones(len(self.members)) if weights is None else np.asarray(weights, np.float64)
        if w.shape != (len(self.members),) or (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"weights must be {len(self.members)} non-negative numbers, not all zero; got {weights}")
        self.weights = w / w.sum()
        self.dims = [m.dim for m in self.members]
        self.dim = sum(self.dims)
        self.model_id = "ensemble(" + ",".join(m.model_id for m in self.members) + ")"
        self.version = ",".join(f"{m.version}@{wi:.3g}" for m, wi in zip(self.members, self.weights, strict=True))
        self._scales = np.repeat(np.sqrt(self.weights), self.dims).astype(np.float32)

    def embed(self, crops: Sequence[NDArray[np.uint8]]) -> NDArray[np.float32]:
        check_crops(crops)
        parts = [l2_normalise(m.embed(crops)) for m in self.members]
        return l2_normalise(np.concatenate(parts, axis=1) * self._scales)

    def member_similarities(self, a: ArrayLike, b: ArrayLike) -> NDArray[np.float32]:
        """(M, Na, Nb) cosine similarity of each member between ensemble embeddings `a` and `b`.

        Lets a caller calibrate or gate on one member (e.g. trust faces only when both crops have one).
        """
        a_arr, b_arr = np.asarray(a, np.float32), np.asarray(b, np.float32)
        bounds = np.cumsum([0, *self.dims])
        out = []
        for i, weight in enumerate(self.weights):
            lo, hi = bounds[i], bounds[i + 1]
            sims = a_arr[:, lo:hi] @ b_arr[:, lo:hi].T
            out.append(sims / weight if weight > 0 else np.zeros_like(sims))
        return np.stack(out)


def fuse_scores(scores: Sequence[ArrayLike], weights: Sequence[float] | None = None) -> NDArray[np.float64]:
    """Weighted mean of same-shaped similarity arrays, ignoring NaN entries (a member that could not score a pair).

    A pair every member left NaN stays NaN, so the caller sees it was never scored.
    """
    stack = np.stack([np.asarray(s, np.float64) for s in scores])
    w = np.ones(len(stack)) if weights is None else np.asarray(weights, np.float64)
    if w.shape != (len(stack),) or (w < 0).any():
        raise ValueError(f"weights must be {len(stack)} non-negative numbers, got {weights}")
    w = w.reshape(-1, *([1] * (stack.ndim - 1)))
    present = ~np.isnan(stack)
    total = (w * present).sum(axis=0)
    fused = (w * np.where(present, stack, 0.0)).sum(axis=0)
    return np.divide(fused, total, out=np.full_like(fused, np.nan), where=total > 0)


def _build_member(member: Embedder | Mapping[str, Any]) -> Embedder:
    if isinstance(member, Mapping):
        if "name" not in member:
            raise ValueError(f"ensemble member config needs a 'name': {dict(member)}")
        return make_embedder(str(member["name"]), **dict(member.get("params", {})))
    return member
