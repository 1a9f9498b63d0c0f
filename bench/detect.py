"""Person detectors on the full PETS09-S2L1 video against the MOT15 ground truth: recall, far recall, precision, speed.

Run: `.venv/bin/python bench/detect.py` (about 10 minutes on 2 cores). Prints a markdown table and appends it, with
the command, machine and date, to BENCHMARKS.md (`--no-write` only prints; `--frames N` scores the first N frames).

"Far" people are the ground-truth boxes in the lowest third of all box heights (the threshold in pixels is printed):
in this fixed camera, box height falls with distance, so these are the people farthest from the camera.
A detection matches one ground-truth box one-to-one (Hungarian) at IoU >= 0.5. ms/frame times only `detect` calls.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

from report import REPO, append_section  # bench/ is on sys.path when a script here runs
from trackid.detect import Detector, HogPeopleDetector, SsdLiteDetector, TiledDetector
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
]
BASELINE = "ssdlite 300x300"


@dataclass(frozen=True)
class Score:
    name: str
    recall: float
    far_recall: float
    precision: float
    ms_per_frame: float


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
    scores = []
    for name, build in VARIANTS:
        scores.append(evaluate(name, build(), gt, far_below))
        print(f"  {name}: {scores[-1]}", flush=True)
    notes, table = report(scores, args.frames, len(heights), far_below, heights)
    print("\n".join(notes) + "\n\n" + table)
    if not args.no_write:
        append_section("detect.py", notes, table)


def evaluate(name: str, detector: Detector, gt: list[NDArray[np.float64]], far_below: float) -> Score:
    capture = cv2.VideoCapture(str(VIDEO))
    matched = found = far_matched = far_total = 0
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
    capture.release()
    total = sum(len(boxes) for boxes in gt)
    return Score(name, matched / total, far_matched / far_total, matched / max(found, 1), 1000 * elapsed / len(gt))


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
        f"| {100 * s.precision:.1f} | {s.ms_per_frame:.1f} | {s.ms_per_frame / base.ms_per_frame:.1f} |"
        for s in scores
    ]
    notes = [
        f"OpenCV {cv2.__version__}",
        f"data: PETS09-S2L1 view 1 (`vtest.avi`, {frames} frames, 768x576) against MOT15 ground truth "
        f"({boxes} boxes, heights {heights.min():.0f}-{heights.max():.0f} px, median {np.median(heights):.0f})",
        f"far = ground-truth boxes shorter than {far_below:.0f} px (lowest third of heights: the people farthest "
        "from the camera); a detection matches one box one-to-one at IoU >= 0.5; detectors at their default "
        "thresholds (SSDLite score >= 0.5, HOG margin >= 0)",
        "ms/frame: `detect` calls only, single process; x cost divides by plain SSDLite 300x300 in this run",
    ]
    header = "| detector | recall % | far recall % | far recall vs plain | precision % | ms/frame | x cost |"
    return notes, "\n".join([header, "|---|---|---|---|---|---|---|", *rows]) + "\n"


if __name__ == "__main__":
    main()
