"""`evaluate_mot` must reproduce TrackEval's own published numbers, and reject bad inputs by name."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from trackid.eval import evaluate_mot
from trackid.sources.motchallenge import MotFormatError


def test_reproduces_trackeval_reference_scores_on_mot17(data: Path) -> None:
    scores = evaluate_mot(data / "mot17" / "gt", data / "mot17" / "reference_results" / "data")
    assert scores.benchmark == "MOT17"
    # TrackEval's pedestrian_summary.txt for this tracker: HOTA 75.272, MOTA 90.32, IDF1 81.859
    assert scores.combined["HOTA"] == pytest.approx(75.27, abs=0.01)
    assert scores.combined["MOTA"] == pytest.approx(90.32, abs=0.01)
    assert scores.combined["IDF1"] == pytest.approx(81.86, abs=0.01)
    assert len(scores.per_sequence) == 7


def test_missing_result_file_is_named(data: Path, tmp_path: Path) -> None:
    shutil.copy(data / "mot15" / "reference_results" / "TUD-Campus.txt", tmp_path / "TUD-Campus.txt")
    with pytest.raises(MotFormatError, match=r"TUD-Stadtmitte\.txt: result file missing"):
        evaluate_mot(data / "mot15" / "gt", tmp_path, sequences=["TUD-Campus", "TUD-Stadtmitte"])


def test_malformed_result_file_fails_with_line(data: Path, tmp_path: Path) -> None:
    (tmp_path / "TUD-Campus.txt").write_text("1,1,0,0,10,10,1,-1,-1,-1\n1,2,0,0,10\n")
    with pytest.raises(MotFormatError, match=r"TUD-Campus\.txt:2: "):
        evaluate_mot(data / "mot15" / "gt", tmp_path, sequences=["TUD-Campus"])


def test_missing_gt_folder(tmp_path: Path) -> None:
    with pytest.raises(MotFormatError, match="ground-truth folder not found"):
        evaluate_mot(tmp_path / "nothing", tmp_path)
