"""Photo re-identification on VIPeR and PRID 2011 treated as photo sets from two cameras (issue #5's acceptance).

Per data set: `photos tune` on half the individuals (seed 0) picks the ensemble weights and the threshold for the
target false-positive rate; on the other half it reports rank-1 / rank-5 / mAP of each member and of the ensemble,
and the false-match rate of the threshold on held-out pairs. Then the held-out individuals' photos of both cameras
are ingested into a fresh store with those settings (`trackid photos ingest`, a separate process, so its peak
memory is its own) and scored with `photos validate`: assignment accuracy, assignment rate, false-match rate of the
decisions. Last, throughput: every photo of the data set ingested, photos/s, per-photo latency p50/p99, peak RSS.

    .venv/bin/python bench/photos.py [--datasets viper,prid] [--no-append]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from datasets import DATA
from report import append_section
from trackid.config import PhotosConfig
from trackid.identity.stores import make_store
from trackid.pipelines.photos import Labels, tune, validate

TRACKID = str(Path(sys.executable).parent / "trackid")
DATASETS = {"viper": "reid/viper", "prid": "reid/prid2011"}
PRID_SHARED = 200
"""PRID 2011 single-shot: only persons 1-200 appear in both cameras; cam_a's 201-385 and cam_b's 201-749 are other
people who merely share the file numbers, so they are labelled per camera."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="viper,prid")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    accuracy, speed, notes = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets.split(","):
            cameras = _camera_folders(name, Path(tmp) / name)
            labels = _labels(name, cameras, Path(tmp) / name)
            a, s, n = bench_dataset(name, cameras, labels, Path(tmp) / name, args.seed)
            accuracy += a
            speed.append(s)
            notes += n
        row, note = bench_detection(Path(tmp) / args.datasets.split(",")[0] / "tuned", Path(tmp) / "frames")
        speed.append(row)
        notes.append(note)
    acc_table = (
        "| data set | embedder (held-out individuals) | rank-1 % | rank-5 % | mAP % |\n|---|---|---:|---:|---:|\n"
        + "\n".join(accuracy)
        + "\n"
    )
    speed_table = (
        "| data set | photos | ingest s | photos/s | s per photo p50 / p99 / max | peak RSS MiB |\n"
        "|---|---:|---:|---:|---:|---:|\n" + "\n".join(speed) + "\n"
    )
    print(acc_table)
    print(speed_table)
    for note in notes:
        print("-", note)
    if not args.no_append:
        append_section("photos.py", notes, acc_table + "\n" + speed_table)


def _labels(name: str, cameras: list[Path], work: Path) -> Labels:
    if name == "viper":
        return Labels(pattern=r"^(?P<individual>\d{4})")
    rows = ["image,individual"]
    for camera in cameras:
        for photo in sorted(camera.glob("person_*.png")):
            number = int(photo.stem.split("_")[1])
            who = str(number) if number <= PRID_SHARED else f"{camera.name}-{number}"
            rows.append(f"{photo},{who}")
    path = work / "labels.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n")
    return Labels(path)


def _camera_folders(name: str, root: Path) -> list[Path]:
    source = DATA / DATASETS[name]
    if name == "prid":
        return [source / "cam_a", source / "cam_b"]
    folders = []
    for cam in ("0001", "0002"):
        folder = root / "cameras" / f"cam{cam[-1]}"
        folder.mkdir(parents=True)
        for photo in sorted(source.glob(f"????{cam}.png")):
            (folder / photo.name).symlink_to(photo)
        folders.append(folder)
    return folders


