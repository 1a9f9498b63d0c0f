"""Does trackid keep its lead on detectors, score scales, frame rates and crowds it was not tuned on?

    .venv-bench/bin/python bench/generalise.py                    # every set, every peer (about 40 minutes)
    .venv-bench/bin/python bench/generalise.py --reuse-peers      # trackid rows only; peers from the last run

One run, every peer of `bench/mot.py` beside trackid with its defaults, on each set of `bench/sets.py`: MOT15 FRCNN,
MOT15 ACF (unbounded margins as scores), MOT17 FRCNN, MOT17 with its scores remapped three ways, MOT17 at 10 and
5 frames/s, PETS09-S2L1 with trackid's own detectors run on the video, and jittered copies. One table per set, a
summary with each set's margin over its best peer, and the score-remap check on MOT15 and MOT17.

Peers that take only scores in [0, 1] (boxmot rejects others) get the ACF margins mapped two ways, min-max over the
set and the set's own score ranks, and each peer's better result is kept: an advantage we do not take ourselves.
Peer scores are saved to `runs/generalise-peers.json`, which `bench/tune.py` reads for its margins and which
`--reuse-peers` replays (peers are deterministic; their frames/s are then not re-measured, so no speed ratio is
printed). Appends its tables to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mot import RAW_SCORES, Row, format_table, run_tracker
from peers import PEERS
from report import REPO, append_section
from sets import REMAPS, DetectionSet, frcnn, remapped, sets_by_name
from trackid.eval import evaluate_mot
from trackid.sources import write_mot_results
from trackid.track import make_tracker, track_sequence

PEER_CACHE = REPO / "runs" / "generalise-peers.json"
VARIANTS: dict[str, dict[str, object]] = {
    "trackid, raw scores with issue #6's FRCNN thresholds (before issue #12)": RAW_SCORES,
    "trackid, scores self-calibrated instead of ranked": {"score_scale": "calibrated"},
}
"""trackid rows beside the defaults: the score handling the defaults replace, and the alternative the ablation
rejected."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", default=None, help="subset of set names (default: all)")
    parser.add_argument("--reuse-peers", action="store_true", help="peer scores from --peer-cache")
    parser.add_argument("--peer-cache", type=Path, default=PEER_CACHE, help="where peer scores are kept (JSON)")
    parser.add_argument("--refresh-cache", action="store_true", help="re-run the PETS detectors, rebuild the gt")
    parser.add_argument("--no-variants", action="store_true", help="skip the raw / calibrated trackid rows")
    parser.add_argument("--params", default="{}", help="JSON tracker parameters for the trackid row")
    parser.add_argument("--no-append", action="store_true", help="print only; do not append to BENCHMARKS.md")
    args = parser.parse_args(argv)

    sets = sets_by_name(args.sets, args.refresh_cache)
    cache = load_peer_cache(args.peer_cache)  # other sets' entries are kept when this run rewrites it
    params = json.loads(args.params)
    sections, summary = [], []
    for dset in sets:
        ours = run_tracker("trackid", dset.sequences, dset.gt, 1, params=params)
        variants = (
            []
            if args.no_variants
            else [
                run_tracker("trackid", dset.sequences, dset.gt, 1, params={**params, **p}, label=label)
                for label, p in VARIANTS.items()
            ]
        )
        if args.reuse_peers:
            if dset.name not in cache:
                raise SystemExit(f"{args.peer_cache}: no scores for {dset.name}; run without --reuse-peers first")
            peers = [Row(name, scores, np.nan) for name, scores in cache[dset.name].items()]
        else:
            peers = [run_peer(name, dset) for name in PEERS]
            cache[dset.name] = {r.tracker: r.scores for r in peers}
            args.peer_cache.parent.mkdir(parents=True, exist_ok=True)
            args.peer_cache.write_text(json.dumps(cache, indent=1))
        title = f"{dset.name}: {dset.description}, {len(dset.sequences)} sequences, {dset.frames} frames"
        sections.append(format_table(title, [ours, *peers, *variants], speed_ratio=not args.reuse_peers))
        print(sections[-1], flush=True)
        summary.append((dset, ours, peers, variants))
    tables = [_summary(summary), _remap_check(params), _per_sequence_bound(params)]
    for table in tables:
        print(table, flush=True)
    if not args.no_append:
        notes = [
            f"peers: {', '.join(PEERS)}, library defaults (bench/peers.py); "
            + ("scores replayed from runs/generalise-peers.json" if args.reuse_peers else "all run here"),
            f"trackid parameters: defaults{' + ' + args.params if params else ''}",
        ]
        append_section("generalise.py", notes, "\n".join(tables + sections))
    return 0


def load_peer_cache(path: Path = PEER_CACHE) -> dict[str, dict[str, dict[str, float]]]:
    """Peer scores per set from `path` and any `<stem>-*.json` beside it (runs given other `--peer-cache` paths)."""
    cache: dict[str, dict[str, dict[str, float]]] = {}
    for part in sorted(path.parent.glob(path.stem + "-*.json")) + ([path] if path.is_file() else []):
        cache.update(json.loads(part.read_text()))
    return cache


def run_peer(name: str, dset: DetectionSet) -> Row:
    """One peer on one set; a set whose scores leave [0, 1] is run with two mappings into it, the better kept."""
    if dset.scores_in_unit_range():
        return run_tracker(name, dset.sequences, dset.gt, 1)
    rows = [run_tracker(name, mapped.sequences, dset.gt, 1) for mapped in _unit_range_copies(dset)]
    return max(rows, key=lambda r: r.scores["HOTA"])


