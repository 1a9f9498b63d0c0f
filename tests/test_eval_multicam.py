"""`evaluate_multicam`: per-view scores cannot see an id that changes between views; the cross-view score must."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from trackid.eval import METRICS
from trackid.eval.multicam import Hypothesis, evaluate_multicam
from trackid.sources.motchallenge import MotFormatError, read_mot_file

VIEWS = ("SYN-A", "SYN-B")
FRAMES = 4


def _gt_rows(view_index: int) -> NDArray[np.float64]:
    """Persons 1 and 2 in every frame of the view, side by side, walking right."""
    frame = np.repeat(np.arange(1, FRAMES + 1), 2)
    person = np.tile([1, 2], FRAMES)
    x = 100.0 * person + 5.0 * frame + 30.0 * view_index
    return np.column_stack([frame, person, x, 50 + 0 * x, 40 + 0 * x, 90 + 0 * x])


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    """A two-view TrackEval layout in the form of the WILDTRACK one (`gt/WILDTRACK-train/<view>/...`)."""
    root = tmp_path / "gt"
    for k, view in enumerate(VIEWS):
        seq = root / "SYN-train" / view
        (seq / "gt").mkdir(parents=True)
        rows = _gt_rows(k)
        lines = [f"{int(f)},{int(i)},{x:.2f},{y:.2f},{w:.2f},{h:.2f},1,1,1.00" for f, i, x, y, w, h in rows]
        (seq / "gt" / "gt.txt").write_text("\n".join(lines) + "\n")
        (seq / "seqinfo.ini").write_text(
            f"[Sequence]\nname={view}\nimDir=img1\nframeRate=2\nseqLength={FRAMES}\n"
            "imWidth=640\nimHeight=480\nimExt=.png\n"
        )
    (root / "seqmaps").mkdir()
    (root / "seqmaps" / "SYN-train.txt").write_text("name\n" + "\n".join(VIEWS) + "\n")
    return root


def test_ground_truth_scores_100_in_every_figure_and_the_gt_folder_is_only_read(layout: Path) -> None:
    before = {p: p.stat().st_mtime_ns for p in layout.rglob("*")}
    hypotheses: dict[str, Hypothesis] = {
        "SYN-A": layout / "SYN-train" / "SYN-A" / "gt" / "gt.txt",
        "SYN-B": _gt_rows(1),
    }
    scores = evaluate_multicam(layout, hypotheses)
    assert set(scores.per_view) == set(VIEWS)
    for figures in [*scores.per_view.values(), scores.combined, scores.cross_view]:
        assert list(figures) == list(METRICS)
        assert figures["IDF1"] == pytest.approx(100.0)
        assert figures["HOTA"] == pytest.approx(100.0)
    assert {p: p.stat().st_mtime_ns for p in layout.rglob("*")} == before
    assert json.loads(json.dumps(scores.to_json()))["cross_view"]["IDF1"] == pytest.approx(100.0)


def test_an_id_that_changes_between_views_is_penalised_only_across_views(layout: Path) -> None:
    renumbered = _gt_rows(1)
    renumbered[:, 1] += 7  # persons 1, 2 are ids 8, 9 in view B
    scores = evaluate_multicam(layout, {"SYN-A": _gt_rows(0), "SYN-B": renumbered})
    assert all(v["IDF1"] == pytest.approx(100.0) for v in scores.per_view.values())
    assert scores.combined["IDF1"] == pytest.approx(100.0)
    # each person matches one id for both views: half of the boxes (view B's) are identity errors
    assert scores.cross_view["IDF1"] == pytest.approx(50.0)
    assert scores.cross_view["IDSW"] == 2  # one switch per person where view A's frames end and view B's begin
    assert scores.cross_view["MOTA"] < scores.combined["MOTA"] == pytest.approx(100.0)
    assert scores.cross_view["FN"] == scores.cross_view["FP"] == 0


def test_an_empty_view_is_all_misses_as_is_an_omitted_one(layout: Path) -> None:
    empty = evaluate_multicam(layout, {"SYN-A": _gt_rows(0), "SYN-B": np.zeros((0, 6))})
    omitted = evaluate_multicam(layout, {"SYN-A": _gt_rows(0)})
    assert empty == omitted
    assert empty.per_view["SYN-B"]["IDF1"] == 0.0
    assert empty.per_view["SYN-B"]["FN"] == 2 * FRAMES
    assert empty.per_view["SYN-A"]["IDF1"] == pytest.approx(100.0)
    assert empty.cross_view["IDP"] == pytest.approx(100.0)
    assert empty.cross_view["IDR"] == pytest.approx(50.0)


def test_bad_inputs_name_the_view(layout: Path) -> None:
    with pytest.raises(ValueError, match=r"views not in the ground truth's seqmap: SYN-C .*SYN-A, SYN-B"):
        evaluate_multicam(layout, {"SYN-C": _gt_rows(0)})
    late = _gt_rows(0)
    late[-1, 0] = FRAMES + 1
    with pytest.raises(ValueError, match=r"view 'SYN-A': hypothesis frame 5 is outside the view's frames 1\.\.4"):
        evaluate_multicam(layout, {"SYN-A": late})
    twice = _gt_rows(1)
    twice[1, 1] = 1
    with pytest.raises(ValueError, match=r"view 'SYN-B': id 1 is given to 2 boxes in frame 1"):
        evaluate_multicam(layout, {"SYN-B": twice})
    with pytest.raises(ValueError, match=r"view 'SYN-A': hypothesis rows must be \(K, >= 6\), got shape \(8, 4\)"):
        evaluate_multicam(layout, {"SYN-A": _gt_rows(0)[:, :4]})
    with pytest.raises(MotFormatError, match=r"view 'SYN-B': .*missing\.txt: file not found"):
        evaluate_multicam(layout, {"SYN-B": layout / "missing.txt"})
    (layout / "seqmaps" / "SYN-train.txt").write_text("name\nSYN-A\nSYN-B\nSYN-C\n")
    with pytest.raises(MotFormatError, match=r"no ground truth \(gt/gt\.txt\) for view 'SYN-C'"):
        evaluate_multicam(layout, {"SYN-A": _gt_rows(0)})


def test_wildtrack_cross_view_identity_matching_is_global(data: Path) -> None:
    """Two real views with the gt as hypotheses, one renumbered: per view perfect, across views each person keeps
    only the view where it has more boxes (each hypothesis id covers one person in one view)."""
    split = data / "multicam" / "wildtrack" / "gt" / "WILDTRACK-train"
    c4, c7 = (read_mot_file(split / v / "gt" / "gt.txt") for v in ("WILDTRACK-C4", "WILDTRACK-C7"))
    fresh = 1 + max(c4.track_id.max(), c7.track_id.max())  # renumbered ids must not collide with view C4's
    hypotheses: dict[str, Hypothesis] = {
        "WILDTRACK-C4": split / "WILDTRACK-C4" / "gt" / "gt.txt",
        "WILDTRACK-C7": np.column_stack([c7.frame, c7.track_id + fresh, c7.xywh]),
    }
    scores = evaluate_multicam(split.parent, hypotheses)
    assert scores.per_view["WILDTRACK-C4"]["IDF1"] == scores.per_view["WILDTRACK-C7"]["IDF1"] == pytest.approx(100)
    assert scores.per_view["WILDTRACK-C1"]["FN"] == 8732  # omitted: every box missed
    people = np.union1d(c4.track_id, c7.track_id)
    boxes4, boxes7 = (np.searchsorted(people, rows.track_id) for rows in (c4, c7))
    kept = np.maximum(np.bincount(boxes4, minlength=len(people)), np.bincount(boxes7, minlength=len(people))).sum()
    assert scores.cross_view["IDP"] == pytest.approx(100 * kept / (len(c4) + len(c7)))
    assert scores.cross_view["IDR"] == pytest.approx(100 * kept / 42721)
    assert scores.combined["IDP"] == pytest.approx(100)
