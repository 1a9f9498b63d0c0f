"""The multi-camera IDF1 of per-view boxes that carry global ids, through TrackEval over all views.

Per-view scores cannot see the error a cross-camera tracker is there to avoid: a person who carries id 5 in view 1
and id 9 in view 2 scores IDF1 100 in each view. So besides each view on its own (and TrackEval's combination of
the views), every view's ground truth and hypotheses are concatenated into ONE sequence — view k's frames offset by
the summed `seqLength` of the views before it, in seqmap order — and scored by TrackEval once. Views never share a
frame there, so boxes of different views never compete in one frame's matching, while the identity matching is
global: IDF1's one-to-one assignment of ground-truth ids to hypothesis ids spans all views, so the person above is
matched to id 5 or to id 9 and the other view's boxes count as identity errors. This is the standard multi-camera
IDF1 (as the MTMC benchmarks, DukeMTMC's multi-camera IDF1 among them, define it). Of the concatenation's other
figures, the detection ones (DetA, LocA, FP, FN) are essentially the views' combined ones, the association ones
(AssA, HOTA, IDSW, Frag) are global like IDF1: a person whose id changes from one view to the next counts one
identity switch there.

Cost: two TrackEval runs over every box. WILDTRACK (7 x 400 frames, 43k boxes) takes about 4 s; EPFL Terrace
(4 x 5010 frames, 92k boxes) about 25 s, partly because TrackEval's loader is quadratic in a sequence's frame count
(its check for unknown frames scans a list), which the 20040-frame concatenation feels (~8 s).

Ground-truth views the hypotheses omit are scored as empty hypotheses (all their boxes missed), in both figures: a
tracker that drops a camera is charged for it. Only temporary copies are written (in a `TemporaryDirectory`); the
ground-truth folder is only read.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from trackid.artifacts import atomic_write_text
from trackid.eval.mot import evaluate_mot, locate_gt, read_seqmap
from trackid.sources.motchallenge import MotFormatError, SeqInfo, read_mot_file, read_seqinfo

__all__ = ["Hypothesis", "MulticamScores", "evaluate_multicam"]

Hypothesis = str | os.PathLike[str] | NDArray[np.floating] | NDArray[np.integer]
"""A MOT result file, or its (K, >= 6) rows `frame, id, x, y, w, h[, score]` (1-based frames, top-left + size)."""

CROSS_VIEW = "ALLVIEWS"
"""Name suffix of the concatenated sequence in the temporary layout."""


@dataclass(frozen=True)
class MulticamScores:
    """TrackEval's figures (the names of `trackid.eval.mot.METRICS`) per view, over the views combined (TrackEval's
    combination: identities matched per view), and `cross_view` (identities matched across all views at once)."""

    per_view: dict[str, dict[str, float]]
    combined: dict[str, float]
    cross_view: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        return {"per_view": self.per_view, "combined": self.combined, "cross_view": self.cross_view}


def evaluate_multicam(
    gt_folder: str | os.PathLike[str],
    hypotheses: Mapping[str, Hypothesis],
    *,
    benchmark: str | None = None,
    split: str = "train",
) -> MulticamScores:
    """Score per-view boxes carrying global ids (the same person has the same id in every view).

    Args:
        gt_folder: TrackEval's MotChallenge layout, one sequence per view:
            `<gt_folder>/<BENCHMARK>-<split>/<view>/{gt/gt.txt,seqinfo.ini}` and
            `<gt_folder>/seqmaps/<BENCHMARK>-<split>.txt` (the `<BENCHMARK>-<split>` folder itself is accepted too).
        hypotheses: view name (as in the seqmap) -> result file or rows; a view with no rows is scored as empty,
            and so is a view of the seqmap the mapping omits.
        benchmark: e.g. "WILDTRACK"; inferred when `gt_folder` holds a single `*-<split>` folder.

    Raises:
        MotFormatError: the ground-truth layout is incomplete (the view is named) or a result file is malformed.
        ValueError: a hypothesis names a view the seqmap lacks, or its rows are malformed (the view is named).
    """
    gt_root, benchmark = locate_gt(Path(gt_folder), benchmark, split)
    split_dir = gt_root / f"{benchmark}-{split}"
    seqmap = gt_root / "seqmaps" / f"{benchmark}-{split}.txt"
    views = read_seqmap(seqmap)
    if not views:
        raise MotFormatError(f"{seqmap}: seqmap lists no views")
    unknown = sorted(set(hypotheses) - set(views))
    if unknown:
        raise ValueError(
            f"hypotheses for views not in the ground truth's seqmap: {', '.join(unknown)} "
            f"(views of {benchmark}-{split}: {', '.join(views)})"
        )
    infos = {view: _view_info(split_dir, view) for view in views}
    rows = _global_ids({view: _hypothesis_rows(view, hypotheses.get(view), infos[view].length) for view in views})
    offsets = dict(zip(views, np.cumsum([0] + [infos[v].length for v in views[:-1]]).tolist(), strict=True))

    with tempfile.TemporaryDirectory(prefix="trackid-multicam-") as tmp:
        work = Path(tmp)
        for view in views:
            _write_rows(work / "views" / f"{view}.txt", rows[view])
        per_view = evaluate_mot(gt_root, work / "views", benchmark=benchmark, split=split, sequences=views)

        # The concatenation: a one-sequence layout of the same benchmark and split, so TrackEval preprocesses it
        # (distractor removal or not) exactly as it did the views.
        seq = f"{benchmark}-{CROSS_VIEW}"
        seq_dir = work / "gt" / f"{benchmark}-{split}" / seq
        gt_text = "".join(
            _offset_gt(split_dir / view / "gt" / "gt.txt", offsets[view], infos[view].length) for view in views
        )
        atomic_write_text(seq_dir / "gt" / "gt.txt", gt_text)
        atomic_write_text(seq_dir / "seqinfo.ini", _seqinfo_text(seq, list(infos.values())))
        atomic_write_text(work / "gt" / "seqmaps" / f"{benchmark}-{split}.txt", f"name\n{seq}\n")
        concatenated = np.concatenate([rows[v] + np.array([offsets[v], 0, 0, 0, 0, 0, 0]) for v in views])
        _write_rows(work / "cross" / f"{seq}.txt", concatenated)
        cross = evaluate_mot(work / "gt", work / "cross", benchmark=benchmark, split=split)
    return MulticamScores(per_view=per_view.per_sequence, combined=per_view.combined, cross_view=cross.combined)


def _hypothesis_rows(view: str, hypothesis: Hypothesis | None, length: int) -> NDArray[np.float64]:
    """(K, 7) rows `frame, id, x, y, w, h, score`, checked against the view's frame count; errors name the view."""
    if hypothesis is None:
        return np.zeros((0, 7))
    if isinstance(hypothesis, np.ndarray):
        table = np.asarray(hypothesis, dtype=np.float64)
        if table.size == 0:
            return np.zeros((0, 7))
        if table.ndim != 2 or table.shape[1] < 6:
            raise ValueError(f"view '{view}': hypothesis rows must be (K, >= 6), got shape {table.shape}")
        score = table[:, 6] if table.shape[1] > 6 else np.ones(len(table))
        table = np.column_stack([table[:, :6], score])
        for bad, what in (
            (~np.isfinite(table).all(axis=1), "NaN or infinite value"),
            (table[:, 0] != np.round(table[:, 0]), "frame is not an integer"),
            (table[:, 1] != np.round(table[:, 1]), "id is not an integer"),
            ((table[:, 4] <= 0) | (table[:, 5] <= 0), "box width and height must be positive"),
        ):
            if bad.any():
                raise ValueError(f"view '{view}': hypothesis row {int(np.argmax(bad))}: {what}")
    else:
        try:
            mot = read_mot_file(hypothesis)
        except MotFormatError as exc:
            raise MotFormatError(f"view '{view}': {exc}") from None
        table = np.column_stack([mot.frame, mot.track_id, mot.xywh, mot.score]).astype(np.float64)
    if len(table) == 0:
        return np.zeros((0, 7))
    outside = (table[:, 0] < 1) | (table[:, 0] > length)
    if outside.any():
        raise ValueError(
            f"view '{view}': hypothesis frame {table[outside][0, 0]:g} is outside the view's frames 1..{length}"
        )
    pairs, counts = np.unique(table[:, :2], axis=0, return_counts=True)
    if (counts > 1).any():
        frame, track = pairs[np.argmax(counts > 1)]
        raise ValueError(f"view '{view}': id {track:g} is given to {counts.max()} boxes in frame {frame:g}")
    return table


