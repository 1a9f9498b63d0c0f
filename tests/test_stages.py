"""The shared frame loop (`trackid.pipelines.stages`): what every front door relies on, with the real tracker."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from trackid.pipelines.sinks import TrackRows
from trackid.pipelines.stages import Frame, Sink, SourceError, Stages, replayed_frames, run_stages
from trackid.sources.synthetic import SceneConfig, make_scene
from trackid.track import TrackletBuilder, make_tracker, track_sequence
from trackid.types import Detections, Tracklet


class Recorder(Sink):
    """Everything the loop told it, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []  # ("frame", index) or ("tracklets", how many)
        self.tracked: list[Detections] = []
        self.tracklets: list[Tracklet] = []
        self.closed = False

    def on_frame(self, frame: Frame, tracked: Detections) -> None:
        assert not self.closed
        self.events.append(("frame", frame.index))
        self.tracked.append(tracked)

    def on_tracklets(self, finished: Sequence[Tracklet]) -> None:
        assert not self.closed
        self.events.append(("tracklets", len(finished)))
        self.tracklets.extend(finished)

    def close(self) -> dict[str, Path]:
        self.closed = True
        return {"recorded": Path("nowhere")}


def _walkers(frames: int, leaves_after: int) -> list[Detections]:
    """Two people walking apart; the first leaves the scene after `leaves_after` frames."""
    out = []
    for k in range(frames):
        boxes = [[300.0 + 4 * k, 100.0, 350.0 + 4 * k, 220.0]]
        if k < leaves_after:
            boxes.insert(0, [100.0 - 2 * k, 100.0, 150.0 - 2 * k, 220.0])
        out.append(Detections.from_arrays(boxes, [0.9] * len(boxes)))
    return out


def test_replayed_detections_track_as_the_tracker_alone_does() -> None:
    scene = make_scene(SceneConfig(num_frames=120, seed=3))
    rows, recorder = TrackRows(), Recorder()
    tracker = make_tracker("trackid", scene.config.frame_rate)
    frames = replayed_frames(scene.detections, scene.config.frame_rate)
    run = run_stages(frames, Stages(tracker), [rows, recorder])
    expected = track_sequence(make_tracker("trackid", scene.config.frame_rate), scene.detections)
    for got, want in zip(rows.arrays(), expected, strict=True):
        np.testing.assert_array_equal(got, want)
    assert run.frames == 120 and run.boxes == len(expected[0]) and run.tracklets == 0 and run.warnings == []
    assert [index for _, index in recorder.events] == list(range(120)) and recorder.closed
    assert run.files == {"recorded": Path("nowhere")}
    assert recorder.tracked[50].time == pytest.approx(50 / scene.config.frame_rate)


def test_tracklets_reach_the_sinks_when_their_tracks_finish_and_at_the_end() -> None:
    recorder = Recorder()
    stages = Stages(make_tracker("trackid", 10.0), tracklets=TrackletBuilder(best_crops=0, max_gap=5))
    run = run_stages(replayed_frames(_walkers(40, leaves_after=10)), stages, [recorder])
    handed = [(i, e) for i, e in enumerate(recorder.events) if e[0] == "tracklets"]
    assert [e for _, e in handed] == [("tracklets", 1), ("tracklets", 1)]
    # the one who left: handed on with the frame 6 frames after its last (index 9 + 6), not at the end
    (position, _), (last, _) = handed
    assert recorder.events[position - 1] == ("frame", 15) and last == len(recorder.events) - 1
    left, stayed = recorder.tracklets
    assert left.frames.tolist() == list(range(1, 11)) and stayed.last_frame == 40
    assert left.track_id != stayed.track_id and run.tracklets == 2
    assert math.isnan(left.times[0])  # no frame rate given: times unknown, not invented


def test_an_empty_source_warns_instead_of_returning_nothing_silently(caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder()
    with caplog.at_level(logging.WARNING, logger="trackid"):
        logging.getLogger("trackid").addHandler(caplog.handler)
        try:
            run = run_stages([], Stages(make_tracker("trackid", 25.0), tracklets=TrackletBuilder()), [recorder])
        finally:
            logging.getLogger("trackid").removeHandler(caplog.handler)
    assert run.frames == 0 and recorder.closed
    assert any("no frames" in w for w in run.warnings)
    assert any("no frames" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


def test_a_source_failing_part_way_keeps_what_came_before() -> None:
    def broken() -> Iterator[Frame]:
        yield from replayed_frames(_walkers(8, leaves_after=20))
        raise OSError("stream dropped")

    recorder = Recorder()
    stages = Stages(make_tracker("trackid", 10.0), tracklets=TrackletBuilder(best_crops=0))
    with pytest.raises(SourceError, match="stream dropped") as failed:
        run_stages(broken(), stages, [recorder])
    assert failed.value.run.frames == 8 and isinstance(failed.value.__cause__, OSError)
    assert recorder.closed and len(recorder.tracklets) == 2  # the open tracklets were finished, the sink closed
    assert failed.value.run.files == {"recorded": Path("nowhere")}


class _ScriptedDetector:
    """Two boxes per frame (one weak); remembers the indices it was told to seek to."""

    def __init__(self) -> None:
        self.seeks: list[int] = []

    def seek(self, index: int) -> None:
        self.seeks.append(index)

    def detect(self, image: NDArray[np.uint8]) -> Detections:
        k = len(self.seeks)
        return Detections.from_arrays([[10.0 + k, 10.0, 40.0 + k, 70.0], [60.0, 10.0, 90.0, 70.0]], [0.9, 0.2])


def test_frames_with_images_are_detected_filtered_scored_and_stamped() -> None:
    detector, recorder = _ScriptedDetector(), Recorder()
    image = np.random.default_rng(0).integers(0, 255, (100, 120, 3), dtype=np.uint8)
    frames = [Frame(index, index / 5.0, image, camera_id="north") for index in range(0, 12, 3)]  # stride 3
    stages = Stages(make_tracker("trackid", 5.0 / 3), detector=detector, min_score=0.5)
    run = run_stages(frames, stages, [recorder])
    assert detector.seeks == [0, 3, 6, 9] and run.frames == 4
    last = recorder.tracked[-1]
    assert len(last) == 1 and last.camera_id == "north" and last.time == pytest.approx(9 / 5.0)
    assert 0 < last.quality[0] < 1  # crop quality was scored from the pixels (1.0 means "not scored")


def test_a_frame_with_neither_detections_nor_an_image_is_an_error() -> None:
    stages = Stages(make_tracker("trackid", 25.0), detector=_ScriptedDetector())
    with pytest.raises(ValueError, match="frame 0: no detections"):
        run_stages([Frame(0)], stages)
