"""From a video file to tracked people: the frame loop (`stages.run_stages`) from a video into a run folder.

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

import logging
import os
import resource
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trackid.config import DetectorConfig, EmbedderConfig, RunConfig
from trackid.detect import Detector, make_detector
from trackid.embed import Embedder, make_embedder
from trackid.pipelines.sinks import AnnotatedVideo, MotResultFile, TrackletFiles, TracksJsonl
from trackid.pipelines.stages import Frame, Sink, SourceError, Stages, run_stages
from trackid.run_folder import LOG_FILE, RunFolder
from trackid.sources.video import VideoError, VideoSource
from trackid.track import TrackletBuilder, make_tracker
from trackid.track.cmc import CameraMotion

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
    force: bool = False,
) -> VideoRun:
    """Track every (strided) frame of `video` and write the run folder.

    Args:
        tracker_name: the registered tracker (`trackid.track.TRACKERS`) built from `config.tracker`.
        force: replace another run already in `run_dir` (see `RunFolder`); without it such a folder is refused.
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
    stages = Stages(
        tracker,
        detector=detector,
        min_score=config.detector.min_score,
        embedder=embedder,
        min_embed_quality=config.min_embed_quality,
        quality=config.quality,
        camera_motion=CameraMotion(config.camera_motion) if config.camera_motion != "none" else None,
        # one open tracklet per track for the whole video: its best crop is the track's crops/<id>.jpg
        tracklets=TrackletBuilder(best_crops=1, max_gap=sys.maxsize, source=str(video)),
    )
    out = Path(run_dir)
    manifest = {**_manifest(source, embedder), "tracker": tracker_name}
    folder = RunFolder(
        out, "track-video", config.model_dump(mode="json"), _inputs(source, config), manifest, force=force
    )
    sinks = _run_folder_sinks(out, source, config.write_video)
    progress = None if on_frame is None else lambda frame: on_frame(frame.index)
    with folder.running():
        log.info("tracking %s (detector %s)", video, config.detector.name)
        try:
            run = run_stages(_frames(source), stages, sinks, progress)
        except SourceError as failed:
            frames = failed.run.frames
            log.error("%s after %d frames", failed.error, frames)
            folder.fail(str(failed.error), failed.run.files, frames_processed=frames)
            if isinstance(failed.error, VideoError):
                message = f"{failed.error} (the {frames} frames before it were tracked and written to {out})"
                raise VideoError(message) from None
            raise failed.error from None
        files = run.files
        log.info(
            "complete: %d frames, %d tracks, %.1f frames/s",
            run.frames,
            run.tracklets,
            run.frames / max(run.seconds, 1e-9),
        )
        files["log"] = out / LOG_FILE
        result = VideoRun(out, run.frames, run.tracklets, run.seconds, _peak_memory_mb(), files, run.warnings)
        files["manifest"] = folder.complete(
            files,
            result.warnings,
            frames_processed=result.frames,
            tracks=result.tracks,
            frames_per_second=round(result.frames_per_second, 2),
            peak_memory_mb=round(result.peak_memory_mb, 1),
        )
        return result


def _frames(source: VideoSource) -> Iterator[Frame]:
    """The video's (strided) frames, timed by their position in the video."""
    for index, image in source:
        yield Frame(index, index / source.info.frame_rate, image)


def _run_folder_sinks(out: Path, source: VideoSource, write_video: bool) -> list[Sink]:
    """tracks.jsonl, tracks.txt, annotated.mp4 (when asked for), tracklets.jsonl and crops/, in this order."""
    sinks: list[Sink] = [TracksJsonl(out / "tracks.jsonl"), MotResultFile(out / "tracks.txt")]
    if write_video:
        size = (source.info.width, source.info.height)
        sinks.append(AnnotatedVideo(out / "annotated.mp4", size, source.info.frame_rate / source.stride))
    sinks.append(TrackletFiles(out))
    return sinks


def _inputs(source: VideoSource, config: RunConfig) -> list[Path]:
    """The files whose bytes decide the result: the video, and a detections file replayed in place of a detector."""
    replayed = config.detector.params.get("frames") if config.detector.name == "precomputed" else None
    return [source.path, *([Path(replayed)] if isinstance(replayed, str | os.PathLike) else [])]


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