def _global_ids(rows: dict[str, NDArray[np.float64]]) -> dict[str, NDArray[np.float64]]:
    """Renumber ids 1..N over all views at once: equal ids stay equal across views, and TrackEval, which indexes an
    array by id, neither misreads negative ids nor allocates for huge ones."""
    views = list(rows)
    ids = np.concatenate([rows[v][:, 1] for v in views])
    _, dense = np.unique(ids, return_inverse=True)
    bounds = np.cumsum([0] + [len(rows[v]) for v in views])
    out = {}
    for k, view in enumerate(views):
        table = rows[view].copy()
        table[:, 1] = dense[bounds[k] : bounds[k + 1]] + 1
        out[view] = table
    return out


def _write_rows(path: Path, table: NDArray[np.float64]) -> None:
    buffer = io.StringIO()
    np.savetxt(buffer, table, fmt=["%d", "%d", "%.10g", "%.10g", "%.10g", "%.10g", "%.10g"], delimiter=",")
    atomic_write_text(path, buffer.getvalue())


def _offset_gt(path: Path, offset: int, length: int) -> str:
    """The gt file's rows verbatim (flags, classes and visibility kept for TrackEval's preprocessing), frames
    shifted by `offset`; a frame outside 1..`length` would land in the next view, so it is refused."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise MotFormatError(f"{path}: cannot read the view's ground truth ({exc.strerror or exc})") from None
    lines = np.array([line.strip() for line in text.splitlines() if line.strip()], dtype=str)
    if lines.size == 0:
        return ""
    parts = np.char.partition(lines, ",")
    try:
        frames = parts[:, 0].astype(np.float64)
    except ValueError:
        raise MotFormatError(f"{path}: a frame field is not a number") from None
    bad = (frames != np.round(frames)) | (frames < 1) | (frames > length)
    if bad.any():
        raise MotFormatError(f"{path}: frame {parts[np.argmax(bad), 0]} is outside the view's frames 1..{length}")
    shifted = (frames.astype(np.int64) + offset).astype(str)
    return "\n".join(np.char.add(np.char.add(shifted, ","), parts[:, 2]).tolist()) + "\n"


def _seqinfo_text(name: str, infos: list[SeqInfo]) -> str:
    """TrackEval reads only `seqLength`; the rest keeps the file a valid `seqinfo.ini`."""
    return (
        f"[Sequence]\nname={name}\nframeRate={infos[0].frame_rate:g}\nseqLength={sum(i.length for i in infos)}\n"
        f"imWidth={max(i.width for i in infos)}\nimHeight={max(i.height for i in infos)}\n"
    )


def _view_info(split_dir: Path, view: str) -> SeqInfo:
    if not (split_dir / view / "gt" / "gt.txt").is_file():
        raise MotFormatError(f"{split_dir / view}: no ground truth (gt/gt.txt) for view '{view}' of the seqmap")
    return read_seqinfo(split_dir / view / "seqinfo.ini")
