"""PostgreSQL + pgvector schema steps.

Vectors are untyped `vector` columns so that models of different dimensions share one table; each model gets a
partial HNSW index on `(vector::vector(d))` for its own rows (created when the model is registered), which is how
pgvector indexes mixed dimensions.
"""

from __future__ import annotations

from trackid.identity.stores.migrations import Migration

__all__ = ["MIGRATIONS"]

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "gallery tables",
        (
            "CREATE EXTENSION IF NOT EXISTS vector",
            "CREATE TABLE models (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, model_id TEXT NOT NULL, "
            "model_version TEXT NOT NULL, dim INTEGER NOT NULL CHECK (dim > 0), UNIQUE (model_id, model_version))",
            "CREATE TABLE identities (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, label TEXT, site TEXT, "
            "attributes JSONB NOT NULL DEFAULT '{}', created DOUBLE PRECISION NOT NULL, first_seen DOUBLE PRECISION, "
            "last_seen DOUBLE PRECISION, sighting_count INTEGER NOT NULL DEFAULT 0, "
            "deleted SMALLINT NOT NULL DEFAULT 0)",
            "CREATE TABLE sightings (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
            "identity_id BIGINT REFERENCES identities(id), time DOUBLE PRECISION NOT NULL, site TEXT, camera TEXT, "
            "quality DOUBLE PRECISION NOT NULL, model_key BIGINT NOT NULL REFERENCES models(id), "
            "vector vector NOT NULL)",
            "CREATE INDEX sightings_by_identity ON sightings (identity_id, time)",
            "CREATE TABLE prototypes (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
            "identity_id BIGINT NOT NULL REFERENCES identities(id), model_key BIGINT NOT NULL REFERENCES models(id), "
            "vector vector NOT NULL, quality DOUBLE PRECISION NOT NULL, sighting_count INTEGER NOT NULL, "
            "created DOUBLE PRECISION NOT NULL)",
            "CREATE INDEX prototypes_by_identity ON prototypes (identity_id, model_key)",
            "CREATE TABLE corrections (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, kind TEXT NOT NULL "
            "CHECK (kind IN ('merge', 'split', 'relabel', 'delete', 'undo')), identity_id BIGINT, "
            "other_identity_id BIGINT, payload JSONB NOT NULL, time DOUBLE PRECISION NOT NULL, "
            "undone_by BIGINT REFERENCES corrections(id))",
            "CREATE TABLE similarity_log (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
            "query_sighting_id BIGINT, candidate_identity_id BIGINT, similarity DOUBLE PRECISION NOT NULL, "
            "probability DOUBLE PRECISION, threshold DOUBLE PRECISION, decision TEXT NOT NULL, "
            "model_id TEXT NOT NULL, model_version TEXT NOT NULL, time DOUBLE PRECISION NOT NULL)",
            "CREATE INDEX similarity_log_by_time ON similarity_log (time)",
        ),
    ),
    Migration(
        2,
        "sighting sources and vectors of further models",
        (
            "ALTER TABLE sightings ADD COLUMN source TEXT",
            "CREATE TABLE sighting_vectors (sighting_id BIGINT NOT NULL REFERENCES sightings(id), "
            "model_key BIGINT NOT NULL REFERENCES models(id), vector vector NOT NULL, "
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
            "adaptation TEXT, drift TEXT, updated DOUBLE PRECISION NOT NULL, "
            "PRIMARY KEY (model_id, model_version, camera))",
        ),
    ),
    Migration(
        5,
        "stream ledger",
        (
            # The multi-camera linker's exactly-once bookkeeping (`trackid.identity.stores.ledger`): per consumer
            # and producer the last message applied, the consumer's versioned state, and its output positions.
            "CREATE TABLE stream_offsets (consumer TEXT NOT NULL, producer TEXT NOT NULL, last_seq BIGINT NOT NULL, "
            "updated DOUBLE PRECISION NOT NULL, PRIMARY KEY (consumer, producer))",
            "CREATE TABLE linker_state (consumer TEXT PRIMARY KEY, version BIGINT NOT NULL, state BYTEA NOT NULL, "
            "updated DOUBLE PRECISION NOT NULL)",
            "CREATE TABLE global_positions (site TEXT NOT NULL, frame BIGINT NOT NULL, track BIGINT NOT NULL, "
            "identity_id BIGINT, time DOUBLE PRECISION NOT NULL, x DOUBLE PRECISION NOT NULL, "
            "y DOUBLE PRECISION NOT NULL, "
            "PRIMARY KEY (site, frame, track))",
        ),
    ),
)
