"""How trackid's default tracker parameters were chosen: a search on MOT15 + MOT17 train, robust to chaos.

    .venv/bin/pip install -e '.[tune]'          # optuna
    .venv/bin/python bench/tune.py --trials 90 --storage runs/tune.db

A tracker is a chaotic system: nudging one box by a pixel can flip an association and move a sequence's HOTA by a
point. A search that scores each candidate on one run would mostly select luck. Here each candidate runs on both
datasets once as given and `--jitter-runs` more times with every detection box moved by Gaussian noise of
`--jitter` of its size (0.3 %: well below any detector's own noise), and is scored by the *smaller* of its two mean
HOTA margins over the best peer (MOT15 and MOT17, the peers' figures from `bench/mot.py`). One parameter set must
serve both datasets and every sequence: no per-sequence tuning.

The sampler is optuna's TPE (multivariate), started from the current defaults, within ranges around them. The
`--storage` database lets an interrupted search resume. The best candidate of a search is partly the luckiest one,
so the `--rescore` best are scored again with fresh jitter (other random seeds) before one is chosen. Appends the
best candidates, with both scores, to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Sequence
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np

from mot import DATA, SequenceData, jitter_boxes, load_dataset  # bench/ is on sys.path when this file runs as a script
from report import append_section
from trackid.eval import evaluate_mot
from trackid.sources import write_mot_results
from trackid.track import TrackerConfig, make_tracker, track_sequence

DATASETS = ("mot15", "mot17")
BEST_PEER_HOTA = {"mot15": 38.30, "mot17": 48.55}
"""boxmot BoT-SORT on MOT15 and boxmot OccluBoost on MOT17 (bench/mot.py; peers are deterministic)."""

_SEQUENCES: dict[str, list[SequenceData]] = {}


def search_space(trial: Any) -> dict[str, Any]:
    """The parameters searched and their ranges (around the defaults found by the first, wider search)."""
    f = trial.suggest_float
    return {
        "scene_motion_z": f("scene_motion_z", 1.8, 3.6),
        "coast_s": f("coast_s", 0.25, 0.8),
        "coast_min_cover": f("coast_min_cover", 0.05, 0.35),
        "coast_min_hits": trial.suggest_int("coast_min_hits", 2, 9),
        "adaptive_noise": f("adaptive_noise", 0.002, 0.012, log=True),
        "noise_scale_range": (f("noise_scale_min", 0.12, 0.4, log=True), f("noise_scale_max", 4, 12, log=True)),
        "iou_gate": f("iou_gate", 0.22, 0.32),
        "high_score": f("high_score", 0.6, 0.76),
        "new_track_score": f("new_track_score", 0.95, 0.98),
        "low_score": f("low_score", 0.05, 0.15),
        "low_score_iou_gate": f("low_score_iou_gate", 0.5, 0.68),
        "direction_weight": f("direction_weight", 0.12, 0.35),
        "max_lost_s": f("max_lost_s", 1.6, 2.6),
        "motion_noise": (
            f("noise_position", 0.042, 0.062),
            f("noise_velocity", 0.0023, 0.0034),
            f("noise_measurement", 0.055, 0.075),
        ),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=90)
    parser.add_argument("--jitter-runs", type=int, default=2, help="jittered runs per dataset besides the plain one")
    parser.add_argument("--jitter", type=float, default=0.003, help="box noise, as a fraction of the box size")
    parser.add_argument("--storage", default=None, help="optuna database (sqlite path) to resume a search")
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--top", type=int, default=5, help="candidates listed in BENCHMARKS.md")
    parser.add_argument("--rescore", type=int, default=5, help="best candidates scored again with fresh jitter")
    parser.add_argument("--rescore-runs", type=int, default=4, help="fresh jittered runs per dataset")
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args(argv)
    try:
        import optuna
    except ImportError:
        parser.error("the search needs optuna: .venv/bin/pip install -e '.[tune]'")

    storage = f"sqlite:///{Path(args.storage).resolve()}" if args.storage else None
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=args.seed, multivariate=True, n_startup_trials=12),
        storage=storage,
        study_name="trackid-defaults",
        load_if_exists=True,
    )
    if not study.trials:
        study.enqueue_trial(_as_trial_params(TrackerConfig()))
    with Pool(2) as pool:

        def objective(trial: Any) -> float:
            params = search_space(trial)
            margins = score(params, args.jitter_runs, args.jitter, pool)
            trial.set_user_attr("margins", margins)
            trial.set_user_attr("params", json.loads(json.dumps(params)))
            return min(m["mean"] for m in margins.values())

        study.optimize(objective, n_trials=args.trials, catch=(ValueError,))
        best = sorted((t for t in study.trials if t.value is not None), key=lambda t: -t.value)
        rescored = {
            t.number: score(t.user_attrs["params"], args.rescore_runs, args.jitter, pool, first_seed=100, plain=False)
            for t in best[: args.rescore]
        }
    table = _format(best[: max(args.top, args.rescore)], rescored)
    print(table)
    if not args.no_append:
        notes = [
            f"{len(study.trials)} candidates (optuna TPE, seed {args.seed}); each scored on both datasets as given and "
            f"{args.jitter_runs} times with boxes jittered by {args.jitter:.1%} of their size",
            "objective: the smaller of the mean HOTA margins over the best peer "
            f"({', '.join(f'{d.upper()} {h}' for d, h in BEST_PEER_HOTA.items())})",
        ]
        append_section("tune.py", notes, table)
    return 0


def score(
    params: dict[str, Any], jitter_runs: int, jitter: float, pool: Any, first_seed: int = 1, plain: bool = True
) -> dict[str, dict[str, float]]:
    """Per dataset: the HOTA margin over the best peer as given (`plain`) and averaged over that run and the
    jittered ones (`mean`; seeds `first_seed`, `first_seed` + 1, ...). Without `plain`, only jittered runs."""
    seeds = ([0] if plain else []) + list(range(first_seed, first_seed + jitter_runs))
    jobs = [(dataset, params, seed, jitter) for dataset in DATASETS for seed in seeds]
    hota: dict[str, dict[int, float]] = {d: {} for d in DATASETS}
    for dataset, seed, value in pool.map(_run, jobs):
        hota[dataset][seed] = value
    out = {}
    for d, by_seed in hota.items():
        out[d] = {"mean": round(float(np.mean(list(by_seed.values()))) - BEST_PEER_HOTA[d], 2)}
        if plain:
            out[d]["plain"] = round(by_seed[0] - BEST_PEER_HOTA[d], 2)
    return out


def _run(job: tuple[str, dict[str, Any], int, float]) -> tuple[str, int, float]:
    """One dataset's HOTA; seed 0 runs the detections as given, any other seed jitters them."""
    dataset, params, seed, jitter = job
    if dataset not in _SEQUENCES:
        _SEQUENCES[dataset] = load_dataset(dataset)
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory(prefix="trackid-tune-") as tmp:
        for seq in _SEQUENCES[dataset]:
            tracker = make_tracker("trackid", frame_rate=seq.frame_rate, **params)
            given = [jitter_boxes(d, rng, jitter) for d in seq.frames] if seed > 0 else seq.frames
            write_mot_results(Path(tmp) / f"{seq.name}.txt", *track_sequence(tracker, given))
        hota = evaluate_mot(DATA / dataset / "gt", tmp).combined["HOTA"]
    return dataset, seed, hota


