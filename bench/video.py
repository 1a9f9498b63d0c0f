"""End to end on a real video: PETS09-S2L1 (795 frames, 768x576) scored against MOT15 ground truth.

    .venv/bin/python bench/video.py

1. Each profile (fast_cpu, balanced, high_accuracy) with its own detector (NanoDet since issue #13): HOTA, IDF1,
   ID switches, end-to-end frames/s (decode + detect + embed + track + write) and peak memory; and the profiles as
   they were before issue #13 (SSDLite, with the IoU gate its loose boxes needed), for comparison.
2. The FRCNN detections replayed with the video's frames, appearance off vs on: the ID-switch reduction and the
   HOTA change that the embedder buys.
3. With `--sweep` instead: fast_cpu with NanoDet's score threshold from 0.25 to 0.45 and with SSDLite's old IoU gate
   of 0.1, the evidence behind the profiles' NanoDet settings.

Every configuration runs in a fresh process, so peak memory is that run's own. The sequence is 7 fps (seqinfo.ini;
the AVI header says 10), which the tracker's time-based parameters need. Appends its tables to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import shutil
import tempfile
from pathlib import Path
from typing import Any

from report import REPO, append_section  # bench/ is on sys.path when a script here runs

DATA = REPO.parent / "shared" / "data"
VIDEO = DATA / "pets09_s2l1" / "vtest.avi"
SEQ = "PETS09-S2L1"
GT = DATA / "mot15" / "gt"
FRCNN = DATA / "mot15" / "det_frcnn" / SEQ / "det" / "det.txt"
FRAME_RATE = 7.0
COLUMNS = ("HOTA", "AssA", "DetA", "MOTA", "IDF1", "IDSW", "FP", "FN")
_SSDLITE = ["detector.name=ssdlite", "detector.params={input_size: [400, 300], score_threshold: 0.2}"]
SSDLITE = {
    "fast_cpu": [*_SSDLITE, "tracker.iou_gate=0.1", "tracker.appearance_weight=0.9"],
    "high_accuracy": _SSDLITE,
}
"""The profiles before issue #13, as overrides of today's (SSDLite at 400 x 300; fast_cpu's IoU gate of 0.1)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-append", action="store_true", help="print only; do not append to BENCHMARKS.md")
    parser.add_argument("--max-frames", type=int, default=None, help="limit frames (quick checks only)")
    parser.add_argument("--sweep", action="store_true", help="the NanoDet settings sweep instead (fast_cpu)")
    args = parser.parse_args(argv)
    if args.sweep:
        return _sweep(args)

    runs: list[tuple[str, dict[str, Any]]] = [
        (f"{profile}, NanoDet", {"profile": profile}) for profile in ("fast_cpu", "balanced", "high_accuracy")
    ]
    runs += [
        (f"{profile}, SSDLite (before issue #13)", {"profile": profile, "overrides": SSDLITE[profile]})
        for profile in ("fast_cpu", "high_accuracy")
    ]
    runs += [
        ("FRCNN + frames, appearance off", {"profile": "fast_cpu", "replay": True}),
        ("FRCNN + frames, appearance on (MobileNetV2)", {"profile": "balanced", "replay": True}),
    ]
    rows = _run_all(runs, args.max_frames)
    table = _table(rows)
    off, on = rows[-2][1], rows[-1][1]
    idsw_change = 100 * (on["IDSW"] - off["IDSW"]) / max(off["IDSW"], 1)
    change = (
        f"Appearance on vs off (FRCNN + frames): ID switches {off['IDSW']:.0f} -> {on['IDSW']:.0f} "
        f"({idsw_change:+.0f} %), HOTA {off['HOTA']:.2f} -> {on['HOTA']:.2f}."
    )
    report = f"{table}\n{change}\n"
    print(report)
    if not args.no_append:
        _append(report)
    return 0


def _sweep(args: argparse.Namespace) -> int:
    """fast_cpu (NanoDet, no embedder) at several score thresholds, and with the IoU gate SSDLite needed."""
    runs = [
        (
            f"fast_cpu, NanoDet score >= {t}",
            {"profile": "fast_cpu", "overrides": [f"detector.params.score_threshold={t}"]},
        )
        for t in (0.25, 0.3, 0.35, 0.4, 0.45)
    ]
    runs.append(
        ("fast_cpu, NanoDet, IoU gate 0.1 (SSDLite's)", {"profile": "fast_cpu", "overrides": ["tracker.iou_gate=0.1"]})
    )
    rows = _run_all(runs, args.max_frames)
    report = _table(rows)
    print(report)
    if not args.no_append:
        _append(report)
    return 0


