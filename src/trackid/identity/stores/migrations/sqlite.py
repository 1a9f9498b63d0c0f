"""SQLite schema steps. Vectors are float32 BLOBs (the source of truth; the HNSW file is derived from them)."""

from __future__ import annotations

from trackid.identity.stores.migrations import Migration

__all__ = ["MIGRATIONS"]

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "gallery tables",
        (
            "CREATE TABLE models (id INTEGER PRIMARY KEY, model_id TEXT NOT NULL, model_version TEXT NOT NULL, "
            "dim INTEGER NOT NULL CHECK (dim > 0), UNIQUE (model_id, model_version))",
            # AUTOINCREMENT: identity and sighting ids are handed out and must never be reused.
            "CREATE TABLE identities (id INTEGER PRIMARY KEY AUTOINCREMENT, label TEXT, site TEXT, "
            "attributes TEXT NOT NULL DEFAULT '{}', created REAL NOT NULL, first_seen REAL, last_seen REAL, "
            "sighting_count INTEGER NOT NULL DEFAULT 0, deleted INTEGER NOT NULL DEFAULT 0)",
            "CREATE TABLE sightings (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "identity_id INTEGER REFERENCES identities(id), time REAL NOT NULL, site TEXT, camera TEXT, "
            "quality REAL NOT NULL, model_key INTEGER NOT NULL REFERENCES models(id), vector BLOB NOT NULL)",
            "CREATE INDEX sightings_by_identity ON sightings (identity_id, time)",
            "CREATE TABLE prototypes (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "identity_id INTEGER NOT NULL REFERENCES identities(id), model_key INTEGER NOT NULL REFERENCES models(id), "
            "vector BLOB NOT NULL, quality REAL NOT NULL, sighting_count INTEGER NOT NULL, created REAL NOT NULL)",
            "CREATE INDEX prototypes_by_identity ON prototypes (identity_id, model_key)",
            "CREATE TABLE corrections (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL "
            "CHECK (kind IN ('merge', 'split', 'relabel', 'delete', 'undo')), identity_id INTEGER, "
            "other_identity_id INTEGER, payload TEXT NOT NULL, time REAL NOT NULL, "
            "undone_by INTEGER REFERENCES corrections(id))",
            "CREATE TABLE similarity_log (id INTEGER PRIMARY KEY AUTOINCREMENT, query_sighting_id INTEGER, "
            "candidate_identity_id INTEGER, similarity REAL NOT NULL, probability REAL, threshold REAL, "
            "decision TEXT NOT NULL, model_id TEXT NOT NULL, model_version TEXT NOT NULL, time REAL NOT NULL)",
            "CREATE INDEX similarity_log_by_time ON similarity_log (time)",
            # Per model, 'prototype_seq:<key>' counts prototype writes and 'index_seq:<key>' is that count when
            # the index file was saved: a mismatch on open means the file is stale and is rebuilt from the table.
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
        ),
    ),
    Migration(
        2,
        "sighting sources and vectors of further models",
        (
            # Where the sighting's pixels are (JSON: image path, box): what `reembed` reads with a new model.
            "ALTER TABLE sightings ADD COLUMN source TEXT",
            # A sighting's vectors from models other than the one it was recorded with (written by `reembed`).
            "CREATE TABLE sighting_vectors (sighting_id INTEGER NOT NULL REFERENCES sightings(id), "
            "model_key INTEGER NOT NULL REFERENCES models(id), vector BLOB NOT NULL, "
            "PRIMARY KEY (sighting_id, model_key))",
            "CREATE INDEX sighting_vectors_by_model ON sighting_vectors (model_key, sighting_id)",
        ),
    ),
    Migration(
        3,
        "sighting source keys",
        (
            # An idempotency key per sighting (e.g. a photo's content hash and detection): a pipeline that is
            # re-run after a crash asks which keys are stored and never writes a sighting twice.
            "ALTER TABLE sightings ADD COLUMN source_key TEXT",
            "CREATE UNIQUE INDEX sightings_by_source_key ON sightings (source_key)",
        ),
    ),
    Migration(
        4,
        "camera statistics",
        (
            # Per embedding model and camera: the adapted camera mean (`trackid.embed.adaptation`: the running sum
            # while warming, the frozen mean once adapted) and the drift watch's live state
            # (`trackid.identity.drift`), as JSON, so a later ingest continues where this one stopped.
            "CREATE TABLE camera_stats (model_id TEXT NOT NULL, model_version TEXT NOT NULL, camera TEXT NOT NULL, "
            "adaptation TEXT, drift TEXT, updated REAL NOT NULL, "
            "PRIMARY KEY (model_id, model_version, camera))",
        ),
    ),
    Migration(
        5,
        "stream ledger",
        (
            # The multi-camera linker's exactly-once bookkeeping (`trackid.identity.stores.ledger`): per consumer
            # and producer the last message applied, the consumer's versioned state, and its output positions.
            "CREATE TABLE stream_offsets (consumer TEXT NOT NULL, producer TEXT NOT NULL, last_seq INTEGER NOT NULL, "
            "updated REAL NOT NULL, PRIMARY KEY (consumer, producer))",
            "CREATE TABLE linker_state (consumer TEXT PRIMARY KEY, version INTEGER NOT NULL, state BLOB NOT NULL, "
            "updated REAL NOT NULL)",
            "CREATE TABLE global_positions (site TEXT NOT NULL, frame INTEGER NOT NULL, track INTEGER NOT NULL, "
            "identity_id INTEGER, time REAL NOT NULL, x REAL NOT NULL, y REAL NOT NULL, "
            "PRIMARY KEY (site, frame, track))",
        ),
    ),
)
