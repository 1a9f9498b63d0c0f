"""How trackid's default tracker parameters were chosen: a search over several detection sets, robust to chaos.

    .venv-bench/bin/python bench/generalise.py          # once: the peers' scores per set (runs/generalise-peers.json)
    .venv-bench/bin/pip install optuna
    .venv-bench/bin/python bench/tune.py --trials 40 --storage runs/tune.db
    .venv-bench/bin/python bench/tune.py --loso --trials 16      # leave-one-set-out
    .venv-bench/bin/python bench/tune.py --loso-grid             # leave-one-set-out over a fixed grid

A tracker is a chaotic system: nudging one box by a pixel can flip an association and move a sequence's HOTA by a
point. A search that scores each candidate on one run would mostly select luck. Here each candidate runs on every
set of `sets.TUNING_SETS` (MOT15 and MOT17 with FRCNN, MOT15 with ACF margins, MOT17 at 5 frames/s, PETS09-S2L1
with trackid's own SSDLite and HOG detections) once as given and `--jitter-runs` more times with every detection
box moved by Gaussian noise of `--jitter` of its size, and is scored by the *smallest* of its mean HOTA margins over
each set's best peer (from `bench/generalise.py`). One parameter set must serve every set and every sequence: no
per-set tuning.

`--loso` is the honest check of that choice: for each set in turn, the search runs without it, and its best
candidate is scored on the withheld set. A margin that holds only on the sets searched on shows up there.
`--loso-grid` does the same over a small fixed grid (GRID) whose every candidate is scored once on every set: no
search's luck, and cheap enough to run with jitter.

The sampler is optuna's TPE (multivariate), started from the current defaults, within ranges around them. The
`--storage` database lets an interrupted search resume. The best candidate of a search is partly the luckiest one,
so the `--rescore` best are scored again with fresh jitter (other random seeds) before one is chosen. Appends the
best candidates, with both scores, to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
from collections.abc import Sequence
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np

from generalise import PEER_CACHE, load_peer_cache  # bench/ is on sys.path when this file runs as a script
from mot import jitter_boxes
from report import append_section
from sets import TUNING_SETS, DetectionSet, sets_by_name
from trackid.eval import evaluate_mot
from trackid.sources import write_mot_results
from trackid.track import TrackerConfig, make_tracker, track_sequence

_SETS: dict[str, DetectionSet] = {}


def best_peer_hota(names: Sequence[str]) -> dict[str, float]:
    """Each set's best peer HOTA, from `bench/generalise.py` runs (peers are deterministic)."""
    cache = load_peer_cache()
    missing = [n for n in names if n not in cache]
    if missing:
        raise SystemExit(
            f"{PEER_CACHE}: no peer scores for {missing}; run bench/generalise.py --sets {' '.join(missing)}"
        )
    return {n: max(r["HOTA"] for r in cache[n].values()) for n in names}


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
        "iou_gate": f("iou_gate", 0.15, 0.32),
        # quantiles of each stream's scores (score_scale "rank")
        "high_score": f("high_score", 0.0, 0.3),
        "new_track_score": f("new_track_score", 0.1, 0.6),
        "low_score": f("low_score", 0.0, 0.08),
        "min_hits": trial.suggest_int("min_hits", 1, 3),
        "height_iou": trial.suggest_categorical("height_iou", [True, False]),
        "low_score_iou_gate": f("low_score_iou_gate", 0.5, 0.68),
        "direction_weight": f("direction_weight", 0.0, 0.35),
        "max_lost_s": f("max_lost_s", 1.6, 2.6),
        "motion_noise": (
            f("noise_position", 0.042, 0.062),
            f("noise_velocity", 0.0023, 0.0034),
            f("noise_measurement", 0.055, 0.075),
        ),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--sets", nargs="+", default=list(TUNING_SETS), help="sets searched on")
    parser.add_argument("--loso", action="store_true", help="leave-one-set-out: one search per withheld set")
    parser.add_argument(
        "--loso-grid", action="store_true", help="leave-one-set-out over GRID, each candidate scored once on every set"
    )
    parser.add_argument("--jitter-runs", type=int, default=1, help="jittered runs per set besides the plain one")
    parser.add_argument("--jitter", type=float, default=0.003, help="box noise, as a fraction of the box size")
    parser.add_argument("--storage", default=None, help="optuna database (sqlite path) to resume a search")
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--top", type=int, default=5, help="candidates listed in BENCHMARKS.md")
    parser.add_argument("--rescore", type=int, default=3, help="best candidates scored again with fresh jitter")
    parser.add_argument("--rescore-runs", type=int, default=2, help="fresh jittered runs per set")
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args(argv)
    if args.loso_grid:
        peers = best_peer_hota(args.sets)
        with Pool(2) as pool:
            table = _leave_one_set_out_grid(args, peers, pool)
        notes = [
            f"{len(_grid())} candidates (GRID: every combination of {', '.join(GRID)}, the rest at the defaults), "
            f"each scored once on every set, plain and {args.jitter_runs} time(s) jittered; for each withheld set the "
            "candidate with the best smallest margin on the other sets is chosen, then scored on it"
        ]
        print(table)
        if not args.no_append:
            append_section("tune.py", notes, table)
        return 0
    try:
        import optuna
    except ImportError:
        parser.error("the search needs optuna: pip install optuna (or -e '.[tune]')")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    peers = best_peer_hota(args.sets)

    with Pool(2) as pool:
        if args.loso:
            table = _leave_one_set_out(args, peers, pool, optuna)
            notes = [
                f"{args.trials} candidates per search (optuna TPE, seed {args.seed}), each withheld set scored "
                "plain and jittered by the best candidate of the search without it"
            ]
        else:
            study = _search(args, args.sets, peers, pool, optuna, args.storage)
            best = sorted((t for t in study.trials if t.value is not None), key=lambda t: -t.value)
            rescored = {
                t.number: score(
                    t.user_attrs["params"],
                    args.sets,
                    peers,
                    args.rescore_runs,
                    args.jitter,
                    pool,
                    first_seed=100,
                    plain=False,
                )
                for t in best[: args.rescore]
            }
            table = _format(best[: max(args.top, args.rescore)], rescored, args.sets)
            notes = [
                f"{len(study.trials)} candidates (optuna TPE, seed {args.seed}); each scored on {', '.join(args.sets)} "
                f"as given and {args.jitter_runs} time(s) with boxes jittered by {args.jitter:.1%} of their size",
                "objective: the smallest of the mean HOTA margins over each set's best peer "
                f"({', '.join(f'{n} {h:.2f}' for n, h in peers.items())}; runs/generalise-peers.json)",
            ]
    print(table)
    if not args.no_append:
        append_section("tune.py", notes, table)
    return 0


