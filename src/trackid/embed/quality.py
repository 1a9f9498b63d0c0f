"""How much to trust a crop's embedding: blur, size, truncation at the frame edge, overlap with other boxes.

An embedding of a blurred, tiny, cut-off or occluded crop describes the blur, the upsampling, the edge or the other
person more than the target, and one such vector can drag a track's appearance model or a gallery match. The score
is the product of four factors in [0, 1] (any one bad factor is enough to distrust a crop); the tracker and gallery
can gate or weight updates by it. Blank crops (near-constant: lens cap, black frame, plain wall) score 0 and are
counted so a run can report them.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, Field

from trackid.embed.crops import clamp_boxes, crop_boxes
from trackid.images import check_image

__all__ = ["CropQuality", "QualityConfig", "crop_quality", "score_crops"]


class QualityConfig(BaseModel):
    """Constants of the crop-quality score, each with the reason for its default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sharpness_size: tuple[int, int] = Field(
        (128, 64),
        description="(height, width) crops are resized to before measuring blur, so the Laplacian variance of boxes "
        "of different sizes is comparable; the size embedders use for person crops.",
    )
    sharpness_half: float = Field(
        100.0,
        gt=0,
        description="Variance of the Laplacian that scores 0.5 (score = v / (v + half)). 100 is the usual blur "
        "threshold; at 128 x 64 sharp VIPeR crops measure 340-1900 (score >= 0.77), a 1 px Gaussian blur ~80 (0.45).",
    )
    min_height: float = Field(
        24.0,
        ge=0,
        description="Box height (px, inside the frame) scoring 0: below it a person is a few blobs, and resizing to "
        "a model's 128-256 px input invents most of the pixels.",
    )
    full_height: float = Field(
        96.0,
        gt=0,
        description="Box height scoring 1 on size: from here up, detail no longer limits the embedding (VIPeR's "
        "128 px crops rank identities as well as larger ones).",
    )
    edge_margin: float = Field(
        2.0,
        ge=0,
        description="A box this close (px) to the frame border is probably cut by it even when fully inside, because "
        "detectors clip their boxes to the frame.",
    )
    edge_penalty: float = Field(
        0.7,
        ge=0,
        le=1,
        description="Factor for a box touching the border: a person cut by the frame shows an unknown part of their "
        "body, so their vector is less comparable with whole-body ones even when most of the box is visible.",
    )
    blank_std: float = Field(
        3.0,
        ge=0,
        description="Grey-level standard deviation below which a crop is blank: JPEG noise on a flat surface is ~1-2, "
        "the least textured real person crops are well above 10.",
    )


@dataclass(frozen=True, slots=True)
class CropQuality:
    """Per-box quality and its factors, all (N,) arrays aligned with the input boxes."""

    quality: NDArray[np.float64]
    sharpness: NDArray[np.float64]
    size: NDArray[np.float64]
    visibility: NDArray[np.float64]
    overlap: NDArray[np.float64]
    valid: NDArray[np.bool_]
    """The box has pixels inside the frame (else every factor and the quality are 0)."""
    blank: NDArray[np.bool_]

    @property
    def n_blank(self) -> int:
        return int(self.blank.sum())


def crop_quality(image: NDArray[np.uint8], xyxy: ArrayLike, config: QualityConfig | None = None) -> NDArray[np.float64]:
    """(N,) quality in [0, 1] of each box of one frame, the value `Detections.quality` carries."""
    return score_crops(image, xyxy, config).quality


def score_crops(image: NDArray[np.uint8], xyxy: ArrayLike, config: QualityConfig | None = None) -> CropQuality:
    """Quality in [0, 1] of each box of one frame; boxes are clamped to the frame and degenerate ones score 0."""
    cfg = config or QualityConfig()
    check_image(image, "image")
    height, width = image.shape[:2]
    boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    clamped, valid = clamp_boxes(boxes, width, height)
    visibility = _visibility(boxes, clamped, valid, width, height, cfg)
    box_height = clamped[:, 3] - clamped[:, 1]
    size = np.clip((box_height - cfg.min_height) / max(cfg.full_height - cfg.min_height, 1e-9), 0.0, 1.0)
    overlap = 1.0 - _coverage_by_others(clamped, valid)
    crops = crop_boxes(image, clamped)
    sharpness, blank = _sharpness_and_blank(crops, valid, cfg)
    quality = np.where(valid & ~blank, sharpness * size * visibility * overlap, 0.0)
    zero = ~valid
    return CropQuality(
        quality=quality,
        sharpness=np.where(zero, 0.0, sharpness),
        size=np.where(zero, 0.0, size),
        visibility=np.where(zero, 0.0, visibility),
        overlap=np.where(zero, 0.0, overlap),
        valid=valid,
        blank=blank,
    )


def _visibility(
    boxes: NDArray[np.float64],
    clamped: NDArray[np.float64],
    valid: NDArray[np.bool_],
    width: int,
    height: int,
    cfg: QualityConfig,
) -> NDArray[np.float64]:
    """Fraction of the box inside the frame, times `edge_penalty` when it touches the border."""
    finite = np.where(np.isfinite(boxes), boxes, 0.0)
    area = np.prod(np.clip(finite[:, 2:] - finite[:, :2], 0.0, None), axis=1)
    inside = np.prod(clamped[:, 2:] - clamped[:, :2], axis=1)
    fraction = np.divide(inside, area, out=np.zeros_like(area), where=valid & (area > 0))
    m = cfg.edge_margin
    touches = (clamped[:, 0] <= m) | (clamped[:, 1] <= m) | (clamped[:, 2] >= width - m) | (clamped[:, 3] >= height - m)
    return fraction * np.where(touches, cfg.edge_penalty, 1.0)


def _coverage_by_others(boxes: NDArray[np.float64], valid: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Largest fraction of each box covered by any single other valid box (pairwise, vectorised)."""
    n = len(boxes)
    if n < 2:
        return np.zeros(n)
    lo = np.maximum(boxes[:, None, :2], boxes[None, :, :2])
    hi = np.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0.0, None), axis=2)
    inter[~valid, :] = 0.0
    inter[:, ~valid] = 0.0
    np.fill_diagonal(inter, 0.0)
    area = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    return np.divide(inter.max(axis=1), area, out=np.zeros(n), where=area > 0)


def _sharpness_and_blank(
    crops: list[NDArray[np.uint8]], valid: NDArray[np.bool_], cfg: QualityConfig
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Blur score from the variance of the Laplacian, and the near-constant mask, for all valid crops at once."""
    n = len(crops)
    sharpness, blank = np.zeros(n), np.zeros(n, np.bool_)
    index = np.flatnonzero(valid)
    if len(index) == 0:
        return sharpness, blank
    h, w = cfg.sharpness_size
    grey = np.empty((len(index), h, w), np.float32)
    for row, i in enumerate(index):
        grey[row] = cv2.resize(cv2.cvtColor(crops[i], cv2.COLOR_BGR2GRAY), (w, h), interpolation=cv2.INTER_AREA)
    # One Laplacian over the crops stacked vertically; dropping each crop's border rows/columns removes the leak
    # between neighbours.
    laplacian = cv2.Laplacian(grey.reshape(-1, w), cv2.CV_32F).reshape(len(index), h, w)[:, 1:-1, 1:-1]
    variance = laplacian.reshape(len(index), -1).var(axis=1, dtype=np.float64)
    sharpness[index] = variance / (variance + cfg.sharpness_half)
    blank[index] = grey.reshape(len(index), -1).std(axis=1, dtype=np.float64) < cfg.blank_std
    return sharpness, blank
