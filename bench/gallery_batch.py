"""Batched identity beside the per-query path, on copies of one store, in one run (issue #14's acceptance: 10,000
queries against 100,000 stored identities, on SQLite and on PostgreSQL: batched >= 10x the per-query throughput,
identical decisions).

SYNTHETIC data: each stored identity is one sighting of a random unit centre (`--dim`-d); the queries are fresh
noisy sightings of distinct stored identities (`1 - --new-fraction` of them) and new people (the rest), so a correct
gallery matches the first and creates the second. The calibrator is fitted on synthetic same/different pairs; the
decision threshold is P(same) >= 0.5 (a per-pair false-match-rate point would be too loose against 100,000
identities: the best of 100,000 random cosines is far above a single pair's 1 % tail).

Both paths start from identical copies of one seeded store (SQLite: the database and index files copied;
PostgreSQL: `CREATE DATABASE ... TEMPLATE`). Per query: `Gallery.identify_vectors` with one vector per call, as a
caller deciding one sighting at a time does (a transaction each). Batched: `identify_vectors` over `--batch` vectors
per call. The decisions are compared query by query (decision and identity id); accuracy is against the truth.

Batching amortises what a call costs (transactions, statements, decisions); what each vector costs the index
(its nearest-neighbour search, and inserting the prototypes it creates or moves into the graph) stays. So the table
times that index work in both paths, and its ceiling column is the per-query time over the batched path's index
work: the speed-up batching could reach if everything else cost nothing.

    .venv/bin/python bench/gallery_batch.py [--identities 100000] [--queries 10000] [--backends sqlite,postgres]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from report import append_section
from trackid.identity.calibration import MatchCalibrator
from trackid.identity.gallery import Gallery, Recognition
from trackid.identity.stores import GalleryStore, make_store

MODEL = {"model_id": "synthetic", "model_version": "1"}
SEED_CHUNK = 10_000
UPKEEP = {"sqlite": "_sync_indexes", "sqlite-exact": "_sync_indexes", "postgres": "_fold_prototypes"}
"""The store method holding each backend's index upkeep: SQLite updates its index file's graph after a commit;
PostgreSQL's prototype writes are where pgvector maintains its HNSW index (the rest of them is a few statements)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--identities", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--batch", type=int, default=1_000, help="queries per batched call")
    parser.add_argument("--new-fraction", type=float, default=0.2, help="queries that are people not stored")
    parser.add_argument("--noise", type=float, default=0.5, help="query noise norm (same-person cosine ~0.9)")
    parser.add_argument(
        "--backends",
        default="sqlite,sqlite-exact,postgres",
        help="sqlite (usearch HNSW, the default store), sqlite-exact (brute-force index), postgres (pgvector HNSW)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-append", action="store_true", help="print the table without appending BENCHMARKS.md")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    centres = _unit(rng.normal(size=(args.identities, args.dim)))
    n_known = round(args.queries * (1 - args.new_fraction))
    known = rng.choice(args.identities, size=n_known, replace=False)
    queries = np.concatenate(
        [_noisy(centres[known], args.noise, rng), _unit(rng.normal(size=(args.queries - n_known, args.dim)))]
    )
    truth = np.concatenate([known, np.full(args.queries - n_known, -1)])
    shuffle = rng.permutation(args.queries)
    queries, truth = queries[shuffle], truth[shuffle]
    calibrator = _calibrator(args.dim, args.noise, rng)
    threshold = 0.5

    rows = []
    for backend in args.backends.split(","):
        with _stores(backend) as (seed_store, copy):
            start = time.perf_counter()
            stored_ids = _seed(seed_store, centres)
            seed_s = time.perf_counter() - start
            seed_store.close()
            outcome = {}
            for path in ("per-query", "batched"):
                store = copy(path)
                searching = _timed(store, "_nearest_prototypes")
                upkeep = _timed(store, UPKEEP[backend])
                gallery = Gallery(store, calibrator=calibrator, threshold=threshold, **MODEL)  # type: ignore[arg-type]
                size = 1 if path == "per-query" else args.batch
                start = time.perf_counter()
                decided: list[Recognition] = []
                for at in range(0, len(queries), size):
                    decided += gallery.identify_vectors(queries[at : at + size], time=2.0)
                outcome[path] = (time.perf_counter() - start, decided, searching[0], upkeep[0])
                store.close()
            (t_one, one, s_one, u_one), (t_many, many, s_many, u_many) = outcome["per-query"], outcome["batched"]
            differ = sum(_decision(a) != _decision(b) for a, b in zip(one, many, strict=True))
            per_query_ms = 1000 / len(queries)
            rows.append(
                f"| {backend} | {args.identities:,} | {args.queries:,} | {seed_s:.1f} | {len(queries) / t_one:,.0f} | "
                f"{len(queries) / t_many:,.0f} | **{t_one / t_many:.1f}x** | "
                f"{s_one * per_query_ms:.2f} + {u_one * per_query_ms:.2f} / "
                f"{s_many * per_query_ms:.2f} + {u_many * per_query_ms:.2f} | "
                f"{(s_one + u_one) / t_one:.0%} / {(s_many + u_many) / t_many:.0%} | "
                f"{(t_one - s_one - u_one) / (t_many - s_many - u_many):.1f}x | {t_one / (s_many + u_many):.1f}x | "
                f"{differ} | "
                f"{_accuracy(one, truth, stored_ids):.4f} / {_accuracy(many, truth, stored_ids):.4f} |"
            )
            print(rows[-1], flush=True)

    table = "\n".join(
        [
            "| backend | stored identities | queries | seed s (bulk) | per-query q/s | batched q/s "
            "| batched / per-query | index work ms per query (search + upkeep), per-query / batched "
            "| index work share, per-query / batched | outside the index work: batched / per-query "
            "| ceiling: per-query time / batched index work | decisions differing | accuracy per-query / batched |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
    print(table)
    notes = [
        f"SYNTHETIC: {args.identities:,} stored identities (one {args.dim}-d random unit sighting each); "
        f"{args.queries:,} queries, {1 - args.new_fraction:.0%} noisy re-sightings of distinct stored identities "
        f"(noise norm {args.noise}, same-person cosine ~{1 / np.sqrt(1 + args.noise**2):.2f}), the rest new people",
        "per-query = `Gallery.identify_vectors` with one vector per call (one transaction each); batched = "
        f"{args.batch} vectors per call (one index call per 256 queries, one candidate-filter query, bulk inserts, "
        "one prototype fold per identity, one transaction per call); both from identical copies of one seeded store",
        "decisions differing = queries whose decision differs between the two paths, or that matched different stored "
        "identities (a new identity's id is not compared: one early difference renumbers every later new one); "
        "accuracy = matched to the right identity, or new when the person was not stored",
        "index work = search (the backend's nearest-prototype search: SQLite: usearch HNSW plus the exact "
        "re-scoring of its hits; PostgreSQL: pgvector's HNSW scans) + upkeep (SQLite: the index updates after each "
        "commit, i.e. HNSW inserts of new and moved prototypes; PostgreSQL: the prototype writes, inside which "
        "pgvector inserts into its HNSW index), per vector in both paths; 'outside the index work' is the speed-up of "
        "everything else (SQL, transactions, decisions, sighting inserts, prototype folds); the ceiling is the "
        "per-query time over the batched path's index work, what batching could reach if all else cost nothing",
        "SQLite: WAL, synchronous=FULL (a commit is an fsync), usearch HNSW (M=32, ef_construction=200, bf16) or the "
        "exact index (numpy brute force: one matrix product per batch); PostgreSQL: pgserver with pgvector HNSW",
    ]
    if not args.no_append:
        append_section("gallery_batch.py", notes, table)


def _timed(store: GalleryStore, method: str) -> list[float]:
    """Accumulate the seconds the store spends in one of its methods (a one-element list, read after the run)."""
    spent = [0.0]
    inner = getattr(store, method)

    def timed(*args: object, **kwargs: object) -> object:
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - start

    setattr(store, method, timed)
    return spent


def _seed(store: GalleryStore, centres: NDArray[np.float32]) -> NDArray[np.int64]:
    """One identity per centre with one sighting, through the bulk path; the identity ids in centre order."""
    store.register_model(MODEL["model_id"], MODEL["model_version"], centres.shape[1])
    ids: list[int] = []
    for at in range(0, len(centres), SEED_CHUNK):
        chunk = centres[at : at + SEED_CHUNK]
        with store.transaction():
            made = store.create_identities(len(chunk))
            store.add_sightings(chunk, **MODEL, times=1.0, identity_ids=made)
        ids += made
    return np.array(ids, np.int64)


@contextmanager
def _stores(backend: str) -> Iterator[tuple[GalleryStore, Callable[[str], GalleryStore]]]:
    """A fresh store to seed, and a function opening an identical copy of it (after the seed store is closed)."""
    with tempfile.TemporaryDirectory() as tmp:
        if backend in ("sqlite", "sqlite-exact"):
            seed_path = Path(tmp) / "seed.db"
            kind = "exact" if backend == "sqlite-exact" else "hnsw"

            def copy(name: str) -> GalleryStore:
                target = Path(tmp) / name
                target.mkdir()
                for file in Path(tmp).glob("seed.db*"):
                    if not file.name.endswith(".lock"):
                        shutil.copy(file, target / file.name)
                return make_store(target / "seed.db", index_kind=kind)

            yield make_store(seed_path, index_kind=kind), copy
            return
        if backend != "postgres":
            raise SystemExit(f"--backends: unknown backend {backend!r} (sqlite, sqlite-exact, postgres)")
        import pgserver
        import psycopg

        server = pgserver.get_server(Path(tmp) / "pg", cleanup_mode="stop")
        try:
            admin = server.get_uri()
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute("CREATE DATABASE seed")

            def url(name: str) -> str:
                return admin.replace("/postgres?", f"/{name}?", 1)

            def copy_pg(name: str) -> GalleryStore:
                db = name.replace("-", "_")
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute(f"CREATE DATABASE {db} TEMPLATE seed")
                return make_store(url(db))

            yield make_store(url("seed")), copy_pg
        finally:
            server.cleanup()


def _calibrator(dim: int, noise: float, rng: np.random.Generator) -> MatchCalibrator:
    people = _unit(rng.normal(size=(2_000, dim)))
    a, b = _noisy(people, noise, rng), _noisy(people, noise, rng)
    same = np.einsum("ij,ij->i", a, b)
    different = np.einsum("ij,ij->i", a, np.roll(b, 1, axis=0))
    sims = np.concatenate([same, different])
    return MatchCalibrator().fit(sims, np.arange(len(sims)) < len(same))


def _decision(recognition: Recognition) -> tuple[str, int | None]:
    match = recognition.match.decision == "match"
    return recognition.match.decision, recognition.identity_id if match else None


def _accuracy(decided: list[Recognition], truth: NDArray[np.int64], stored_ids: NDArray[np.int64]) -> float:
    right = [
        (r.match.decision != "match") if t < 0 else (r.match.decision == "match" and r.identity_id == stored_ids[t])
        for r, t in zip(decided, truth, strict=True)
    ]
    return float(np.mean(right))


def _noisy(centres: NDArray[np.float32], noise: float, rng: np.random.Generator) -> NDArray[np.float32]:
    return _unit(centres + noise * rng.normal(size=centres.shape) / np.sqrt(centres.shape[1]))


def _unit(x: NDArray[np.float64]) -> NDArray[np.float32]:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


if __name__ == "__main__":
    main()
