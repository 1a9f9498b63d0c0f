"""MOTChallenge detection files -> MOT result files: what `trackid track --detections` runs, without the CLI.

A single `det.txt` or a MOTChallenge-style folder (`<seq>/det/det.txt`) is planned into one job per sequence, each
checked for its `seqinfo.ini` before any tracking starts, so a mistake costs no time: no result may be written over
an input or inside the detections folder, and a `seqLength` that does not fit the file's frames (every detection past
it, or a declared length far beyond the last detection, which would have the tracker step through empty frames by
the million) is refused; detections partly past it are tracked up to it, with a warning. Each sequence is tracked with
a fresh tracker at its own frame rate, through the frame loop every front door runs (`stages.run_stages`, no images:
the detect, embed and camera-motion stages have nothing to do); the stream warnings (`trackid.track.health`) come back
with the result. With a persistence filter, each sequence's transient tracks (`multiview.persistence`) are left out
of its result file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from trackid.multiview.persistence.shipped import frame_rate_warning
from trackid.pipelines.sinks import FilteredMotResultFile, MotResultFile, TrackRows
from trackid.pipelines.stages import StageRun, Stages, replayed_frames, run_stages
from trackid.sources.motchallenge import FrameDetections, MotRows, SeqInfo, read_mot_file, read_seqinfo
from trackid.track.tracker import make_tracker
from trackid.types import Detections

if TYPE_CHECKING:  # the filter's module imports scikit-learn: only its type is needed here
    from trackid.multiview.persistence.models import PersistenceFilter

__all__ = ["MotInputError", "MotJob", "SequenceResult", "load_jobs", "plan_jobs", "run_tracker", "track_jobs"]

MAX_BOXES_DROPPED = 0.2
"""A persistence filter that leaves out more of a sequence's boxes than this is warned about: on the sets it was
measured on it drops under 10 %, so more says the detector or frame rate is not one it suits."""
EMPTY_TAIL = 10_000
"""Frames a `seqLength` may declare past twice the file's last detection frame before it is taken for a mistake: a
sequence ends with a few empty frames, not with millions (each costs tracker time and memory)."""

log = logging.getLogger(__name__)


class SequenceResult(NamedTuple):
    """What tracking one sequence wrote and found."""

    seq: str
    frames: int
    tracks: int
    boxes: int
    out: Path
    warnings: list[str]
    dropped: int = 0  # tracks a persistence filter left out of the result


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
    _refuse_writing_over_inputs(detections, out, jobs)
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
    """Read every job's detections and seqinfo first: a malformed file, or a seqLength that does not fit its
    detections, fails before any result is written."""
    loaded = [(job, read_mot_file(job.detections), read_seqinfo(job.seqinfo)) for job in jobs]
    for job, rows, info in loaded:
        _check_length(job, rows, info)
    return loaded


def track_jobs(
    loaded: Sequence[tuple[MotJob, MotRows, SeqInfo]],
    tracker: str,
    params: dict[str, Any],
    min_score: float | None = None,
    on_sequence: Callable[[str], object] | None = None,
    on_frame: Callable[[], object] | None = None,
    persistence: PersistenceFilter | None = None,
) -> list[SequenceResult]:
    """Track each loaded sequence with a fresh `tracker` and write its MOT result file (atomically), without the
    tracks `persistence` calls transient when a filter is given. Detections past the sequence's end, all dropped by
    `min_score`, a filter that drops much or runs outside the frame rates a shipped filter learnt from, are warned
    about in the result and the log."""
    if min_score is not None and np.isnan(min_score):
        raise ValueError("min_score must be a number, got nan")
    floor = -np.inf if min_score is None else min_score
    results = []
    for job, rows, info in loaded:
        if on_sequence is not None:
            on_sequence(job.seq)
        frames = FrameDetections.from_rows(rows, info.length, floor)
        size = (info.width, info.height)
        result = (
            MotResultFile(job.out)
            if persistence is None
            else FilteredMotResultFile(job.out, persistence, job.seq, size, info.frame_rate)
        )
        run = _replay(frames, tracker, info, params, result, on_frame)
        written = result.written()
        warnings = [*_input_warnings(job, rows, info, floor), *run.warnings]
        if persistence is not None:
            warnings += _filter_warnings(persistence, info, run.boxes, len(written[0]))
        for warning in warnings:
            log.warning("%s: %s", job.seq, warning)
        tracks = len(np.unique(written[1]))
        results.append(
            SequenceResult(job.seq, run.frames, tracks, len(written[0]), job.out, warnings, len(result.dropped))
        )
    return results


def _filter_warnings(model: PersistenceFilter, info: SeqInfo, boxes: int, kept: int) -> list[str]:
    """What the result must say about a persistence filter that may not suit the sequence."""
    out = [w for w in [frame_rate_warning(getattr(model, "model_path", None), info.frame_rate)] if w is not None]
    if boxes and 1 - kept / boxes > MAX_BOXES_DROPPED:
        out.append(
            f"the persistence filter left out {1 - kept / boxes:.0%} of the tracked boxes: check that it suits this "
            "detector and frame rate"
        )
    return out


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


def _refuse_writing_over_inputs(detections: Path, out: Path, jobs: Sequence[MotJob]) -> None:
    """No result file may be an input, and a batch's results may not land inside the folder it reads."""
    inputs = {path.resolve(): path for job in jobs for path in (job.detections, job.seqinfo)}
    for job in jobs:
        if job.out.resolve() in inputs:
            raise MotInputError(f"--out {job.out}: is the input {inputs[job.out.resolve()]}; refusing to write over it")
    if detections.is_dir() and out.resolve().is_relative_to(detections.resolve()):
        raise MotInputError(
            f"--out {out}: lies inside the detections folder {detections}; results written there "
            "would mix with (and be read as) inputs"
        )


def _check_length(job: MotJob, rows: MotRows, info: SeqInfo) -> None:
    """Refuse a seqLength that cannot belong to these detections."""
    if not len(rows):
        return
    first, last = int(rows.frame[0]), int(rows.frame[-1])
    if first > info.length:
        raise MotInputError(
            f"{job.detections}: every detection (frames {first}-{last}) lies past seqLength={info.length} of "
            f"{job.seqinfo}; is this the sequence's seqinfo.ini?"
        )
    if info.length > 2 * last + EMPTY_TAIL:
        raise MotInputError(
            f"{job.seqinfo}: seqLength={info.length} but the last detection in {job.detections} is at frame {last}; "
            "a sequence does not end with that many empty frames (fix seqLength)"
        )


def _input_warnings(job: MotJob, rows: MotRows, info: SeqInfo, min_score: float) -> list[str]:
    """What about the detections themselves makes the result smaller than the file suggests."""
    warnings = []
    past = int(np.count_nonzero(rows.frame > info.length))
    if past:
        warnings.append(
            f"{past} of {len(rows)} detections in {job.detections} lie past seqLength={info.length} (up to frame "
            f"{int(rows.frame[-1])}) and were not tracked"
        )
    if len(rows) and not (rows.score >= min_score).any():
        warnings.append(
            f"min_score {min_score:g} drops all {len(rows)} detections (scores {rows.score.min():g} to "
            f"{rows.score.max():g})"
        )
    return warnings
