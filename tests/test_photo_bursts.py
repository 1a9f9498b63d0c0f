"""A burst's individuals as tracklets: detections linked across the burst's photos by overlap, one `Tracklet` per
individual (camera, capture times, boxes, every crop best first, source), and the pooled embedding."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from trackid.config import PhotosConfig
from trackid.pipelines.photos.bursts import PhotoCropper, PhotoIndividuals, burst_tracklets, link_burst, pool_embedding
from trackid.sources.photos import Photo, SkippedFile
from trackid.types import Detections


def _burst(folder: Path, n: int) -> list[Photo]:
    return [Photo(folder / f"{i}.png", f"sha{i}", 100.0 + i, "exif", "cam-7", "exif") for i in range(n)]


def _seen(boxes: list[list[float]], scores: list[float]) -> PhotoIndividuals:
    found = Detections.from_arrays(boxes, scores, class_id=[3] * len(boxes))
    crops = [np.zeros((int(b[3] - b[1]), int(b[2] - b[0]), 3), np.uint8) for b in boxes]
    return PhotoIndividuals(found, crops, whole_image=False)


def test_overlapping_detections_of_consecutive_photos_are_one_tracklet(tmp_path: Path) -> None:
    burst = _burst(tmp_path, 3)
    a, b, c = [0.0, 0.0, 10.0, 20.0], [50.0, 50.0, 70.0, 90.0], [200.0, 200.0, 220.0, 240.0]
    found = [
        (0, _seen([a, b], [0.9, 0.8])),
        (1, _seen([c, [1.0, 0.0, 13.0, 22.0]], [0.7, 0.6])),  # a again, a little larger; b has left
        (2, _seen([b], [0.5])),  # b is back, but not in the photo before: a new individual
    ]
    tracklets = link_burst(burst, found)
    assert [t.track_id for t in tracklets] == [0, 1, 2, 3]
    assert [t.frames.tolist() for t in tracklets] == [[1, 2], [1], [2], [3]]
    first = tracklets[0]
    assert (first.camera_id, first.class_id, first.source) == ("cam-7", 3, str(tmp_path))
    np.testing.assert_array_equal(first.times, [100.0, 101.0])
    np.testing.assert_array_equal(first.boxes, [a, [1.0, 0.0, 13.0, 22.0]])
    np.testing.assert_array_equal(first.scores, [0.9, 0.6])
    np.testing.assert_array_equal(first.quality, [1.0, 1.0])  # photos' crops are not quality-scored
    assert first.crop_frames == (2, 1) and first.crops[0].shape[:2] == (22, 12)  # every crop, largest first
    assert first.embedding.shape == (0,)  # filled once the crops are embedded
    assert first.summary()["start_time"] == 100.0 and first.summary()["end_time"] == 101.0


def test_whole_image_individuals_link_to_each_other_never_to_a_detection(tmp_path: Path) -> None:
    burst = _burst(tmp_path, 3)
    whole = PhotoIndividuals(
        Detections.from_arrays([[0.0, 0.0, 40.0, 30.0]]), [np.zeros((30, 40, 3), np.uint8)], whole_image=True
    )
    tracklets = link_burst(burst, [(0, whole), (1, whole), (2, _seen([[0.0, 0.0, 40.0, 30.0]], [0.9]))])
    assert [t.frames.tolist() for t in tracklets] == [[1, 2], [3]]


def test_a_burst_of_files_without_a_detector_is_one_whole_image_tracklet(tmp_path: Path) -> None:
    burst = _burst(tmp_path, 3)
    for photo in burst[:2]:
        cv2.imwrite(str(photo.path), np.full((30, 40, 3), 90, np.uint8))
    skipped: list[SkippedFile] = []
    (tracklet,) = burst_tracklets(burst, PhotoCropper(PhotosConfig()), skipped)
    assert [(s.path.name, s.reason) for s in skipped] == [("2.png", "image file not found")]
    assert tracklet.frames.tolist() == [1, 2] and len(tracklet.crops) == 2
    np.testing.assert_array_equal(tracklet.boxes, [[0.0, 0.0, 40.0, 30.0]] * 2)
    np.testing.assert_array_equal(tracklet.scores, [1.0, 1.0])


def test_the_pooled_embedding_is_the_unit_quality_weighted_mean_of_the_crops_vectors(tmp_path: Path) -> None:
    (tracklet,) = link_burst(
        _burst(tmp_path, 2), [(0, _seen([[0, 0, 10, 10]], [1.0])), (1, _seen([[0, 0, 16, 16]], [1.0]))]
    )
    vectors = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)  # in crop order: frame 2's (larger) crop first
    np.testing.assert_allclose(pool_embedding(tracklet, vectors), [np.sqrt(0.5), np.sqrt(0.5)], rtol=1e-6)
    weighted = replace(tracklet, quality=np.array([1.0, 3.0]))  # frame 2's crop counts three times
    pooled = pool_embedding(weighted, vectors)
    np.testing.assert_allclose(pooled, np.array([3.0, 1.0]) / np.sqrt(10.0), rtol=1e-6)
    with pytest.raises(ValueError, match="vectors has 1 rows but the tracklet has 2 crops"):
        pool_embedding(tracklet, vectors[:1])


def test_detections_too_small_to_show_an_individual_are_not_crops() -> None:
    """Issue #15, item 3: a 1x1 px box (or any below MIN_PHOTO_SIDE) is not an individual; with nothing else found
    the whole-image fallback takes the photo, without it the photo shows no one."""

    class Boxes:
        def detect(self, image: np.ndarray) -> Detections:
            return Detections.from_arrays([[5.0, 5.0, 6.0, 6.0], [10.0, 10.0, 40.0, 25.0], [0, 0, 30, 60]], [0.9] * 3)

    image = np.full((80, 60, 3), 90, np.uint8)
    cropper = PhotoCropper(PhotosConfig())
    cropper.detector = Boxes()  # type: ignore[assignment]
    kept = cropper(image)
    assert [c.shape[:2] for c in kept.crops] == [(60, 30)] and not kept.whole_image
    np.testing.assert_array_equal(kept.found.xyxy, [[0, 0, 30, 60]])

    class Specks(Boxes):
        def detect(self, image: np.ndarray) -> Detections:
            return Detections.from_arrays([[5.0, 5.0, 6.0, 6.0]], [0.9])

    cropper.detector = Specks()  # type: ignore[assignment]
    assert cropper(image).whole_image
    cropper.fallback = False
    assert cropper(image).crops == []