def bench_dataset(
    name: str, cameras: list[Path], labels: Labels, work: Path, seed: int
) -> tuple[list[str], str, list[str]]:
    config = PhotosConfig()
    start = time.perf_counter()
    tuned = tune(cameras, labels, config=config, out=work / "tuned", seed=seed)
    tune_s = time.perf_counter() - start
    held = tuned.evidence["held_out"]
    rows = [
        f"| {name} | {member} | {s['rank1']:.1f} | {s['rank5']:.1f} | {s['mAP']:.1f} |"
        for member, s in held["members"].items()
    ]
    weights = tuned.embedder.params.get("weights")
    ens = held["ensemble"]
    gain = held["ensemble_gain_over_best_member"]
    rows.append(
        f"| {name} | **ensemble** (weights {weights}) | **{ens['rank1']:.1f}** | {ens['rank5']:.1f} | "
        f"**{ens['mAP']:.1f}** |"
    )
    rows.append(f"| {name} | ensemble - best member | {gain['rank1']:+.1f} | | {gain['mAP']:+.1f} |")

    # assignment on the held-out individuals: both cameras ingested into a fresh store with the tuned settings
    keep = set(held["individual_labels"])
    held_folders = []
    for camera in cameras:
        folder = work / "held_out" / camera.name
        folder.mkdir(parents=True)
        for photo in sorted(camera.iterdir()):
            if labels(photo).get("individual") in keep:
                (folder / photo.name).symlink_to(photo.resolve())
        held_folders.append(folder)
    store = work / "held_out.db"
    _ingest(held_folders, store, work / "tuned", work / "held_out_run")
    with make_store(store) as gallery:
        checked = validate(gallery, labels, config.targets, work / "validate")["metrics"]

    # throughput: every photo of the data set, in a separate process
    everything = work / "all.db"
    wall, rss = _ingest(cameras, everything, work / "tuned", work / "all_run")
    report = json.loads((work / "all_run" / "ingest_report.json").read_text())
    photos = report["photos_found"]
    lat = report["seconds_per_photo"]
    speed = (
        f"| {name} | {photos:,} | {wall:.1f} | {photos / wall:.1f} | "
        f"{lat['p50']:.3f} / {lat['p99']:.3f} / {lat['p100']:.3f} | {rss:,.0f} |"
    )
    notes = [
        f"{name}: tuned on {tuned.evidence['individuals'] - held['individuals']} individuals (seed {seed}, "
        f"{tune_s:.0f} s), tested on {held['individuals']} held-out individuals ({held['photos']} photos); "
        f"threshold p >= {tuned.threshold:.4f} for a target false-match rate of decisions of "
        f"{tuned.target_false_positive_rate}: on the held-out individuals' replayed ingest "
        f"{100 * held['decisions']['false_match_rate']:.2f} % of decisions took someone else's profile (target "
        f"< 5 %), {100 * held['decisions']['match_rate']:.1f} % matched, "
        f"{100 * held['decisions']['correct_match_rate_of_known']:.1f} % of already-seen individuals were "
        f"recognised; pairwise at that threshold: false-match rate {100 * held['pairs']['false_match_rate']:.2f} %, "
        f"recall {100 * held['pairs']['recall']:.1f} %",
        f"{name}: the trade-off on held-out individuals (target false-match rate of decisions on the tuning half -> "
        "held-out false-match rate / share of already-seen individuals recognised): "
        + "; ".join(
            f"{t['target']:g} -> {100 * t['false_match_rate']:.1f} % / {100 * t['correct_match_rate_of_known']:.1f} %"
            for t in held["trade_off"]
        ),
        f"{name}: held-out ingest of both cameras ({checked['sightings']} sightings, {checked['individuals']} "
        f"individuals): assignment accuracy {100 * checked['assignment_accuracy']:.1f} %, assignment rate "
        f"{100 * checked['assignment_rate']:.1f} %, false-match rate of decisions "
        f"{100 * checked['false_match_rate']:.1f} % ({100 * checked['wrong_share_of_matches']:.1f} % of the matches); "
        f"outcomes {checked['outcomes']}",
        f"{name}: skipped while ingesting everything: {report['skipped_by_reason'] or 'nothing'}; decisions "
        f"{report['decisions']}",
    ]
    return rows, speed, notes


def bench_detection(tuned: Path, work: Path) -> tuple[str, str]:
    """Full-size photos with the person detector on: MOT17's sample frames (1920x1080 and 640x480 JPEG, crowds),
    one folder per camera; every detection becomes a sighting."""
    folders = sorted((DATA / "mot17" / "frames").glob("MOT17-*"))
    detector = ["--set", "photos.detector.name=ssdlite", "--set", "photos.detector.min_score=0.5"]
    wall, rss = _ingest(folders, work / "frames.db", tuned, work / "run", detector)
    report = json.loads((work / "run" / "ingest_report.json").read_text())
    photos, lat = report["photos_found"], report["seconds_per_photo"]
    row = (
        f"| MOT17 sample frames, SSDLite detector | {photos:,} | {wall:.1f} | {photos / wall:.1f} | "
        f"{lat['p50']:.3f} / {lat['p99']:.3f} / {lat['p100']:.3f} | {rss:,.0f} |"
    )
    note = (
        f"MOT17 sample frames: {photos} JPEGs from 7 cameras (1920x1080, one 640x480), SSDLite person detector "
        f"(detections with score >= 0.5), {report['sightings_written']} sightings "
        f"({report['sightings_written'] / wall:.1f} detections/s embedded and decided); photos/s counts the "
        "whole command, model loading included"
    )
    return row, note


def _ingest(
    folders: list[Path], store: Path, tuned: Path, out: Path, extra: list[str] | None = None
) -> tuple[float, float]:
    """Run `trackid photos ingest` as its own process: (wall seconds, that process's peak RSS in MiB)."""
    start = time.perf_counter()
    options = ["--site", "bench", "--tuned", str(tuned), "--store", str(store), "--out", str(out), *(extra or [])]
    command = [TRACKID, "photos", "ingest", *map(str, folders), *options]
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe: the progress bar must never block the child
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(process.pid, 0)  # this child's own peak memory, not the maximum over children
        wall = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            errors.seek(0)
            raise SystemExit(f"{' '.join(command)} failed: {errors.read().decode(errors='replace')}")
    return wall, usage.ru_maxrss / 1024


if __name__ == "__main__":
    main()
