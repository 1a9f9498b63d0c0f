"""MOTChallenge detection files -> MOT result files: what `trackid track --detections` runs, without the CLI.

A single `det.txt` or a MOTChallenge-style folder (`<seq>/det/det.txt`) is planned into one job per sequence, each
checked for its `seqinfo.ini` before any tracking starts, so a mistake costs no time. Each sequence is tracked with
a fresh tracker at its own frame rate, through the frame loop every front door runs (`stages.run_stages`, no images:
the detect, embed and camera-motion stages have nothing to do); the stream warnings (`trackid.track.health`) come back
with the result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from trackid.pipelines.sinks import MotResultFile, TrackRows
from trackid.pipelines.stages import StageRun, Stages, replayed_frames, run_stages
from trackid.sources.motchallenge import MotRows, SeqInfo, detections_by_frame, read_mot_file, read_seqinfo
from trackid.track.tracker import make_tracker
from trackid.types import Detections

__all__ = ["MotInputError", "MotJob", "SequenceResult", "load_jobs", "plan_jobs", "run_tracker", "track_jobs"]


class SequenceResult(NamedTuple):
    """What tracking one sequence wrote and found."""

    seq: str
    frames: int
    tracks: int
    boxes: int
    out: Path
    warnings: list[str]


class MotInputError(ValueError):
    """Inputs that do not fit together (a missing seqinfo.ini, a file where a folder is needed); names the path."""


class MotJob(NamedTuple):
    """One sequence to track: its detections, its seqinfo.ini and the result file to write."""

    seq: str
    detections: Path
    seqinfo: Path
    out: Path


def plan_jobs(detections: Path, seqinfo: Path | None, out: Path) -> list[MotJob]:
    """One job per sequence: a single file, or every `<seq>/det/det.txt` of a folder."""
    if not detections.exists():
        raise MotInputError(f"{detections}: detections not found")
    if detections.is_file():
        ini = seqinfo if seqinfo is not None else detections.parent.parent / "seqinfo.ini"
        if ini.is_dir():
            ini = ini / "seqinfo.ini"
        if out.is_dir():
            raise MotInputError(f"{out}: is a folder; --out must be a file when --detections is a file")
        jobs = [MotJob(detections.parent.parent.name, detections, ini, out)]
    else:
        det_files = sorted(detections.glob("*/det/det.txt"))
        if not det_files:
            raise MotInputError(f"{detections}: no <seq>/det/det.txt files in this folder")
        if out.exists() and not out.is_dir():
            raise MotInputError(f"{out}: is a file; --out must be a folder when --detections is a folder")
        ini_root = seqinfo if seqinfo is not None else detections
        if not ini_root.is_dir():
            raise MotInputError(f"{ini_root}: --seqinfo must be a folder holding <seq>/seqinfo.ini in batch mode")
        seqs = [(det.parent.parent.name, det) for det in det_files]
        jobs = [MotJob(seq, det, ini_root / seq / "seqinfo.ini", out / f"{seq}.txt") for seq, det in seqs]
    for job in jobs:
        if not job.seqinfo.is_file():
            raise MotInputError(f"{job.seqinfo}: seqinfo.ini not found for {job.detections} (point --seqinfo at it)")
    return jobs


def run_tracker(
    frames: Sequence[Detections],
    name: str,
    info: SeqInfo,
    params: dict[str, Any],
    on_frame: Callable[[], object],
) -> tuple[tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]], list[str]]:
    """The sequence's (frame, id, box) arrays and what was unusual about it (`stages.StageRun.warnings`)."""
    rows = TrackRows()
    run = _replay(frames, name, info, params, rows, on_frame)
    return rows.arrays(), run.warnings


def load_jobs(jobs: Sequence[MotJob]) -> list[tuple[MotJob, MotRows, SeqInfo]]:
    """Read every job's detections and seqinfo first: a malformed file fails before any result is written."""
    return [(job, read_mot_file(job.detections), read_seqinfo(job.seqinfo)) for job in jobs]


def track_jobs(
    loaded: Sequence[tuple[MotJob, MotRows, SeqInfo]],
    tracker: str,
    params: dict[str, Any],
    min_score: float | None = None,
    on_sequence: Callable[[str], object] | None = None,
    on_frame: Callable[[], object] | None = None,
) -> list[SequenceResult]:
    """Track each loaded sequence with a fresh `tracker` and write its MOT result file (atomically)."""
    floor = -np.inf if min_score is None else min_score
    results = []
    for job, rows, info in loaded:
        if on_sequence is not None:
            on_sequence(job.seq)
        frames = detections_by_frame(rows, info.length, floor)
        result = MotResultFile(job.out)
        run = _replay(frames, tracker, info, params, result, on_frame)
        tracks = len(np.unique(result.arrays()[1]))
        results.append(SequenceResult(job.seq, run.frames, tracks, run.boxes, job.out, run.warnings))
    return results


def _replay(
    frames: Sequence[Detections],
    name: str,
    info: SeqInfo,
    params: dict[str, Any],
    sink: TrackRows,
    on_frame: Callable[[], object] | None,
) -> StageRun:
    """One sequence's detections, without images, through a fresh tracker into `sink`."""
    stages = Stages(make_tracker(name, info.frame_rate, **params))
    progress = None if on_frame is None else lambda _: on_frame()
    return run_stages(replayed_frames(frames, info.frame_rate), stages, [sink], progress)
