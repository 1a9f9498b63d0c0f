"""MOTChallenge text files: detections, ground truth, tracker results and `seqinfo.ini`.

Rows are `frame, id, x, y, w, h[, score[, class, visibility | x, y, z]]` with 1-based frames and top-left + size
boxes. Files in the wild come unsorted and in 6-, 7-, 9- (MOT17 ground truth) and 10-column variants; all are read
into the same `MotRows`. Anything malformed raises `MotFormatError` with `file:line: what is wrong`, so a user can
open the file at the right line instead of reading a traceback.
"""

from __future__ import annotations

import configparser
import itertools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from trackid.artifacts import atomic_write_text
from trackid.geometry import xywh_to_xyxy, xyxy_to_xywh
from trackid.types import Detections

__all__ = [
    "MotFormatError",
    "MotRows",
    "SeqInfo",
    "detections_by_frame",
    "read_mot_file",
    "read_seqinfo",
    "write_mot_results",
]

COLUMN_COUNTS = (6, 7, 9, 10)
"""Accepted row widths: results (6), public detections (7), MOT16/17 ground truth (9), MOT15 files (10)."""


class MotFormatError(ValueError):
    """A MOTChallenge file that cannot be read; the message starts with `file:line:`."""


@dataclass(frozen=True, slots=True)
class SeqInfo:
    """The `[Sequence]` section of a `seqinfo.ini`: what a tracker needs to scale time and clip boxes."""

    name: str
    frame_rate: float
    length: int
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class MotRows:
    """All rows of one file, sorted by frame (stable, so rows of a frame keep their file order)."""

    frame: NDArray[np.int64]
    track_id: NDArray[np.int64]
    xywh: NDArray[np.float64]
    score: NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.frame)


