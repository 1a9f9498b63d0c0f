"""Re-identification: the standard protocols with learned metrics, and calibration on VIPeR.

    .venv/bin/python bench/reid.py                   # both parts; prints the tables, appends them to BENCHMARKS.md
    .venv/bin/python bench/reid.py --part standard --no-append
    .venv/bin/python bench/reid.py --part calibration --out runs/reid-report
    .venv/bin/python bench/reid.py --part validation   # how the fusion weights were chosen (training people only)

Standard protocols (`--part standard`), every figure the mean +- std over 10 random identity splits (seeds 0-9),
the metrics fitted on the training identities only:
- VIPeR: 316 training / 316 test people; probe = camera 1 (`IIII0001.png`), gallery = camera 2 (`IIII0002.png`).
- PRID 2011 single-shot: the 200 people seen by both cameras split 100 / 100; probe = the 100 test people's cam_a
  images, gallery = their cam_b images plus the 549 people seen only by cam_b (649).
- Cross-dataset: fitted on all of VIPeR, tested on each PRID test split; fitted on each PRID training split, tested
  on the VIPeR test split of the same seed.
Methods: LOMO with XQDA, KISSME, regularised LDA, and plain cosine; the current ensemble (MobileNetV2 + colour)
plain and with XQDA; and score-level fusions of XQDA spaces (`FUSIONS`): the weighted mean of each member's cosine,
which is what an `ensemble` embedder of `learned` members computes (unit parts scaled by sqrt(weight)). A learned
method ranks by cosine in its `transform` space (what `MetricEmbedder` stores); the XQDA rows also give its
Mahalanobis distance and the cosine without the centring, to show what those choices do.

Validation (`--part validation`): the fusion weights were chosen here, never on a test split. For each of the 10
VIPeR splits only its 316 training people are used: 158 of them (seed 1000 + split) fit XQDA, the other 158 are
probe (camera 1) and gallery (camera 2); the table gives the mean rank-1 of every single space and weight.

Calibration (`--part calibration`): camera 1 images form the gallery, camera 2 images the queries (cosine
similarity). The 632 identities are split in half with a fixed seed; the calibrator is fitted on all cross-camera
pairs of the first half (316 x 316: 316 same, 99,540 different) and everything is scored on the held-out half:
rank-k and mAP over its 316 queries against its 316-image gallery, ECE of the calibrated probabilities on all held-
out pairs, and the false-match rate on held-out pairs of the threshold chosen on the fitting pairs for the target
rate. Pairs are left imbalanced (about 1 same per 316 different, the base rate a gallery of this size really has):
no reweighting.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from datasets import PridSet, load_prid, load_viper
from report import REPO, append_section  # bench/ is on sys.path when a script here runs
from trackid.embed import (
    ColourTextureEmbedder,
    Embedder,
    EnsembleEmbedder,
    LomoEmbedder,
    MobileNetV2Embedder,
    PairMetric,
    make_metric,
)
from trackid.embed.crops import l2_normalise
from trackid.eval.reid import ReidScores, evaluate_reid
from trackid.identity.calibration import MatchCalibrator, expected_calibration_error
from trackid.identity.report import write_calibration_report

EMBEDDERS: dict[str, Callable[[], Embedder]] = {
    "MobileNetV2": MobileNetV2Embedder,
    "colour + texture": ColourTextureEmbedder,
    "ensemble MobileNetV2 + colour": lambda: EnsembleEmbedder([MobileNetV2Embedder(), ColourTextureEmbedder()]),
}


ENSEMBLE = "ensemble MobileNetV2 + colour"
SPLITS = 10


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--part", choices=("standard", "calibration", "validation", "all"), default="all", help="what to run"
    )
    parser.add_argument("--splits", type=int, default=SPLITS, help="random identity splits of the standard part")
    parser.add_argument("--seed", type=int, default=0, help="seed of the identity split (calibration part)")
    parser.add_argument("--target-fmr", type=float, default=0.01, help="target false-match rate for the threshold")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "reid-report", help="report folder (MobileNetV2)")
    parser.add_argument("--no-append", action="store_true", help="print only; do not append to BENCHMARKS.md")
    args = parser.parse_args(argv)
    if args.part in ("standard", "all"):
        standard_protocols(args.splits, append=not args.no_append)
    if args.part in ("calibration", "all"):
        calibration(args)
    if args.part == "validation":
        validation(args.splits, append=not args.no_append)
    return 0


def calibration(args: argparse.Namespace) -> None:
    """The calibration table: ranking, ECE and a risk-stated threshold of the plain embedders on one VIPeR split."""
    gallery_crops, query_crops = load_viper()
    n = len(gallery_crops)
    order = np.random.default_rng(args.seed).permutation(n)
    fit_ids, test_ids = np.sort(order[: n // 2]), np.sort(order[n // 2 :])
    header = (
        "| embedder | calibration | rank-1 % | rank-5 % | mAP % | ECE all held-out pairs "
        "| top 1 % of pairs by p: mean p vs same-rate "
        f"| threshold p @ FMR {args.target_fmr:g} | held-out FMR | FMR / target | held-out recall % |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for name, build in EMBEDDERS.items():
        embedder = build()
        gallery, queries = embedder.embed(gallery_crops), embedder.embed(query_crops)
        sim = np.asarray(queries @ gallery.T, np.float64)  # unit vectors: cosine
        scores = evaluate_reid(sim[np.ix_(test_ids, test_ids)], test_ids, test_ids, max_rank=5)
        fit_s, fit_same = cross_pairs(sim, fit_ids)
        test_s, test_same = cross_pairs(sim, test_ids)
        for method in ("platt", "isotonic"):
            model = MatchCalibrator(method=method).fit(fit_s, fit_same)
            threshold = model.threshold_for_false_match_rate(args.target_fmr)
            p = model.predict_proba(test_s)
            accept = p >= threshold
            fmr = float((accept & ~test_same).sum() / (~test_same).sum())
            top = p >= np.quantile(p, 0.99)
            lines.append(
                f"| {name} | {method} | {100 * scores.rank(1):.1f} | {100 * scores.rank(5):.1f} "
                f"| {100 * scores.mean_ap:.1f} | {expected_calibration_error(p, test_same):.4f} "
                f"| {p[top].mean():.4f} vs {test_same[top].mean():.4f} ({top.sum()} pairs) "
                f"| {threshold:.4f} | {100 * fmr:.2f} % | {fmr / args.target_fmr:.2f} "
                f"| {100 * (accept & test_same).sum() / test_same.sum():.1f} |"
            )
            if name == "MobileNetV2" and method == "platt":
                write_calibration_report(
                    args.out,
                    test_s,
                    test_same,
                    model,
                    target_false_match_rate=args.target_fmr,
                    title=f"VIPeR held-out half, {name}, {method} calibration (fitted on the other half)",
                )
    table = "\n".join(lines)
    print(table)
    if not args.no_append:
        notes = [
            f"data: VIPeR (632 people, 48x128); camera 1 = gallery, camera 2 = queries; identities split in half "
            f"(seed {args.seed}): calibrator fitted on the first half's 316 x 316 cross-camera pairs, everything "
            "scored on the held-out half (316 queries vs 316 gallery images; 316 same / 99,540 different pairs)",
            "ECE: 15 equal-width bins over all held-out pairs, no reweighting. With 1 same pair per 316 most pairs "
            "sit near p = 0, which makes the all-pairs ECE small almost by construction; the top-1 % column compares "
            "mean probability with the observed same-rate among the most confident pairs (selecting on p keeps a "
            "calibrated model calibrated), which is where decisions are made",
            f"threshold: lowest calibrated probability whose false-match rate (false matches / different pairs) on "
            f"the fitting pairs is <= {args.target_fmr:g}; FMR and recall are measured on held-out pairs",
            f"report (MobileNetV2, platt, held-out pairs): `{display(args.out)}/report.html`",
        ]
        append_section("reid.py", notes, table)


@dataclass(frozen=True)
class Features:
    """One embedder's vectors of every crop of both sets, and what embedding cost per crop."""

    viper_1: NDArray[np.float32]
    viper_2: NDArray[np.float32]
    prid_a: NDArray[np.float32]
    prid_b: NDArray[np.float32]
    ms_per_crop: float


