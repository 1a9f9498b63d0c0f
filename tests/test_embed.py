"""Embedders: the torch-free MobileNetV2 matches torch, vectors are unit length and batch-invariant, real re-ID and
face data rank same-identity pairs higher, bad input fails naming it, and crop quality moves the right way."""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

from trackid.artifacts import CACHE_ENV
from trackid.embed import (
    EMBEDDERS,
    ColourTextureEmbedder,
    DlibFaceEmbedder,
    EnsembleEmbedder,
    MobileNetV2Embedder,
    OnnxEmbedder,
    QualityConfig,
    crop_boxes,
    crop_quality,
    embed_detections,
    fuse_scores,
    make_embedder,
    score_crops,
)
from trackid.embed.mobilenet import default_weights_path
from trackid.embed.torch_pickle import load_state_dict
from trackid.types import Detections

GOLDEN = Path(__file__).parent / "data" / "mobilenetv2_golden.npz"
VIPER_IDS = 200  # the first 200 of VIPeR's 632 people: chance rank-1 is 0.5 %

Crops = list[NDArray[np.uint8]]


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One conversion per test session, in a temporary cache instead of the user's."""
    path = tmp_path_factory.mktemp("trackid-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, str(path))
        yield path


@pytest.fixture(scope="session")
def mobilenet(cache_dir: Path) -> MobileNetV2Embedder:
    return MobileNetV2Embedder()


@pytest.fixture(scope="session")
def viper(data: Path) -> tuple[Crops, Crops]:
    """(camera A crops, camera B crops), row i of both the same person."""
    folder = data / "reid" / "viper"
    ids = sorted({p.name[:4] for p in folder.glob("*.png")})[:VIPER_IDS]
    return [_read(folder / f"{i}0001.png") for i in ids], [_read(folder / f"{i}0002.png") for i in ids]


@pytest.fixture
def textured() -> NDArray[np.uint8]:
    """A 240 x 320 frame of sharp random texture (synthetic), for quality tests that need no data."""
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    return np.asarray(cv2.resize(small, (320, 240), interpolation=cv2.INTER_NEAREST), np.uint8)


# --- MobileNetV2 -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(224, 224), (256, 128)])
def test_mobilenet_matches_torch_on_real_crops(cache_dir: Path, data: Path, size: tuple[int, int]) -> None:
    golden = np.load(GOLDEN)
    crops = [_read(data / "reid" / "viper" / str(name)) for name in golden["names"]]
    embedder = MobileNetV2Embedder(input_size=size)
    key = f"{size[0]}x{size[1]}"
    expected = golden[f"embedding_{key}"].astype(np.float32)
    # float16 storage limits agreement to ~1e-4; a wrong layer or preprocessing step differs by > 1e-2
    assert np.abs(embedder.embed(crops) - expected).max() < 1e-3
    raw_norm = np.linalg.norm(embedder.raw_features(crops), axis=1)
    np.testing.assert_allclose(raw_norm, golden[f"norm_{key}"], rtol=1e-4)


def test_mobilenet_conversion_is_cached_by_weights_hash(mobilenet: MobileNetV2Embedder, cache_dir: Path) -> None:
    path = mobilenet.onnx_path_
    assert path.parent == cache_dir / "models" and path.suffix == ".onnx"
    assert mobilenet.version.split("-")[0] in path.name  # the weights' hash names the file and the version
    mtime = path.stat().st_mtime_ns
    again = MobileNetV2Embedder(input_size=(128, 64))
    assert again.onnx_path_ == path and path.stat().st_mtime_ns == mtime
    assert again.version != mobilenet.version  # the input size changes the vectors, so it is part of the version
    assert mobilenet.model_id == "mobilenetv2-imagenet-dsr" and mobilenet.dim == 1280
    assert not list(path.parent.glob("*.tmp"))


def test_mobilenet_unit_norm_and_batch_invariance(mobilenet: MobileNetV2Embedder, viper: tuple[Crops, Crops]) -> None:
    crops = viper[0][:40]
    batched = mobilenet.embed(crops)
    assert batched.shape == (40, 1280) and batched.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    one_by_one = MobileNetV2Embedder(batch_size=1).embed(crops)
    assert np.abs(batched - one_by_one).max() < 1e-5
    assert mobilenet.embed([]).shape == (0, 1280)


def test_weights_reader_refuses_code_and_names_missing_files(tmp_path: Path) -> None:
    state = load_state_dict(default_weights_path())
    assert state["features.0.0.weight"].shape == (32, 3, 3, 3) and len(state) == 312
    hostile = tmp_path / "hostile.pt"
    hostile.write_bytes(pickle.dumps(os.getcwd, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load posix\.getcwd"):
        load_state_dict(hostile)
    zipped = tmp_path / "new.pt"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("archive/data.pkl", b"")
    with pytest.raises(ValueError, match="zip serialization"):
        load_state_dict(zipped)
    with pytest.raises(FileNotFoundError, match=r"nowhere\.pt"):
        MobileNetV2Embedder(weights_path=tmp_path / "nowhere.pt")


# --- re-ID and face sanity on real data ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "rank1_floor", "rank10_floor"),
    # measured on these 200 people: MobileNetV2 10.5 % / 33.5 %, colour 10.0 % / 49.5 %, both 17.5 % / 51.0 %
    [("mobilenetv2", 0.08, 0.28), ("colour", 0.075, 0.43), ("ensemble", 0.14, 0.45)],
)
def test_reid_ranks_the_same_person_higher_across_cameras(
    mobilenet: MobileNetV2Embedder, viper: tuple[Crops, Crops], name: str, rank1_floor: float, rank10_floor: float
) -> None:
    embedder = {
        "mobilenetv2": mobilenet,
        "colour": ColourTextureEmbedder(),
        "ensemble": EnsembleEmbedder([mobilenet, ColourTextureEmbedder()]),
    }[name]
    sims = embedder.embed(viper[0]) @ embedder.embed(viper[1]).T
    same, different = np.diag(sims), sims[~np.eye(len(sims), dtype=bool)]
    assert same.mean() > different.mean() + 0.03
    rank = (sims > same[:, None]).sum(axis=1)
    assert (rank == 0).mean() >= rank1_floor
    assert (rank < 10).mean() >= rank10_floor


def test_dlib_faces_of_one_person_are_closer(data: Path) -> None:
    embedder = DlibFaceEmbedder()
    people = [f"s{k}" for k in range(1, 7)]
    crops = [_grey_to_bgr(data / "faces" / "orl_att" / p / f"{j}.pgm") for p in people for j in (1, 2, 3)]
    labels = np.repeat(np.arange(len(people)), 3)
    emb = embedder.embed(crops)
    assert emb.shape == (18, 128)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    sims = emb @ emb.T
    same = (labels[:, None] == labels[None]) & ~np.eye(len(labels), dtype=bool)
    assert sims[same].mean() > sims[labels[:, None] != labels[None]].mean() + 0.05
    raw = embedder.raw_features(crops)
    assert 1.3 < np.linalg.norm(raw, axis=1).mean() < 1.6  # dlib's own scale, where its 0.6 rule applies
    distance = np.linalg.norm(raw[:, None] - raw[None], axis=2)
    assert np.median(distance[same]) < 0.6 < np.median(distance[labels[:, None] != labels[None]])


def test_dlib_names_a_missing_model(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"dlib_face_recognition_resnet_model_v1\.dat"):
        DlibFaceEmbedder(models_dir=tmp_path)


# --- generic ONNX -------------------------------------------------------------------------------------------------


def test_onnx_embedder_runs_a_user_model(tmp_path: Path) -> None:
    projection = np.random.default_rng(1).normal(size=(3, 8)).astype(np.float32)
    path = _tiny_model(tmp_path / "tiny.onnx", projection, batch="N")
    embedder = OnnxEmbedder(path, input_size=(32, 16))
    crops = [np.full((40, 20, 3), (10 * k, 100, 200 - k), np.uint8) for k in range(5)]
    emb = embedder.embed(crops)
    assert embedder.dim == 8 and embedder.model_id == "onnx:tiny" and emb.shape == (5, 8)
    # The reference: RGB order, ImageNet normalisation, channel means, projection, unit length.
    rgb = np.array([c[0, 0, ::-1] for c in crops], np.float64) / 255.0
    expected = ((rgb - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]) @ projection
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert np.abs(emb - expected).max() < 1e-5
    fixed = OnnxEmbedder(_tiny_model(tmp_path / "fixed.onnx", projection, batch=4), input_size=(32, 16))
    assert fixed.batch_size == 4 and np.abs(fixed.embed(crops) - emb).max() < 1e-5  # 5 crops: one padded batch
    with pytest.raises(FileNotFoundError, match=r"missing\.onnx"):
        OnnxEmbedder(tmp_path / "missing.onnx")


# --- bad input -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.zeros((0, 5, 3), np.uint8), r"crops\[1\] has zero size"),
        (np.zeros((8, 8, 3), np.float32), r"crops\[1\] must have dtype uint8"),
        (np.zeros((8, 8), np.uint8), r"crops\[1\] must have shape \(H, W, 3\)"),
        ([[1, 2, 3]], r"crops\[1\] must be a numpy array"),
    ],
)
def test_bad_crops_fail_naming_the_crop(mobilenet: MobileNetV2Embedder, bad: object, message: str) -> None:
    good = np.zeros((16, 8, 3), np.uint8)
    for embedder in (mobilenet, ColourTextureEmbedder(), EnsembleEmbedder([ColourTextureEmbedder()])):
        with pytest.raises(ValueError, match=message):
            embedder.embed([good, bad])


