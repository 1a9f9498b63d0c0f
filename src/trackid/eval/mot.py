"""HOTA, CLEAR and Identity metrics through TrackEval, the MOTChallenge's own evaluator.

We only arrange files and read numbers back: scoring is TrackEval's, so our figures are comparable with published
ones (a test reproduces TrackEval's published scores for a reference tracker).
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trackid.sources.motchallenge import MotFormatError, read_mot_file

__all__ = ["METRICS", "MotScores", "evaluate_mot", "locate_gt", "read_seqmap"]

METRICS: dict[str, tuple[str, str, str]] = {
    # name shown: (TrackEval metric class, field, kind) where kind "pct" is a [0, 1] value shown in percent
    "HOTA": ("HOTA", "HOTA", "pct"),
    "DetA": ("HOTA", "DetA", "pct"),
    "AssA": ("HOTA", "AssA", "pct"),
    "LocA": ("HOTA", "LocA", "pct"),
    "MOTA": ("CLEAR", "MOTA", "pct"),
    "MOTP": ("CLEAR", "MOTP", "pct"),
    "IDF1": ("Identity", "IDF1", "pct"),
    "IDP": ("Identity", "IDP", "pct"),
    "IDR": ("Identity", "IDR", "pct"),
    "IDSW": ("CLEAR", "IDSW", "count"),
    "FP": ("CLEAR", "CLR_FP", "count"),
    "FN": ("CLEAR", "CLR_FN", "count"),
    "Frag": ("CLEAR", "Frag", "count"),
    "MT": ("CLEAR", "MT", "count"),
    "ML": ("CLEAR", "ML", "count"),
}
"""The figures we report, in table order."""

COMBINED = "COMBINED_SEQ"


@dataclass(frozen=True)
class MotScores:
    """Scores per sequence and over all sequences (TrackEval's combination, not a mean of sequences)."""

    benchmark: str
    combined: dict[str, float]
    per_sequence: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"benchmark": self.benchmark, "combined": self.combined, "per_sequence": self.per_sequence}