@dataclass(frozen=True)
class Split:
    """One split of a protocol: training pairs (row i of `train_a` and `train_b` is one person; `key` names the
    set, so a fit shared by every split is done once), then probe and gallery rows with their identities."""

    key: str
    train_a: NDArray[np.float32]
    train_b: NDArray[np.float32]
    probe: NDArray[np.float32]
    probe_ids: NDArray[np.int64]
    gallery: NDArray[np.float32]
    gallery_ids: NDArray[np.int64]


Protocol = Callable[[Features, int], Split]

METHODS: list[tuple[str, str, str | None]] = [
    ("LOMO + XQDA", "lomo", "xqda"),
    ("LOMO + KISSME", "lomo", "kissme"),
    ("LOMO + LDA", "lomo", "lda"),
    ("LOMO, plain cosine", "lomo", None),
    (ENSEMBLE, "ensemble", None),
    (f"{ENSEMBLE} + XQDA", "ensemble", "xqda"),
]
"""(row label, features, metric or None for plain cosine)."""

FUSIONS: list[tuple[str, tuple[tuple[str, float], ...]]] = [
    ("LOMO+XQDA fused with ensemble+XQDA (0.6 / 0.4)", (("lomo", 0.6), ("ensemble", 0.4))),
    (
        "LOMO+XQDA fused with ensemble+XQDA and LOMO-Retinex+XQDA (0.5 / 0.3 / 0.2)",
        (("lomo", 0.5), ("ensemble", 0.3), ("lomo-retinex", 0.2)),
    ),
]
"""(row label, (features, weight) per member): XQDA fitted on each member's features, cosines mixed by weight.
The weights are the best of `validation`'s grid (training people only); as embedders: an `ensemble` whose members
are `learned` (base `lomo`, the MobileNetV2 + colour `ensemble`, `lomo` with `retinex: true`) with these weights."""