# --- colour baseline and ensemble ---------------------------------------------------------------------------------


def test_colour_baseline_separates_colours_and_tolerates_mirroring() -> None:
    embedder = ColourTextureEmbedder()
    person = _two_tone((30, 30, 200), (200, 40, 20))
    other = _two_tone((40, 200, 40), (40, 200, 220))
    swapped = np.concatenate([person[60:], person[:60]])
    emb = embedder.embed([person, person[:, ::-1].copy(), cv2.resize(person, (25, 60)), swapped, other])
    assert emb.shape == (5, embedder.dim) and embedder.dim == 6 * (8 * 4 + 4 + 8)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    sims = emb @ emb[0]
    assert sims[1] > 0.99 and sims[2] > 0.9  # a mirrored or smaller view of the same clothes
    # Other clothes, or the same colours in the wrong body bands, share only the (equal) texture and brightness.
    assert sims[3] < 0.7 and sims[4] < 0.7


def test_ensemble_cosine_is_the_weighted_mean_of_member_cosines(tmp_path: Path) -> None:
    colour = ColourTextureEmbedder()
    tiny = OnnxEmbedder(
        _tiny_model(tmp_path / "tiny.onnx", np.eye(3, 8, dtype=np.float32), batch="N"), input_size=(32, 16)
    )
    ensemble = EnsembleEmbedder([colour, tiny], weights=[3.0, 1.0])
    rng = np.random.default_rng(3)
    crops = [rng.integers(0, 256, (48, 24, 3), dtype=np.uint8) for _ in range(6)]
    emb = ensemble.embed(crops)
    assert emb.shape == (6, colour.dim + 8) and ensemble.dim == colour.dim + 8
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    member_sims = [colour.embed(crops) @ colour.embed(crops).T, tiny.embed(crops) @ tiny.embed(crops).T]
    np.testing.assert_allclose(emb @ emb.T, 0.75 * member_sims[0] + 0.25 * member_sims[1], atol=1e-5)
    np.testing.assert_allclose(ensemble.member_similarities(emb, emb), np.stack(member_sims), atol=1e-5)
    assert ensemble.model_id == "ensemble(colour-texture-hist,onnx:tiny)"
    from_config = make_embedder("ensemble", members=[{"name": "colour"}, {"name": "colour", "params": {"stripes": 4}}])
    assert isinstance(from_config, EnsembleEmbedder) and from_config.dim == colour.dim + 4 * 44