def _as_trial_params(config: TrackerConfig) -> dict[str, float]:
    """The defaults as the search's own parameter names, to start from."""
    position, velocity, measurement = config.motion_noise
    low, high = config.noise_scale_range
    names = (
        "scene_motion_z",
        "coast_s",
        "coast_min_cover",
        "coast_min_hits",
        "adaptive_noise",
        "iou_gate",
        "high_score",
        "new_track_score",
        "low_score",
        "low_score_iou_gate",
        "direction_weight",
        "max_lost_s",
    )
    start: dict[str, float] = {n: getattr(config, n) for n in names}
    start.update(
        noise_scale_min=low,
        noise_scale_max=high,
        noise_position=position,
        noise_velocity=velocity,
        noise_measurement=measurement,
    )
    return start


def _format(best: list[Any], rescored: dict[int, dict[str, dict[str, float]]]) -> str:
    """The best candidates: their search scores, the fresh re-scores where taken, and their parameters."""
    lines = [
        "| rank | trial | objective | MOT15 plain / mean | MOT17 plain / mean | fresh jitter MOT15 / MOT17 "
        "| parameters |",
        "|---|---|---|---|---|---|---|",
    ]
    for rank, t in enumerate(best, start=1):
        m = t.user_attrs["margins"]
        fresh = rescored.get(t.number)
        again = f"{fresh['mot15']['mean']:+.2f} / {fresh['mot17']['mean']:+.2f}" if fresh else ""
        lines.append(
            f"| {rank} | {t.number} | {t.value:+.2f} | {m['mot15']['plain']:+.2f} / {m['mot15']['mean']:+.2f} | "
            f"{m['mot17']['plain']:+.2f} / {m['mot17']['mean']:+.2f} | {again} | "
            f"`{json.dumps(t.user_attrs['params'])}` |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