def _unit_range_copies(dset: DetectionSet) -> list[DetectionSet]:
    scores = np.concatenate([d.score for s in dset.sequences for d in s.frames])
    low, high = float(scores.min()), float(scores.max())
    ranked = np.sort(scores)
    return [
        remapped(dset, dset.name, "min-max to [0, 1]", lambda s: (s - low) / (high - low)),
        remapped(dset, dset.name, "ranks", lambda s: np.searchsorted(ranked, s, side="right") / len(ranked)),
    ]


def _summary(rows: list[tuple[DetectionSet, Row, list[Row], list[Row]]]) -> str:
    """Per set: trackid, the best peer and the margin; the raw-score variant; the mean over sets."""
    header = "| set | trackid HOTA | best peer | its HOTA | margin | trackid IDSW | peer IDSW | raw scores HOTA |"
    lines = [
        "**Summary: HOTA margin over the best peer, same defaults on every set**",
        "",
        header,
        "|---|---|---|---|---|---|---|---|",
    ]
    margins, ours_all, best_all = [], [], []
    for dset, ours, peers, variants in rows:
        best = max(peers, key=lambda r: r.scores["HOTA"])
        margin = ours.scores["HOTA"] - best.scores["HOTA"]
        margins.append(margin)
        ours_all.append(ours.scores["HOTA"])
        best_all.append(best.scores["HOTA"])
        raw = next((f"{v.scores['HOTA']:.2f}" for v in variants if "raw" in v.tracker), "")
        lines.append(
            f"| {dset.name} | {ours.scores['HOTA']:.2f} | {best.tracker} | {best.scores['HOTA']:.2f} | {margin:+.2f} "
            f"| {ours.scores['IDSW']:.0f} | {best.scores['IDSW']:.0f} | {raw} |"
        )
    lines.append(
        f"| **mean over {len(rows)} sets** | {np.mean(ours_all):.2f} | (best per set) | {np.mean(best_all):.2f} "
        f"| **{np.mean(margins):+.2f}** | | | |"
    )
    by_peer: dict[str, list[float]] = {}
    for _, _, peers, _ in rows:
        for r in peers:
            by_peer.setdefault(r.tracker, []).append(r.scores["HOTA"])
    steady = max(by_peer, key=lambda name: float(np.mean(by_peer[name])))
    steady_mean = float(np.mean(by_peer[steady]))
    lines += [
        "",
        f"- smallest margin: {min(margins):+.2f}; sets below their best peer: {sum(m < 0 for m in margins)}",
        f"- the best peer over all sets, by mean HOTA: {steady} {steady_mean:.2f}; trackid {np.mean(ours_all):.2f}: "
        f"**{np.mean(ours_all) - steady_mean:+.2f}** (the margin above is against each set's own best peer, a "
        "different peer on different sets)",
    ]
    return "\n".join(lines) + "\n"


def _remap_check(params: dict[str, object]) -> str:
    """trackid's HOTA on MOT15 and MOT17 with the scores as given and remapped: the change a detector's score
    scale makes, with the default ranks and with raw scores."""
    header = ["dataset", "scores", "HOTA (ranks)", "Δ", "HOTA (raw scores, FRCNN thresholds)", "Δ raw"]
    lines = ["**Monotone score remaps (trackid only)**", "", "| " + " | ".join(header) + " |", "|---" * 6 + "|"]
    for dataset in ("mot15", "mot17"):
        base = frcnn(dataset)
        variants = [("as given", base)] + [
            (label, remapped(base, key, label, fn)) for key, (label, fn) in REMAPS.items()
        ]
        first: dict[str, float] = {}
        for label, dset in variants:
            cells = [dataset.upper(), label]
            for scale in ("rank", "raw"):
                variant = {**params, **(RAW_SCORES if scale == "raw" else {})}
                hota = run_tracker("trackid", dset.sequences, dset.gt, 1, params=variant)
                value = hota.scores["HOTA"]
                first.setdefault(scale, value)
                cells += [f"{value:.2f}", f"{value - first[scale]:+.2f}"]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _per_sequence_bound(params: dict[str, object]) -> str:
    """What FRCNN's raw thresholds know that ranks cannot: ranks with, per sequence, the quantiles at which FRCNN's
    raw thresholds (0.7, 0.97, 0.1) fall in that sequence's scores. An oracle (it reads the whole sequence first), it
    bounds what per-stream threshold adaptation could give on these two detection sets."""
    lines = [
        "**Per-sequence thresholds: what raw FRCNN scores carry beyond their ranks (trackid only)**",
        "",
        "| dataset | ranks, one quantile for all (default) | ranks, per-sequence quantiles of FRCNN's raw thresholds "
        "(oracle) | raw scores, FRCNN thresholds |",
        "|---|---|---|---|",
    ]
    thresholds = {k: float(v) for k, v in RAW_SCORES.items() if k != "score_scale"}  # type: ignore[arg-type]
    for dataset in ("mot15", "mot17"):
        dset = frcnn(dataset)
        cells = []
        for mode in ("rank", "oracle", "raw"):
            with tempfile.TemporaryDirectory(prefix="trackid-bound-") as tmp:
                for seq in dset.sequences:
                    scores = np.concatenate([d.score for d in seq.frames])
                    per_seq = {**params, **(RAW_SCORES if mode == "raw" else {})}
                    if mode == "oracle":
                        per_seq.update({k: float(np.mean(scores < v)) for k, v in thresholds.items()})
                    tracker = make_tracker("trackid", frame_rate=seq.frame_rate, **per_seq)
                    write_mot_results(Path(tmp) / f"{seq.name}.txt", *track_sequence(tracker, seq.frames))
                hota = evaluate_mot(dset.gt, tmp, sequences=[s.name for s in dset.sequences]).combined["HOTA"]
            cells.append(f"{hota:.2f}")
        lines.append(f"| {dataset.upper()} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
