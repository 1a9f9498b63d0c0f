"""The scale gallery store: PostgreSQL + pgvector, same protocol and SQL as the SQLite store.

Prototype search runs in the database: each model has a partial HNSW index (`vector_cosine_ops`) over
`vector::vector(d)` restricted to `model_key = <that model>`, so one table holds models of any dimension and a
search can only ever reach its own model's vectors. Durability is PostgreSQL's (a committed write is fsynced).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import psycopg
from numpy.typing import NDArray

from trackid.identity.stores.base import GalleryStore, StoreError
from trackid.identity.stores.migrations import SCHEMA_VERSION_DDL, pending
from trackid.identity.stores.migrations.postgres import MIGRATIONS
from trackid.identity.stores.records import ModelInfo

__all__ = ["PostgresGalleryStore"]

_MIGRATION_LOCK = 0x7472_6163_6B69_64
"""Advisory lock id held while migrating, so two processes opening a fresh database do not both migrate."""


class PostgresGalleryStore(GalleryStore):
    """`GalleryStore` on PostgreSQL with the pgvector extension (0.5 or newer, for HNSW).

    Parameters
    ----------
    conninfo:
        A libpq URL or keyword string, e.g. `postgresql://user@host/db`.
    create:
        Create the gallery's tables in a database that has none; False raises `StoreError` instead (the wrong
        database). The database itself must exist either way.
    ef_search:
        pgvector's `hnsw.ef_search` floor for searches (it is raised to the number of prototypes fetched, up to
        pgvector's maximum of 1000). Raising it improves recall, costs latency.
    hnsw_m, hnsw_ef_construction:
        Build parameters of each model's HNSW index (pgvector's `m`, `ef_construction`): higher gives better recall
        at a given `ef_search`, costs build time and index size.
    max_prototypes, merge_similarity:
        See `GalleryStore`.
    """

    def __init__(
        self,
        conninfo: str,
        *,
        create: bool = True,
        ef_search: int = 40,
        hnsw_m: int = 16,
        hnsw_ef_construction: int = 64,
        max_prototypes: int = 5,
        merge_similarity: float = 0.9,
    ) -> None:
        super().__init__(max_prototypes=max_prototypes, merge_similarity=merge_similarity)
        for name, value in (
            ("ef_search", ef_search),
            ("hnsw_m", hnsw_m),
            ("hnsw_ef_construction", hnsw_ef_construction),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.ef_search = ef_search
        self.hnsw_m = hnsw_m
        self.hnsw_ef_construction = hnsw_ef_construction
        where = _masked(conninfo, conninfo)
        try:
            self._conn: psycopg.Connection[tuple[Any, ...]] | None = psycopg.connect(conninfo, autocommit=True)
        except psycopg.Error as exc:
            raise StoreError(f"{where}: cannot connect to PostgreSQL ({_masked(str(exc).strip(), conninfo)})") from None
        try:
            exists = self._fetchone("SELECT to_regclass('schema_version') IS NOT NULL")
            if not create and not (exists and exists[0]):
                raise StoreError(f"{where}: no gallery store in this database (nothing was created; check the URL)")
            self._migrate()
        except psycopg.Error as exc:
            self.close()
            raise StoreError(
                f"{where}: cannot set up the gallery store ({_masked(str(exc).strip(), conninfo)})"
            ) from None
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- GalleryStore hooks ----------------------------------------------------------------------------------

    @contextmanager
    def _outer_transaction(self) -> Iterator[None]:
        with self._connection.transaction():
            yield

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._connection.execute(_dialect(sql), tuple(params))

    def _execute_count(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._connection.execute(_dialect(sql), tuple(params)).rowcount

    def _executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with self._connection.cursor() as cursor:
                cursor.executemany(_dialect(sql), [tuple(r) for r in rows])

    def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._connection.execute(_dialect(sql), tuple(params)).fetchall()

    def _insert_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> list[int]:
        """One pipelined `executemany` for the whole batch instead of a round trip per row."""
        if not rows:
            return []
        ids: list[int] = []
        with self._connection.cursor() as cursor:
            cursor.executemany(_dialect(sql), [tuple(r) for r in rows], returning=True)
            while True:
                row = cursor.fetchone()
                assert row is not None
                ids.append(int(row[0]))
                if not cursor.nextset():
                    break
        return ids

    def _id_list(self) -> str:
        return "unnest(?::bigint[]) AS ids(value)"

    def _encode_ids(self, ids: Sequence[int]) -> list[int]:
        return [int(i) for i in ids]

    def _encode_vector(self, vector: NDArray[np.float32]) -> str:
        """pgvector's text form; float32 values printed as Python floats round-trip exactly."""
        return "[" + ",".join(repr(v) for v in vector.astype(np.float32).tolist()) + "]"

    def _decode_vector(self, value: Any) -> NDArray[np.float32]:
        return np.array(value[1:-1].split(","), dtype=np.float32)

    def _nearest_prototypes(
        self, model: ModelInfo, queries: NDArray[np.float32], fetch: int
    ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
        # The model key and dimension are integers from our own models table, formatted into the SQL because a
        # partial index is only used when its predicate and expression are literals; the query vectors are one
        # array parameter, each row searched through the HNSW index by the LATERAL subquery: one round trip.
        dim, key = int(model.dim), int(model.key)
        distance = f"(p.vector::vector({dim})) <=> q.v::vector({dim})"
        with self._transaction():
            self._connection.execute(
                "SELECT set_config('hnsw.ef_search', %s, true)", (str(min(1000, max(self.ef_search, fetch))),)
            )
            rows = self._connection.execute(
                f"SELECT q.n, h.id, h.identity_id, h.similarity FROM unnest(%s::text[]) WITH ORDINALITY AS q(v, n) "
                f"CROSS JOIN LATERAL (SELECT p.id, p.identity_id, 1 - ({distance}) AS similarity FROM prototypes p "
                f"WHERE p.model_key = {key} ORDER BY {distance} LIMIT %s) h ORDER BY q.n, h.similarity DESC, h.id",
                ([self._encode_vector(v) for v in queries], fetch),
            ).fetchall()
        protos = np.full((len(queries), fetch), -1, np.int64)
        owners = np.full((len(queries), fetch), -1, np.int64)
        sims = np.full((len(queries), fetch), -np.inf)
        if rows:
            n, proto_id, identity_id, similarity = (np.array(column) for column in zip(*rows, strict=True))
            query = n.astype(np.intp) - 1  # rows come ordered by query, then best first
            column = np.arange(len(rows)) - np.searchsorted(query, query)
            protos[query, column], owners[query, column] = proto_id, identity_id
            sims[query, column] = similarity
        return protos, owners, sims

    def _on_model_registered(self, model: ModelInfo) -> None:
        self._connection.execute(self._index_ddl(model))

    def _on_prototypes_changed(self, model_key: int, upserted: list[int], removed: list[int]) -> None:
        """Nothing to do: pgvector's index is maintained by the database in the same transaction."""

    def _backend_problems(self) -> list[str]:
        problems = []
        for table in ("sightings", "sighting_vectors", "prototypes"):
            bad = self._fetchall(
                f"SELECT count(*) FROM {table} t JOIN models m ON m.id = t.model_key "
                "WHERE vector_dims(t.vector) <> m.dim"
            )[0][0]
            if bad:
                problems.append(f"{bad} {table} rows have a vector dimension other than their model's")
        return problems

    def _repair_indexes(self) -> list[str]:
        """Create missing per-model HNSW indexes and rebuild invalid ones (e.g. left by a failed build)."""
        repaired = []
        for model in self.models():
            name = f"prototypes_hnsw_model{model.key}"
            row = self._fetchone(
                "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = ?",
                (name,),
            )
            if row is None:
                self._connection.execute(self._index_ddl(model))
                repaired.append(f"created missing index {name}")
            elif not row[0]:
                self._connection.execute(f"REINDEX INDEX {name}")
                repaired.append(f"rebuilt invalid index {name}")
        return repaired

    # -- helpers ------------------------------------------------------------------------------------------------

    @property
    def _connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        if self._conn is None:
            raise ValueError("the store is closed")
        return self._conn

    def _migrate(self) -> None:
        with self._transaction():
            self._connection.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            self._connection.execute(SCHEMA_VERSION_DDL)
            current = self._fetchall("SELECT coalesce(max(version), 0) FROM schema_version")[0][0]
            for step in pending(MIGRATIONS, int(current)):
                for statement in step.statements:
                    self._connection.execute(statement)
                self._execute(
                    "INSERT INTO schema_version (version, name, applied) VALUES (?, ?, ?)",
                    (step.version, step.name, time.time()),
                )
            self.schema_version = int(self._fetchall("SELECT max(version) FROM schema_version")[0][0])

    def _index_ddl(self, model: ModelInfo) -> str:
        return (
            f"CREATE INDEX IF NOT EXISTS prototypes_hnsw_model{int(model.key)} ON prototypes USING hnsw "
            f"((vector::vector({int(model.dim)})) vector_cosine_ops) "
            f"WITH (m = {int(self.hnsw_m)}, ef_construction = {int(self.hnsw_ef_construction)}) "
            f"WHERE model_key = {int(model.key)}"
        )


def _dialect(sql: str) -> str:
    """The shared SQL uses `?` placeholders (SQLite's); psycopg wants `%s`. No shared statement contains `%`."""
    return sql.replace("?", "%s")


def _masked(text: str, conninfo: str) -> str:
    """`text` with the password of `conninfo` (a URL or a keyword string) replaced by `***`."""
    from urllib.parse import urlsplit

    from psycopg.conninfo import conninfo_to_dict

    try:
        secrets = {conninfo_to_dict(conninfo).get("password")}
    except psycopg.Error:
        secrets = set()
    if conninfo.startswith(("postgresql://", "postgres://")):
        secrets.add(urlsplit(conninfo).password)
    for secret in sorted((str(s) for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
