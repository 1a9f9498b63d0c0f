"""Gallery scale on SYNTHETIC clustered 512-d unit vectors: embedded usearch HNSW vs PostgreSQL + pgvector HNSW.

Measures build time, insert rate, single-query latency p50/p99 (k=10), recall@10 against exact search on a query
sample, memory, and lookup latency while the embedded index rebuilds in the background (issue #4's acceptance:
recall@10 >= 0.95 at p50 <= 2 ms; p99 <= 10 ms during a rebuild). Vectors are generated deterministically in chunks
(identity centres + Gaussian noise), so the exact ground truth regenerates them instead of holding them all.

    .venv/bin/python bench/gallery_scale.py [--n 1000000] [--pg-n 100000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from report import append_section
from trackid.identity.index import HnswIndex
from trackid.identity.stores.sqlite import SqliteGalleryStore

CHUNK = 50_000
K = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="gallery size for the embedded index")
    parser.add_argument("--pg-n", type=int, default=100_000, help="gallery size for PostgreSQL (0 skips it)")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--identities", type=int, default=50_000, help="cluster centres (identities) in 1M vectors")
    parser.add_argument("--noise", type=float, default=0.8, help="noise norm relative to the unit centre")
    parser.add_argument(
        "--store-n", type=int, default=100_000, help="sightings for the end-to-end SQLite store run (0 skips it)"
    )
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--connectivity", type=int, default=32, help="HNSW M (both backends)")
    parser.add_argument("--ef-construction", type=int, default=200, help="HNSW ef_construction (both backends)")
    parser.add_argument("--dtype", default="bf16", choices=["f32", "bf16", "f16", "i8"], help="embedded index storage")
    parser.add_argument("--ef-search", type=str, default="64,128,256", help="comma-separated values to sweep")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-append", action="store_true", help="print the table without appending BENCHMARKS.md")
    args = parser.parse_args()

    data = SyntheticGallery(args.dim, round(args.identities * args.n / 1_000_000), args.noise, args.seed)
    queries = data.queries(args.queries)
    efs = [int(v) for v in args.ef_search.split(",")]
    rows: list[str] = []
    notes = [
        f"SYNTHETIC data: {args.identities:,} identity centres per 1,000,000 vectors, in groups of ~100 "
        "(identity centre = random group "
        f"centre + noise of norm 1, so identities of a group have cosine ~0.5), {args.dim}-d; each gallery "
        f"vector = centre + Gaussian noise of norm {args.noise}, L2-normalised (same-identity cosine ~"
        f"{1 / (1 + args.noise**2):.2f}); {args.queries} queries are fresh noisy sightings of random identities",
        f"recall@{K} against exact cosine top-{K} (chunked numpy matmul); latency = one query per call through the "
        "Python API (validation + lock + search), single thread",
    ]

    if args.n:
        print(f"exact top-{K} for {args.queries} queries over {args.n} synthetic vectors ...", flush=True)
        truth = exact_top_k(data, queries, args.n)
        rows += bench_hnsw(data, queries, truth, args, efs, notes)
    if args.store_n:
        rows += bench_store(args, efs, notes)
    if args.pg_n:
        # its own data set at the same vectors-per-identity density, so recall means the same thing as above
        pg_data = SyntheticGallery(args.dim, round(args.identities * args.pg_n / 1_000_000), args.noise, args.seed)
        pg_queries = pg_data.queries(args.queries)
        notes.append(f"PostgreSQL data: {pg_data.identities} identity centres for {args.pg_n} vectors")
        pg_truth = exact_top_k(pg_data, pg_queries, args.pg_n)
        rows += bench_pgvector(pg_data, pg_queries, pg_truth, args, efs, notes)

    header = (
        "| backend | vectors | ef_search | build s | insert vec/s | p50 ms | p99 ms | recall@10 | size MiB "
        "| RSS MiB |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    table = header + "\n".join(rows) + "\n"
    print(table)
    for note in notes:
        print("-", note)
    if not args.no_append:
        append_section("gallery_scale.py", notes, table)


class SyntheticGallery:
    """Deterministic clustered unit vectors: row i always gets the same vector, whatever chunk asks for it."""

    def __init__(
        self, dim: int, identities: int, noise: float, seed: int, group_size: int = 100, group_spread: float = 1.0
    ) -> None:
        self.dim, self.identities, self.noise, self.seed = dim, max(1, identities), noise, seed
        rng = np.random.default_rng([seed, 0])
        # Identities come in groups (people dressed alike, the same camera's lighting): an identity centre is its
        # group's centre plus noise. Real embedding spaces have such structure; independent random centres would
        # make every pair of identities equally unrelated, which no real model produces.
        groups = _normalise(rng.standard_normal((max(1, self.identities // group_size), dim), dtype=np.float32))
        spread = rng.standard_normal((self.identities, dim), dtype=np.float32) * (group_spread / np.sqrt(dim))
        self.centres = _normalise(groups[rng.integers(0, len(groups), self.identities)] + spread)

    def chunks(self, n: int) -> Iterator[tuple[NDArray[np.int64], NDArray[np.float32]]]:
        for keys, _, vectors in self.labelled_chunks(n):
            yield keys, vectors

    def labelled_chunks(self, n: int) -> Iterator[tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]]]:
        """(keys, identity of each vector, vectors) per chunk."""
        for index, start in enumerate(range(0, n, CHUNK)):
            rng = np.random.default_rng([self.seed, 1, index])
            count = min(CHUNK, n - start)
            yield np.arange(start, start + count, dtype=np.int64), *self._sightings(rng, count)

    def queries(self, count: int) -> NDArray[np.float32]:
        return self._sightings(np.random.default_rng([self.seed, 2]), count)[1]

    def _sightings(self, rng: np.random.Generator, count: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        noise = rng.standard_normal((count, self.dim), dtype=np.float32) * (self.noise / np.sqrt(self.dim))
        owners = rng.integers(0, self.identities, count)
        return owners, _normalise(self.centres[owners] + noise)


def exact_top_k(data: SyntheticGallery, queries: NDArray[np.float32], n: int) -> NDArray[np.int64]:
    best_keys = np.full((len(queries), K), -1, np.int64)
    best_sims = np.full((len(queries), K), -np.inf, np.float32)
    for keys, vectors in data.chunks(n):
        sims = np.concatenate([best_sims, queries @ vectors.T], axis=1)
        cand = np.concatenate([best_keys, np.broadcast_to(keys, (len(queries), len(keys)))], axis=1)
        top = np.argpartition(-sims, K - 1, axis=1)[:, :K]
        best_sims, best_keys = np.take_along_axis(sims, top, axis=1), np.take_along_axis(cand, top, axis=1)
    return best_keys


def bench_hnsw(
    data: SyntheticGallery,
    queries: NDArray[np.float32],
    truth: NDArray[np.int64],
    args: argparse.Namespace,
    efs: list[int],
    notes: list[str],
) -> list[str]:
    index = HnswIndex(args.dim, connectivity=args.connectivity, ef_construction=args.ef_construction, dtype=args.dtype)
    start = time.perf_counter()
    for keys, vectors in data.chunks(args.n):
        index.add(keys, vectors)
        print(f"  hnsw: {len(index)} vectors, {time.perf_counter() - start:.0f} s", flush=True)
    build = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gallery.usearch"
        index.save(path)
        size = path.stat().st_size / 2**20
    rss = _rss_mib()
    rows = []
    for ef in efs:
        index.ef_search = ef
        found, latencies = _timed_lookups(lambda q: index.search(q[None, :], K)[0][0], queries)
        rows.append(
            f"| usearch HNSW (embedded) | {args.n:,} | {ef} | {build:.0f} | {args.n / build:,.0f} | "
            f"{_pct(latencies, 50):.2f} | {_pct(latencies, 99):.2f} | {recall(found, truth):.3f} | {size:,.0f} | "
            f"{rss:,.0f} |"
        )
        print(rows[-1], flush=True)

    index.ef_search = efs[len(efs) // 2]
    print("  hnsw: lookups during a background rebuild ...", flush=True)
    during: list[float] = []
    start = time.perf_counter()
    rebuild = index.rebuild_in_background()
    i = 0
    while rebuild.is_alive():
        tick = time.perf_counter()
        index.search(queries[i % len(queries)][None, :], K)
        during.append((time.perf_counter() - tick) * 1000)
        i += 1
    rebuild_s = time.perf_counter() - start
    notes.append(
        f"HNSW (M={args.connectivity}, ef_construction={args.ef_construction}, {args.dtype} storage); build = "
        "incremental adds of "
        f"{CHUNK:,}-vector batches on all cores, so insert vec/s is the sustained add rate; size = saved index file; "
        "RSS = whole benchmark process (includes generator state)"
    )
    notes.append(
        f"during a background rebuild of the {args.n:,}-vector index ({rebuild_s:.0f} s, "
        f"{index.rebuild_threads} build thread(s)) at ef_search={index.ef_search}, {len(during):,} lookups ran "
        f"continuously: p50 {_pct(during, 50):.2f} ms, p99 {_pct(during, 99):.2f} ms, max {max(during):.1f} ms "
        "(target p99 <= 10 ms)"
    )
    print(notes[-1], flush=True)
    return rows


def bench_store(args: argparse.Namespace, efs: list[int], notes: list[str]) -> list[str]:
    """The embedded store end to end: HNSW candidates, exact rescoring from SQLite, best prototype per identity.

    Recall here is of identities: the store's top-10 identities against the exact top-10 by best prototype.
    """
    n = args.store_n
    data = SyntheticGallery(args.dim, max(1, n // 5), args.noise, args.seed)
    queries = data.queries(args.queries)
    model = {"model_id": "synthetic", "model_version": "1"}
    params = {"connectivity": args.connectivity, "ef_construction": args.ef_construction, "dtype": args.dtype}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gallery.db"
        store = SqliteGalleryStore(path, index_params=params)
        ids = np.array([store.create_identity().id for _ in range(data.identities)])
        print(f"  store: {n} sightings of {data.identities} identities, one committed write each ...", flush=True)
        start = time.perf_counter()
        for _, owners, vectors in data.labelled_chunks(n):
            for owner, vector in zip(owners.tolist(), vectors, strict=True):
                store.add_sighting(vector, **model, time=0.0, identity_id=int(ids[owner]))
        insert_s = time.perf_counter() - start
        protos = [(p.identity_id, p.vector) for i in ids.tolist() for p in store.prototypes(i)]
        owner_of = np.searchsorted(ids, np.array([o for o, _ in protos]))
        matrix = np.stack([v for _, v in protos])
        store.close()
        size = sum(f.stat().st_size for f in Path(tmp).iterdir()) / 2**20
        truth = np.empty((len(queries), K), np.int64)
        for row, q in enumerate(queries):
            best = np.full(len(ids), -np.inf, np.float32)
            np.maximum.at(best, owner_of, matrix @ q)
            truth[row] = ids[np.argpartition(-best, K - 1)[:K]]
        for ef in efs:
            store = SqliteGalleryStore(path, index_params={**params, "ef_search": ef})

            def lookup(q: NDArray[np.float32], store: SqliteGalleryStore = store) -> NDArray[np.int64]:
                return np.array([c.identity_id for c in store.search(q, **model, k=K)[0]], np.int64)

            found, latencies = _timed_lookups(lookup, queries)
            store.close()
            rows.append(
                f"| SQLite store, end to end (embedded) | {len(protos):,} prototypes | {ef} | {insert_s:.0f} | "
                f"{n / insert_s:,.0f} | {_pct(latencies, 50):.2f} | {_pct(latencies, 99):.2f} | "
                f"{recall(found, truth):.3f} | {size:,.0f} | {_rss_mib():,.0f} |"
            )
            print(rows[-1], flush=True)
    notes.append(
        f"SQLite store row: {n:,} sightings of {data.identities:,} identities (5 each, same noise) added one "
        "`add_sighting` at a time (each a committed, fsynced transaction that also folds the sighting into the "
        "identity's <= 5 prototypes): build s = that whole load, insert vec/s = sightings/s; latency = "
        f"`store.search(k={K})`: HNSW candidates (4 x k x 5 prototypes), their similarities recomputed from the "
        "float32 rows, best prototype per identity; recall@10 = of identities, against the exact best-prototype "
        "ranking; size = database + index files"
    )
    return rows


def bench_pgvector(
    data: SyntheticGallery,
    queries: NDArray[np.float32],
    truth: NDArray[np.int64],
    args: argparse.Namespace,
    efs: list[int],
    notes: list[str],
) -> list[str]:
    import pgserver
    import psycopg

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        server = pgserver.get_server(Path(tmp) / "pg", cleanup_mode="stop")
        try:
            with psycopg.connect(server.get_uri(), autocommit=True) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
                conn.execute(f"CREATE TABLE gallery (id bigint PRIMARY KEY, embedding vector({args.dim}))")
                start = time.perf_counter()
                with conn.cursor() as cur, cur.copy("COPY gallery (id, embedding) FROM STDIN (FORMAT BINARY)") as cp:
                    cp.write(_COPY_HEADER)
                    for keys, vectors in data.chunks(args.pg_n):
                        cp.write(_copy_rows(keys, vectors))
                    cp.write(b"\xff\xff")
                load = time.perf_counter() - start
                conn.execute("SET maintenance_work_mem = '8GB'")
                conn.execute("SET max_parallel_maintenance_workers = 1")
                print(f"  pgvector: COPY of {args.pg_n} rows {load:.0f} s; building HNSW ...", flush=True)
                start = time.perf_counter()
                conn.execute(
                    "CREATE INDEX gallery_hnsw ON gallery USING hnsw (embedding vector_cosine_ops) "
                    f"WITH (m = {int(args.connectivity)}, ef_construction = {int(args.ef_construction)})"
                )
                build = time.perf_counter() - start
                size_row = conn.execute(
                    "SELECT pg_relation_size('gallery_hnsw'), pg_total_relation_size('gallery')"
                ).fetchone()
                assert size_row is not None
                extra = data.queries(2000)
                start = time.perf_counter()
                with conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO gallery (id, embedding) VALUES (%s, %s::vector)",
                        [(args.pg_n + j, _vector_literal(v)) for j, v in enumerate(extra)],
                    )
                insert_rate = len(extra) / (time.perf_counter() - start)
                conn.execute("DELETE FROM gallery WHERE id >= %s", (args.pg_n,))
                for ef in efs:
                    conn.execute("SELECT set_config('hnsw.ef_search', %s, false)", (str(ef),))
                    sql = "SELECT id FROM gallery ORDER BY embedding <=> %s::vector LIMIT %s"

                    def lookup(q: NDArray[np.float32], sql: str = sql) -> NDArray[np.int64]:
                        return np.array([r[0] for r in conn.execute(sql, (_vector_literal(q), K))], np.int64)

                    found, latencies = _timed_lookups(lookup, queries)
                    rows.append(
                        f"| PostgreSQL + pgvector HNSW | {args.pg_n:,} | {ef} | {build:.0f} | {insert_rate:,.0f} | "
                        f"{_pct(latencies, 50):.2f} | {_pct(latencies, 99):.2f} | {recall(found, truth):.3f} | "
                        f"{size_row[0] / 2**20:,.0f} | n/a |"
                    )
                    print(rows[-1], flush=True)
                version = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
        finally:
            server.cleanup()
    notes.append(
        f"pgvector {version[0] if version else '?'} (pgserver's PostgreSQL, default shared_buffers): COPY (binary) "
        f"of {args.pg_n:,} rows took {load:.0f} s, then CREATE INDEX hnsw (m={args.connectivity}, "
        f"ef_construction={args.ef_construction}, maintenance_work_mem 8GB, 1 parallel worker) = build s; "
        "insert vec/s = single-row INSERTs into the indexed table (executemany, autocommit); latency includes the "
        "local client round trip; size = index relation; table + index total "
        f"{size_row[1] / 2**20:,.0f} MiB"
    )
    return rows


def recall(found: NDArray[np.int64], truth: NDArray[np.int64]) -> float:
    return float(np.mean([np.intersect1d(f, t).size / K for f, t in zip(found, truth, strict=True)]))


_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"


def _copy_rows(keys: NDArray[np.int64], vectors: NDArray[np.float32]) -> bytes:
    """PostgreSQL binary COPY tuples (bigint, vector), built with one structured array instead of a row loop."""
    dim = vectors.shape[1]
    row = np.dtype(
        [
            ("fields", ">i2"),
            ("key_len", ">i4"),
            ("key", ">i8"),
            ("vec_len", ">i4"),
            ("dim", ">i2"),
            ("unused", ">i2"),
            ("values", ">f4", (dim,)),
        ]
    )
    out = np.zeros(len(keys), row)
    out["fields"], out["key_len"], out["key"] = 2, 8, keys
    out["vec_len"], out["dim"], out["values"] = 4 + 4 * dim, dim, vectors
    return out.tobytes()


def _vector_literal(vector: NDArray[np.float32]) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in vector) + "]"


def _timed_lookups(
    lookup: Callable[[NDArray[np.float32]], NDArray[np.int64]], queries: NDArray[np.float32]
) -> tuple[NDArray[np.int64], list[float]]:
    for q in queries[:20]:
        lookup(q)
    found = np.full((len(queries), K), -1, np.int64)
    latencies = []
    for i, q in enumerate(queries):
        tick = time.perf_counter()
        keys = lookup(q)
        latencies.append((time.perf_counter() - tick) * 1000)
        found[i, : len(keys)] = keys
    return found, latencies


def _pct(values: list[float], q: int) -> float:
    return float(np.percentile(values, q)) if len(values) > 1 else statistics.fmean(values)


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _normalise(x: NDArray[np.float32]) -> NDArray[np.float32]:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


if __name__ == "__main__":
    main()