def _run_all(runs: list[tuple[str, dict[str, Any]]], max_frames: int | None) -> list[tuple[str, dict[str, float]]]:
    """Each configuration in a fresh process (so peak memory is its own)."""
    context = mp.get_context("spawn")
    rows = []
    for label, spec in runs:
        with context.Pool(1) as pool:
            rows.append((label, pool.apply(_run_one, (spec, max_frames))))
        print(label, rows[-1], flush=True)
    return rows


def _run_one(spec: dict[str, Any], max_frames: int | None) -> dict[str, float]:
    """One configuration in this (fresh) process: track, score, report speed and peak memory."""
    from trackid.config import load_config

    detector = None
    if spec.get("replay"):
        from trackid.detect.precomputed import PrecomputedDetector
        from trackid.track import TrackerConfig

        # the profiles' tracker thresholds are SSDLite's; FRCNN detections get the defaults tuned on them
        config = replay_config(spec["profile"], TrackerConfig())
        detector = PrecomputedDetector.from_mot_file(FRCNN, 795)
    else:
        overrides = [f"frame_rate={FRAME_RATE}", *spec.get("overrides", [])]
        config, _ = load_config(profile=spec["profile"], overrides=overrides, environ={})
    with tempfile.TemporaryDirectory(prefix="trackid-video-bench-") as tmp:
        video = VIDEO if max_frames is None else _head(VIDEO, max_frames, Path(tmp))
        scores, run = score_run(config, video, detector)
    return {
        **{k: scores[k] for k in COLUMNS},
        "fps": run.frames_per_second,
        "peak_mb": run.peak_memory_mb,
        "frames": run.frames,
    }


def replay_config(profile: str, tracker: Any) -> Any:
    """The profile's run config for replayed detections: every box passed on, `tracker` (a TrackerConfig)."""
    from trackid.config import load_config

    overrides = [f"frame_rate={FRAME_RATE}", "detector.min_score=0.0"]
    config, _ = load_config(profile=profile, overrides=overrides, environ={})
    return config.model_copy(update={"tracker": tracker})


def score_run(config: Any, video: Path, detector: Any | None) -> tuple[dict[str, float], Any]:
    """Run the video pipeline (with `detector` in place of the config's when given) and score its tracks against
    PETS09-S2L1's ground truth: (TrackEval's combined scores, the run)."""
    from trackid.eval import evaluate_mot
    from trackid.pipelines.video import track_video

    with tempfile.TemporaryDirectory(prefix="trackid-video-bench-") as tmp:
        run = track_video(video, config, Path(tmp) / "run", detector=detector)
        results = Path(tmp) / "results"
        results.mkdir()
        shutil.copy(run.run_dir / "tracks.txt", results / f"{SEQ}.txt")
        return evaluate_mot(GT, results, sequences=[SEQ]).combined, run


def _head(video: Path, frames: int, tmp: Path) -> Path:
    import cv2

    capture = cv2.VideoCapture(str(video))
    out = tmp / "head.mp4"
    width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), FRAME_RATE, (width, height))
    for _ in range(frames):
        ok, frame = capture.read()
        if not ok:
            break
        writer.write(frame)
    writer.release()
    return out


def _table(rows: list[tuple[str, dict[str, float]]]) -> str:
    header = ["configuration", *COLUMNS, "frames/s", "peak MB"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, r in rows:
        cells = [f"{r[c]:.2f}" if c not in ("IDSW", "FP", "FN") else f"{r[c]:.0f}" for c in COLUMNS]
        lines.append("| " + " | ".join([label, *cells, f"{r['fps']:.1f}", f"{r['peak_mb']:.0f}"]) + " |")
    return "\n".join(lines) + "\n"


def _append(report: str) -> None:
    notes = [
        "data: PETS09-S2L1 `vtest.avi` (795 frames, 768x576, 7 fps) against MOT15 ground truth (TrackEval); frames/s "
        "is end to end (decode, detect, embed, track, write outputs), one process per row"
    ]
    append_section("video.py", notes, report)


if __name__ == "__main__":
    raise SystemExit(main())
