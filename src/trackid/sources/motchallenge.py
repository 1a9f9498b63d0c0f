"""MOTChallenge text files: detections, ground truth, tracker results and `seqinfo.ini`.

Rows are `frame, id, x, y, w, h[, score[, class, visibility | x, y, z]]` with 1-based frames and top-left + size
boxes. Files in the wild come unsorted and in 6-, 7-, 9- (MOT17 ground truth) and 10-column variants; all are read
into the same `MotRows`, with or without a UTF-8 byte-order mark (spreadsheets on Windows write one). Anything
malformed raises `MotFormatError` with `file:line: what is wrong`, so a user can open the file at the right line
instead of reading a traceback. Values no camera produces (a box at 1e300, frame 10^12) are malformed too: they would
overflow box areas or make a tracker step through that many frames, so they are refused, not tracked.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import overload

import numpy as np
from numpy.typing import NDArray

from trackid.artifacts import atomic_write_text
from trackid.geometry import xywh_to_xyxy, xyxy_to_xywh
from trackid.types import Detections

__all__ = [
    "FrameDetections",
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
MAX_FRAMES = 500_000
"""The longest sequence read (5.5 hours at 25 frames/s; MOTChallenge's longest has 3,315 frames): a frame number or a
`seqLength` beyond it is a mistake, and tracking it steps through every frame up to it (the frame loop keeps ~0.7 kB
and spends ~0.25 ms a frame even when it is empty, so this bounds a run at about 0.6 GB and two minutes)."""
MAX_VALUE = 1e6
"""The largest box coordinate, size or score magnitude accepted (scores of MOT15's ACF detector reach ~140)."""
FRAME_RATES = (0.01, 10_000.0)
"""The `frameRate` range accepted: time-based tracker parameters are multiplied by it."""


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
        parser.read_string(_read_text(path), source=str(path))
    except configparser.Error as exc:
        raise MotFormatError(f"{path}: not a valid ini file ({exc.message})") from None
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

    frame_rate = float(number("frameRate", float))
    if not FRAME_RATES[0] <= frame_rate <= FRAME_RATES[1]:
        low, high = FRAME_RATES
        raise MotFormatError(f"{path}: 'frameRate' must be between {low:g} and {high:g}, got {section['frameRate']!r}")
    length = int(number("seqLength", int))
    if length > MAX_FRAMES:
        raise MotFormatError(f"{path}: 'seqLength' must be at most {MAX_FRAMES:,}, got {section['seqLength']!r}")
    width, height = (int(number(key, int)) for key in ("imWidth", "imHeight"))
    if max(width, height) > MAX_VALUE:
        raise MotFormatError(f"{path}: image size {width}x{height} exceeds {MAX_VALUE:,.0f} pixels a side")
    return SeqInfo(
        name=section.get("name", path.parent.name), frame_rate=frame_rate, length=length, width=width, height=height
    )


def read_mot_file(path: str | os.PathLike[str]) -> MotRows:
    """Read a det/gt/result file. Blank lines are skipped; every other line must be a valid row."""
    path = Path(path)
    text = _read_text(path)
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
    return list(FrameDetections.from_rows(rows, num_frames, min_score))


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
    return list(FrameDetections(table[:, 0], num_frames, xywh_to_xyxy(table[:, 2:6]), table[:, 6], table[:, 7:]))


class FrameDetections(Sequence[Detections]):
    """One `Detections` per frame 1..`num_frames` (index k: frame k + 1) over rows sorted by frame, none past
    `num_frames`; each frame's `Detections` is sliced out when it is read, not stored, so a long sequence with few
    detections costs memory for its rows only (`detections_by_frame` is its list)."""

    def __init__(
        self,
        frame: NDArray[np.number],
        num_frames: int,
        xyxy: NDArray[np.float64],
        score: NDArray[np.float64],
        embedding: NDArray[np.floating] | None = None,
    ) -> None:
        self._frame, self._xyxy, self._score, self._embedding = frame, xyxy, score, embedding
        self._num_frames = num_frames

    @classmethod
    def from_rows(cls, rows: MotRows, num_frames: int, min_score: float = -np.inf) -> FrameDetections:
        """The frames 1..`num_frames` of a file's rows, those scoring below `min_score` left out."""
        keep = (rows.score >= min_score) & (rows.frame <= num_frames)
        return cls(rows.frame[keep], num_frames, xywh_to_xyxy(rows.xywh[keep]), rows.score[keep])

    def __len__(self) -> int:
        return self._num_frames

    @overload
    def __getitem__(self, index: int) -> Detections: ...

    @overload
    def __getitem__(self, index: slice) -> list[Detections]: ...

    def __getitem__(self, index: int | slice) -> Detections | list[Detections]:
        if isinstance(index, slice):
            return [self[k] for k in range(*index.indices(self._num_frames))]
        k = index + self._num_frames if index < 0 else index
        if not 0 <= k < self._num_frames:
            raise IndexError(f"frame index {index} out of range for {self._num_frames} frames")
        lo, hi = np.searchsorted(self._frame, [k + 1, k + 2])
        embedding = None if self._embedding is None else self._embedding[lo:hi]
        return Detections.from_arrays(self._xyxy[lo:hi], self._score[lo:hi], embedding=embedding)


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


def _read_text(path: Path) -> str:
    """The file's text: UTF-8, a byte-order mark dropped; unreadable or binary files raise `MotFormatError`."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise MotFormatError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise MotFormatError(
            f"{path}: not a UTF-8 text file (byte {exc.start} is {exc.object[exc.start]:#04x})"
        ) from None
    except OSError as exc:
        raise MotFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None


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
        (table[:, 0] > MAX_FRAMES, f"frame must be at most {MAX_FRAMES:,}"),
        ((table[:, 1] != np.round(table[:, 1])) | (np.abs(table[:, 1]) > 2**53), "id must be an integer"),
        ((np.abs(table[:, 2:7]) > MAX_VALUE).any(axis=1), f"box or score beyond +-{MAX_VALUE:,.0f}"),
        ((table[:, 4] <= 0) | (table[:, 5] <= 0), "box width and height must be positive"),
    ]
    for bad, what in checks:
        if bad.any():
            row = int(np.argmax(bad))
            values = ",".join(f"{v:g}" for v in table[row])
            raise MotFormatError(f"{path}:{linenos[row]}: {what} (row: {values})")
