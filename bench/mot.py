"""trackid against its peers on the same MOTChallenge detections, scored by the same TrackEval call.

    make bench                                  # builds .venv-bench with the peers, then runs this
    .venv-bench/bin/python bench/mot.py --datasets mot15 mot17 --repeat 3

Only the trackers' update calls are timed (detections are parsed and converted to each tracker's input type
beforehand); frames/s is the best of `--repeat` passes, so a busy machine slows every tracker alike rather than the
one that happened to run during a spike. Results are printed as one table per dataset and appended to
BENCHMARKS.md with the command, machine and date. An ablation table follows for trackid's own components.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from peers import PEERS  # bench/ is on sys.path when this file runs as a script
from report import REPO, append_section
from trackid.eval import evaluate_mot
from trackid.sources import detections_by_frame, read_mot_file, read_seqinfo, write_mot_results
from trackid.track import make_tracker
from trackid.types import Detections

sys.path.insert(0, str(Path(__file__).parent))

DATA = REPO.parent / "shared" / "data"
RAW_SCORES: dict[str, object] = {"score_scale": "raw", "high_score": 0.7, "low_score": 0.1, "new_track_score": 0.97}
"""Score handling before issue #12: the detector's own scores against thresholds tuned on FRCNN's."""
COLUMNS = ("HOTA", "AssA", "DetA", "MOTA", "IDF1", "IDSW", "FP", "FN")
ABLATIONS: dict[str, dict[str, object]] = {
    "trackid (default)": {},
    "no camera motion read off the tracks": {"scene_motion_z": 0.0},
    "no reporting through occlusions": {"coast_s": 0.0},
    "fixed process noise (no adaptation)": {"adaptive_noise": 0.0},
    "raw scores with issue #6's FRCNN thresholds (before issue #12)": RAW_SCORES,
    "scores self-calibrated (isotonic on the tracker's outcomes) instead of ranked": {"score_scale": "calibrated"},
    "tracks reported from their second detection (min_hits 2, before issue #12)": {"min_hits": 2},
    "none of the three, issue #2's parameters (before issue #6)": {
        **RAW_SCORES,
        "min_hits": 2,
        "low_score_iou_gate": 0.6,
        "scene_motion_z": 0.0,
        "coast_s": 0.0,
        "adaptive_noise": 0.0,
        "new_track_score": 0.95,
        "iou_gate": 0.25,
        "direction_weight": 0.3,
        "max_lost_s": 2.0,
        "motion_noise": (0.06, 0.003, 0.06),
    },
    "greedy matching instead of optimal": {"assignment": "greedy"},
    "heading penalty on (OC-SORT momentum, 0.16; before this issue's last search)": {"direction_weight": 0.16},
    "no low-score stage": {"low_score": 1.0},
    "no recovery by last box": {"recover_by_last_box": False},
    "no re-update after gaps": {"reupdate": False},
    "tentative tracks compete with confirmed": {"confirmed_first": False},
    "plain IoU (no height modulation)": {"height_iou": False},
    "no score weighting": {"score_weighted_iou": False},
    "raw detection boxes reported": {"report_filtered_box": False},
    "IMM (cruise / manoeuvre / stop) instead of the CV Kalman": {"motion_model": "imm"},
    "Mahalanobis gate on (chi-square 95 %, 9.49)": {"mahalanobis_gate": 9.49},
    "Mahalanobis gate on (40)": {"mahalanobis_gate": 40.0},
}


@dataclass(frozen=True)
class SequenceData:
    name: str
    frame_rate: float
    size: tuple[int, int]
    frames: list[Detections]


