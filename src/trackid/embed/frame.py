"""The embed stage for one frame: crop each box, score its quality, embed the crops worth embedding.

This is the one call a pipeline needs between tracking and tracklets; it keeps the crop/quality/batching policy in
`embed/` so every front door applies the same one.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from trackid.embed.base import Embedder
from trackid.embed.crops import crop_boxes
from trackid.embed.quality import CropQuality, QualityConfig, score_crops
from trackid.types import Detections

__all__ = ["embed_detections"]


def embed_detections(
    embedder: Embedder,
    image: NDArray[np.uint8],
    detections: Detections,
    *,
    min_quality: float = 0.0,
    quality_config: QualityConfig | None = None,
) -> tuple[Detections, CropQuality]:
    """`detections` with `embedding` (N, dim) and `quality` filled, and the quality breakdown.

    Boxes outside the frame, blank crops and crops below `min_quality` get an all-zero embedding (cosine 0 with
    everything) and keep their quality score, so consumers can tell "not embedded" from "embedded" by either.
    Raising `min_quality` saves embedding time and keeps poor vectors out of appearance models, at the risk of
    leaving occluded or distant people with no appearance at all.
    """
    scores = score_crops(image, detections.xyxy, quality_config)
    crops = crop_boxes(image, detections.xyxy)
    keep = scores.valid & ~scores.blank & (scores.quality >= min_quality)
    embedding = np.zeros((len(detections), embedder.dim), np.float32)
    index = np.flatnonzero(keep)
    if len(index):
        embedding[index] = embedder.embed([crops[i] for i in index])
    return replace(detections, embedding=embedding, quality=scores.quality), scores
