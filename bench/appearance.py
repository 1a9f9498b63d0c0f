"""How much the tracker should trust appearance: `appearance_weight` on two sequences with real embeddings.

    .venv/bin/python bench/appearance.py

- MOT17-05 and MOT17-09 (FRCNN detections) with the DeepSORT re-ID embeddings shipped in `../shared/data/mot17/
  deepsort_features` (a model trained for re-identification);
- PETS09-S2L1, the FRCNN detections replayed with the video's frames and the `balanced` profile's MobileNetV2
  (ImageNet features, not trained for re-identification), as in `bench/video.py`.

Weight 0 is motion only. Each setting runs on the detections as given and `--jitter-runs` times with boxes moved by
0.3 % of their size (as in `bench/tune.py`): on one short sequence a single identity swap moves HOTA by a point or
two, so one run says little. Scored by TrackEval. Appends the table to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from mot import jitter_boxes
from report import append_section  # bench/ is on sys.path when a script here runs
from trackid.eval import evaluate_mot
from trackid.sources import read_deepsort_detections, read_seqinfo, write_mot_results
from trackid.track import TrackerConfig, make_tracker, track_sequence
from trackid.types import Detections
from video import DATA, FRCNN, VIDEO, replay_config, score_run

MOT17 = DATA / "mot17"
DEEPSORT_SEQS = ("MOT17-05-FRCNN", "MOT17-09-FRCNN")
JITTER = 0.003


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.3, 0.5, 0.9])
    parser.add_argument("--jitter-runs", type=int, default=2)
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args(argv)

    seeds = range(args.jitter_runs + 1)  # seed 0: as given
    sequences = {seq: _deepsort_sequence(seq) for seq in DEEPSORT_SEQS}
    lines = [
        "| appearance_weight | MOT17-05 + 09, DeepSORT: HOTA | IDSW | PETS09-S2L1, MobileNetV2: HOTA | IDSW |",
        "|---|---|---|---|---|",
    ]
    for weight in args.weights:
        deepsort = [_run_deepsort(sequences, weight, seed) for seed in seeds]
        pets = [_run_pets(weight, seed) for seed in seeds]
        cells = [f"{weight:g}"]
        for runs in (deepsort, pets):
            hota, idsw = np.array(runs).T
            cells += [f"{hota.mean():.2f} (sd {hota.std():.2f})", f"{idsw.mean():.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    table = "\n".join(lines) + "\n"
    print(table)
    if not args.no_append:
        notes = [
            f"runs per cell: the detections as given and {args.jitter_runs} copies jittered by {JITTER:.1%} of the "
            "box size; mean (standard deviation) of HOTA, mean ID switches; every other tracker parameter at its "
            "default"
        ]
        append_section("appearance.py", notes, table)
    return 0


def _deepsort_sequence(seq: str) -> tuple[float, list[Detections]]:
    """(frame rate, frames with their DeepSORT embeddings)."""
    info = read_seqinfo(next((MOT17 / "gt").glob("*-train")) / seq / "seqinfo.ini")
    frames = read_deepsort_detections(MOT17 / "deepsort_features" / f"{seq}.npy", info.length)
    return info.frame_rate, frames


def _run_deepsort(sequences: dict[str, tuple[float, list[Detections]]], weight: float, seed: int) -> tuple[float, int]:
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory(prefix="trackid-appearance-") as tmp:
        for seq, (rate, frames) in sequences.items():
            tracker = make_tracker("trackid", frame_rate=rate, appearance_weight=weight)
            given = [jitter_boxes(d, rng, JITTER) for d in frames] if seed else frames
            write_mot_results(Path(tmp) / f"{seq}.txt", *track_sequence(tracker, given))
        scores = evaluate_mot(MOT17 / "gt", tmp, sequences=list(sequences)).combined
    return scores["HOTA"], int(scores["IDSW"])


def _run_pets(weight: float, seed: int) -> tuple[float, int]:
    """The video pipeline end to end on PETS09-S2L1, the FRCNN detections (jittered for seed > 0) in place of a
    detector, MobileNetV2 embeddings from the frames."""
    from trackid.detect.precomputed import PrecomputedDetector

    config = replay_config("balanced", TrackerConfig(appearance_weight=weight))
    detector = PrecomputedDetector.from_mot_file(FRCNN, 795)
    if seed:
        rng = np.random.default_rng(seed)
        detector = PrecomputedDetector([jitter_boxes(d, rng, JITTER) for d in detector.frames_])
    scores, _ = score_run(config, VIDEO, detector)
    return scores["HOTA"], int(scores["IDSW"])


if __name__ == "__main__":
    raise SystemExit(main())