@dataclass(frozen=True)
class Row:
    tracker: str
    scores: dict[str, float]
    fps: float
    dropped: int = 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["mot15", "mot17"], choices=["mot15", "mot17"])
    parser.add_argument("--trackers", nargs="+", default=None, help="subset of: trackid " + " ".join(PEERS))
    parser.add_argument("--repeat", type=int, default=2, help="timed passes per tracker; frames/s is the best")
    parser.add_argument("--no-ablation", action="store_true")
    parser.add_argument("--no-append", action="store_true", help="print only; do not append to BENCHMARKS.md")
    args = parser.parse_args(argv)

    names = args.trackers or ["trackid", *PEERS]
    sections = []
    for dataset in args.datasets:
        sequences = load_dataset(dataset)
        frames = sum(len(s.frames) for s in sequences)
        gt = DATA / dataset / "gt"
        rows = [run_tracker(name, sequences, gt, args.repeat) for name in names]
        title = f"{dataset.upper()} train, {len(sequences)} sequences, {frames} frames, FRCNN detections"
        sections.append(format_table(title, rows, speed_ratio=True))
        print(sections[-1], flush=True)
        if not args.no_ablation:
            ablation = [
                run_tracker("trackid", sequences, gt, args.repeat, params=params, label=label)
                for label, params in ABLATIONS.items()
            ]
            sections.append(format_table(f"{dataset.upper()} ablation (trackid components)", ablation))
            print(sections[-1], flush=True)
    if not args.no_append:
        append_report(sections)
    return 0


def load_dataset(dataset: str) -> list[SequenceData]:
    gt_split = next((DATA / dataset / "gt").glob("*-train"))
    sequences = []
    for seq_dir in sorted(p for p in gt_split.iterdir() if p.is_dir()):
        info = read_seqinfo(seq_dir / "seqinfo.ini")
        rows = read_mot_file(DATA / dataset / "det_frcnn" / seq_dir.name / "det" / "det.txt")
        frames = detections_by_frame(rows, info.length)
        sequences.append(SequenceData(seq_dir.name, info.frame_rate, (info.width, info.height), frames))
    return sequences


def jitter_boxes(detections: Detections, rng: np.random.Generator, fraction: float) -> Detections:
    """`detections` with every box corner moved by Gaussian noise of `fraction` of the box size: the copies on
    which `bench/tune.py` and `bench/appearance.py` check that a result is not one run's luck."""
    if len(detections) == 0:
        return detections
    size = np.tile(detections.xyxy[:, 2:] - detections.xyxy[:, :2], 2)
    return replace(detections, xyxy=detections.xyxy + rng.normal(0, fraction, size.shape) * size)


def run_tracker(
    name: str,
    sequences: list[SequenceData],
    gt: Path,
    repeat: int,
    params: dict[str, object] | None = None,
    label: str | None = None,
) -> Row:
    """Run one tracker over every sequence `repeat` times; score the first pass against `gt` (TrackEval's layout),
    time the best."""
    best = np.inf
    dropped = 0
    with tempfile.TemporaryDirectory(prefix="trackid-bench-") as tmp:
        for attempt in range(repeat):
            elapsed = 0.0
            for seq in sequences:
                step, inputs = _stepper(name, seq, params or {})
                outputs = []
                for frame_input in inputs:
                    t0 = time.perf_counter()
                    outputs.append(step(frame_input))
                    elapsed += time.perf_counter() - t0
                if attempt == 0:
                    dropped += _write(Path(tmp) / "res" / f"{seq.name}.txt", outputs)
            best = min(best, elapsed)
        scores = evaluate_mot(gt, Path(tmp) / "res", sequences=[s.name for s in sequences]).combined
    frames = sum(len(s.frames) for s in sequences)
    return Row(label or name, scores, frames / best, dropped)


def _stepper(
    name: str, seq: SequenceData, params: dict[str, object]
) -> tuple[Callable[[object], tuple[np.ndarray, np.ndarray]], list[object]]:
    """A tracker's per-frame call and its inputs, converted before timing starts."""
    if name == "trackid":
        tracker = make_tracker("trackid", frame_rate=seq.frame_rate, **params)

        def step(det: object) -> tuple[np.ndarray, np.ndarray]:
            out = tracker.update(det)  # type: ignore[arg-type]
            return out.xyxy, out.track_id

        return step, list(seq.frames)
    peer = PEERS[name](seq.frame_rate, seq.size)
    return peer.step, [peer.prepare(d.xyxy, d.score) for d in seq.frames]


