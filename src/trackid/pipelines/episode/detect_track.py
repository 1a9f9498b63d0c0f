"""Stage 1 of an episode: the video's faces detected and tracked (the shared frame loop, `pipelines.stages`).

Writes, into the run folder:
- `detections.jsonl`: one line per tracked face (frame, track_id, xyxy, score, quality), as it goes;
- `tracks.jsonl`: one line per face track (track_id, shot, first/last frame, start/end s, faces, mean score);
- `track_metrics.json`: tracks_per_minute, short_track_fraction (shorter than `short_track_s`), shots, counts.
At each hard cut (`shots.py`) the tracker starts afresh, so no track runs from one shot into the next.
A video without any face is not an empty success: it is warned about, in the log and in the metrics.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from trackid.artifacts import atomic_write_text
from trackid.config import RunConfig
from trackid.detect import Detector, make_detector
from trackid.pipelines.episode.settings import EpisodeConfig
from trackid.pipelines.episode.shots import ShotCuts
from trackid.pipelines.sinks import TracksJsonl
from trackid.pipelines.stages import Frame, Sink, Stages, run_stages
from trackid.sources.video import VideoSource
from trackid.track import Tracker, TrackletBuilder, make_tracker
from trackid.types import Detections, Tracklet

__all__ = ["DetectTrackResult", "detect_and_track", "effective_stride", "track_length_figures"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DetectTrackResult:
    frames: int
    tracks: int
    faces: int
    seconds: float
    warnings: list[str]
    files: dict[str, Path]


def effective_stride(config: EpisodeConfig, frame_rate: float) -> int:
    """`frame_stride`, raised so that no more than `detection_fps_limit` frames a second are processed."""
    stride = config.frame_stride
    if config.detection_fps_limit is not None:
        stride = max(stride, math.ceil(frame_rate / config.detection_fps_limit - 1e-9))
    return stride


def detect_and_track(
    video: Path, config: RunConfig, out: Path, on_frame: Callable[[int], object] | None = None
) -> DetectTrackResult:
    """Run stage 1 on `video` into `out` (see the module docstring)."""
    settings = config.episode
    probe = VideoSource(video)
    stride = effective_stride(settings, probe.info.frame_rate)
    source = VideoSource(video, stride=stride)
    fps = source.info.frame_rate
    detector = _MinFaceDetector(
        make_detector(settings.face_detector, **settings.face_detector_params), settings.min_face_px
    )
    # no coasting: a face the detector did not see is not on screen as a face (it would count as screen time, and two
    # overlapping boxes of one face as two people in one frame)
    tracker_settings = {**config.tracker.model_dump(), "coast_s": 0.0}
    tracker = _ShotTracker(make_tracker("trackid", frame_rate=fps / stride, **tracker_settings))
    shots = ShotCuts()
    stages = Stages(
        tracker,
        detector=detector,
        quality=config.quality,
        tracklets=TrackletBuilder(best_crops=0, max_gap=sys.maxsize, source=str(video)),
    )
    tracks = _TrackSummaries(out / "tracks.jsonl", tracker.shot_of)
    sinks: list[Sink] = [TracksJsonl(out / "detections.jsonl"), tracks]
    progress = None if on_frame is None else lambda frame: on_frame(frame.index)
    run = run_stages(_frames(source, shots, tracker), stages, sinks, progress)
    files = dict(run.files)
    duration_s = probe.info.frame_count / fps if probe.info.frame_count else run.frames * stride / fps
    warnings = list(run.warnings)
    if run.frames and not tracks.rows:
        warnings.append(f"{video}: no face was found in {run.frames} frames")
        log.warning(warnings[-1])
    faces = int(sum(t["faces"] for t in tracks.rows))
    metrics = {
        "video": str(video),
        "frames_processed": run.frames,
        "frame_stride": stride,
        "frame_rate": fps,
        "duration_s": round(duration_s, 3),
        "shots": shots.cuts + 1,
        "tracks": len(tracks.rows),
        "faces": faces,
        **track_length_figures(tracks.rows, duration_s, stride / fps, settings.short_track_s),
        "warnings": warnings,
    }
    files["track_metrics"] = atomic_write_text(out / "track_metrics.json", json.dumps(metrics, indent=2) + "\n")
    return DetectTrackResult(run.frames, len(tracks.rows), faces, run.seconds, warnings, files)


def track_length_figures(
    rows: list[dict[str, Any]], duration_s: float, step_s: float, short_track_s: float
) -> dict[str, float]:
    """tracks_per_minute and short_track_fraction of tracks.jsonl's `rows` (a track lasts from its first to its last
    processed frame, plus one frame step)."""
    lengths = np.array([r["end_s"] - r["start_s"] + step_s for r in rows], np.float64)
    return {
        "tracks_per_minute": round(len(rows) / max(duration_s / 60, 1e-9), 3),
        "short_track_fraction": round(float((lengths < short_track_s).mean()), 4) if len(rows) else 0.0,
    }


def _frames(source: VideoSource, shots: ShotCuts, tracker: _ShotTracker) -> Iterator[Frame]:
    """The video's (strided) frames; at a cut the tracker starts afresh."""
    for index, image in source:
        if shots.is_cut(image):
            tracker.new_shot()
        yield Frame(index, index / source.info.frame_rate, image)


