"""The LOMO descriptor: its layout (26,960 dims at 128x48, unit blocks), the patch histograms against a direct
count, the mirror invariance that the row maxima give, the `lomo` embedder, and the arguments it refuses."""

from __future__ import annotations

import numpy as np
import pytest

from trackid.embed import EMBEDDERS, LomoDescriptor, LomoEmbedder, make_embedder
from trackid.embed.lomo import _siltp


def _crops(n: int, shape: tuple[int, int] = (128, 48), seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    crops = []
    for _ in range(n):
        # Smooth blobs, not white noise: SILTP and HSV bins then see structure as in a real crop.
        small = rng.integers(0, 256, (shape[0] // 8 + 1, shape[1] // 8 + 1, 3), dtype=np.uint8)
        crops.append(np.kron(small, np.ones((8, 8, 1), np.uint8))[: shape[0], : shape[1]].copy())
    return crops


def test_reference_layout_at_128x48_with_one_unit_block_per_feature_type() -> None:
    descriptor = LomoDescriptor()
    assert descriptor.n_features_ == 26960  # 40 patch rows x (512 + 81 + 81)
    x = descriptor.transform(_crops(3))
    assert x.shape == (3, 26960) and x.dtype == np.float32
    for lo, hi in ((0, 20480), (20480, 23720), (23720, 26960)):
        np.testing.assert_allclose(np.linalg.norm(x[:, lo:hi], axis=1), 1.0, rtol=1e-5)
    assert (x >= 0).all()
    assert descriptor.transform([]).shape == (0, 26960)


def test_crops_of_any_size_are_resized_and_batches_do_not_change_the_result() -> None:
    crops = _crops(2, (200, 90)) + _crops(1, (64, 32), seed=1)
    whole = LomoDescriptor().transform(crops)
    assert whole.shape == (3, 26960)
    np.testing.assert_array_equal(LomoDescriptor(batch_size=1).transform(crops), whole)


def test_patch_row_maxima_equal_a_direct_count_patch_by_patch() -> None:
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 7, (2, 32, 23))
    descriptor = LomoDescriptor(image_size=(32, 23), block_size=6, block_step=3, n_scales=1)
    got = descriptor._row_maxima(codes, 7)
    rows, cols = (32 - 6) // 3 + 1, (23 - 6) // 3 + 1
    expected = np.zeros((2, rows, 7))
    for i in range(2):
        for r in range(rows):
            for c in range(cols):
                patch = codes[i, 3 * r : 3 * r + 6, 3 * c : 3 * c + 6]
                expected[i, r] = np.maximum(expected[i, r], np.bincount(patch.ravel(), minlength=7))
    np.testing.assert_array_equal(got, expected.reshape(2, -1))


@pytest.mark.parametrize("retinex", [False, True])
def test_a_mirrored_crop_gives_the_same_colour_block_and_mirrored_texture_codes(retinex: bool) -> None:
    # Width 40 makes the patch grid symmetric at every scale (40, 20, 10), so mirroring permutes the patches of
    # each row and the row maxima cannot change. SILTP digits of the left and right neighbours swap places.
    descriptor = LomoDescriptor(image_size=(128, 40), retinex=retinex)
    crop = _crops(1, (128, 40), seed=5)[0]
    x, mirrored = descriptor.transform([crop, crop[:, ::-1].copy()])
    colour = 40 * 512  # 40 patch rows at (128, 40): 24 + 11 + 5
    np.testing.assert_allclose(mirrored[:colour], x[:colour], atol=1e-6)
    code = np.arange(81)
    digits = [(code // 3**k) % 3 for k in range(4)]
    swapped = digits[2] + 3 * digits[1] + 9 * digits[0] + 27 * digits[3]
    texture = x[colour:].reshape(2, 40, 81)
    texture_mirrored = mirrored[colour:].reshape(2, 40, 81)
    np.testing.assert_allclose(texture_mirrored[:, :, swapped], texture, atol=1e-6)
    assert not np.allclose(texture_mirrored, texture)  # the codes themselves do change: the test can fail


def test_siltp_codes_ignore_a_brightness_scaling() -> None:
    grey = np.random.default_rng(2).uniform(0.05, 0.6, (1, 20, 20)).astype(np.float32)
    np.testing.assert_array_equal(_siltp(grey * 1.5, 0.3, 3), _siltp(grey, 0.3, 3))
    assert _siltp(grey, 0.3, 3).max() <= 80


def test_lomo_embedder_is_registered_and_returns_unit_vectors_named_by_their_parameters() -> None:
    embedder = make_embedder("lomo", {"siltp_radii": [3]})
    assert isinstance(embedder, LomoEmbedder) and embedder.model_id == "lomo"
    assert embedder.dim == 40 * (512 + 81)
    assert "siltp0.3r3" in embedder.version and embedder.version != LomoEmbedder().version
    v = embedder.embed(_crops(2))
    assert v.shape == (2, embedder.dim)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    assert embedder.embed([]).shape == (0, embedder.dim)
    assert "retinex" in EMBEDDERS.params_model("lomo").model_fields


def test_bad_crops_and_parameters_are_refused_naming_them() -> None:
    with pytest.raises(ValueError, match=r"crops\[1\]"):
        LomoDescriptor().transform([_crops(1)[0], np.zeros((0, 0, 3), np.uint8)])
    with pytest.raises(ValueError, match="block_step"):
        LomoDescriptor(block_size=10, block_step=4)
    with pytest.raises(ValueError, match="n_scales"):
        LomoDescriptor(image_size=(40, 20), n_scales=3)
    with pytest.raises(ValueError, match="siltp_tau"):
        LomoDescriptor(siltp_tau=0)
    with pytest.raises(ValueError, match="lomo"):
        make_embedder("lomo", {"hsv_bin": [8, 8, 8]})
