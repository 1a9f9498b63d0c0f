"""Camera-motion compensation: recovered on real frames warped by known transforms, applied to tracks."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from trackid.track import OnlineTracker, TrackerConfig
from trackid.track.cmc import IDENTITY, CameraMotion, shift_from_tracks, warp_boxes
from trackid.track.kalman import BoxKalman
from trackid.types import Detections

# (rotation degrees about the image centre, scale, tx, ty): a shake, a pan with a slight zoom, a tilt
MOTIONS = [(0.0, 1.0, 12.0, -7.0), (1.0, 1.01, -20.0, 5.0), (-0.5, 0.99, 3.0, 15.0)]


def _similarity(angle: float, scale: float, tx: float, ty: float, width: int, height: int) -> np.ndarray:
    warp = cv2.getRotationMatrix2D((width / 2, height / 2), angle, scale)
    warp[:, 2] += (tx, ty)
    return warp


@pytest.mark.parametrize("method", ["sparse", "ecc"])
def test_known_motion_is_recovered_on_real_frames(data: Path, method: str) -> None:
    frames = sorted((data / "mot17" / "frames").glob("*/img1/000001.jpg"))[:3]
    assert frames, "MOT17 sample frames missing"
    for path in frames:
        image = cv2.imread(str(path))
        height, width = image.shape[:2]
        corners = np.array([[0, 0], [width, 0], [0, height], [width, height]], np.float64)
        for motion in MOTIONS:
            truth = _similarity(*motion, width, height)
            moved = cv2.warpAffine(image, truth, (width, height), borderMode=cv2.BORDER_REFLECT)
            camera = CameraMotion(method)
            np.testing.assert_array_equal(camera(image), IDENTITY)  # the first frame has nothing to compare with
            estimate = camera(moved)
            error = np.linalg.norm(corners @ (estimate - truth)[:, :2].T + (estimate - truth)[:, 2], axis=1)
            assert error.max() < 0.5, f"{path.parent.parent.name} {motion}: corner error {error.max():.2f} px"


def test_no_texture_or_a_new_size_gives_identity() -> None:
    camera = CameraMotion()
    blank = np.full((240, 320, 3), 128, np.uint8)
    camera(blank)
    np.testing.assert_array_equal(camera(blank), IDENTITY)
    textured = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    np.testing.assert_array_equal(camera(textured), IDENTITY)  # another size: a new video, nothing to compare
    with pytest.raises(ValueError, match="method must be one of"):
        CameraMotion("orb")  # type: ignore[arg-type]


def test_kalman_warp_moves_boxes_like_warp_boxes() -> None:
    boxes = np.array([[100.0, 50, 140, 150], [400, 300, 460, 420]])
    warp = _similarity(2.0, 1.05, 30.0, -12.0, 640, 480)
    kalman = BoxKalman()
    kalman.initiate(boxes)
    kalman.freeze(np.array([0]))
    kalman.warp(warp)
    np.testing.assert_allclose(kalman.boxes(), warp_boxes(boxes, warp), atol=1e-9)
    kalman.rewind(np.array([0]))  # the frozen copy moved too
    np.testing.assert_allclose(kalman.boxes()[0], warp_boxes(boxes, warp)[0], atol=1e-9)


def test_a_shaking_camera_keeps_identities_only_with_compensation() -> None:
    """Five people standing still while the camera jumps up to 40 px between frames (synthetic)."""
    rng = np.random.default_rng(3)
    people = np.array([[100.0 + 120 * i, 200, 140 + 120 * i, 300] for i in range(5)])
    offset = np.zeros(2)
    shakes, frames = [], []
    for _ in range(40):
        step = rng.uniform(-40, 40, 2)
        offset += step
        shakes.append(np.array([[1.0, 0, step[0]], [0, 1.0, step[1]]]))
        boxes = people + np.tile(offset, 2)
        frames.append(Detections.from_arrays(boxes, np.full(5, 0.99)))

    def identities(compensate: bool) -> int:
        tracker = OnlineTracker(frame_rate=30.0)
        seen: set[int] = set()
        for detections, shake in zip(frames, shakes, strict=True):
            tracked = tracker.update(detections, camera_motion=shake if compensate else None)
            seen.update(int(t) for t in tracked.track_id)
        return len(seen)

    assert identities(compensate=True) == 5
    assert identities(compensate=False) > 5


def test_shift_from_tracks_finds_a_common_motion_and_ignores_noise() -> None:
    rng = np.random.default_rng(7)
    corner = rng.uniform(0, 1000, (12, 2))
    predicted = np.concatenate([corner, corner + np.array([40.0, 100.0])], axis=1)  # 40 x 100 boxes
    walking = np.tile(rng.normal(0, 3.0, (12, 2)), 2)  # each person's own surprise, a few pixels
    pan = np.array([25.0, -4.0])
    shift = shift_from_tracks(predicted, predicted + walking + np.tile(pan, 2), z=2.6)
    assert shift is not None
    np.testing.assert_allclose(shift, pan, atol=2.0)
    # a fixed camera: the median is noise, seldom significant (the MAD of 12 tracks is itself noisy, so more often
    # than the nominal 2 %), and then no larger than the people's own jitter
    found = [
        shift_from_tracks(predicted, predicted + np.tile(rng.normal(0, 3.0, (12, 2)), 2), z=2.6) for _ in range(400)
    ]
    false = [s for s in found if s is not None]
    assert len(false) < 0.2 * len(found)
    assert max(np.abs(s).max() for s in false) < 6.0
    assert shift_from_tracks(predicted[:2], predicted[:2] + np.tile(pan, 2), z=2.6) is None  # two prove nothing


def test_a_pan_reaches_an_undetected_person_without_frames() -> None:
    """Six people stand still while the camera pans, speeding up; one is missed for eight frames. Read off the five
    still tracked, the pan moves the missed one's track along, so it is found again under its own id."""
    people = np.array([[100.0 + 140 * i, 200, 160 + 140 * i, 350] for i in range(6)])
    offset, frames = np.zeros(2), []
    for k in range(40):
        offset += (2.0 + 0.6 * max(0, k - 15), 0.0)  # a pan starting slowly, then accelerating
        boxes = people + np.tile(offset, 2)
        visible = np.ones(6, bool)
        if 20 <= k < 28:
            visible[2] = False
        frames.append(Detections.from_arrays(boxes[visible], np.full(int(visible.sum()), 0.99)))

    def identities(z: float) -> int:
        tracker = OnlineTracker(TrackerConfig(scene_motion_z=z, coast_s=0.0), frame_rate=30.0)
        seen: set[int] = set()
        for detections in frames:
            seen.update(int(t) for t in tracker.update(detections).track_id)
        return len(seen)

    assert identities(2.6) == 6
    assert identities(0.0) > 6