class _ShotTracker:
    """A `Tracker` that forgets its tracks at each shot, its ids continuing after the last shot's (unique per run)."""

    def __init__(self, inner: Tracker) -> None:
        self._inner = inner
        self._offset = self._highest = self.shot = 0
        self._warnings: list[str] = []
        self.shot_of: dict[int, int] = {}  # track id -> its shot (0..)

    def reset(self) -> None:
        self._inner.reset()
        self._offset, self._highest, self.shot, self._warnings = 0, 0, 0, []
        self.shot_of.clear()

    def new_shot(self) -> None:
        self._warnings += self._inner.warnings
        self._inner.reset()  # ids restart at 1: offset them past the last shot's
        self._offset = self._highest
        self.shot += 1

    def update(self, detections: Detections, camera_motion: NDArray[np.float64] | None = None) -> Detections:
        tracked = self._inner.update(detections, camera_motion=camera_motion)
        if len(tracked):
            tracked = replace(tracked, track_id=tracked.track_id + self._offset)
            self._highest = max(self._highest, int(tracked.track_id.max()))
            for track_id in tracked.track_id.tolist():
                self.shot_of.setdefault(int(track_id), self.shot)
        return tracked

    @property
    def warnings(self) -> list[str]:
        return list(dict.fromkeys(self._warnings + self._inner.warnings))


class _MinFaceDetector:
    """The face detector (a `Detector`) without faces whose shorter side is under `min_px` (they embed badly and
    track poorly)."""

    def __init__(self, inner: Detector, min_px: float) -> None:
        self.inner, self.min_px = inner, min_px
        self.name = f"{getattr(inner, 'name', 'faces')}>={min_px:g}px"

    def detect(self, image: NDArray[np.uint8]) -> Detections:
        found = self.inner.detect(image)
        size = np.minimum(found.xyxy[:, 2] - found.xyxy[:, 0], found.xyxy[:, 3] - found.xyxy[:, 1])
        return found[size >= self.min_px]


class _TrackSummaries(Sink):
    """`tracks.jsonl`, one line per finished track (written at close, atomically, in track order)."""

    def __init__(self, path: Path, shot_of: dict[int, int]) -> None:
        self.path, self.shot_of = path, shot_of
        self.rows: list[dict[str, Any]] = []

    def on_tracklets(self, finished: Sequence[Tracklet]) -> None:
        for t in finished:
            self.rows.append(
                {
                    "track_id": t.track_id,
                    "shot": self.shot_of.get(t.track_id, 0),
                    "first_frame": t.first_frame,
                    "last_frame": t.last_frame,
                    "start_s": round(float(t.times[0]), 4),
                    "end_s": round(float(t.times[-1]), 4),
                    "faces": len(t),
                    "mean_score": round(float(t.scores.mean()), 4),
                }
            )

    def close(self) -> dict[str, Path]:
        self.rows.sort(key=lambda r: r["track_id"])
        text = "".join(json.dumps(r) + "\n" for r in self.rows)
        return {"tracks": atomic_write_text(self.path, text)}
