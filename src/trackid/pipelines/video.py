"""From a video file to tracked people: source -> detect -> embed (quality-gated) -> track -> run folder.

`track_video` writes one folder per run (`runs/<name>/`):
- `tracks.txt` (MOTChallenge results, frames 1-based) and `tracks.jsonl` (one line per reported box),
- `annotated.mp4` (boxes and ids drawn on the frames),
- `tracklets.jsonl` (one line per track: camera, frame and time span, scores, crop frames; `trackid.types.Tracklet`),
- `crops/<track_id>.jpg` (the best-quality crop of each track),
- `manifest.json` (config, versions, input hash, status, timings),
- `log.jsonl` (the run's log records as JSON lines, `trackid.logs`).

Every file is written atomically (temporary name, then rename). If the video turns out to be corrupt or truncated
part-way, the frames processed so far are still written out as complete files, the manifest records the failure
and the frame it happened at, and the error is raised for the caller to report.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from trackid.artifacts import atomic_write_bytes, atomic_write_text
from trackid.config import DetectorConfig, EmbedderConfig, RunConfig
from trackid.detect import Detector, make_detector
from trackid.embed import Embedder, embed_detections, make_embedder
from trackid.embed.quality import crop_quality
from trackid.logs import log_to_file
from trackid.run_folder import RunFolder
from trackid.sources.motchallenge import write_mot_results
from trackid.sources.video import VideoError, VideoSource
from trackid.track import TrackletBuilder, make_tracker
from trackid.track.cmc import CameraMotion
from trackid.types import Detections, Tracklet

__all__ = ["VideoRun", "build_detector", "build_embedder", "track_video"]

log = logging.getLogger(__name__)


@dataclass
class VideoRun:
    """What a run produced and how fast: frames/s counts the whole loop (decode, detect, embed, track, write)."""

    run_dir: Path
    frames: int
    tracks: int
    seconds: float
    peak_memory_mb: float
    files: dict[str, Path] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    """What the tracker found wrong with the stream (`trackid.track.health`), also in the manifest."""

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def build_detector(config: DetectorConfig) -> Detector:
    detector = make_detector(config.name, **config.params)
    if config.tiles is not None:
        from trackid.detect.tiling import TiledDetector

        detector = TiledDetector(detector, tiles=config.tiles)
    return detector


def build_embedder(config: EmbedderConfig | None) -> Embedder | None:
    return None if config is None else make_embedder(config.name, **config.params)


def track_video(
    video: str | os.PathLike[str],
    config: RunConfig,
    run_dir: str | os.PathLike[str],
    *,
    detector: Detector | None = None,
    on_frame: Callable[[int], object] | None = None,
    tracker_name: str = "trackid",
) -> VideoRun:
    """Track every (strided) frame of `video` and write the run folder.

    Args:
        tracker_name: the registered tracker (`trackid.track.TRACKERS`) built from `config.tracker`.
        detector: use this instead of building one from `config.detector` (e.g. precomputed detections replayed
            with the frames).
        on_frame: called with the frame index after each processed frame (progress bars).
    """
    source = VideoSource(video, frame_rate=config.frame_rate, stride=config.frame_stride)
    detector = detector or build_detector(config.detector)
    embedder = build_embedder(config.embedder)
    tracker = make_tracker(
        tracker_name, frame_rate=source.info.frame_rate / config.frame_stride, **config.tracker.model_dump()
    )
    camera = CameraMotion(config.camera_motion) if config.camera_motion != "none" else None
    out = Path(run_dir)
    folder = RunFolder(out, "track-video", config.model_dump(mode="json"), [source.path], _manifest(source, embedder))
    folder.write()

    sinks = _Sinks(out, source, write_video=config.write_video, name=str(video))
    with log_to_file(out / "log.jsonl"):
        log.info("tracking %s (detector %s)", video, config.detector.name)
        started = time.perf_counter()
        frames = 0
        try:
            seek = getattr(detector, "seek", None)  # replayed detections must follow the frame index under a stride
            for index, image in source:
                if seek is not None:
                    seek(index)
                found = detector.detect(image)
                detections = replace(
                    found[found.score >= config.detector.min_score], time=index / source.info.frame_rate
                )
                detections = _with_appearance(image, detections, embedder, config)
                motion = camera(image, detections.xyxy) if camera is not None else None
                tracked = tracker.update(detections, camera_motion=motion)
                sinks.add(index, image, tracked)
                frames += 1
                if on_frame is not None:
                    on_frame(index)
        except VideoError as exc:
            log.error("%s after %d frames", exc, frames)
            folder.fail(str(exc), sinks.close(), frames_processed=frames)
            raise VideoError(f"{exc} (the {frames} frames before it were tracked and written to {out})") from None
        seconds = time.perf_counter() - started
        files = sinks.close()
        log.info(
            "complete: %d frames, %d tracks, %.1f frames/s", frames, sinks.track_count, frames / max(seconds, 1e-9)
        )
        files["log"] = out / "log.jsonl"
        run = VideoRun(out, frames, sinks.track_count, seconds, _peak_memory_mb(), files, tracker.warnings)
        files["manifest"] = folder.complete(
            files,
            run.warnings,
            frames_processed=frames,
            tracks=run.tracks,
            frames_per_second=round(run.frames_per_second, 2),
            peak_memory_mb=round(run.peak_memory_mb, 1),
        )
        return run


def _with_appearance(
    image: NDArray[np.uint8], detections: Detections, embedder: Embedder | None, config: RunConfig
) -> Detections:
    """Crop quality always (it picks each track's best crop); embeddings only when an embedder is configured.

    Boxes with no usable pixels (outside the frame, blank) get zero vectors, which the tracker treats as unknown.
    """
    if embedder is None:
        return replace(detections, quality=crop_quality(image, detections.xyxy, config.quality))
    detections, _ = embed_detections(
        embedder, image, detections, min_quality=config.min_embed_quality, quality_config=config.quality
    )
    return detections


class _Sinks:
    """All outputs of a run, written to temporary names and renamed into place by `close`."""

    def __init__(self, out: Path, source: VideoSource, write_video: bool, name: str = "") -> None:
        self.out = out
        self.rows: list[tuple[int, NDArray[np.int64], NDArray[np.float64]]] = []
        # one open tracklet per track for the whole video: its best crop is the track's crops/<id>.jpg
        self.tracklets = TrackletBuilder(best_crops=1, max_gap=sys.maxsize, source=name)
        self.closed: list[Tracklet] = []
        self._jsonl_tmp = out / ".tracks.jsonl.tmp"
        self._jsonl = self._jsonl_tmp.open("w", encoding="utf-8")
        self._video_tmp = out / ".annotated.tmp.mp4"
        self._writer: cv2.VideoWriter | None = None
        if write_video:
            size = (source.info.width, source.info.height)
            fps = source.info.frame_rate / source.stride
            self._writer = cv2.VideoWriter(str(self._video_tmp), cv2.VideoWriter.fourcc(*"mp4v"), fps, size)
            if not self._writer.isOpened():
                raise OSError(f"{self._video_tmp}: OpenCV cannot write mp4v video here")

    @property
    def track_count(self) -> int:
        return len(self.closed)

    def add(self, index: int, image: NDArray[np.uint8], tracked: Detections) -> None:
        frame = index + 1
        self.rows.append((frame, tracked.track_id, tracked.xyxy))
        self._jsonl.write(
            "".join(
                json.dumps(
                    {
                        "frame": frame,
                        "track_id": t,
                        "xyxy": [round(v, 2) for v in box],
                        "score": round(s, 4),
                        "quality": round(q, 4),
                    }
                )
                + "\n"
                for t, box, s, q in zip(
                    tracked.track_id.tolist(),
                    tracked.xyxy.tolist(),
                    tracked.score.tolist(),
                    tracked.quality.tolist(),
                    strict=True,
                )
            )
        )
        self.tracklets.add(frame, tracked, image)
        if self._writer is not None:
            self._writer.write(_annotate(image, tracked))

    def close(self) -> dict[str, Path]:
        files: dict[str, Path] = {}
        self._jsonl.close()
        files["tracks_jsonl"] = self._jsonl_tmp.replace(self.out / "tracks.jsonl")
        if self.rows:
            frame = np.concatenate([np.full(len(ids), f, np.int64) for f, ids, _ in self.rows])
            ids = np.concatenate([ids for _, ids, _ in self.rows])
            boxes = np.concatenate([b for _, _, b in self.rows])
        else:
            frame, ids, boxes = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 4))
        files["tracks_mot"] = write_mot_results(self.out / "tracks.txt", frame, ids, boxes)
        if self._writer is not None:
            self._writer.release()
            files["annotated_video"] = self._video_tmp.replace(self.out / "annotated.mp4")
        self.closed = self.tracklets.close()
        summaries = "".join(json.dumps(t.summary()) + "\n" for t in self.closed)
        files["tracklets_jsonl"] = atomic_write_text(self.out / "tracklets.jsonl", summaries)
        crops_dir = self.out / "crops"
        crops_dir.mkdir(exist_ok=True)
        for tracklet in (t for t in self.closed if t.crops):
            ok, encoded = cv2.imencode(".jpg", tracklet.crops[0])
            if ok:
                atomic_write_bytes(crops_dir / f"{tracklet.track_id}.jpg", encoded.tobytes())
        files["crops"] = crops_dir
        return files


def _annotate(image: NDArray[np.uint8], tracked: Detections) -> NDArray[np.uint8]:
    """Boxes and ids, each id in its own stable colour."""
    canvas = image.copy()
    for track_id, (x1, y1, x2, y2) in zip(tracked.track_id.tolist(), tracked.xyxy.astype(int).tolist(), strict=True):
        colour = _colour(track_id)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, 2)
        cv2.putText(canvas, str(track_id), (x1, max(y1 - 4, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 2)
    return canvas


def _colour(track_id: int) -> tuple[int, int, int]:
    hue = (track_id * 47) % 180
    bgr = cv2.cvtColor(np.array([[[hue, 200, 255]]], np.uint8), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[0]), int(bgr[1]), int(bgr[2])


def _manifest(source: VideoSource, embedder: Embedder | None) -> dict[str, Any]:
    """The video run's own manifest fields: the input's shape and the embedder's identity."""
    return {
        "input": {
            "path": str(source.path),
            "frame_rate": source.info.frame_rate,
            "frames": source.info.frame_count,
            "size": [source.info.width, source.info.height],
        },
        "embedder": None if embedder is None else {"model_id": embedder.model_id, "version": embedder.version},
    }


def _peak_memory_mb() -> float:
    """Peak resident memory of this process (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
