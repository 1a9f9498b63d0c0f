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
from pydantic import Field, field_validator

from trackid.embed.base import EMBEDDERS, Embedder, make_embedder, register_embedder
from trackid.embed.crops import check_crops, l2_normalise
from trackid.registry import BackendParams

__all__ = ["EnsembleEmbedder", "EnsembleParams", "fuse_scores"]


class EnsembleParams(BackendParams):
    """The members and their weights; a member given as config has its own parameters checked too."""

    members: list[Any] = Field(
        min_length=1,
        description="Embedders, or config mappings `{name: ..., params: {...}}` built by name. Each member adds its "
        "cost to every crop and its dimensions to every vector.",
    )
    weights: tuple[float, ...] | None = Field(
        None,
        description="Non-negative relative weights, one per member (null: equal); each member's share of the cosine "
        "similarity. `trackid photos tune` picks them from labelled photos.",
    )

    @field_validator("members")
    @classmethod
    def _members_are_embedders_or_their_config(cls, members: list[Any]) -> list[Any]:
        for i, member in enumerate(members):
            if isinstance(member, Mapping):
                try:
                    _check_member_config(member)
                except ValueError as exc:
                    raise ValueError(f"member {i}: {exc}") from None
        return members


@register_embedder("ensemble", params=EnsembleParams)
class EnsembleEmbedder:
    """Weighted concatenation of member embeddings.

    Args: see `EnsembleParams`.
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
        _check_member_config(member)
        return make_embedder(str(member["name"]), member.get("params"))
    return member


def _check_member_config(member: Mapping[str, Any]) -> None:
    """A member's config: its `name`, its `params` valid for that embedder, nothing else."""
    if "name" not in member or set(member) - {"name", "params"}:
        raise ValueError(f"an ensemble member's config takes 'name' and 'params', got {dict(member)}")
    EMBEDDERS.validate(str(member["name"]), member.get("params"))
