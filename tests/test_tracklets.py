"""Tracker output -> tracklets (issue #14, item 1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trackid.track import TrackletBuilder, make_tracker
from trackid.types import Detections


def _frame(track_ids: list[int], quality: list[float], vectors: list[list[float]], time: float) -> Detections:
    boxes = [[10.0 * t, 10.0, 10.0 * t + 8, 30.0] for t in track_ids]
    return Detections.from_arrays(
        boxes,
        [0.9] * len(track_ids),
        embedding=np.asarray(vectors, np.float32).reshape(len(track_ids), -1),
        quality=quality,
        track_id=track_ids,
        camera_id="north",
        time=time,
    )


def test_tracklets_pool_vectors_by_quality_keep_the_best_crops_and_skip_coasting_rows() -> None:
    builder = TrackletBuilder(best_crops=2, max_gap=2, source="clip.mp4")
    image = np.arange(40 * 80 * 3, dtype=np.uint8).reshape(40, 80, 3)
    builder.add(1, _frame([1, 2], [0.9, 0.5], [[1, 0], [0, 1]], 0.0), image)
    builder.add(2, _frame([1, 2], [0.1, 0.6], [[0, 1], [0, 1]], 0.1), image)
    coasting = _frame([1], [0.0], [[0, 0]], 0.2)
    builder.add(3, Detections.from_arrays(coasting.xyxy, [0.0], quality=[0.0], track_id=[1], camera_id="north"))
    builder.add(4, _frame([2], [0.7], [[0, 1]], 0.3), image)
    closed = builder.add(5, _frame([2], [0.8], [[0, 1]], 0.4), image)  # track 1 last seen at frame 2: gap 3 > 2
    assert [t.track_id for t in closed] == [1]
    one = closed[0]
    assert one.frames.tolist() == [1, 2] and one.camera_id == "north" and one.source == "clip.mp4"
    np.testing.assert_allclose(one.embedding, np.array([0.9, 0.1]) / np.hypot(0.9, 0.1), rtol=1e-6)
    assert one.crop_frames == (1, 2) and one.times.tolist() == [0.0, 0.1]
    (two,) = builder.close()
    assert two.frames.tolist() == [1, 2, 4, 5] and two.crop_frames == (5, 4)  # best two by quality
    assert two.crops[0].shape == (20, 8, 3)
    summary = two.summary()
    assert summary["detections"] == 4 and summary["start_time"] == 0.0 and summary["embedding_dim"] == 2


def test_a_real_tracker_run_gives_one_tracklet_per_track(data: Path) -> None:
    from trackid.sources.motchallenge import detections_by_frame, read_mot_file, read_seqinfo

    seq = data / "mot15" / "gt" / "MOT15-train" / "TUD-Campus"
    info = read_seqinfo(seq / "seqinfo.ini")
    frames = detections_by_frame(
        read_mot_file(data / "mot15" / "det_frcnn" / "TUD-Campus" / "det" / "det.txt"), info.length
    )
    tracker, builder = make_tracker("trackid", info.frame_rate), TrackletBuilder(best_crops=0, max_gap=10_000)
    ids = set()
    for number, detections in enumerate(frames, start=1):
        out = tracker.update(detections)
        ids |= set(out.track_id[out.score > 0].tolist())
        builder.add(number, out)
    tracklets = builder.close()
    assert sorted(t.track_id for t in tracklets) == sorted(ids)
    assert all(np.all(np.diff(t.frames) > 0) for t in tracklets)


def test_bad_settings_are_named() -> None:
    with pytest.raises(ValueError, match="max_gap"):
        TrackletBuilder(max_gap=0)
