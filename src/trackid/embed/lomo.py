"""LOMO: the Local Maximal Occurrence descriptor of Liao et al. (CVPR 2015), a hand-crafted re-ID feature.

Why it works across cameras: texture is read as scale-invariant local ternary patterns (SILTP), which do not
change when the brightness of a region is scaled; colour is a joint HSV histogram (optionally of a Retinex image,
as the paper; `LomoParams.retinex` says why it is off here); and for each horizontal row of patches only the
*maximum* occurrence of each pattern over the row is kept, so a person seen from another viewpoint (the same stripe
of clothes, shifted or mirrored) gives nearly the same vector. Three scales (2x2 average pooling) add coarser
context. Plain cosine on it is weak; with a learned metric (`trackid.embed.metric`) it is a strong re-ID feature.

Layout, as the reference LOMO.m: for each scale, for each patch row, a joint HSV histogram (8x8x8 = 512 bins);
then the same for SILTP codes (3^4 = 81 bins) of the grey crop at each radius. Each feature type (HSV, SILTP at
each radius) is log(1 + count) and L2-normalised over all its scales. At 128x48: 40 patch rows,
40 * (512 + 2 * 81) = 26,960 dimensions.

Everything is vectorised over the batch: Gaussian surrounds are matrix products, patch histograms come from one
`bincount` over small cells (a patch is a k x k block of cells), and the row maxima are one `max`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from pydantic import Field
from sklearn.base import BaseEstimator, TransformerMixin

from trackid.embed.base import register_embedder
from trackid.embed.crops import check_crops, l2_normalise, resize_stack
from trackid.registry import BackendParams

__all__ = ["LomoDescriptor", "LomoEmbedder", "LomoParams"]


class LomoParams(BackendParams):
    """The LOMO descriptor's settings; the defaults are the reference's, chosen for 128x48 and 160x60 people."""

    image_size: tuple[int, int] = Field(
        (128, 48),
        description="(height, width) every crop is resized to; block_size and the SILTP radii are in its pixels. "
        "Larger sees finer texture and costs more; the defaults are tuned to 128x48.",
    )
    block_size: int = Field(
        10,
        ge=2,
        description="Side of a square patch in pixels; larger patches give steadier histograms but blur where on "
        "the body a colour is.",
    )
    block_step: int = Field(
        5,
        ge=1,
        description="Stride between patches; must divide block_size. Smaller gives more overlap and more patch rows "
        "(more dimensions, finer vertical position).",
    )
    n_scales: int = Field(
        3,
        ge=1,
        description="Pyramid levels (2x2 average pooling between them); more adds coarse context and dimensions, "
        "each level must still hold one patch.",
    )
    hsv_bins: tuple[int, int, int] = Field(
        (8, 8, 8),
        description="Hue, saturation and value bins of the joint colour histogram; finer bins separate similar "
        "clothes but split one colour seen under two lights.",
    )
    siltp_tau: float = Field(
        0.3,
        gt=0,
        description="SILTP tolerance: a neighbour within (1 +- tau) times the centre counts as equal. Larger is "
        "more robust to noise and shadows, smaller more discriminative.",
    )
    siltp_radii: tuple[int, ...] = Field(
        (3, 5),
        min_length=1,
        description="Neighbour distances of the SILTP codes, one 81-bin histogram block each; several radii "
        "describe texture at several scales.",
    )
    retinex: bool = Field(
        False,
        description="Read colour from a multi-scale Retinex image (MSRCR with the simplest colour balance, as the "
        "paper) instead of the crop itself. Off by default: validated on VIPeR training people only (10 splits, "
        "158 fit / 158 held out, XQDA) it costs 9 points of rank-1 (29.2 vs 38.3 %), and every variant tried on 5 "
        "of those splits cost too (stretch over all channels 33.9 vs 38.6, no colour restoration 24.1, zero or "
        "reflected surround borders 27.7 / 30.3, chromaticity-preserving MSRCP 37.8): the crop-wide surround mixes the "
        "background's colour into the clothes'. As a second view fused with the plain one it helps "
        "(bench/reid.py's fused rows).",
    )
    retinex_sigmas: tuple[float, ...] = Field(
        (5.0, 20.0),
        min_length=1,
        description="Gaussian surround scales of the Retinex (when `retinex`); small sigmas keep local contrast, "
        "large ones even out the illumination of the whole person.",
    )


class LomoDescriptor(TransformerMixin, BaseEstimator):
    """Crops -> LOMO vectors: a stateless scikit-learn transformer (`fit` learns nothing).

    Args: see `LomoParams` (same names and defaults). `batch_size` bounds memory: the histograms of that many
    crops are held at once (about 1 MB per crop at 128x48).

    `transform(crops)` takes a sequence of H x W x 3 uint8 BGR crops of any size and returns (n, n_features_)
    float32; each feature type is a unit block, so a row's norm is sqrt(1 + len(siltp_radii)).
    """

    def __init__(
        self,
        image_size: tuple[int, int] = (128, 48),
        block_size: int = 10,
        block_step: int = 5,
        n_scales: int = 3,
        hsv_bins: tuple[int, int, int] = (8, 8, 8),
        siltp_tau: float = 0.3,
        siltp_radii: tuple[int, ...] = (3, 5),
        retinex: bool = False,
        retinex_sigmas: tuple[float, ...] = (5.0, 20.0),
        batch_size: int = 32,
    ) -> None:
        self.image_size = image_size
        self.block_size = block_size
        self.block_step = block_step
        self.n_scales = n_scales
        self.hsv_bins = hsv_bins
        self.siltp_tau = siltp_tau
        self.siltp_radii = siltp_radii
        self.retinex = retinex
        self.retinex_sigmas = retinex_sigmas
        self.batch_size = batch_size
        self._rows = self._check_params()

    @property
    def n_features_(self) -> int:
        """Width of the output: patch rows over all scales times (HSV bins + 81 per SILTP radius)."""
        hsv = int(np.prod(self.hsv_bins))
        return sum(self._rows) * (hsv + 81 * len(self.siltp_radii))

    def fit(self, X: Sequence[NDArray[np.uint8]] | None = None, y: object = None) -> LomoDescriptor:  # noqa: N803
        """Nothing to learn; present so that the descriptor sits in a scikit-learn pipeline."""
        return self

    def transform(self, X: Sequence[NDArray[np.uint8]]) -> NDArray[np.float32]:  # noqa: N803 (scikit-learn's name)
        """(n, n_features_) float32 LOMO vectors of n BGR uint8 crops; (0, n_features_) for none."""
        self._rows = self._check_params()
        crops = list(X)
        check_crops(crops)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        out = np.empty((len(crops), self.n_features_), np.float32)
        for start in range(0, len(crops), self.batch_size):
            chunk = crops[start : start + self.batch_size]
            out[start : start + len(chunk)] = self._describe(resize_stack(chunk, *self.image_size))
        return out

    def _describe(self, bgr: NDArray[np.uint8]) -> NDArray[np.float32]:
        hue_bins, saturation_bins, value_bins = (int(b) for b in self.hsv_bins)
        hsv_bins = (hue_bins, saturation_bins, value_bins)
        colour = _retinex(bgr, self.retinex_sigmas) if self.retinex else bgr.astype(np.float32) / 255.0
        quantised = _quantised_hsv(colour, hsv_bins)
        grey_u8 = cv2.cvtColor(bgr.reshape(-1, bgr.shape[2], 3), cv2.COLOR_BGR2GRAY).reshape(bgr.shape[:3])
        grey = grey_u8.astype(np.float32) / 255.0
        colour_rows: list[NDArray[np.float32]] = []
        texture_rows: list[list[NDArray[np.float32]]] = [[] for _ in self.siltp_radii]
        for scale in range(self.n_scales):
            if scale:
                quantised = np.floor(_pool(quantised.astype(np.float32))).astype(np.int64)
                grey = _pool(grey)
            h, s, v = quantised[..., 0], quantised[..., 1], quantised[..., 2]
            pattern = (v * saturation_bins + s) * hue_bins + h
            colour_rows.append(self._row_maxima(pattern, hue_bins * saturation_bins * value_bins))
            for i, radius in enumerate(self.siltp_radii):
                texture_rows[i].append(self._row_maxima(_siltp(grey, self.siltp_tau, int(radius)), 81))
        blocks = [np.concatenate(colour_rows, axis=1)] + [np.concatenate(rows, axis=1) for rows in texture_rows]
        return np.concatenate([l2_normalise(np.log1p(block)) for block in blocks], axis=1)

    def _row_maxima(self, codes: NDArray[np.int64], n_bins: int) -> NDArray[np.float32]:
        """(n, rows * n_bins): per patch row, each bin's largest count over the row's patches.

        A patch is k x k cells of g = gcd(block, step) pixels and patches start every step / g cells, so one
        `bincount` over cells and k^2 strided sums give every patch's histogram.
        """
        n, height, width = codes.shape
        block, step = self.block_size, self.block_step
        rows, cols = (height - block) // step + 1, (width - block) // step + 1
        g = math.gcd(block, step)
        k, stride = block // g, step // g
        cell_rows, cell_cols = ((rows - 1) * step + block) // g, ((cols - 1) * step + block) // g
        used = codes[:, : cell_rows * g, : cell_cols * g]
        cell = (np.arange(cell_rows)[:, None] * cell_cols + np.arange(cell_cols)[None, :]).repeat(g, 0).repeat(g, 1)
        index = (np.arange(n)[:, None, None] * (cell_rows * cell_cols) + cell[None]) * n_bins + used
        # A patch holds at most block^2 pixels: small counts, summed in the narrowest type that holds them.
        dtype = np.uint8 if block * block < 256 else np.uint16 if block * block < 65536 else np.int64
        counts: NDArray[Any] = np.bincount(index.ravel(), minlength=n * cell_rows * cell_cols * n_bins).astype(dtype)
        cells = counts.reshape(n, cell_rows, cell_cols, n_bins)
        span_r, span_c = stride * (rows - 1) + 1, stride * (cols - 1) + 1
        strips = cells[:, :span_r:stride].copy()  # k cells tall, one cell wide
        for a in range(1, k):
            strips += cells[:, a : a + span_r : stride]
        patches = strips[:, :, :span_c:stride].copy()
        for b in range(1, k):
            patches += strips[:, :, b : b + span_c : stride]
        return patches.max(axis=2).reshape(n, rows * n_bins).astype(np.float32)

    def _check_params(self) -> list[int]:
        """Patch rows at each scale; ValueError naming the parameter that cannot work."""
        height, width = (int(v) for v in self.image_size)
        if self.block_size < 2 or self.block_step < 1 or self.block_size % self.block_step:
            raise ValueError(
                f"block_step ({self.block_step}) must be >= 1 and divide block_size ({self.block_size}, >= 2)"
            )
        if len(self.hsv_bins) != 3 or min(self.hsv_bins) < 1:
            raise ValueError(f"hsv_bins must be three positive counts, got {self.hsv_bins}")
        if self.siltp_tau <= 0:
            raise ValueError(f"siltp_tau must be > 0, got {self.siltp_tau}")
        if not self.siltp_radii or min(self.siltp_radii) < 1:
            raise ValueError(f"siltp_radii must be positive integers, got {self.siltp_radii}")
        if not self.retinex_sigmas or min(self.retinex_sigmas) <= 0:
            raise ValueError(f"retinex_sigmas must be positive, got {self.retinex_sigmas}")
        if self.n_scales < 1:
            raise ValueError(f"n_scales must be >= 1, got {self.n_scales}")
        rows = []
        for scale in range(self.n_scales):
            if height < self.block_size or width < self.block_size:
                raise ValueError(
                    f"image_size {tuple(self.image_size)} is too small for n_scales={self.n_scales}: scale {scale} is "
                    f"{height}x{width}, smaller than block_size={self.block_size}"
                )
            rows.append((height - self.block_size) // self.block_step + 1)
            height, width = height // 2, width // 2
        return rows


@register_embedder("lomo", params=LomoParams)
class LomoEmbedder:
    """LOMO vectors as unit embeddings (the three unit blocks joined and scaled by 1/sqrt(3)).

    Plain cosine on LOMO is weak (VIPeR rank-1 ~15 %); its strength is with a learned metric: wrap it in
    `MetricEmbedder` (registered as `learned`) with a metric fitted on labelled pairs.

    Args: see `LomoParams`.
    """

    model_id = "lomo"

    def __init__(
        self,
        image_size: tuple[int, int] = (128, 48),
        block_size: int = 10,
        block_step: int = 5,
        n_scales: int = 3,
        hsv_bins: tuple[int, int, int] = (8, 8, 8),
        siltp_tau: float = 0.3,
        siltp_radii: tuple[int, ...] = (3, 5),
        retinex: bool = False,
        retinex_sigmas: tuple[float, ...] = (5.0, 20.0),
    ) -> None:
        self.descriptor = LomoDescriptor(
            image_size, block_size, block_step, n_scales, hsv_bins, siltp_tau, tuple(siltp_radii), bool(retinex),
            tuple(retinex_sigmas),
        )  # fmt: skip
        self.dim = self.descriptor.n_features_
        h, w = image_size
        self.version = (
            f"{h}x{w}-b{block_size}s{block_step}-x{n_scales}-hsv{'x'.join(map(str, hsv_bins))}"
            f"-siltp{siltp_tau:g}r{','.join(map(str, siltp_radii))}"
            + (f"-retinex{','.join(f'{s:g}' for s in retinex_sigmas)}" if retinex else "")
        )

    def embed(self, crops: Sequence[NDArray[np.uint8]]) -> NDArray[np.float32]:
        return l2_normalise(self.descriptor.transform(crops))


def _retinex(bgr: NDArray[np.uint8], sigmas: Sequence[float]) -> NDArray[np.float32]:
    """Multi-scale Retinex with colour restoration (Jobson et al. 1997), then the simplest colour balance.

    (n, H, W, 3) in [0, 1]. The gain and offset of MSRCR are left out: the per-channel stretch between the 1st
    and 99th percentiles that follows (1 % clipped at each end) undoes any positive affine map.
    """
    n, height, width, _ = bgr.shape
    image = bgr.astype(np.float32) + 1.0  # +1: log of black pixels
    log_image = np.log(image)
    reflectance = np.zeros_like(image)
    for sigma in sigmas:
        reflectance += log_image - np.log(_gaussian_surround(image, float(sigma)))
    reflectance /= len(sigmas)
    # Colour restoration, alpha = 125 as Jobson et al.; its beta scales the product and drops out in the stretch.
    restoration = np.log(125.0 * image) - np.log(image.sum(axis=3, keepdims=True))
    msrcr = (reflectance * restoration).transpose(0, 3, 1, 2).reshape(n * 3, height * width)
    low, high = np.quantile(msrcr, [0.01, 0.99], axis=1, keepdims=True)
    stretched = np.clip((msrcr - low) / np.maximum(high - low, 1e-12), 0.0, 1.0)
    return stretched.reshape(n, 3, height, width).transpose(0, 2, 3, 1).astype(np.float32)


def _gaussian_surround(image: NDArray[np.float32], sigma: float) -> NDArray[np.float32]:
    """Each channel of (n, H, W, C) blurred by a Gaussian truncated at 4 sigma with replicated borders.

    As two matrix products (rows, then columns) over the whole batch: the kernels (sigma 20 spans 161 pixels)
    are wider than the 48-pixel crops, where BLAS is far faster than a sliding filter.
    """
    n, height, width, channels = image.shape
    vertical, horizontal = _blur_matrix(height, sigma), _blur_matrix(width, sigma)
    columns = vertical @ image.transpose(1, 0, 2, 3).reshape(height, -1)
    blurred = columns.reshape(height, n, width, channels).transpose(1, 0, 3, 2) @ horizontal.T
    return np.asarray(blurred.transpose(0, 1, 3, 2), np.float32)


def _blur_matrix(size: int, sigma: float) -> NDArray[np.float32]:
    """(size, size) matrix applying a 1-D Gaussian with replicated borders: out = K @ signal."""
    radius = math.ceil(4 * sigma)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    source = np.clip(np.arange(size)[:, None] + np.arange(-radius, radius + 1)[None, :], 0, size - 1)
    matrix = np.zeros((size, size))
    np.add.at(matrix, (np.repeat(np.arange(size), 2 * radius + 1), source.ravel()), np.tile(taps, size))
    return matrix.astype(np.float32)


def _quantised_hsv(rgb01_bgr: NDArray[np.float32], bins: tuple[int, int, int]) -> NDArray[np.int64]:
    """(n, H, W, 3) hue, saturation, value bin indices of a BGR image in [0, 1]."""
    n, height, width, _ = rgb01_bgr.shape
    hsv = cv2.cvtColor(rgb01_bgr.reshape(n * height, width, 3), cv2.COLOR_BGR2HSV).reshape(n, height, width, 3)
    unit = hsv / np.array([360.0, 1.0, 1.0], np.float32)  # float hue is in degrees
    levels = np.array(bins)
    return np.minimum(np.floor(unit * levels).astype(np.int64), levels - 1)


def _pool(images: NDArray[np.float32]) -> NDArray[np.float32]:
    """2x2 average pooling over axes 1 and 2 (an odd last row or column is dropped, as the reference does)."""
    n, height, width = images.shape[:3]
    h, w = height // 2, width // 2
    cut = images[:, : 2 * h, : 2 * w]
    return cut.reshape(n, h, 2, w, 2, *images.shape[3:]).mean(axis=(2, 4))


def _siltp(grey: NDArray[np.float32], tau: float, radius: int) -> NDArray[np.int64]:
    """Scale-invariant local ternary patterns, 4 neighbours at `radius` (borders replicated): codes 0..80.

    Each neighbour is a ternary digit: 0 within (1 +- tau) x centre, 1 darker, 2 brighter; digits weighted 1, 3,
    9, 27 for the right, upper, left and lower neighbour, as the reference SILTP.m.
    """
    r = radius
    padded = np.pad(grey, ((0, 0), (r, r), (r, r)), mode="edge")
    height, width = grey.shape[1:]
    lower, upper = (1.0 - tau) * grey, (1.0 + tau) * grey
    neighbours = (
        padded[:, r : r + height, 2 * r :],  # right
        padded[:, :height, r : r + width],  # up
        padded[:, r : r + height, :width],  # left
        padded[:, 2 * r :, r : r + width],  # down
    )
    code = np.zeros(grey.shape, np.int64)
    for weight, neighbour in zip((1, 3, 9, 27), neighbours, strict=True):
        code += weight * ((neighbour < lower).astype(np.int64) + 2 * (neighbour > upper))
    return code