def test_fuse_scores_weights_and_skips_missing_members() -> None:
    body = np.array([[0.2, 0.8], [0.5, 0.1]])
    face = np.array([[0.6, np.nan], [np.nan, np.nan]])
    fused = fuse_scores([body, face], weights=[1.0, 3.0])
    np.testing.assert_allclose(fused, [[0.5, 0.8], [0.5, 0.1]])
    assert np.isnan(fuse_scores([face, face])[1, 1])


def test_every_backend_is_registered() -> None:
    assert {"mobilenetv2", "mobilenetv2-pyramid", "dlib-face", "onnx", "colour", "ensemble"} <= set(EMBEDDERS)


def test_pyramid_pools_two_depths_in_stripes_and_ranks_better(
    cache_dir: Path, mobilenet: MobileNetV2Embedder, viper: tuple[Crops, Crops]
) -> None:
    pyramid = make_embedder("mobilenetv2-pyramid")
    assert pyramid.dim == (320 + 1280) * 4 and pyramid.model_id != mobilenet.model_id
    vectors = pyramid.embed(viper[0][:5])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(pyramid.embed(viper[0][2:3])[0], vectors[2], atol=1e-5)  # batch-invariant
    assert pyramid.embed([]).shape == (0, pyramid.dim)
    # measured on these 200 people: rank-1 13.5 % (global pooling of the last layer: 10.5 %), rank-10 37.5 %
    sims = pyramid.embed(viper[0]) @ pyramid.embed(viper[1]).T
    rank = (sims > np.diag(sims)[:, None]).sum(axis=1)
    assert (rank == 0).mean() >= 0.12 and (rank < 10).mean() >= 0.34
    with pytest.raises(ValueError, match="are not blocks of MobileNetV2"):
        make_embedder("mobilenetv2-pyramid", taps=["features.99"])
    with pytest.raises(ValueError, match="stripes: Input should be greater than or equal to 0"):
        make_embedder("mobilenetv2-pyramid", stripes=-1)


