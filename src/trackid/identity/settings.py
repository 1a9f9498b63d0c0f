"""The gallery's settings as one typed section (`gallery:` in a run's YAML), and opening a store from them.

Defaults are the measured ones: see each field's description and `BENCHMARKS.md` (gallery_scale.py).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from trackid.identity.stores import GalleryStore, make_store

__all__ = ["GalleryConfig", "IndexConfig", "LogRetention"]


class IndexConfig(BaseModel):
    """The embedded store's vector index (PostgreSQL uses pgvector's own HNSW; only `ef_search` applies there)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["hnsw", "exact"] = Field(
        "hnsw", description="hnsw: approximate, millions of vectors; exact: brute force, up to tens of thousands."
    )
    connectivity: int = Field(
        32, ge=4, description="HNSW M. 32 (not 16) is what reaches recall@10 >= 0.95 on 1M clustered vectors."
    )
    ef_construction: int = Field(200, ge=8, description="Build-time candidate list: better graph, slower build.")
    ef_search: int = Field(64, ge=1, description="Search-time candidate list: the recall/latency dial.")
    dtype: Literal["f32", "bf16", "f16", "i8"] = Field(
        "bf16", description="Vector precision in the graph: bf16 halves memory and search time at equal recall."
    )


class LogRetention(BaseModel):
    """How long the similarity log keeps its records; pruning runs every `prune_every` logged decisions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_age_days: float | None = Field(
        180.0, gt=0, description="Drop records older than this (None: keep forever). Threshold audits need months."
    )
    max_rows: int | None = Field(
        5_000_000, ge=0, description="Keep at most this many newest records (None: unbounded; ~100 bytes each)."
    )
    prune_every: int = Field(1000, ge=1, description="Logged decisions between two pruning passes.")


class GalleryConfig(BaseModel):
    """Where the gallery lives and how it searches, remembers and forgets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    store: str = Field("gallery.sqlite", description="A SQLite file path, or postgresql://... for PostgreSQL.")
    index: IndexConfig = Field(default_factory=IndexConfig)
    max_prototypes: int = Field(5, ge=1, description="Prototypes kept per identity and model.")
    merge_similarity: float = Field(
        0.9, ge=-1, le=1, description="A sighting this similar to a prototype is averaged into it."
    )
    compact_after: float = Field(
        0.25,
        gt=0,
        description="Rebuild the embedded index in the background once removed/replaced entries reach this "
        "fraction of its size (tombstones slow searches and cost recall).",
    )
    log_retention: LogRetention = Field(default_factory=LogRetention)

    def open_store(self, *, create: bool = True) -> GalleryStore:
        """Open the configured store, creating it if missing unless `create=False` (then a missing one raises
        `StoreError` naming it: what commands that only read or maintain a store want)."""
        params: dict[str, Any] = {
            "create": create,
            "max_prototypes": self.max_prototypes,
            "merge_similarity": self.merge_similarity,
        }
        if self.store.startswith(("postgresql://", "postgres://")):
            params["ef_search"] = self.index.ef_search
        else:
            params["index_kind"] = self.index.kind
            params["compact_after"] = self.compact_after
            if self.index.kind == "hnsw":
                params["index_params"] = self.index.model_dump(exclude={"kind"})
        return make_store(self.store, **params)
