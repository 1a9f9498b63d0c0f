"""The online tracker end to end: deterministic, well-formed ids, and scores above floors on synthetic and real data.

Floors are set well below today's scores (measured: synthetic seed 0 ~59 HOTA, MOT15 TUD-Campus ~53 HOTA / ~62
MOTA with FRCNN detections) because the tracker's parameters are being tuned; they catch breakage, not regressions
of a point or two.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import run_tracker
from trackid.eval import evaluate_mot
from trackid.geometry import iou_matrix
from trackid.sources.motchallenge import detections_by_frame, read_mot_file, read_seqinfo, write_mot_results
from trackid.sources.synthetic import SceneConfig, SyntheticScene, make_scene, write_trackeval_gt
from trackid.track import make_tracker
from trackid.types import Detections


@pytest.fixture(scope="module")
def scene() -> SyntheticScene:
    return make_scene(SceneConfig(seed=0))


def _score(scene: SyntheticScene, root: Path, **params: object) -> dict[str, float]:
    gt_root = write_trackeval_gt([scene], root)
    result = run_tracker(make_tracker("trackid", scene.config.frame_rate, **params), scene.detections)
    write_mot_results(root / "results" / f"{scene.config.name}.txt", *result)
    return evaluate_mot(gt_root, root / "results").combined


def test_two_runs_are_identical(scene: SyntheticScene) -> None:
    first = run_tracker(make_tracker("trackid", 25.0), scene.detections)
    second = run_tracker(make_tracker("trackid", 25.0), scene.detections)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def test_reset_restarts_ids_and_reproduces_the_run(scene: SyntheticScene) -> None:
    tracker = make_tracker("trackid", 25.0)
    first = run_tracker(tracker, scene.detections)
    tracker.reset()
    second = run_tracker(tracker, scene.detections)
    np.testing.assert_array_equal(first[1], second[1])


def test_ids_are_positive_and_unique_per_frame(scene: SyntheticScene) -> None:
    frame, ids, boxes = run_tracker(make_tracker("trackid", 25.0), scene.detections)
    assert len(ids) > 0.5 * len(scene.ground_truth)
    assert (ids > 0).all()
    pairs = frame * (ids.max() + 1) + ids
    assert len(np.unique(pairs)) == len(pairs), "an id appears twice in one frame"
    assert (boxes[:, 2:] > boxes[:, :2]).all()


def test_output_boxes_come_from_the_frame_detections(scene: SyntheticScene) -> None:
    """Each reported box overlaps one of its frame's detections: tracks do not report stale positions."""
    tracker = make_tracker("trackid", 25.0)
    for dets in scene.detections:
        out = tracker.update(dets)
        if len(out):
            assert (iou_matrix(out.xyxy, dets.xyxy).max(axis=1) > 0.5).all()


def test_empty_frames_are_fine() -> None:
    tracker = make_tracker("trackid", 10.0)
    empty = Detections.from_arrays(np.zeros((0, 4)))
    box = Detections.from_arrays([[10, 10, 50, 110]], [0.99])
    for dets in [empty, box, empty, box, box, empty]:
        out = tracker.update(dets)
        assert len(out) <= len(dets)


def test_synthetic_scene_scores_above_floor(scene: SyntheticScene, tmp_path: Path) -> None:
    scores = _score(scene, tmp_path)
    assert scores["HOTA"] > 45, scores
    assert scores["MOTA"] > 45, scores
    assert scores["IDSW"] < 30, scores


def test_greedy_assignment_runs_and_scores(scene: SyntheticScene, tmp_path: Path) -> None:
    scores = _score(scene, tmp_path, assignment="greedy")
    assert scores["HOTA"] > 40, scores


def test_unknown_parameter_is_rejected() -> None:
    with pytest.raises(ValueError, match="no_such_param"):
        make_tracker("trackid", 25.0, no_such_param=1)
    with pytest.raises(ValueError, match="unknown tracker"):
        make_tracker("no-such-tracker", 25.0)


def test_mot15_tud_campus_end_to_end(data: Path, tmp_path: Path) -> None:
    seq = "TUD-Campus"
    info = read_seqinfo(data / "mot15" / "gt" / "MOT15-train" / seq / "seqinfo.ini")
    rows = read_mot_file(data / "mot15" / "det_frcnn" / seq / "det" / "det.txt")
    result = run_tracker(make_tracker("trackid", info.frame_rate), detections_by_frame(rows, info.length))
    write_mot_results(tmp_path / f"{seq}.txt", *result)
    scores = evaluate_mot(data / "mot15" / "gt", tmp_path, sequences=[seq]).combined
    assert scores["HOTA"] > 40, scores
    assert scores["MOTA"] > 45, scores
    assert scores["IDF1"] > 55, scores
