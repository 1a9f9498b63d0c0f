"""The stores' registry and each backend's typed settings, so a store chosen by URL in a config file or on the
command line is checked like a detector or an embedder: a misspelt or mistyped setting fails when it is read, with a
message naming the backend and the setting.

This module imports no backend (PostgreSQL's needs psycopg, an optional dependency); the SQLite backend registers
itself here, and the package face registers PostgreSQL through a factory that imports it only when it is asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from trackid.registry import BackendParams, Registry

if TYPE_CHECKING:
    from trackid.identity.stores.base import GalleryStore

__all__ = ["STORES", "PostgresParams", "SqliteParams", "StoreParams"]

STORES: Registry[GalleryStore] = Registry("store")
"""Gallery store backends by name ("sqlite", "postgres"); `make_store(url)` picks one from the URL."""


class StoreParams(BackendParams):
    """What every store takes: whether it may be created, and its prototype memory (`identity/stores/prototypes`)."""

    create: bool = Field(
        True,
        description="Create the store (its file and folder, or its tables) when it is missing. False for commands that "
        "only read or maintain a store: a misspelt location then fails, naming it, instead of making an empty store.",
    )

    max_prototypes: int = Field(
        5,
        ge=1,
        description="Prototypes kept per identity and model. Raising it remembers more poses and lightings (better "
        "recall across viewpoints) at the cost of more vectors per identity to search and a higher chance that one "
        "bad sighting keeps a slot.",
    )
    merge_similarity: float = Field(
        0.9,
        ge=-1,
        le=1,
        description="A new sighting this similar (cosine) to a prototype is folded into it, quality-weighted, instead "
        "of taking a slot. Raising it keeps prototypes distinct but fills the slots sooner; lowering it averages "
        "more and blurs distinct appearances.",
    )


class SqliteParams(StoreParams):
    """The embedded store: one SQLite file plus an index file per model beside it."""

    path: Path = Field(description="The database file (created with its folder); index files go beside it.")
    index_kind: Literal["hnsw", "exact"] = Field(
        "hnsw",
        description="hnsw: approximate, scales to millions; exact: brute force, exact, fine up to tens of thousands.",
    )
    index_params: dict[str, Any] | None = Field(
        None,
        description="Passed to the index (e.g. ef_search for HNSW: higher recall, slower search). A saved index built "
        "with another graph (connectivity, dtype) is rebuilt with these on open; ef_construction applies to later "
        "inserts.",
    )
    compact_after: float = Field(
        0.25,
        gt=0,
        description="HNSW: rebuild the graph in the background once removed or replaced entries reach this fraction "
        "of it. Lower keeps searches on a cleaner graph, at more rebuild CPU.",
    )


class PostgresParams(StoreParams):
    """The scale store: PostgreSQL with pgvector (0.5 or newer)."""

    conninfo: str = Field(description="A libpq URL or keyword string, e.g. postgresql://user@host/db.")
    ef_search: int = Field(
        40,
        ge=1,
        description="pgvector's hnsw.ef_search floor (raised to the number of prototypes fetched, up to 1000). "
        "Raising it improves recall and costs latency.",
    )
    hnsw_m: int = Field(16, ge=1, description="HNSW edges per node: better recall, more build time and index size.")
    hnsw_ef_construction: int = Field(
        64, ge=1, description="HNSW build candidate list: a better graph, build time grows about linearly."
    )
