"""Person detectors on the full PETS09-S2L1 video against the MOT15 ground truth: recall (overall, far, and by box
height), precision, speed; and recall on MOT17's first frames (crowds, 1080p), per detector and profile.

Run: `.venv/bin/python bench/detect.py` (about 15 minutes on 2 cores). Prints markdown tables and appends them, with
the command, machine and date, to BENCHMARKS.md (`--no-write` only prints; `--frames N` scores the first N frames).

"Far" people are the ground-truth boxes in the lowest third of all box heights (the threshold in pixels is printed):
in this fixed camera, box height falls with distance, so these are the people farthest from the camera.
A detection matches one ground-truth box one-to-one (Hungarian) at IoU >= 0.5. ms/frame times only `detect` calls.
MOT17's ground truth counts the boxes marked to consider, class pedestrian. CenterNet rows appear only where it has
been fetched (`trackid models fetch`).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

from report import REPO, append_section  # bench/ is on sys.path when a script here runs
from trackid.config import PROFILES
from trackid.detect import (
    CenterNetDetector,
    Detector,
    HogPeopleDetector,
    NanoDetDetector,
    SsdLiteDetector,
    TiledDetector,
)
from trackid.geometry import iou_matrix
from trackid.sources.motchallenge import detections_by_frame, read_mot_file

DATA = REPO.parent / "shared" / "data"
VIDEO = DATA / "pets09_s2l1" / "vtest.avi"
GT = DATA / "mot15" / "gt" / "MOT15-train" / "PETS09-S2L1" / "gt" / "gt.txt"
NUM_FRAMES = 795
IOU = 0.5

VARIANTS: list[tuple[str, Callable[[], Detector]]] = [
    ("ssdlite 300x300", lambda: SsdLiteDetector()),
    ("ssdlite 400x300 (frame aspect)", lambda: SsdLiteDetector(input_size=(400, 300))),
    ("ssdlite 800x600 (upscaled input)", lambda: SsdLiteDetector(input_size=(800, 600))),
    ("ssdlite 300x300, tiles 2x2 + full frame", lambda: TiledDetector(SsdLiteDetector(), tiles=(2, 2))),
    ("ssdlite 300x300, tiles 3x3 + full frame", lambda: TiledDetector(SsdLiteDetector(), tiles=(3, 3))),
    ("hog", lambda: HogPeopleDetector()),
    ("hog, frame upscaled 2x", lambda: TiledDetector(HogPeopleDetector(), tiles=(1, 1), upscale=2.0)),
    ("nanodet (fast_cpu, balanced)", lambda: NanoDetDetector(score_threshold=0.35)),
    ("nanodet, score >= 0.25", lambda: NanoDetDetector(score_threshold=0.25)),
    (
        "nanodet, tiles 2x2 + full frame (high_accuracy)",
        lambda: TiledDetector(NanoDetDetector(score_threshold=0.35), tiles=(2, 2)),
    ),
    ("centernet", lambda: CenterNetDetector()),
    ("centernet, tiles 2x2 + full frame", lambda: TiledDetector(CenterNetDetector(), tiles=(2, 2))),
]
BASELINE = "ssdlite 300x300"
HEIGHT_BINS = (0, 60, 90, 120, 10_000)
MOT17_FRAMES = DATA / "mot17" / "frames"
MOT17_GT = DATA / "mot17" / "gt" / "MOT17-train"


@dataclass(frozen=True)
class Score:
    name: str
    recall: float
    far_recall: float
    precision: float
    ms_per_frame: float
    recall_by_height: tuple[float, ...] = ()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=NUM_FRAMES, help="score only the first N frames")
    parser.add_argument("--no-write", action="store_true", help="print the table without appending to BENCHMARKS.md")
    args = parser.parse_args()
    if not VIDEO.is_file() or not GT.is_file():
        sys.exit(f"benchmark data not found under {DATA} (expected ../shared/data next to the repository)")
    gt = [frame.xyxy for frame in detections_by_frame(read_mot_file(GT), args.frames)]
    heights = np.concatenate([boxes[:, 3] - boxes[:, 1] for boxes in gt])
    far_below = float(np.percentile(heights, 100 / 3))
    print(f"{len(heights)} ground-truth boxes in {args.frames} frames; far = height < {far_below:.0f} px", flush=True)
    scores, mot17 = [], []
    for name, build in VARIANTS:
        try:
            detector = build()
        except FileNotFoundError as exc:  # a fetched model that is not installed
            print(f"  {name}: skipped ({exc})", flush=True)
            continue
        scores.append(evaluate(name, detector, gt, far_below))
        mot17.append((name, mot17_recall(detector)))
        print(f"  {name}: {scores[-1]}, MOT17 first frames {mot17[-1]}", flush=True)
    notes, table = report(scores, args.frames, len(heights), far_below, heights)
    table += "\n" + mot17_table(mot17)
    print("\n".join(notes) + "\n\n" + table)
    if not args.no_write:
        append_section("detect.py", notes, table)


def evaluate(name: str, detector: Detector, gt: list[NDArray[np.float64]], far_below: float) -> Score:
    capture = cv2.VideoCapture(str(VIDEO))
    matched = found = far_matched = far_total = 0
    by_height = np.zeros((2, len(HEIGHT_BINS) - 1))
    elapsed = 0.0
    for boxes in gt:
        ok, frame = capture.read()
        if not ok:
            raise RuntimeError(f"{VIDEO} ended before frame {len(gt)}")
        start = time.perf_counter()
        detections = detector.detect(frame)
        elapsed += time.perf_counter() - start
        hit = _matched_gt(boxes, detections.xyxy)
        far = (boxes[:, 3] - boxes[:, 1]) < far_below
        matched += int(hit.sum())
        far_matched += int((hit & far).sum())
        far_total += int(far.sum())
        found += len(detections)
        bins = np.digitize(boxes[:, 3] - boxes[:, 1], HEIGHT_BINS) - 1
        np.add.at(by_height[0], bins[hit], 1)
        np.add.at(by_height[1], bins, 1)
    capture.release()
    total = sum(len(boxes) for boxes in gt)
    by_bin = tuple(np.where(by_height[1] > 0, by_height[0] / np.maximum(by_height[1], 1), np.nan).tolist())
    ms = 1000 * elapsed / len(gt)
    return Score(name, matched / total, far_matched / far_total, matched / max(found, 1), ms, by_bin)


def mot17_recall(detector: Detector) -> dict[str, float]:
    """Recall at IoU 0.5 on the first frames of each MOT17 train sequence, per sequence and over all boxes."""
    hits = totals = 0
    out = {}
    for folder in sorted(MOT17_FRAMES.iterdir()):
        rows = np.loadtxt(MOT17_GT / folder.name / "gt" / "gt.txt", delimiter=",")
        seq_hits = seq_total = 0
        for image_path in sorted((folder / "img1").glob("*.jpg")):
            frame = int(image_path.stem)
            keep = (rows[:, 0] == frame) & (rows[:, 6] == 1) & (rows[:, 7] == 1)
            boxes = rows[keep, 2:6].copy()
            boxes[:, 2:] += boxes[:, :2]
            hit = _matched_gt(boxes, detector.detect(cv2.imread(str(image_path))).xyxy)
            seq_hits, seq_total = seq_hits + int(hit.sum()), seq_total + len(boxes)
        out[folder.name.removesuffix("-FRCNN")] = seq_hits / max(seq_total, 1)
        hits, totals = hits + seq_hits, totals + seq_total
    out["all"] = hits / max(totals, 1)
    return out


def mot17_table(rows: list[tuple[str, dict[str, float]]]) -> str:
    """Recall % per MOT17 sequence (first frames) and over all of them."""
    names = list(rows[0][1]) if rows else []
    header = "| detector (MOT17 first frames, recall % at IoU 0.5) | " + " | ".join(names) + " |"
    lines = [header, "|---|" + "---|" * len(names)]
    lines += [f"| {n} | " + " | ".join(f"{100 * r[k]:.1f}" for k in names) + " |" for n, r in rows]
    return "\n".join(lines) + "\n"


def _matched_gt(gt: NDArray[np.float64], det: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Which ground-truth boxes a one-to-one assignment pairs with a detection at IoU >= 0.5."""
    hit = np.zeros(len(gt), bool)
    if len(gt) and len(det):
        iou = iou_matrix(gt, det)
        rows, cols = linear_sum_assignment(-iou)
        hit[rows[iou[rows, cols] >= IOU]] = True
    return hit


