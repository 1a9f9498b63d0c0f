"""FaceRes embedder (issue #13): its input convention checked on a tiny ONNX model built here; the fetched model,
when installed, on real ORL faces."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from trackid.embed import FaceResEmbedder
from trackid.embed.face_align import FaceLandmarks
from trackid.models import fetched_model_path


def _channel_means_model(path: Path) -> Path:
    """(N, 224, 224, 3) -> mean of each input channel, copied into the first 3 of 1024 outputs."""
    weights = np.zeros((3, 1024), np.float32)
    weights[[0, 1, 2], [0, 1, 2]] = 1.0
    nodes = [
        helper.make_node("ReduceMean", ["input_1:0"], ["m"], axes=[1, 2], keepdims=0),
        helper.make_node("Constant", [], ["w"], value=numpy_helper.from_array(weights, "w")),
        helper.make_node("MatMul", ["m", "w"], ["global_pooling/Mean"]),
    ]
    graph = helper.make_graph(
        nodes,
        "means",
        [helper.make_tensor_value_info("input_1:0", TensorProto.FLOAT, ["N", 224, 224, 3])],
        [helper.make_tensor_value_info("global_pooling/Mean", TensorProto.FLOAT, ["N", 1024])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_faces_go_in_as_rgb_on_the_0_255_scale_in_batches(tmp_path: Path) -> None:
    embedder = FaceResEmbedder(model_path=_channel_means_model(tmp_path / "f.onnx"), batch_size=2)
    blue, red = np.zeros((50, 40, 3), np.uint8), np.zeros((30, 30, 3), np.uint8)
    blue[..., 0] = 200  # BGR
    red[..., 2] = 100
    out = embedder.embed([blue, red, blue])
    assert out.shape == (3, 1024)
    np.testing.assert_allclose(out[:, :3], [[0, 0, 1], [1, 0, 0], [0, 0, 1]], atol=1e-6)  # R, G, B order
    assert embedder.embed([]).shape == (0, 1024)


def test_a_model_without_the_embedding_output_is_refused(tmp_path: Path) -> None:
    model = onnx.load(_channel_means_model(tmp_path / "f.onnx"))
    model.graph.output[0].name = "other"
    model.graph.node[-1].output[0] = "other"
    onnx.save(model, tmp_path / "g.onnx")
    with pytest.raises(ValueError, match="global_pooling/Mean"):
        FaceResEmbedder(model_path=tmp_path / "g.onnx")


def test_the_fetched_model_tells_people_apart(data: Path) -> None:
    if not fetched_model_path("faceres").is_file():
        pytest.skip("faceres not fetched (trackid models fetch); its licence forbids shipping it")
    faces = [
        cv2.cvtColor(cv2.imread(str(data / "faces" / "orl_att" / f"s{p}" / f"{i}.pgm"), 0), cv2.COLOR_GRAY2BGR)
        for p in (1, 2, 3)
        for i in (1, 2)
    ]
    sims = FaceResEmbedder().embed(faces) @ FaceResEmbedder().embed(faces).T
    same = [sims[0, 1], sims[2, 3], sims[4, 5]]
    other = [sims[0, 2], sims[0, 4], sims[2, 4]]
    assert min(same) > max(other)


def test_aligned_chips_undo_a_rotation_of_the_face(data: Path) -> None:
    face = cv2.cvtColor(cv2.imread(str(data / "faces" / "orl_att" / "s1" / "1.pgm"), 0), cv2.COLOR_GRAY2BGR)
    height, width = face.shape[:2]
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), 12, 1.0)
    turned = cv2.warpAffine(face, turn, (width, height), borderMode=cv2.BORDER_REPLICATE)
    aligner = FaceLandmarks()
    chips = aligner.chips([face, turned], 112, 0.1).astype(np.float64)
    plain = np.stack([cv2.resize(c, (112, 112)) for c in (face, turned)]).astype(np.float64)

    def difference(pair: np.ndarray) -> float:
        return float(np.abs(pair[0] - pair[1]).mean())

    assert chips.shape == (2, 112, 112, 3)
    assert difference(chips) < 0.6 * difference(plain)
    eyes = aligner.landmarks([face, turned])[:, [0, 2]].mean(axis=1)
    assert not np.allclose(eyes[0], eyes[1], atol=1.0)  # the landmarks themselves did move


def test_aligned_vectors_carry_their_own_version(tmp_path: Path) -> None:
    path = _channel_means_model(tmp_path / "f.onnx")
    plain, aligned = FaceResEmbedder(model_path=path), FaceResEmbedder(model_path=path, align=True, padding=0.2)
    assert aligned.version == plain.version + "-align0.2"
    face = np.full((60, 50, 3), 90, np.uint8)
    assert aligned.embed([face]).shape == (1, 1024)


def test_the_episode_names_the_aligned_faceres() -> None:
    if not fetched_model_path("faceres").is_file():
        pytest.skip("faceres not fetched (trackid models fetch); its licence forbids shipping it")
    from trackid.pipelines.episode.embed_faces import face_embedder

    aligned, plain = face_embedder("faceres-aligned"), face_embedder("faceres")
    assert isinstance(aligned, FaceResEmbedder) and aligned.version.endswith("-align0.1")
    assert isinstance(plain, FaceResEmbedder) and plain.aligner_ is None
