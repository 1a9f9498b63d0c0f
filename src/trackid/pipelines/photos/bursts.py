"""A burst's individuals as tracklets: photos are the degenerate video, a burst one short clip of one camera.

Each photo is decoded and searched (detector boxes, or the whole image); detections in consecutive photos of the
burst that overlap are one individual, as a tracker would link them. Each individual leaves as one `Tracklet`:
frames are the photos' positions in the burst (1-based), times their capture times, and every crop is kept (a
burst has few) so that all of them are embedded and pooled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

from trackid.config import PhotosConfig
from trackid.detect import Detector
from trackid.embed.crops import crop_boxes, l2_normalise
from trackid.geometry import iou_matrix
from trackid.images import read_image
from trackid.pipelines.video import build_detector
from trackid.sources.photos import MIN_PHOTO_SIDE, Photo, SkippedFile
from trackid.types import Detections, Tracklet

__all__ = ["BURST_LINK_IOU", "PhotoCropper", "PhotoIndividuals", "burst_tracklets", "link_burst", "pool_embedding"]

BURST_LINK_IOU = 0.3
"""Detections in consecutive photos of a burst with at least this IoU are the same individual."""
_UNIT_FRAME = np.array([[0.0, 0.0, 1.0, 1.0]])
"""Where whole-image individuals are linked: to each other always (IoU 1), to a detection never (IoU ~0)."""


@dataclass(frozen=True, slots=True)
class PhotoIndividuals:
    """The individuals found in one photo: `found` (boxes in pixels, detector scores, classes) and their crops.
    With `whole_image`, nothing was detected and the photo is one individual, its box the photo's frame."""

    found: Detections
    crops: list[NDArray[np.uint8]]
    whole_image: bool


class PhotoCropper:
    """Decoded photo -> its individuals: the detector's boxes above `min_score` whose crops are at least
    `MIN_PHOTO_SIDE` px a side, or the whole image when there is no detector (or it found none such and the
    whole-image fallback is on)."""

    def __init__(self, config: PhotosConfig) -> None:
        self.detector: Detector | None = build_detector(config.detector) if config.detector is not None else None
        self.min_score = config.detector.min_score if config.detector is not None else 0.0
        self.fallback = config.whole_image_fallback

    def __call__(self, image: NDArray[np.uint8]) -> PhotoIndividuals:
        if self.detector is None:
            return _whole(image)
        found = self.detector.detect(image)
        found = found[found.score >= self.min_score]
        crops = crop_boxes(image, found.xyxy)
        visible = np.array([min(crop.shape[:2]) >= MIN_PHOTO_SIDE for crop in crops], dtype=bool)
        if not visible.any() and self.fallback:
            return _whole(image)
        return PhotoIndividuals(found[visible], [c for c, v in zip(crops, visible, strict=True) if v], False)


def burst_tracklets(burst: Sequence[Photo], cropper: PhotoCropper, skipped: list[SkippedFile]) -> list[Tracklet]:
    """The burst's individuals, one tracklet each (embedding still empty: see `pool_embedding`). Photos that
    cannot be decoded or show no one are added to `skipped` with the reason; the others still count."""
    found: list[tuple[int, PhotoIndividuals]] = []
    for index, photo in enumerate(burst):
        try:
            image = read_image(photo.path)
        except (OSError, ValueError) as exc:
            skipped.append(SkippedFile(photo.path, str(exc).removeprefix(f"{photo.path}: ")))
            continue
        individuals = cropper(image)
        if not individuals.crops:
            skipped.append(SkippedFile(photo.path, "no individual detected"))
            continue
        found.append((index, individuals))
    return link_burst(burst, found)


def link_burst(burst: Sequence[Photo], found: Sequence[tuple[int, PhotoIndividuals]]) -> list[Tracklet]:
    """Chain the individuals of consecutive photos (`found`: position in the burst, what it shows) by optimal
    one-to-one IoU matching at >= `BURST_LINK_IOU`; each chain becomes a tracklet, in order of first appearance.
    Crops are ordered best first: largest first, as photos' crops are not quality-scored (quality 1)."""
    chains: list[list[tuple[int, int]]] = []
    previous: list[int] = []
    for p, (_, individuals) in enumerate(found):
        current = [-1] * len(individuals.crops)
        if p and previous:
            overlap = iou_matrix(_link_boxes(found[p - 1][1]), _link_boxes(individuals))
            for i, j in zip(*linear_sum_assignment(-overlap), strict=True):
                if overlap[i, j] >= BURST_LINK_IOU:
                    current[j] = previous[i]
                    chains[previous[i]].append((p, j))
        for j in range(len(individuals.crops)):
            if current[j] < 0:
                current[j] = len(chains)
                chains.append([(p, j)])
        previous = current
    return [_tracklet(k, chain, burst, found) for k, chain in enumerate(chains)]


def pool_embedding(tracklet: Tracklet, vectors: NDArray[np.float32]) -> NDArray[np.float32]:
    """One unit vector for the tracklet from its crops' `vectors` (in `tracklet.crops` order), weighted by the
    quality of each crop's frame, as `trackid.track.tracklets` pools a video track."""
    if len(vectors) != len(tracklet.crops):
        raise ValueError(f"vectors has {len(vectors)} rows but the tracklet has {len(tracklet.crops)} crops")
    weights = tracklet.quality[np.searchsorted(tracklet.frames, tracklet.crop_frames)]
    return l2_normalise((weights[:, None] * vectors).sum(axis=0)[None])[0]


def _whole(image: NDArray[np.uint8]) -> PhotoIndividuals:
    height, width = image.shape[:2]
    return PhotoIndividuals(Detections.from_arrays([[0.0, 0.0, width, height]], [1.0]), [image], True)


def _link_boxes(individuals: PhotoIndividuals) -> NDArray[np.float64]:
    return _UNIT_FRAME if individuals.whole_image else individuals.found.xyxy


def _tracklet(
    track_id: int,
    chain: list[tuple[int, int]],
    burst: Sequence[Photo],
    found: Sequence[tuple[int, PhotoIndividuals]],
) -> Tracklet:
    frames = [found[p][0] + 1 for p, _ in chain]
    seen = [(found[p][1].found[j], found[p][1].crops[j]) for p, j in chain]
    best_first = sorted(range(len(chain)), key=lambda r: -seen[r][1].shape[0] * seen[r][1].shape[1])
    return Tracklet(
        track_id=track_id,
        camera_id=burst[0].camera,
        class_id=int(seen[0][0].class_id[0]),
        frames=np.array(frames, np.int64),
        times=np.array([burst[f - 1].time for f in frames], np.float64),
        boxes=np.concatenate([one.xyxy for one, _ in seen]),
        scores=np.concatenate([one.score for one, _ in seen]),
        quality=np.ones(len(chain)),
        embedding=np.zeros(0, np.float32),
        crops=tuple(seen[r][1] for r in best_first),
        crop_frames=tuple(frames[r] for r in best_first),
        source=str(burst[0].path.parent),
    )