def _search(
    args: Any,
    names: Sequence[str],
    peers: dict[str, float],
    pool: Any,
    optuna: Any,
    storage: str | None,
    from_defaults: bool = True,
) -> Any:
    """One TPE search on `names`, started from the current defaults (`from_defaults`) or from random candidates
    only; returns the study."""
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=args.seed, multivariate=True, n_startup_trials=10),
        storage=f"sqlite:///{Path(storage).resolve()}" if storage else None,
        study_name="trackid-defaults-" + "-".join(names),
        load_if_exists=True,
    )
    if from_defaults and not study.trials:
        study.enqueue_trial(_as_trial_params(TrackerConfig()))

    def objective(trial: Any) -> float:
        params = search_space(trial)
        margins = score(params, names, peers, args.jitter_runs, args.jitter, pool)
        trial.set_user_attr("margins", margins)
        trial.set_user_attr("params", json.loads(json.dumps(params)))
        value = min(m["mean"] for m in margins.values())
        print(f"trial {trial.number}: {value:+.2f} {json.dumps(margins)}", flush=True)
        return value

    study.optimize(objective, n_trials=max(0, args.trials - len(study.trials)), catch=(ValueError,))
    return study


GRID: dict[str, tuple[Any, ...]] = {
    "direction_weight": (0.0, 0.16),
    "iou_gate": (0.22, 0.28),
    "max_lost_s": (1.8, 2.46),
    "new_track_score": (0.3, 0.39),
}
"""A small grid around the defaults, over the parameters the frame-rate and detector sets pull apart."""


def _grid() -> list[dict[str, Any]]:
    return [dict(zip(GRID, values, strict=True)) for values in itertools.product(*GRID.values())]


def _leave_one_set_out_grid(args: Any, peers: dict[str, float], pool: Any) -> str:
    """Leave-one-set-out without a search's luck: every GRID candidate is scored once on every set, so choosing
    without a set is a lookup, and each set's withheld margin is that of the candidate the other sets chose."""
    candidates = _grid()
    margins = []
    for i, params in enumerate(candidates):
        margins.append(score(params, args.sets, peers, args.jitter_runs, args.jitter, pool))
        print(f"candidate {i}: {json.dumps(params)} {json.dumps(margins[-1])}", flush=True)
    lines = [
        "| withheld set | chosen without it | its smallest margin on the other sets "
        "| withheld set: margin plain / mean | best candidate for the withheld set alone (mean) |",
        "|---|---|---|---|---|",
    ]
    for held in args.sets:
        rest = [n for n in args.sets if n != held]
        chosen = max(range(len(candidates)), key=lambda i: min(margins[i][n]["mean"] for n in rest))
        oracle = max(margins[i][held]["mean"] for i in range(len(candidates)))
        m = margins[chosen][held]
        lines.append(
            f"| {held} | `{json.dumps(candidates[chosen])}` | {min(margins[chosen][n]['mean'] for n in rest):+.2f} "
            f"| {m['plain']:+.2f} / {m['mean']:+.2f} | {oracle:+.2f} |"
        )
    return "\n".join(lines) + "\n"


