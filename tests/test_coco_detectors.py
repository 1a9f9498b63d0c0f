"""NanoDet and CenterNet backends (issue #13): pre/post-processing checked on tiny ONNX models built here, whose
outputs are known, and the shipped NanoDet on a real PETS09-S2L1 frame."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from trackid.detect import CenterNetDetector, NanoDetDetector, TiledDetector, make_detector
from trackid.detect.coco import COCO_CLASSES, coco_class_ids
from trackid.models import bundled_model


def _constant_model(path: Path, input_name: str, input_shape: list[int], outputs: dict[str, np.ndarray]) -> Path:
    """An ONNX model whose outputs are fixed tensors (the input is read, then ignored): its decoding is then known."""
    nodes, infos = [], []
    for i, (name, value) in enumerate(outputs.items()):
        nodes.append(helper.make_node("Constant", [], [f"c{i}"], value=numpy_helper.from_array(value, f"v{i}")))
        nodes.append(helper.make_node("Identity", [f"c{i}"], [name]))
        infos.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape)))
    graph = helper.make_graph(
        nodes, "fixed", [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, input_shape)], infos
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def _nanodet_model(path: Path, cells: dict[int, tuple[int, float, tuple[int, int, int, int]]]) -> Path:
    """Stride-8 cells given as {cell index: (class, score, (left, top, right, bottom) bin)}; all else empty."""
    outputs = {}
    for k, stride in enumerate((8, 16, 32)):
        n = (416 // stride) ** 2
        scores = np.zeros((1, n, 80), np.float32)
        reg = np.zeros((1, n, 44), np.float32)
        if stride == 8:
            for cell, (cls, score, bins) in cells.items():
                scores[0, cell, cls] = score
                for side, b in enumerate(bins):
                    reg[0, cell, side * 11 + b] = 50.0  # softmax -> all weight on bin b
        outputs[f"Identity_{k}:0"] = scores
        outputs[f"Identity_{k + 3}:0"] = reg
    return _constant_model(path, "input_1:0", [1, 3, 416, 416], outputs)


def test_nanodet_decodes_distances_from_cell_centres_and_maps_back_through_the_letterbox(tmp_path: Path) -> None:
    # cell (row 10, col 20) of the 52 x 52 stride-8 grid: centre (164, 84) in input pixels
    model = _nanodet_model(tmp_path / "n.onnx", {10 * 52 + 20: (0, 0.9, (2, 2, 3, 3))})
    detector = NanoDetDetector(model_path=model)
    found = detector.detect(np.zeros((832, 832, 3), np.uint8))  # scale 0.5, no padding
    assert len(found) == 1 and found.class_id[0] == 0
    np.testing.assert_allclose(found.xyxy[0], np.array([164 - 16, 84 - 16, 164 + 24, 84 + 24]) * 2, atol=0.05)
    assert found.score[0] == pytest.approx(0.9)
    # a 4:3 frame is letterboxed: 416 x 312 plus 52 px of border above and below
    wide = detector.detect(np.zeros((624, 832, 3), np.uint8))
    np.testing.assert_allclose(wide.xyxy[0], np.array([148, 68 - 52, 188, 108 - 52]) * 2, atol=0.05)


def test_nanodet_keeps_the_classes_asked_for_by_name_and_suppresses_duplicates(tmp_path: Path) -> None:
    cells = {
        5 * 52 + 5: (0, 0.9, (2, 2, 2, 2)),
        5 * 52 + 6: (0, 0.8, (2, 2, 2, 2)),  # the same person one cell over: IoU 0.6, suppressed at NMS 0.5
        30 * 52 + 30: (COCO_CLASSES.index("dog"), 0.7, (1, 1, 1, 1)),
        40 * 52 + 40: (0, 0.1, (1, 1, 1, 1)),  # below the score threshold
    }
    model = _nanodet_model(tmp_path / "n.onnx", cells)
    image = np.zeros((416, 416, 3), np.uint8)
    people = NanoDetDetector(model_path=model).detect(image)
    assert people.class_id.tolist() == [0] and people.score[0] == pytest.approx(0.9)
    dogs = NanoDetDetector(model_path=model, classes=["dog"]).detect(image)
    assert dogs.class_id.tolist() == [16]
    animals = NanoDetDetector(model_path=model, classes="animals").detect(image)
    assert animals.class_id.tolist() == [16]
    everything = NanoDetDetector(model_path=model, classes=None, score_threshold=0.05).detect(image)
    assert sorted(everything.class_id.tolist()) == [0, 0, 16]


def test_centernet_reads_the_graphs_own_boxes(tmp_path: Path) -> None:
    rows = np.zeros((1, 100, 6), np.float32)
    rows[0, 0] = [100, 50, 150, 250, 0.8, 0]  # a person
    rows[0, 1] = [300, 300, 400, 350, 0.6, 2]  # a car
    rows[0, 2] = [10, 10, 20, 40, 0.05, 0]  # too weak
    model = _constant_model(
        tmp_path / "c.onnx",
        "tower_0/images:0",
        [1, 512, 512, 3],
        {"tower_0/detections": rows, "tower_0/wh": np.zeros((1, 128, 128, 4), np.float32)},
    )
    found = CenterNetDetector(model_path=model).detect(np.zeros((1024, 1024, 3), np.uint8))
    np.testing.assert_allclose(found.xyxy, [[200, 100, 300, 500]])
    cars = CenterNetDetector(model_path=model, classes=["car"]).detect(np.zeros((512, 512, 3), np.uint8))
    assert cars.class_id.tolist() == [2]


def test_bad_classes_and_models_are_named() -> None:
    with pytest.raises(ValueError, match="unknown COCO class 'deer'"):
        coco_class_ids(["deer"])
    with pytest.raises(FileNotFoundError, match="NanoDet ONNX model not found"):
        NanoDetDetector(model_path="/nonexistent/nanodet.onnx")
    with pytest.raises(ValueError, match="unknown model"):
        bundled_model("yolo")


def test_a_model_not_redistributed_says_how_to_fetch_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKID_CACHE_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="trackid models fetch"):
        make_detector("centernet")


def test_the_shipped_nanodet_finds_the_people_of_a_real_frame(data: Path) -> None:
    capture = cv2.VideoCapture(str(data / "pets09_s2l1" / "vtest.avi"))
    ok, frame = capture.read()
    assert ok
    found = NanoDetDetector().detect(frame)
    # frame 1's ground truth: three people (MOT15 PETS09-S2L1 gt, x, y, w, h)
    gt = np.array([[499, 158, 31.03, 75.17], [258, 219, 32.913, 88.702], [633, 242, 42.338, 81.074]])
    gt[:, 2:] += gt[:, :2]
    from trackid.geometry import iou_matrix

    assert (iou_matrix(gt, found.xyxy).max(axis=1) >= 0.5).all()
    tiled = TiledDetector(NanoDetDetector(), tiles=(2, 2)).detect(frame)
    assert (iou_matrix(gt, tiled.xyxy).max(axis=1) >= 0.5).all()


def test_models_cli_lists_and_refuses_bad_fetches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from trackid.cli import app

    monkeypatch.setenv("TRACKID_CACHE_DIR", str(tmp_path))
    runner = CliRunner()
    listed = runner.invoke(app, ["models", "list"])
    assert listed.exit_code == 0
    assert "nanodet (shipped)" in listed.output and "centernet (fetched): not installed" in listed.output
    shipped = runner.invoke(app, ["models", "fetch", "--tarball", str(tmp_path / "x.tgz"), "--model", "nanodet"])
    assert shipped.exit_code == 2 and "not a fetched model" in shipped.output
    missing = runner.invoke(app, ["models", "fetch", "--tarball", str(tmp_path / "x.tgz")])
    assert missing.exit_code == 2 and "error:" in missing.output and "Traceback" not in missing.output
