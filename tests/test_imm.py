"""The IMM filter: model probabilities follow what the track does, and stay a distribution."""

from __future__ import annotations

import numpy as np

from trackid.track.imm import MODEL_NAMES, ImmBoxFilter, ImmNoise


def _run(positions: list[float]) -> ImmBoxFilter:
    imm = ImmBoxFilter(ImmNoise(stay=0.99, stop_decay=0.5, measurement=0.02))
    imm.initiate(np.array([[positions[0], 100.0, positions[0] + 40, 200.0]]))
    for x in positions[1:]:
        imm.predict()
        imm.update(np.array([0]), np.array([[x, 100.0, x + 40, 200.0]]))
    return imm


def test_a_steady_walker_is_cruising() -> None:
    imm = _run([100 + 3.0 * t for t in range(40)])
    assert MODEL_NAMES[int(imm.probabilities[0].argmax())] == "cruise"
    np.testing.assert_allclose(imm.probabilities.sum(axis=1), 1.0)
    assert abs(imm.boxes()[0, 0] - 217) < 3


def test_a_walker_who_stops_is_seen_to_stop() -> None:
    imm = _run([100 + 3.0 * min(t, 20) for t in range(45)])
    assert MODEL_NAMES[int(imm.probabilities[0].argmax())] == "stop"
    for _ in range(20):  # through an occlusion a stopped person is predicted to stay, not to walk on
        imm.predict()
    assert abs(imm.boxes()[0, 0] - 160) < 5


def test_rows_are_independent_and_droppable() -> None:
    imm = ImmBoxFilter()
    imm.initiate(np.array([[0.0, 0, 10, 20], [50, 50, 70, 90]]))
    imm.predict(np.array([1]))
    imm.keep(np.array([False, True]))
    assert len(imm) == 1 and imm.probabilities.shape == (1, 3)


def test_freeze_rewind_and_camera_warp() -> None:
    from trackid.track.cmc import warp_boxes

    imm = _run([100 + 3.0 * t for t in range(10)])
    before, probabilities = imm.boxes().copy(), imm.probabilities.copy()
    imm.freeze(np.array([0]))
    for _ in range(5):
        imm.predict()
    imm.rewind(np.array([0]))
    np.testing.assert_allclose(imm.boxes(), before)
    np.testing.assert_allclose(imm.probabilities, probabilities)
    shift = np.array([[1.0, 0.0, 25.0], [0.0, 1.0, -10.0]])
    imm.warp(shift)
    np.testing.assert_allclose(imm.boxes(), warp_boxes(before, shift), atol=1e-9)


def test_the_tracker_runs_on_the_imm_when_configured() -> None:
    import pytest
    from pydantic import ValidationError

    from trackid.track import OnlineTracker, TrackerConfig
    from trackid.types import Detections

    tracker = OnlineTracker(TrackerConfig(motion_model="imm"), frame_rate=25.0)
    assert isinstance(tracker.kalman, ImmBoxFilter)
    ids = set()
    for t in range(30):  # two people walking towards each other and past
        boxes = np.array([[100 + 4.0 * t, 100, 140 + 4.0 * t, 200], [400 - 4.0 * t, 300, 440 - 4.0 * t, 400]])
        ids.update(int(i) for i in tracker.update(Detections.from_arrays(boxes, np.full(2, 0.99))).track_id)
    assert ids == {1, 2}
    with pytest.raises(ValidationError):
        TrackerConfig(motion_model="kalman")  # type: ignore[arg-type]
