"""Cameras never seen in tuning (issue #16's acceptance): tune on one person set, ingest the other.

Per direction (tune on VIPeR, ingest PRID 2011; and the reverse): `photos tune` on every labelled photo of the first
set (it tunes on half the individuals, seed 0), then every photo of the second set, as one folder per camera, is
ingested into a fresh SQLite store (`photos ingest`, in this process), and the store's decisions are scored against
the file-name labels with `trackid.eval.photos.evaluate_assignments` (the definitions of `photos validate`):
- **adapted**: camera adaptation (warm-up `photos.adaptation_warmup`) with drift action stop;
- **adapted, drift warn**: the defaults (adaptation, the drift watch only warns);
- **no adaptation, drift warn**: `adaptation_warmup=0, drift_action=warn`: the behaviour before issue #16;
- **no adaptation, drift stop**: what the drift watch alone saves.
Decisions are split by phase: *warm-up* (the bursts held back until their camera's mean was fixed, then decided
with it), *after* (those decided as they came), *stopped* (stored as new after a drift stop), *awaiting* (still
held when the ingest ended). The false-match rate of decisions (matches into someone else's profile, of all
decisions) is compared with the tuned target; the recognised share is the share of sightings of an individual seen
before that joined its profile. Last, the drift watch's false alarms on in-distribution data: the first set's
held-out individuals ingested with its own tuning (no new camera).

    .venv/bin/python bench/adaptation.py [--directions viper:prid,prid:viper] [--embedder NAME]
        [--embedder-params JSON] [--warmup N] [--no-append]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from photos import _camera_folders, _labels
from report import append_section
from trackid.config import EmbedderConfig, PhotosConfig
from trackid.eval.photos import Assignment, evaluate_assignments
from trackid.identity.settings import GalleryConfig
from trackid.identity.stores import make_store
from trackid.pipelines.photos import Labels, Tuned, ingest, tune

VARIANTS = {
    "adapted": {"drift_action": "stop"},
    "adapted, drift warn": {},
    "no adaptation, drift warn": {"adaptation_warmup": 0, "drift_action": "warn"},
    "no adaptation, drift stop": {"adaptation_warmup": 0, "drift_action": "stop"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--directions", default="viper:prid,prid:viper")
    parser.add_argument("--embedder", default=None, help="registered embedder name (default: PhotosConfig's)")
    parser.add_argument("--embedder-params", default=None, help="its parameters as JSON")
    parser.add_argument("--warmup", type=int, default=None, help="photos.adaptation_warmup (default: PhotosConfig's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    base = PhotosConfig()
    if args.embedder is not None:
        params = json.loads(args.embedder_params) if args.embedder_params else {}
        base = base.model_copy(update={"embedder": EmbedderConfig(name=args.embedder, params=params)})
    if args.warmup is not None:
        base = base.model_copy(update={"adaptation_warmup": args.warmup})
    metric = "none" if base.metric is None else f"{base.metric.name} on {base.metric.features.name}"
    rows, notes = (
        [],
        [
            f"embedder {base.embedder.name} {base.embedder.params or ''} + the metric tune learns ({metric}); "
            f"warm-up {base.adaptation_warmup}"
        ],
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sets = {}
        for name in {n for d in args.directions.split(",") for n in d.split(":")}:
            cameras = _camera_folders(name, work / name)
            sets[name] = (cameras, _labels(name, cameras, work / name))
        tuned_sets: dict[str, Tuned] = {}
        for direction in args.directions.split(","):
            source, target = direction.split(":")
            if source not in tuned_sets:
                start = time.perf_counter()
                tuned_sets[source] = tune(
                    sets[source][0], sets[source][1], config=base, out=work / f"tuned_{source}", seed=args.seed
                )
                notes.append(_tune_note(source, tuned_sets[source], time.perf_counter() - start))
            tuned = tuned_sets[source]
            for variant, update in VARIANTS.items():
                config = base.model_copy(update=update)
                store = work / f"{source}_{target}_{len(rows)}.db"
                start = time.perf_counter()
                report = ingest(
                    sets[target][0],
                    site="bench",
                    config=config,
                    gallery_config=GalleryConfig(store=str(store)),
                    tuned=tuned,
                )
                wall = time.perf_counter() - start
                scored = score(store, sets[target][1])
                rows += _rows(f"{source} → {target}", variant, scored, tuned.target_false_positive_rate)
                notes.append(_drift_note(f"{source} → {target}, {variant}", report.cameras, report.photos_found, wall))
        for name, tuned in tuned_sets.items():
            folders = _held_out(sets[name], tuned, work / f"held_{name}")
            report = ingest(
                folders,
                site="bench",
                config=base,
                gallery_config=GalleryConfig(store=str(work / f"held_{name}.db")),
                tuned=tuned,
            )
            scored = score(work / f"held_{name}.db", sets[name][1])
            rows += _rows(
                f"{name} held-out (tuned cameras)", "adapted, drift warn", scored, tuned.target_false_positive_rate
            )
            notes.append(
                _drift_note(f"in-distribution: {name} held-out individuals", report.cameras, report.photos_found, 0)
            )
    table = (
        "| tune → ingest | rules | phase | decisions | false-match rate % (target %) | ≤ 2x target | "
        "recognised % of known | matched % |\n|---|---|---|---:|---:|:---:|---:|---:|\n" + "\n".join(rows) + "\n"
    )
    print(table)
    for note in notes:
        print("-", note)
    if not args.no_append:
        append_section("adaptation.py", notes, table)


def score(store_path: Path, labels: Labels) -> dict[str, dict[str, float]]:
    """Outcomes per phase, by `evaluate_assignments`' definitions (an identity belongs to the individual most of
    its sightings show); the totals are checked against `evaluate_assignments` itself."""
    with make_store(store_path, create=False) as store:
        sightings = store.sightings()
        decisions = {r.query: (r.decision, r.similarity) for r in store.similarity_log() if r.query is not None}
    labelled = []
    for s in sightings:
        who = labels(Path(str((s.source or {}).get("image", "")))).get("individual")
        if who:
            labelled.append((s, str(who)))
    total = evaluate_assignments([Assignment(s.id, s.identity_id, w) for s, w in labelled], decisions)
    by_identity: dict[int, Counter[str]] = defaultdict(Counter)
    for s, who in labelled:
        if s.identity_id is not None:
            by_identity[s.identity_id][who] += 1
    owner = {i: c.most_common(1)[0][0] for i, c in by_identity.items()}
    phases: dict[str, Counter[str]] = defaultdict(Counter)
    seen: set[str] = set()
    for s, who in sorted(labelled, key=lambda x: x[0].id):
        rule = (s.source or {}).get("camera_rule") or {}
        phase = _phase(rule)
        kind = decisions.get(s.id, ("unlogged", 0.0))[0]
        counts = phases[phase]
        counts["decisions"] += 1
        counts["known"] += who in seen
        if kind == "match":
            counts["matched"] += 1
            counts["wrong" if owner.get(s.identity_id or -1) != who else "right"] += 1
        seen.add(who)
    phases["all"] = sum(phases.values(), Counter())
    assert phases["all"]["wrong"] == total.outcomes.get("match_wrong", 0), "phase split disagrees with the evaluator"
    return {
        phase: {
            "decisions": c["decisions"],
            "false_match_rate": c["wrong"] / c["decisions"],
            "recognised": c["right"] / c["known"] if c["known"] else float("nan"),
            "matched": c["matched"] / c["decisions"],
        }
        for phase, c in phases.items()
    }


def _phase(rule: dict[str, Any]) -> str:
    matching = str(rule.get("matching", "auto"))
    if matching.startswith("new: drift"):
        return "stopped"
    if matching.startswith("new: awaiting"):
        return "awaiting"
    return "warm-up" if rule.get("held") else "after"


def _rows(direction: str, variant: str, scored: dict[str, dict[str, float]], target: float) -> list[str]:
    order = ["warm-up", "after", "stopped", "awaiting", "all"]
    rows = []
    for phase in [p for p in order if p in scored]:
        s = scored[phase]
        ok = "yes" if s["false_match_rate"] <= 2 * target else "**no**"
        rows.append(
            f"| {direction} | {variant} | {phase} | {s['decisions']:.0f} | {100 * s['false_match_rate']:.1f} "
            f"({100 * target:g}) | {ok} | {100 * s['recognised']:.1f} | {100 * s['matched']:.1f} |"
        )
    return rows


def _tune_note(name: str, tuned: Tuned, seconds: float) -> str:
    check = tuned.evidence["held_out"]["drift_check"]
    return (
        f"tuned on {name} ({tuned.evidence['photos']} photos, {seconds:.0f} s): threshold p >= {tuned.threshold:.4f} "
        f"for a target false-match rate of {tuned.target_false_positive_rate}; drift reference "
        f"{check['reference_scores']} best-match similarities; the held-out half watched the same way: "
        f"{check['checks']} checks, drifted: {check['drifted']}, largest KS statistic {check['max_statistic']}"
    )


def _drift_note(what: str, cameras: dict[str, Any], photos: int, wall: float) -> str:
    flagged = {
        c: f"{v['scores_seen']} scores (KS {v['statistic']:.2f}, median {v['live_median']:.3f} vs "
        f"{v['reference_median']:.3f}, at {v['warmup_count']} warm-up crops)"
        for c, v in cameras.get("flagged_before_adaptation", {}).items()
    }
    drifted = {
        c: f"after {v['scores_seen']} scores (KS {v['statistic']:.2f}, median {v['live_median']:.3f} vs "
        f"{v['reference_median']:.3f})"
        for c, v in cameras.get("drift", {}).items()
    }
    speed = f"; {photos / wall:.1f} photos/s" if wall else ""
    return (
        f"{what}: adapted {cameras.get('adapted')}, unadapted {cameras.get('unadapted')}; flagged before "
        f"adaptation: {flagged or 'none'}; drifted: {drifted or 'none'}; stopped sightings "
        f"{cameras.get('stopped_sightings') or 0}{speed}"
    )


def _held_out(data: tuple[list[Path], Labels], tuned: Tuned, folder: Path) -> list[Path]:
    cameras, labels = data
    keep = set(tuned.evidence["held_out"]["individual_labels"])
    out = []
    for camera in cameras:
        target = folder / camera.name
        target.mkdir(parents=True)
        for photo in sorted(camera.iterdir()):
            if labels(photo).get("individual") in keep:
                (target / photo.name).symlink_to(photo.resolve())
        out.append(target)
    return out


if __name__ == "__main__":
    main()