def _write(path: Path, outputs: list[tuple[np.ndarray, np.ndarray]]) -> int:
    """Write one sequence's results; returns how many boxes were dropped for a non-positive or non-finite size.

    Some peers report raw filter states whose height has gone negative. Such a box cannot match any ground truth
    (it would only count as a false positive), and our MOT reader rightly rejects it, so it is dropped and counted.
    """
    frame = np.concatenate([np.full(len(ids), k + 1) for k, (_, ids) in enumerate(outputs)])
    ids = np.concatenate([np.asarray(ids, np.int64) for _, ids in outputs])
    boxes = np.concatenate([np.asarray(b, np.float64).reshape(-1, 4) for b, _ in outputs])
    valid = np.isfinite(boxes).all(axis=1) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    write_mot_results(path, frame[valid], ids[valid], boxes[valid])
    return int((~valid).sum())


def format_table(title: str, rows: list[Row], speed_ratio: bool = False) -> str:
    """A markdown table. With `speed_ratio` (trackid beside its peers): frames/s also as a multiple of the fastest
    pure-Python peer, and the margins issue #6 asks for under the table. Otherwise (an ablation): each row's HOTA and
    ID switches as differences from the first row, the defaults."""
    header = ["tracker", *COLUMNS, "frames/s"]
    fastest_peer = max((r.fps for r in rows if not _ours(r)), default=np.nan)
    header += ["x fastest peer"] if speed_ratio else ["ΔHOTA", "ΔIDSW"]
    lines = [f"**{title}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [r.tracker] + [
            f"{r.scores[c]:.2f}" if c not in ("IDSW", "FP", "FN") else f"{r.scores[c]:.0f}" for c in COLUMNS
        ]
        cells.append(f"{r.fps:,.0f}")
        if speed_ratio:
            cells.append(f"{r.fps / fastest_peer:.2f}")
        else:
            base = rows[0].scores
            cells += [f"{r.scores['HOTA'] - base['HOTA']:+.2f}", f"{r.scores['IDSW'] - base['IDSW']:+.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [f"{r.tracker}: {r.dropped} boxes with non-positive size dropped before scoring" for r in rows if r.dropped]
    if speed_ratio:
        notes += _margins(rows)
    if notes:
        lines += ["", *(f"- {n}" for n in notes)]
    return "\n".join(lines) + "\n"


def _margins(rows: list[Row]) -> list[str]:
    """trackid against the best peer by HOTA, the peer with the fewest ID switches and the fastest peer."""
    ours = next((r for r in rows if r.tracker == "trackid"), None)
    peers = [r for r in rows if not _ours(r)]
    if ours is None or not peers:
        return []
    best = max(peers, key=lambda r: r.scores["HOTA"])
    fewest = min(peers, key=lambda r: r.scores["IDSW"])
    fastest = max(peers, key=lambda r: r.fps)
    return [
        f"trackid HOTA {ours.scores['HOTA']:.2f} vs the best peer {best.tracker} {best.scores['HOTA']:.2f}: "
        f"{ours.scores['HOTA'] - best.scores['HOTA']:+.2f}",
        f"trackid ID switches {ours.scores['IDSW']:.0f}: {_ratio(ours.scores['IDSW'], best.scores['IDSW'])} "
        f"{best.tracker}'s {best.scores['IDSW']:.0f}, {_ratio(ours.scores['IDSW'], fewest.scores['IDSW'])} the fewest "
        f"of any peer ({fewest.tracker}, {fewest.scores['IDSW']:.0f})",
        f"trackid frames/s {ours.fps:,.0f}: {ours.fps / fastest.fps:.2f}x the fastest peer ({fastest.tracker})",
    ]


def _ours(row: Row) -> bool:
    """trackid's rows (the defaults and its variants), which are no peer's."""
    return row.tracker.startswith("trackid")


def _ratio(ours: float, theirs: float) -> str:
    """`ours / theirs` as "1.23x"; a peer with none (a tracker that kept no track) has no ratio."""
    return f"{ours / theirs:.2f}x" if theirs else "n/a (0)"


def append_report(sections: list[str]) -> None:
    notes = [f"peers: {', '.join(PEERS)} (versions in bench/requirements-peers.txt)"]
    append_section("mot.py", notes, "\n".join(sections))


if __name__ == "__main__":
    raise SystemExit(main())
