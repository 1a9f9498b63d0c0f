"""Gallery stores: where identities, sightings, prototypes, corrections and the similarity log live.

`GalleryStore` (`base.py`) is the one interface, an abstract class holding the SQL both backends share;
`SqliteGalleryStore` (one file + an HNSW index file, embedded) and `PostgresGalleryStore` (pgvector, at scale) supply
the connection and the nearest-prototype search. `make_store(url)` opens either by location. The backends import
`base`, never this package face, so there is no import cycle; PostgreSQL is imported only when asked for, so the
embedded store works without psycopg.
"""

from __future__ import annotations

import os
from typing import Any

from trackid.identity.stores.base import GalleryStore, StoreError, StoreLockedError, as_unit_vector
from trackid.identity.stores.params import STORES, PostgresParams, SqliteParams, StoreParams
from trackid.identity.stores.records import (
    CameraStats,
    Candidate,
    Correction,
    Identity,
    IntegrityReport,
    LabelledPair,
    ModelInfo,
    Prototype,
    Sighting,
    SimilarityRecord,
)
from trackid.identity.stores.sqlite import SqliteGalleryStore

__all__ = [
    "STORES",
    "CameraStats",
    "Candidate",
    "Correction",
    "GalleryStore",
    "Identity",
    "IntegrityReport",
    "LabelledPair",
    "ModelInfo",
    "PostgresParams",
    "Prototype",
    "Sighting",
    "SimilarityRecord",
    "SqliteGalleryStore",
    "SqliteParams",
    "StoreError",
    "StoreLockedError",
    "StoreParams",
    "as_unit_vector",
    "make_store",
]


def make_store(url: str | os.PathLike[str], *, create: bool = True, **params: Any) -> GalleryStore:
    """Open a store by location: `postgresql://...` (or `postgres://`) is PostgreSQL, `sqlite:///path` or a plain
    path is SQLite; `params` are the backend's settings (`SqliteParams`, `PostgresParams`), checked by `STORES`.

    `create=False` opens only a store that already exists (read-only and maintenance commands), raising
    `StoreError` naming the location otherwise. Any store that cannot be opened raises `StoreError` (a ValueError).
    """
    text = os.fspath(url)
    if text.startswith(("postgresql://", "postgres://")):
        return STORES.make("postgres", {**params, "create": create, "conninfo": text})
    return STORES.make("sqlite", {**params, "create": create, "path": text.removeprefix("sqlite://")})


@STORES.register("postgres", params=PostgresParams)
def _postgres(conninfo: str, **params: Any) -> GalleryStore:
    """PostgreSQL on demand: psycopg is an optional dependency, imported only when a postgresql:// URL is opened."""
    from trackid.identity.stores.postgres import PostgresGalleryStore

    return PostgresGalleryStore(conninfo, **params)
