"""Learning from corrections: does feeding back 20 % of the individuals as corrections raise held-out rank-1?

    .venv/bin/python bench/retrain.py               # prints the table and appends it to BENCHMARKS.md
    .venv/bin/python bench/retrain.py --no-append --seeds 2

A deployment starts with a metric learned elsewhere (LOMO + XQDA fitted on a labelled set, the "prior") and a
gallery of its target set in which no one was recognised: every photo is its own identity, described by the prior
model, its image path recorded (a real SQLite store). A person then corrects 20 % of the target individuals (seeded):
their two photos are merged, one `merge` per individual. `gallery retrain` (`trackid.identity.retrain`) fits the
metric again, on the corrections alone or on the prior set plus the corrections, and re-embeds the store. Everything
is scored on the other 80 %, which no fit saw: probes are their camera-A photos, the gallery their camera-B photos
plus the target set's camera-B-only people (PRID 2011's 549 distractors), CMC and mAP by `evaluate_reid`, with the
vectors read back from the store. Mean +- std over the seeds of the 20 % draw.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from datasets import DATA
from report import append_section  # bench/ is on sys.path when a script here runs
from trackid.embed import make_embedder
from trackid.embed.metric import MetricEmbedder, make_metric
from trackid.eval.reid import evaluate_reid
from trackid.identity.retrain import LabelledFeatures, retrain_gallery
from trackid.identity.stores import GalleryStore, make_store
from trackid.images import read_image


@dataclass(frozen=True)
class ReidSet:
    """Photo paths with person ids and camera ("a" / "b"); people seen by one camera only are distractors."""

    name: str
    paths: list[Path]
    ids: NDArray[np.int64]
    cameras: NDArray[np.str_]

    @property
    def paired(self) -> NDArray[np.int64]:
        a, b = set(self.ids[self.cameras == "a"].tolist()), set(self.ids[self.cameras == "b"].tolist())
        return np.array(sorted(a & b), np.int64)


def viper() -> ReidSet:
    files = sorted((DATA / "reid" / "viper").glob("*.png"))
    return ReidSet(
        "VIPeR",
        files,
        np.array([int(f.name[:4]) for f in files]),
        np.array(["a" if f.stem[4:] == "0001" else "b" for f in files]),
    )


def prid() -> ReidSet:
    """PRID 2011 single-shot: persons 1-200 are seen by both cameras; a higher number is a different person in
    each camera (cam_a's are given ids 10,000 up, so they never meet cam_b's namesake)."""
    folder = DATA / "reid" / "prid2011"
    files = sorted((folder / "cam_a").glob("*.png")) + sorted((folder / "cam_b").glob("*.png"))
    cameras = np.array([f.parent.name[-1] for f in files])
    numbers = np.array([int(f.stem.split("_")[1]) for f in files])
    return ReidSet("PRID 2011", files, np.where((cameras == "a") & (numbers > 200), numbers + 10_000, numbers), cameras)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5, help="draws of the corrected 20 %")
    parser.add_argument("--share", type=float, default=0.2, help="share of the target individuals corrected")
    parser.add_argument("--metric", default="xqda")
    parser.add_argument("--no-append", action="store_true", help="print only; do not append to BENCHMARKS.md")
    args = parser.parse_args(argv)

    lomo = make_embedder("lomo")
    sets = {s.name: s for s in (viper(), prid())}
    features = {name: lomo.embed([read_image(p) for p in s.paths]) for name, s in sets.items()}
    header = (
        "| prior -> target | corrected / held-out individuals | model | rank-1 % | rank-5 % | rank-20 % | mAP % "
        "| retrain s |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for prior_name, target_name in (("VIPeR", "PRID 2011"), ("PRID 2011", "VIPeR")):
        prior_set, target = sets[prior_name], sets[target_name]
        prior_rows = np.isin(prior_set.ids, prior_set.paired)
        prior = LabelledFeatures(
            features[prior_name][prior_rows],
            prior_set.ids[prior_rows].astype(str),
            prior_set.cameras[prior_rows],
            [-1] * int(prior_rows.sum()),
        )
        prior_metric = make_metric(args.metric).fit(prior.features, prior.labels, prior.cameras)
        scores: dict[str, list[tuple[float, ...]]] = {}
        for seed in range(args.seeds):
            people = target.paired
            corrected = np.random.default_rng(seed).choice(people, round(args.share * len(people)), replace=False)
            held = np.setdiff1d(people, corrected)
            with tempfile.TemporaryDirectory() as tmp:
                store = _store(Path(tmp) / "g.db", target, MetricEmbedder(lomo, prior_metric), features[target_name])
                with store:
                    _merge_pairs(store, corrected)
                    scores.setdefault("prior metric (before)", []).append(
                        (*_score(store, target, held, MetricEmbedder(lomo, prior_metric)), 0.0)
                    )
                    for label, extra in (
                        ("retrained on the corrections", None),
                        ("retrained, prior + corrections", prior),
                    ):
                        start = time.perf_counter()
                        result = retrain_gallery(
                            store, features=lomo, metric=args.metric, out=Path(tmp) / label[:9], prior=extra
                        )
                        elapsed = time.perf_counter() - start
                        vectors = _vectors(store, result.model_id, result.model_version)
                        scores.setdefault(label, []).append((*_score_vectors(store, target, held, vectors), elapsed))
        n_corrected = round(args.share * len(target.paired))
        for label, rows in scores.items():
            arr = np.array(rows)
            cells = [f"{m:.1f} +- {s:.1f}" for m, s in zip(arr.mean(0)[:4], arr.std(0)[:4], strict=True)]
            lines.append(
                f"| {prior_name} -> {target_name} | {n_corrected} / {len(target.paired) - n_corrected} | {label} | "
                + " | ".join(cells)
                + f" | {arr[:, 4].mean():.1f} |"
            )
    table = "\n".join(lines)
    print(table)
    if not args.no_append:
        append_section(
            "retrain.py",
            [
                f"protocol: see the script's docstring; {args.seeds} seeds of the corrected {args.share:.0%}, LOMO + "
                f"{args.metric}; prior = every person of the prior set seen by both cameras",
                "a target gallery in which nobody was recognised, each photo its own identity; one merge per "
                "corrected individual; held-out = the other individuals (camera A probes vs camera B + distractors)",
                "vectors of every model read back from the store (`gallery retrain` re-embeds it)",
            ],
            table,
        )
    return 0


def _store(db: Path, target: ReidSet, prior: MetricEmbedder, features: NDArray[np.float32]) -> GalleryStore:
    """The target set as an ingest that recognised nobody leaves it: each photo an identity of its own."""
    store = make_store(db, index_kind="exact")
    vectors = prior.metric.transform(features)
    identities = store.create_identities(len(target.paths))
    store.add_sightings(
        vectors,
        model_id=prior.model_id,
        model_version=prior.version,
        times=np.arange(len(target.paths), dtype=np.float64),
        identity_ids=identities,
        cameras=target.cameras.tolist(),
        sources=[{"image": str(p), "person": int(i)} for p, i in zip(target.paths, target.ids, strict=True)],
    )
    return store


def _merge_pairs(store: GalleryStore, people: NDArray[np.int64]) -> None:
    """One merge per corrected person: the camera-B photo's identity into the camera-A photo's."""
    by_person: dict[int, list[int]] = {}
    for sighting in store.sightings():
        person = int((sighting.source or {})["person"])
        if person in set(people.tolist()) and sighting.identity_id is not None:
            by_person.setdefault(person, []).append(sighting.identity_id)
    for _, owners in sorted(by_person.items()):
        into, other = owners
        store.merge(into, other)


def _vectors(store: GalleryStore, model_id: str, model_version: str) -> dict[int, NDArray[np.float32]]:
    return store.vectors_of([s.id for s in store.sightings()], model_id=model_id, model_version=model_version)


def _score(
    store: GalleryStore, target: ReidSet, held: NDArray[np.int64], embedder: MetricEmbedder
) -> tuple[float, ...]:
    return _score_vectors(store, target, held, _vectors(store, embedder.model_id, embedder.version))


def _score_vectors(
    store: GalleryStore, target: ReidSet, held: NDArray[np.int64], vectors: dict[int, NDArray[np.float32]]
) -> tuple[float, ...]:
    """Rank-1/5/20 and mAP (%) of the held-out people: camera-A probes against camera-B photos of the held-out
    people and of the distractors (the corrected people are training data now, so they leave the gallery)."""
    sightings = store.sightings()
    person = np.array([int((s.source or {})["person"]) for s in sightings])
    camera = np.array([s.camera for s in sightings])
    paired = set(target.paired.tolist())
    probe = (camera == "a") & np.isin(person, held)
    gallery = (camera == "b") & (np.isin(person, held) | ~np.isin(person, list(paired)))  # + one-camera people
    q = np.stack([vectors[s.id] for s, keep in zip(sightings, probe, strict=True) if keep])
    g = np.stack([vectors[s.id] for s, keep in zip(sightings, gallery, strict=True) if keep])
    result = evaluate_reid(q @ g.T, person[probe], person[gallery], max_rank=20)
    return 100 * result.rank(1), 100 * result.rank(5), 100 * result.rank(20), 100 * result.mean_ap


if __name__ == "__main__":
    raise SystemExit(main())