def report(
    scores: list[Score], frames: int, boxes: int, far_below: float, heights: NDArray[np.float64]
) -> tuple[list[str], str]:
    """The section's notes (what was measured, how) and its table."""
    base = next(s for s in scores if s.name == BASELINE)
    rows = [
        f"| {s.name} | {100 * s.recall:.1f} | {100 * s.far_recall:.1f} | {100 * (s.far_recall - base.far_recall):+.1f} "
        f"| {' / '.join('-' if np.isnan(r) else f'{100 * r:.0f}' for r in s.recall_by_height)} "
        f"| {100 * s.precision:.1f} | {s.ms_per_frame:.1f} | {s.ms_per_frame / base.ms_per_frame:.1f} |"
        for s in scores
    ]
    notes = [
        f"OpenCV {cv2.__version__}",
        f"data: PETS09-S2L1 view 1 (`vtest.avi`, {frames} frames, 768x576) against MOT15 ground truth "
        f"({boxes} boxes, heights {heights.min():.0f}-{heights.max():.0f} px, median {np.median(heights):.0f})",
        f"far = ground-truth boxes shorter than {far_below:.0f} px (lowest third of heights: the people farthest "
        "from the camera); a detection matches one box one-to-one at IoU >= 0.5; detectors at their default "
        "thresholds (SSDLite score >= 0.5, HOG margin >= 0, NanoDet as its profiles use it, CenterNet 0.2)",
        "recall by height: ground-truth boxes "
        + ", ".join(f"{a}-{b}" for a, b in itertools.pairwise(HEIGHT_BINS[:-1]))
        + f", >= {HEIGHT_BINS[-2]} px (- where the bin is empty)",
        "profiles: "
        + "; ".join(f"{k}: {v['detector']['name']}, tiles {v['detector']['tiles']}" for k, v in PROFILES.items()),
        "ms/frame: `detect` calls only, single process; x cost divides by plain SSDLite 300x300 in this run",
    ]
    header = (
        "| detector | recall % | far recall % | far recall vs plain | recall % by height | precision % | ms/frame "
        "| x cost |"
    )
    return notes, "\n".join([header, "|---|---|---|---|---|---|---|---|", *rows]) + "\n"


if __name__ == "__main__":
    main()