FUSION_GRID: list[tuple[float, float, float]] = [(w, round(1 - w, 2), 0.0) for w in (0.5, 0.6, 0.7, 0.8, 0.9)] + [
    (w, round(1 - w - u, 2), u) for w in (0.5, 0.6, 0.7) for u in (0.1, 0.2, 0.3) if w + u < 1
]
"""Weights (lomo, ensemble, lomo-retinex) tried by `validation`."""

HEADER = "| method | rank-1 % | rank-5 % | rank-10 % | rank-20 % | mAP % | fit s | embed ms/crop | metric ms/crop |"


def all_features() -> dict[str, Features]:
    """Every crop of both data sets through each base embedder the methods use."""
    viper_1, viper_2 = load_viper()
    prid = load_prid()
    return {
        "lomo": embed_all(LomoEmbedder(), viper_1, viper_2, prid),
        "lomo-retinex": embed_all(LomoEmbedder(retinex=True), viper_1, viper_2, prid),
        "ensemble": embed_all(EMBEDDERS[ENSEMBLE](), viper_1, viper_2, prid),
    }


def standard_protocols(splits: int, append: bool) -> None:
    features = all_features()
    tables = []
    for title, protocol in (
        ("VIPeR, 316 / 316 people, probe camera 1, gallery camera 2", viper_protocol),
        ("PRID 2011 single-shot, 100 / 100 people, probe cam_a (100), gallery cam_b (649)", prid_protocol),
        ("Cross-dataset: fitted on all of VIPeR, tested on PRID 2011 test splits", viper_to_prid),
        ("Cross-dataset: fitted on PRID 2011 training splits, tested on VIPeR test splits", prid_to_viper),
    ):
        rows = [HEADER, "|" + "---|" * (HEADER.count("|") - 1)]
        fitted: dict[tuple[str, str, str], tuple[PairMetric, float]] = {}
        for label, feature, metric_name in METHODS:
            members = [(feature, 1.0)]
            rows += evaluate(
                label, features, members, metric_name, protocol, splits, fitted, variants=feature == "lomo"
            )
        for label, weighted in FUSIONS:
            rows += evaluate(label, features, list(weighted), "xqda", protocol, splits, fitted, variants=False)
        tables.append(f"**{title}** (mean +- std over {splits} splits)\n\n" + "\n".join(rows))
        print(tables[-1] + "\n", flush=True)
    if append:
        notes = [
            "data: VIPeR (632 people, 48x128) and PRID 2011 single-shot (cam_a 385, cam_b 749 people, 64x128); "
            f"splits seeded 0-{splits - 1} (`numpy.random.default_rng(seed).permutation`)",
            "LOMO: `lomo` embedder defaults (128x48, 10x10 patches stride 5, HSV 8x8x8, SILTP tau 0.3 at R = 3, 5, "
            "3 scales, 26,960-d; Retinex off, see `LomoParams.retinex`); metrics at their defaults (XQDA reg "
            "0.00033 per unit squared norm = XQDA.m's lambda 0.001, eigenvalues > 1; KISSME on 100 PCA dimensions; "
            "LDA shrinkage 0.1), fitted on cross-camera pairs of the training people; ranked by cosine in the "
            "metric's `transform` space unless the row says otherwise",
            "fused rows: XQDA fitted on each member's features (the same training people), similarity = weighted "
            "mean of the members' cosines (= an `ensemble` embedder of `learned` members); LOMO-Retinex is `lomo` "
            "with `retinex: true`. Weights chosen by `--part validation` (VIPeR training people only: 158 fit / "
            "158 probe-gallery inside each split's training half), not on these test splits; PRID and the "
            "cross-dataset rows reuse VIPeR's weights",
            "fit s: mean seconds per fit (summed over a fusion's members); embed ms/crop: the base embedders per "
            "crop (one batch of all crops); metric ms/crop: the metrics' transform per crop",
        ]
        append_section("reid.py", notes, "\n\n".join(tables))