def read_seqinfo(path: str | os.PathLike[str]) -> SeqInfo:
    """Read `seqinfo.ini`; a missing file, section or key raises `MotFormatError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise MotFormatError(f"{path}: seqinfo file not found")
    parser = configparser.ConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error as exc:
        raise MotFormatError(f"{path}: not a valid ini file ({exc.message})") from exc
    if not parser.has_section("Sequence"):
        raise MotFormatError(f"{path}: missing [Sequence] section")
    section = parser["Sequence"]

    def number(key: str, kind: type[int] | type[float]) -> float:
        if key not in section:
            raise MotFormatError(f"{path}: [Sequence] has no '{key}'")
        try:
            value = kind(section[key])
        except ValueError:
            raise MotFormatError(f"{path}: '{key}' must be a {kind.__name__}, got {section[key]!r}") from None
        if not value > 0:
            raise MotFormatError(f"{path}: '{key}' must be positive, got {section[key]!r}")
        return value

    return SeqInfo(
        name=section.get("name", path.parent.name),
        frame_rate=float(number("frameRate", float)),
        length=int(number("seqLength", int)),
        width=int(number("imWidth", int)),
        height=int(number("imHeight", int)),
    )


def read_mot_file(path: str | os.PathLike[str]) -> MotRows:
    """Read a det/gt/result file. Blank lines are skipped; every other line must be a valid row."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MotFormatError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MotFormatError(f"{path}: cannot read ({exc})") from None
    numbered = [(i, line) for i, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not numbered:
        empty = np.zeros(0)
        return MotRows(empty.astype(np.int64), empty.astype(np.int64), np.zeros((0, 4)), empty)
    table = _parse_table(path, numbered)
    _check_values(path, table, [i for i, _ in numbered])
    order = np.argsort(table[:, 0], kind="stable")
    table = table[order]
    score = table[:, 6] if table.shape[1] > 6 else np.ones(len(table))
    return MotRows(table[:, 0].astype(np.int64), table[:, 1].astype(np.int64), table[:, 2:6].copy(), score.copy())


def detections_by_frame(rows: MotRows, num_frames: int, min_score: float = -np.inf) -> list[Detections]:
    """Split rows into one `Detections` per frame; index k holds MOT frame k + 1. Rows past `num_frames` are ignored."""
    keep = (rows.score >= min_score) & (rows.frame <= num_frames)
    return _split_by_frame(rows.frame[keep], num_frames, xywh_to_xyxy(rows.xywh[keep]), rows.score[keep])


def read_deepsort_detections(path: str | os.PathLike[str], num_frames: int) -> list[Detections]:
    """Detections with appearance embeddings in a `.npy` table, one row per box: the MOT detection columns
    `frame, -1, x, y, w, h, score`, then the embedding (as the MOT17 DeepSORT features in `shared/data` come).
    One `Detections` per frame with `embedding` set; index k holds frame k + 1."""
    path = Path(path)
    try:
        table = np.load(path)
    except (OSError, ValueError) as exc:
        raise MotFormatError(f"{path}: cannot read ({exc})") from None
    if table.ndim != 2 or table.shape[1] < 8:
        raise MotFormatError(f"{path}: expected (rows, 7 MOT columns + embedding), got shape {table.shape}")
    table = table[np.argsort(table[:, 0], kind="stable")]
    table = table[table[:, 0] <= num_frames]
    return _split_by_frame(table[:, 0], num_frames, xywh_to_xyxy(table[:, 2:6]), table[:, 6], table[:, 7:])


def _split_by_frame(
    frame: NDArray[np.number],
    num_frames: int,
    xyxy: NDArray[np.float64],
    score: NDArray[np.float64],
    embedding: NDArray[np.floating] | None = None,
) -> list[Detections]:
    """One `Detections` per frame 1..`num_frames` from rows sorted by `frame` (none past `num_frames`)."""
    bounds = np.searchsorted(frame, np.arange(1, num_frames + 2))
    return [
        Detections.from_arrays(xyxy[lo:hi], score[lo:hi], embedding=None if embedding is None else embedding[lo:hi])
        for lo, hi in itertools.pairwise(bounds)
    ]


def write_mot_results(
    path: str | os.PathLike[str],
    frame: NDArray[np.integer],
    track_id: NDArray[np.integer],
    xyxy: NDArray[np.floating],
) -> Path:
    """Write tracker results (`frame,id,x,y,w,h,1,-1,-1,-1`, the format TrackEval reads) atomically."""
    xywh = xyxy_to_xywh(np.asarray(xyxy, dtype=np.float64))
    order = np.lexsort((track_id, frame))
    lines = [
        f"{f},{t},{x:.2f},{y:.2f},{w:.2f},{h:.2f},1,-1,-1,-1\n"
        for f, t, (x, y, w, h) in zip(
            frame[order].tolist(), track_id[order].tolist(), xywh[order].tolist(), strict=True
        )
    ]
    return atomic_write_text(path, "".join(lines))


def _parse_table(path: Path, numbered: list[tuple[int, str]]) -> NDArray[np.float64]:
    """Fast path: one numpy conversion. On failure, find and name the first offending line."""
    rows = [line.split(",") for _, line in numbered]
    width = len(rows[0])
    if width in COLUMN_COUNTS and all(len(r) == width for r in rows):
        try:
            return np.array(rows, dtype=np.float64)
        except ValueError:
            pass
    for (lineno, _), fields in zip(numbered, rows, strict=True):
        if len(fields) not in COLUMN_COUNTS:
            raise MotFormatError(f"{path}:{lineno}: expected 6, 7, 9 or 10 comma-separated fields, found {len(fields)}")
        if len(fields) != width:
            raise MotFormatError(f"{path}:{lineno}: {len(fields)} fields, but line {numbered[0][0]} has {width}")
        for col, field in enumerate(fields, start=1):
            try:
                float(field)
            except ValueError:
                raise MotFormatError(f"{path}:{lineno}: field {col} ({field.strip()!r}) is not a number") from None
    raise MotFormatError(f"{path}: could not parse")  # unreachable unless numpy and float() disagree


def _check_values(path: Path, table: NDArray[np.float64], linenos: list[int]) -> None:
    """Vectorised sanity checks; report the first bad row with its line number."""
    checks = [
        (~np.isfinite(table[:, :7]).all(axis=1), "NaN or infinite value"),
        ((table[:, 0] < 1) | (table[:, 0] != np.round(table[:, 0])), "frame must be a positive integer (1-based)"),
        (table[:, 1] != np.round(table[:, 1]), "id must be an integer"),
        ((table[:, 4] <= 0) | (table[:, 5] <= 0), "box width and height must be positive"),
    ]
    for bad, what in checks:
        if bad.any():
            row = int(np.argmax(bad))
            values = ",".join(f"{v:g}" for v in table[row])
            raise MotFormatError(f"{path}:{linenos[row]}: {what} (row: {values})")
