"""The synthetic scene: deterministic, physically plausible, and scored by TrackEval as intended."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trackid.eval import evaluate_mot
from trackid.geometry import iou_matrix
from trackid.sources.motchallenge import read_mot_file, read_seqinfo, write_mot_results
from trackid.sources.synthetic import SceneConfig, make_scene, write_detections, write_trackeval_gt


def test_same_seed_same_scene_other_seed_other_scene() -> None:
    a, b, c = make_scene(SceneConfig(seed=3)), make_scene(SceneConfig(seed=3)), make_scene(SceneConfig(seed=4))
    assert np.array_equal(a.detection_rows.xywh, b.detection_rows.xywh)
    assert np.array_equal(a.ground_truth.xyxy, b.ground_truth.xyxy)
    assert not np.array_equal(a.ground_truth.xyxy[:50], c.ground_truth.xyxy[:50])


def test_ground_truth_is_plausible() -> None:
    cfg = SceneConfig(num_people=8, num_frames=120, seed=1)
    gt = make_scene(cfg).ground_truth
    assert set(np.unique(gt.person_id).tolist()) <= set(range(1, cfg.num_people + 1))
    assert np.all(np.diff(gt.frame) >= 0)
    assert (gt.xyxy[:, 2:] > gt.xyxy[:, :2]).all()
    assert (gt.xyxy >= 0).all() and (gt.xyxy[:, [0, 2]] <= cfg.width).all() and (gt.xyxy[:, [1, 3]] <= cfg.height).all()
    assert ((gt.visibility > 0) & (gt.visibility <= 1)).all()
    for frame in np.unique(gt.frame):  # each person at most once per frame
        ids = gt.person_id[gt.frame == frame]
        assert len(ids) == len(np.unique(ids))
    # Occlusion happens: people cross, so some are partly hidden.
    assert (gt.visibility < 0.5).mean() > 0.02


def test_people_move_smoothly() -> None:
    cfg = SceneConfig(num_people=6, num_frames=100, seed=2)
    gt = make_scene(cfg).ground_truth
    for pid in np.unique(gt.person_id):
        mine = gt.person_id == pid
        frames, boxes = gt.frame[mine], gt.xyxy[mine]
        consecutive = np.diff(frames) == 1
        bottoms = boxes[:, 3]
        # Between consecutive frames the feet move at most a few speed units (velocity is piecewise constant).
        assert (np.abs(np.diff(bottoms))[consecutive] < 3 * cfg.speed).all()


def test_detector_noise_model() -> None:
    cfg = SceneConfig(seed=5, false_positives=2.0)
    scene = make_scene(cfg)
    gt, rows = scene.ground_truth, scene.detection_rows
    assert len(scene.detections) == cfg.num_frames
    assert (rows.score > 0).all() and (rows.score <= 1).all()
    matched_score, unmatched_score, recall_visible = [], [], []
    for k, dets in enumerate(scene.detections, start=1):
        in_frame = gt.frame == k
        iou = iou_matrix(dets.xyxy, gt.xyxy[in_frame])
        is_true = iou.max(axis=1, initial=0) > 0.5
        matched_score += dets.score[is_true].tolist()
        unmatched_score += dets.score[~is_true].tolist()
        visible = gt.visibility[in_frame] > 0.9
        recall_visible += (iou.max(axis=0, initial=0)[visible] > 0.5).tolist()
    assert np.median(matched_score) > 0.9  # visible people score high, like a good detector
    assert np.mean(unmatched_score) < 0.5  # false positives are weak
    assert 0.85 < np.mean(recall_visible) < 1.0  # a few visible people are missed outright


def test_invalid_config_is_named() -> None:
    with pytest.raises(ValueError, match="miss_rate"):
        SceneConfig(miss_rate=1.5)


def test_written_layout_scores_perfect_ground_truth_at_100(tmp_path: Path) -> None:
    scenes = [make_scene(SceneConfig(num_frames=60, seed=s, name=f"SYNTH-0{s}")) for s in (1, 2)]
    gt_root = write_trackeval_gt(scenes, tmp_path)
    assert (gt_root / "seqmaps" / "SYNTH-train.txt").read_text().split() == ["name", "SYNTH-01", "SYNTH-02"]
    info = read_seqinfo(gt_root / "SYNTH-train" / "SYNTH-01" / "seqinfo.ini")
    assert (info.length, info.width, info.height) == (60, 960, 540)
    gt_rows = read_mot_file(gt_root / "SYNTH-train" / "SYNTH-01" / "gt" / "gt.txt")
    assert len(gt_rows) == len(scenes[0].ground_truth)

    for scene in scenes:  # the ground truth as a tracker's output: TrackEval must keep every row (class 1)
        gt = scene.ground_truth
        write_mot_results(tmp_path / "perfect" / f"{scene.config.name}.txt", gt.frame, gt.person_id, gt.xyxy)
    scores = evaluate_mot(gt_root, tmp_path / "perfect")
    assert scores.benchmark == "SYNTH"
    assert scores.combined["HOTA"] == pytest.approx(100.0)
    assert scores.combined["MOTA"] == pytest.approx(100.0)
    assert scores.combined["FN"] == 0


def test_written_detections_read_back(tmp_path: Path) -> None:
    scene = make_scene(SceneConfig(num_frames=30, seed=7))
    rows = read_mot_file(write_detections(scene, tmp_path / "det.txt"))
    np.testing.assert_array_equal(rows.frame, scene.detection_rows.frame)
    np.testing.assert_allclose(rows.xywh, scene.detection_rows.xywh, atol=0.005)
    np.testing.assert_allclose(rows.score, scene.detection_rows.score, atol=5e-5)