def validation(splits: int, append: bool) -> None:
    """The weights of `FUSIONS`, chosen on VIPeR training people only (see the module docstring)."""
    features = all_features()
    names = ("lomo", "ensemble", "lomo-retinex")
    sims: dict[str, list[NDArray[np.float32]]] = {name: [] for name in names}
    held_out: list[NDArray[np.int64]] = []
    for seed in range(splits):
        train, _ = viper_halves(seed, len(features["lomo"].viper_1))
        order = np.random.default_rng(1000 + seed).permutation(len(train))
        fit_ids, val_ids = np.sort(train[order[: len(train) // 2]]), np.sort(train[order[len(train) // 2 :]])
        held_out.append(val_ids)
        for name in names:
            f = features[name]
            metric = fit_pairs("xqda", f.viper_1[fit_ids], f.viper_2[fit_ids])
            sims[name].append(metric.transform(f.viper_1[val_ids]) @ metric.transform(f.viper_2[val_ids]).T)
    rows = ["| weights lomo / ensemble / lomo-retinex (each + XQDA) | validation rank-1 % | mAP % |", "|---|---|---|"]
    for weights in [(1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), *FUSION_GRID]:
        runs = [
            evaluate_reid(
                np.asarray(sum(w * sims[name][i] for w, name in zip(weights, names, strict=True)), np.float64),
                ids,
                ids,
                max_rank=1,
            )
            for i, ids in enumerate(held_out)
        ]
        rows.append(
            f"| {' / '.join(f'{w:g}' for w in weights)} | {spread([r.rank(1) for r in runs])} "
            f"| {spread([r.mean_ap for r in runs])} |"
        )
    table = f"**Validation on VIPeR training people ({splits} splits, 158 fit / 158 held out)**\n\n" + "\n".join(rows)
    print(table)
    if append:
        notes = [
            "how `FUSIONS`' weights were chosen: for each VIPeR split seed 0-9 only its 316 training people; 158 "
            "(seed 1000 + split) fit XQDA on each base's features, the other 158 are probe (camera 1) and gallery "
            "(camera 2); similarity = weighted sum of the members' XQDA cosines; the best two-member and "
            "three-member rows became `FUSIONS`; no test split is read",
        ]
        append_section("reid.py", notes, table)


def embed_all(
    embedder: Embedder, viper_1: list[NDArray[np.uint8]], viper_2: list[NDArray[np.uint8]], prid: PridSet
) -> Features:
    start = time.perf_counter()
    out = [embedder.embed(crops) for crops in (viper_1, viper_2, prid.cam_a, prid.cam_b)]
    n = len(viper_1) + len(viper_2) + len(prid.cam_a) + len(prid.cam_b)
    return Features(*out, ms_per_crop=1000 * (time.perf_counter() - start) / n)


def evaluate(
    label: str,
    features: dict[str, Features],
    members: list[tuple[str, float]],
    metric_name: str | None,
    protocol: Protocol,
    splits: int,
    fitted: dict[tuple[str, str, str], tuple[PairMetric, float]],
    variants: bool,
) -> list[str]:
    """Table rows of one method over every split: its own, and for XQDA on LOMO the two variant rankings.

    `members` are (features, weight): one for a single space, several for a fusion, whose similarity is the
    weighted mean of the members' cosines. `fitted` keeps each (features, metric, training set) fit, so methods
    sharing one (a fusion and its members) fit it once."""
    scores: dict[str, list[ReidScores]] = {}
    fit_s: set[tuple[str, str, str]] = set()
    transform_ms = []
    total = sum(w for _, w in members)
    for seed in range(splits):
        similarity: NDArray[np.float32] | None = None
        transform_s, transformed = 0.0, 0
        for feature, weight in members:
            split = protocol(features[feature], seed)
            if metric_name is None:
                part = split.probe @ split.gallery.T
            else:
                key = (feature, metric_name, split.key)
                if key not in fitted:
                    start = time.perf_counter()
                    fitted[key] = (fit_pairs(metric_name, split.train_a, split.train_b), time.perf_counter() - start)
                fit_s.add(key)
                metric = fitted[key][0]
                start = time.perf_counter()
                probe, gallery = metric.transform(split.probe), metric.transform(split.gallery)
                transform_s += time.perf_counter() - start
                transformed = len(probe) + len(gallery)
                part = probe @ gallery.T
            similarity = weight / total * part if similarity is None else similarity + weight / total * part
        assert similarity is not None
        if transformed:
            transform_ms.append(1000 * transform_s / transformed)
        scores.setdefault(label, []).append(rank(similarity, split))
        if variants and metric_name == "xqda":
            zp, zg = metric.project(split.probe), metric.project(split.gallery)
            distance = (zp**2).sum(1)[:, None] + (zg**2).sum(1)[None, :] - 2 * zp @ zg.T
            scores.setdefault(f"{label}, Mahalanobis distance", []).append(rank(-distance, split))
            offset = metric.mean_ @ metric.components_  # back to z = P^T x: the same metric, not centred
            uncentred = l2_normalise(zp + offset) @ l2_normalise(zg + offset).T
            scores.setdefault(f"{label}, cosine without centring", []).append(rank(uncentred, split))
    # Mean seconds per fit of each member's metric, summed over the members.
    per_member: dict[str, list[float]] = {}
    for feature, metric_key, split_key in fit_s:
        per_member.setdefault(feature, []).append(fitted[(feature, metric_key, split_key)][1])
    fit_text = f"{sum(np.mean(t) for t in per_member.values()):.2f}" if per_member else "-"
    metric_ms = f"{np.mean(transform_ms):.3f}" if transform_ms else "-"
    embed_ms = sum(features[feature].ms_per_crop for feature, _ in members)
    return [
        f"| {name} | {spread([s.rank(1) for s in runs])} | {spread([s.rank(5) for s in runs])} "
        f"| {spread([s.rank(10) for s in runs])} | {spread([s.rank(20) for s in runs])} "
        f"| {spread([s.mean_ap for s in runs])} | {fit_text} | {embed_ms:.2f} | {metric_ms} |"
        for name, runs in scores.items()
    ]


def fit_pairs(metric_name: str, train_a: NDArray[np.float32], train_b: NDArray[np.float32]) -> PairMetric:
    """The named metric fitted on cross-camera pairs: row i of `train_a` (camera a) and `train_b` is one person."""
    n = len(train_a)
    ids = np.arange(n)
    return make_metric(metric_name).fit(
        np.concatenate([train_a, train_b]), np.concatenate([ids, ids]), np.repeat(["a", "b"], n)
    )


def rank(similarity: NDArray[np.float32], split: Split) -> ReidScores:
    return evaluate_reid(np.asarray(similarity, np.float64), split.probe_ids, split.gallery_ids, max_rank=20)


def spread(values: Sequence[float]) -> str:
    return f"{100 * np.mean(values):.1f} +- {100 * np.std(values):.1f}"


def viper_halves(seed: int, n: int = 632) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[: n // 2]), np.sort(order[n // 2 :])


def prid_halves(seed: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Person ids (1-200, the people both cameras saw) for training and for testing."""
    order = np.random.default_rng(seed).permutation(200) + 1
    return np.sort(order[:100]), np.sort(order[100:])


def viper_protocol(f: Features, seed: int) -> Split:
    train, test = viper_halves(seed, len(f.viper_1))
    return Split(f"viper-{seed}", f.viper_1[train], f.viper_2[train], *_viper_test(f, test))


def prid_protocol(f: Features, seed: int) -> Split:
    train, test = prid_halves(seed)
    return Split(f"prid-{seed}", f.prid_a[train - 1], f.prid_b[train - 1], *_prid_test(f, test))


def viper_to_prid(f: Features, seed: int) -> Split:
    _, test = prid_halves(seed)
    return Split("viper-all", f.viper_1, f.viper_2, *_prid_test(f, test))


def prid_to_viper(f: Features, seed: int) -> Split:
    train, _ = prid_halves(seed)
    _, test = viper_halves(seed, len(f.viper_1))
    return Split(f"prid-{seed}", f.prid_a[train - 1], f.prid_b[train - 1], *_viper_test(f, test))


def _viper_test(f: Features, test: NDArray[np.int64]) -> tuple[NDArray[np.float32], ...]:
    return f.viper_1[test], test, f.viper_2[test], test


def _prid_test(f: Features, test: NDArray[np.int64]) -> tuple[NDArray[np.float32], ...]:
    """Probe: the test people in cam_a; gallery: their cam_b images and every cam_b-only person (ids 201-749)."""
    gallery_ids = np.concatenate([test, np.arange(201, len(f.prid_b) + 1)])
    return f.prid_a[test - 1], test, f.prid_b[gallery_ids - 1], gallery_ids


def cross_pairs(sim: NDArray[np.float64], ids: NDArray[np.int64]) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Every (query, gallery) pair among `ids` with its same-identity label, flattened."""
    block = sim[np.ix_(ids, ids)]
    return block.ravel(), np.eye(len(ids), dtype=bool).ravel()


def display(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


if __name__ == "__main__":
    raise SystemExit(main())