def _leave_one_set_out(args: Any, peers: dict[str, float], pool: Any, optuna: Any) -> str:
    """For each set: search without it, then score the search's best candidate on it (plain and jittered).

    The searches start from random candidates, not from the shipped defaults: those were chosen with every set, the
    withheld one included, and starting there would leak it into the search."""
    lines = [
        "| withheld set | margin of the search without it (on its sets) | withheld set: margin plain / mean "
        "| same with the shipped defaults | parameters |",
        "|---|---|---|---|---|",
    ]
    defaults = json.loads(json.dumps(TrackerConfig().model_dump()))
    for held in args.sets:
        rest = [n for n in args.sets if n != held]
        study = _search(args, rest, peers, pool, optuna, None, from_defaults=False)
        best = max((t for t in study.trials if t.value is not None), key=lambda t: t.value)
        params = best.user_attrs["params"]
        withheld = score(params, [held], peers, args.jitter_runs, args.jitter, pool)[held]
        shipped = score(defaults, [held], peers, args.jitter_runs, args.jitter, pool)[held]
        lines.append(
            f"| {held} | {best.value:+.2f} | {withheld['plain']:+.2f} / {withheld['mean']:+.2f} "
            f"| {shipped['plain']:+.2f} / {shipped['mean']:+.2f} | `{json.dumps(params)}` |"
        )
        print(lines[-1], flush=True)
    return "\n".join(lines) + "\n"


def score(
    params: dict[str, Any],
    names: Sequence[str],
    peers: dict[str, float],
    jitter_runs: int,
    jitter: float,
    pool: Any,
    first_seed: int = 1,
    plain: bool = True,
) -> dict[str, dict[str, float]]:
    """Per set: the HOTA margin over its best peer as given (`plain`) and averaged over that run and the jittered
    ones (`mean`; seeds `first_seed`, `first_seed` + 1, ...). Without `plain`, only jittered runs."""
    seeds = ([0] if plain else []) + list(range(first_seed, first_seed + jitter_runs))
    jobs = [(name, params, seed, jitter) for name in names for seed in seeds]
    hota: dict[str, dict[int, float]] = {n: {} for n in names}
    for name, seed, value in pool.map(_run, jobs):
        hota[name][seed] = value
    out = {}
    for n, by_seed in hota.items():
        out[n] = {"mean": round(float(np.mean(list(by_seed.values()))) - peers[n], 2)}
        if plain:
            out[n]["plain"] = round(by_seed[0] - peers[n], 2)
    return out


def _run(job: tuple[str, dict[str, Any], int, float]) -> tuple[str, int, float]:
    """One set's HOTA; seed 0 runs the detections as given, any other seed jitters them."""
    name, params, seed, jitter = job
    if name not in _SETS:
        _SETS[name] = sets_by_name([name])[0]
    dset = _SETS[name]
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory(prefix="trackid-tune-") as tmp:
        for seq in dset.sequences:
            tracker = make_tracker("trackid", frame_rate=seq.frame_rate, **params)
            given = [jitter_boxes(d, rng, jitter) for d in seq.frames] if seed > 0 else seq.frames
            write_mot_results(Path(tmp) / f"{seq.name}.txt", *track_sequence(tracker, given))
        hota = evaluate_mot(dset.gt, tmp, sequences=[s.name for s in dset.sequences]).combined["HOTA"]
    return name, seed, hota


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
        "min_hits",
        "height_iou",
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


def _format(best: list[Any], rescored: dict[int, dict[str, dict[str, float]]], names: Sequence[str]) -> str:
    """The best candidates: their search scores per set, the fresh re-scores where taken, and their parameters."""
    lines = [
        "| rank | trial | objective | "
        + " | ".join(f"{n} plain / mean" for n in names)
        + " | fresh jitter (min over sets) | parameters |",
        "|---|---|---|" + "---|" * len(names) + "---|---|",
    ]
    for rank, t in enumerate(best, start=1):
        m = t.user_attrs["margins"]
        fresh = rescored.get(t.number)
        again = f"{min(v['mean'] for v in fresh.values()):+.2f}" if fresh else ""
        cells = " | ".join(f"{m[n]['plain']:+.2f} / {m[n]['mean']:+.2f}" for n in names)
        lines.append(
            f"| {rank} | {t.number} | {t.value:+.2f} | {cells} | {again} | `{json.dumps(t.user_attrs['params'])}` |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