def test_white_balance_makes_colour_histograms_ignore_a_colour_cast(viper: tuple[Crops, Crops]) -> None:
    crop = viper[0][0]
    cast = np.clip(crop.astype(np.float32) * [0.7, 1.0, 1.3], 0, 255).astype(np.uint8)  # bluish camera, BGR
    plain, balanced = ColourTextureEmbedder(), ColourTextureEmbedder(white_balance=True)
    assert balanced.version.endswith("-wb") and balanced.version != plain.version
    same_plain = float(plain.embed([crop])[0] @ plain.embed([cast])[0])
    same_balanced = float(balanced.embed([crop])[0] @ balanced.embed([cast])[0])
    assert same_balanced > 0.97 and same_balanced > same_plain + 0.05


# --- crops and quality ------------------------------------------------------------------------------------------


def test_crop_boxes_clamps_and_flags_degenerate_boxes(textured: NDArray[np.uint8]) -> None:
    boxes = [[10.4, 20.6, 30.2, 60.0], [-15, -5, 10, 30], [300, 200, 400, 300], [400, 10, 500, 50], [5, 5, 5, 40]]
    crops = crop_boxes(textured, boxes)
    assert [c.shape for c in crops] == [(40, 21, 3), (30, 10, 3), (40, 20, 3), (0, 0, 3), (0, 0, 3)]
    np.testing.assert_array_equal(crops[0], textured[20:60, 10:31])
    quality = score_crops(textured, boxes)
    np.testing.assert_array_equal(quality.valid, [True, True, True, False, False])
    assert (quality.quality[3:] == 0).all() and (quality.quality[:3] > 0).all()