def evaluate_mot(
    gt_folder: str | os.PathLike[str],
    results_folder: str | os.PathLike[str],
    *,
    benchmark: str | None = None,
    split: str = "train",
    sequences: list[str] | None = None,
) -> MotScores:
    """Score one tracker's result files against MOTChallenge ground truth.

    Args:
        gt_folder: TrackEval's layout: `<gt_folder>/<BENCHMARK>-<split>/<seq>/{gt/gt.txt,seqinfo.ini}` and
            `<gt_folder>/seqmaps/<BENCHMARK>-<split>.txt`.
        results_folder: `<seq>.txt` files in MOTChallenge format (a `data/` sub-folder is also accepted).
        benchmark: e.g. "MOT17" or "MOT15"; inferred when `gt_folder` holds a single `*-<split>` folder. MOT15 is
            scored without preprocessing, the others with MOTChallenge's distractor removal, as TrackEval does.
        sequences: subset to score; default every sequence of the seqmap.
    """
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # trackeval prints notes about optional datasets on import
            import trackeval
    except ImportError:
        raise ImportError("evaluation needs TrackEval: pip install 'trackid[eval]'") from None

    gt_root, benchmark = locate_gt(Path(gt_folder), benchmark, split)
    split_dir = gt_root / f"{benchmark}-{split}"
    seqs = sequences or read_seqmap(gt_root / "seqmaps" / f"{benchmark}-{split}.txt", "pass the sequences explicitly")
    results = Path(results_folder)
    sub = "data" if (results / "data").is_dir() and not (results / f"{seqs[0]}.txt").is_file() else ""
    for seq in seqs:
        if not (split_dir / seq).is_dir():
            raise MotFormatError(f"{split_dir / seq}: no ground truth for sequence '{seq}'")
        result_file = results / sub / f"{seq}.txt"
        if not result_file.is_file():
            raise MotFormatError(f"{result_file}: result file missing for sequence '{seq}'")
        read_mot_file(result_file)  # fail with file:line before TrackEval fails with a traceback

    with tempfile.TemporaryDirectory(prefix="trackid-eval-") as out_dir:
        # TrackEval wants <TRACKERS_FOLDER>/<split>/<tracker>/<sub>/<seq>.txt; SKIP_SPLIT_FOL drops <split> for
        # trackers and gt alike, so point GT_FOLDER at the split folder itself.
        dataset_config = {
            "GT_FOLDER": str(split_dir),
            "TRACKERS_FOLDER": str(results.resolve().parent),
            "TRACKERS_TO_EVAL": [results.resolve().name],
            "TRACKER_SUB_FOLDER": sub,
            "OUTPUT_FOLDER": out_dir,
            "BENCHMARK": benchmark,
            "SPLIT_TO_EVAL": split,
            "SKIP_SPLIT_FOL": True,
            "SEQ_INFO": dict.fromkeys(seqs),
            "PRINT_CONFIG": False,
        }
        eval_config = {
            "USE_PARALLEL": False,
            "PRINT_RESULTS": False,
            "PRINT_CONFIG": False,
            "TIME_PROGRESS": False,
            "LOG_ON_ERROR": None,
            "OUTPUT_SUMMARY": False,
            "OUTPUT_DETAILED": False,
            "PLOT_CURVES": False,
        }
        evaluator = trackeval.Evaluator(eval_config)
        dataset = trackeval.datasets.MotChallenge2DBox(dataset_config)
        quiet = {"PRINT_CONFIG": False}
        metrics = [trackeval.metrics.HOTA(quiet), trackeval.metrics.CLEAR(quiet), trackeval.metrics.Identity(quiet)]
        with contextlib.redirect_stdout(io.StringIO()):
            raw, _ = evaluator.evaluate([dataset], metrics)
    per_seq = raw["MotChallenge2DBox"][results.resolve().name]
    table = {seq: _extract(res["pedestrian"]) for seq, res in per_seq.items()}
    combined = table.pop(COMBINED)
    return MotScores(benchmark=benchmark, combined=combined, per_sequence=table)


def _extract(result: dict[str, dict[str, Any]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, (metric, key, kind) in METRICS.items():
        value = result[metric][key]
        value = float(value.mean()) if hasattr(value, "mean") else float(value)
        out[name] = 100.0 * value if kind == "pct" else value
    return out


def locate_gt(gt_folder: Path, benchmark: str | None, split: str) -> tuple[Path, str]:
    """The TrackEval gt root and benchmark, from either the root or its `<BENCHMARK>-<split>` folder."""
    if not gt_folder.is_dir():
        raise MotFormatError(f"{gt_folder}: ground-truth folder not found")
    if gt_folder.name.endswith(f"-{split}") and not (gt_folder / "seqmaps").is_dir():
        gt_folder, benchmark = gt_folder.parent, benchmark or gt_folder.name.removesuffix(f"-{split}")
    if benchmark is None:
        candidates = sorted(p.name.removesuffix(f"-{split}") for p in gt_folder.glob(f"*-{split}") if p.is_dir())
        if len(candidates) != 1:
            found = ", ".join(candidates) or "none"
            raise MotFormatError(
                f"{gt_folder}: cannot infer the benchmark (folders '*-{split}' found: {found}); pass it explicitly"
            )
        benchmark = candidates[0]
    if not (gt_folder / f"{benchmark}-{split}").is_dir():
        raise MotFormatError(f"{gt_folder}: no '{benchmark}-{split}' folder")
    return gt_folder, benchmark


def read_seqmap(path: Path, hint: str = "") -> list[str]:
    """The sequence names a TrackEval seqmap lists (after its header line); `hint` says what to do when it is
    missing."""
    if not path.is_file():
        raise MotFormatError(f"{path}: seqmap not found" + (f" ({hint})" if hint else ""))
    names = [line.split(",")[0].strip() for line in path.read_text(encoding="utf-8-sig").splitlines()[1:]]
    return [n for n in names if n]