def test_quality_drops_with_blur_size_truncation_and_overlap(textured: NDArray[np.uint8]) -> None:
    box = [[100, 40, 150, 190]]
    sharp = crop_quality(textured, box)[0]
    blurs = [crop_quality(cv2.GaussianBlur(textured, (0, 0), s), box)[0] for s in (1.0, 2.0, 4.0)]
    assert sharp > blurs[0] > blurs[1] > blurs[2]
    heights = [crop_quality(textured, [[100, 40, 150, 40 + h]])[0] for h in (150, 60, 30)]
    assert heights[0] > heights[1] > heights[2]
    inside, touching, half_out = (
        crop_quality(textured, [b])[0] for b in ([100, 40, 150, 190], [270, 40, 320, 190], [295, 40, 345, 190])
    )
    assert inside > touching > half_out > 0
    alone = score_crops(textured, [[100, 40, 150, 190]])
    overlapped = score_crops(textured, [[100, 40, 150, 190], [130, 40, 180, 190], [20, 10, 60, 100]])
    assert overlapped.overlap[0] == pytest.approx(1 - 20 / 50)
    assert overlapped.overlap[2] == 1.0 and alone.quality[0] > overlapped.quality[0]
    assert all(0.0 <= q <= 1.0 for q in overlapped.quality)


def test_blank_crops_score_zero_and_are_counted(textured: NDArray[np.uint8]) -> None:
    frame = textured.copy()
    frame[:, 200:] = 90  # a flat wall
    frame[:, 200:] += np.random.default_rng(4).integers(0, 3, frame[:, 200:].shape, dtype=np.uint8)
    report = score_crops(frame, [[20, 20, 70, 170], [210, 20, 260, 170], [230, 30, 280, 180]])
    np.testing.assert_array_equal(report.blank, [False, True, True])
    assert report.n_blank == 2 and (report.quality[1:] == 0).all()
    assert QualityConfig().sharpness_half == 100.0
    with pytest.raises(ValueError, match="extra"):
        QualityConfig(unknown=1)


def test_embed_detections_fills_embedding_and_quality(textured: NDArray[np.uint8]) -> None:
    embedder = ColourTextureEmbedder()
    detections = Detections.from_arrays([[20, 20, 70, 170], [400, 10, 500, 50], [100, 40, 150, 190]])
    out, report = embed_detections(embedder, textured, detections, min_quality=0.0)
    assert out.embedding.shape == (3, embedder.dim)
    np.testing.assert_allclose(np.linalg.norm(out.embedding, axis=1), [1, 0, 1], atol=1e-5)
    np.testing.assert_array_equal(out.quality, report.quality)
    gated, _ = embed_detections(embedder, textured, detections, min_quality=1.01)
    assert not gated.embedding.any()
    with pytest.raises(ValueError, match=r"image has zero size"):
        embed_detections(embedder, np.zeros((0, 0, 3), np.uint8), detections)
    with pytest.raises(ValueError, match="image must have dtype uint8"):
        crop_quality(textured.astype(np.float32), [[0, 0, 5, 5]])


# --- helpers ---------------------------------------------------------------------------------------------------------


def _read(path: Path) -> NDArray[np.uint8]:
    image = cv2.imread(str(path))
    assert image is not None, f"cannot read {path}"
    return np.asarray(image, np.uint8)


def _two_tone(top: tuple[int, int, int], bottom: tuple[int, int, int]) -> NDArray[np.uint8]:
    """A synthetic 120 x 50 'person': one colour above the waist, another below, with mild noise."""
    image = np.zeros((120, 50, 3), np.uint8)
    image[:60], image[60:] = top, bottom
    return np.asarray(cv2.add(image, np.random.default_rng(2).integers(0, 20, image.shape, dtype=np.uint8)))


def _grey_to_bgr(path: Path) -> NDArray[np.uint8]:
    grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    assert grey is not None, f"cannot read {path}"
    return np.asarray(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR), np.uint8)


def _tiny_model(path: Path, projection: NDArray[np.float32], batch: int | str) -> Path:
    """NCHW float -> global average pool -> linear projection: small enough to check by hand."""
    nodes = [
        helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "projection"], ["features"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, "H", "W"])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [batch, projection.shape[1]])],
        [numpy_helper.from_array(projection, "projection")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(path))
    return path
