"""The one frame loop every front door runs: source -> detect -> embed -> track -> tracklets -> sinks.

The video run, MOT-file replay and the front doors still to come (episodes of face videos, an edge worker publishing
tracklets) differ only in what goes in and where the results go, so each supplies:
- frames: any iterable of `Frame` (index, time, camera, and the pixels, or the detections already made when a
  detection file is replayed without its images);
- `Stages`: the tracker and, where they apply, a detector, an embedder, crop scoring, camera-motion estimation and
  the tracklet builder;
- sinks (`Sink`): told each frame's tracked detections and, as their tracks finish, the tracklets;
and gets back a `StageRun` (frames, boxes, tracklets, seconds, files written, warnings).

Detection, crop scoring, embedding and camera motion need pixels: a frame without an image skips them, and its
replayed detections keep the quality and vectors they came with. An empty source is unusual input, not an empty
result: it is logged and named in the warnings. A source that fails part-way (a truncated video, a dropped stream)
ends the run, not its results: the frames before it are finished (open tracklets handed on, sinks closed, so their
files are complete) and `SourceError` carries that run, the source's error as its cause.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from trackid.detect import Detector
from trackid.embed import Embedder, embed_detections
from trackid.embed.quality import QualityConfig, crop_quality
from trackid.track import Tracker, TrackletBuilder
from trackid.track.cmc import CameraMotion
from trackid.types import Detections, Tracklet

__all__ = ["Frame", "Sink", "SourceError", "StageRun", "Stages", "replayed_frames", "run_stages"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Frame:
    """One step of a stream.

    Attributes:
        index: 0-based position in the source (a strided video skips indices; `number` is index + 1).
        time: seconds since the stream's start (or capture time); NaN when unknown.
        image: H x W x 3 uint8 BGR pixels; None when replaying detections without their frames.
        detections: the frame's detections when they were made beforehand; None when the detector makes them.
        camera_id: the camera the frame came from ("" for one camera); stamped on its detections.
    """

    index: int
    time: float = math.nan
    image: NDArray[np.uint8] | None = None
    detections: Detections | None = None
    camera_id: str = ""

    @property
    def number(self) -> int:
        """The 1-based frame number MOT files and tracklets use."""
        return self.index + 1


class Sink:
    """Where a run's results go: override what the sink needs (the loop calls all three, in this order of life)."""

    def on_frame(self, frame: Frame, tracked: Detections) -> None:
        """One frame's tracker output (the rows it reports, `Tracker.update`)."""

    def on_tracklets(self, finished: Sequence[Tracklet]) -> None:
        """Tracklets whose tracks finished (unseen for the builder's `max_gap`, or the stream ended)."""

    def close(self) -> dict[str, Path]:
        """Finish (rename files into place, flush a connection); the files written, by name."""
        return {}


@dataclass
class Stages:
    """What runs between a source and its sinks, for one camera.

    Attributes:
        tracker: a fresh tracker (`trackid.track.make_tracker`) at the stream's frame rate.
        detector: makes each frame's detections from its image; None when every frame carries its own. A detector
            with a `seek(index)` method (replayed detections) is told each frame's index first, so it follows a
            strided source.
        min_score: detections scoring below it are dropped before tracking.
        embedder: appearance vectors for crops good enough (`min_embed_quality`); None: crop quality only.
        min_embed_quality: crops below it get a zero vector (unknown to the tracker) and save the embedding time.
        quality: how crop quality is scored (it picks each tracklet's best crops and gates embeddings).
        camera_motion: estimates the camera's motion between frames, which the tracker compensates; None for a
            fixed camera.
        tracklets: folds the tracker's output into tracklets for the sinks; None when no sink wants tracklets
            (MOT result files), which saves its per-box bookkeeping.
    """

    tracker: Tracker
    detector: Detector | None = None
    min_score: float = -math.inf
    embedder: Embedder | None = None
    min_embed_quality: float = 0.0
    quality: QualityConfig | None = None
    camera_motion: CameraMotion | None = None
    tracklets: TrackletBuilder | None = None

    def track(self, frame: Frame) -> Detections:
        """Detect, embed and track one frame; the tracker's output rows."""
        detections = self._detect(frame)
        image = frame.image
        if image is None:
            return self.tracker.update(detections)
        detections = self._with_appearance(image, detections)
        motion = self.camera_motion(image, detections.xyxy) if self.camera_motion is not None else None
        return self.tracker.update(detections, camera_motion=motion)

    def _detect(self, frame: Frame) -> Detections:
        if frame.detections is not None:
            found = frame.detections
        elif self.detector is not None and frame.image is not None:
            seek = getattr(self.detector, "seek", None)
            if seek is not None:
                seek(frame.index)
            found = self.detector.detect(frame.image)
        else:
            raise ValueError(f"frame {frame.index}: no detections and no detector with an image to make them")
        return replace(found[found.score >= self.min_score], time=frame.time, camera_id=frame.camera_id)

    def _with_appearance(self, image: NDArray[np.uint8], detections: Detections) -> Detections:
        """Crop quality always (it picks each tracklet's best crop); embeddings only when an embedder is given.

        Boxes with no usable pixels (outside the frame, blank) get zero vectors, which the tracker treats as unknown.
        """
        if self.embedder is None:
            return replace(detections, quality=crop_quality(image, detections.xyxy, self.quality))
        detections, _ = embed_detections(
            self.embedder, image, detections, min_quality=self.min_embed_quality, quality_config=self.quality
        )
        return detections


@dataclass(frozen=True)
class StageRun:
    """What one run of the loop did.

    Attributes:
        frames: frames tracked.
        boxes: rows the tracker reported, over all frames.
        tracklets: tracklets handed to the sinks (0 without a tracklet builder).
        seconds: the loop's time (source, stages and the sinks' per-frame work; not their closing).
        files: what the sinks wrote, by name, in sink order.
        warnings: what was unusual about the input: an empty source, and the tracker's stream warnings.
    """

    frames: int
    boxes: int
    tracklets: int
    seconds: float
    files: dict[str, Path] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


class SourceError(Exception):
    """The source stopped part-way; the frames before were tracked and the sinks closed. `run` says how far it got;
    `error` (also the `__cause__`) is what the source raised."""

    def __init__(self, run: StageRun, error: Exception) -> None:
        super().__init__(f"{error} (after {run.frames} frames)")
        self.run = run
        self.error = error


def run_stages(
    frames: Iterable[Frame],
    stages: Stages,
    sinks: Sequence[Sink] = (),
    on_frame: Callable[[Frame], object] | None = None,
) -> StageRun:
    """Run every frame through `stages` into `sinks`, then hand on the open tracklets and close the sinks.

    Args:
        on_frame: called with each frame after its sinks (progress bars).

    Raises:
        SourceError: the source raised part-way (see the module docstring); errors of the stages and sinks
            propagate as they are.
    """
    started = time.perf_counter()
    count = boxes = tracklets = 0
    failure: Exception | None = None
    source = iter(frames)
    while True:
        try:
            frame = next(source)
        except StopIteration:
            break
        except Exception as exc:  # whatever the source raises ends the stream, not what came before it
            failure = exc
            break
        tracked = stages.track(frame)
        # tracklets (their kept crop copies) before the sinks (the annotated canvas), as before the frame loop: the
        # other order often left frame-sized free holes in the heap (fragmentation, peak RSS up to ~30 MB more)
        finished = stages.tracklets.add(frame.number, tracked, frame.image) if stages.tracklets is not None else []
        for sink in sinks:
            sink.on_frame(frame, tracked)
        tracklets += _hand_on(finished, sinks)
        count += 1
        boxes += len(tracked)
        if on_frame is not None:
            on_frame(frame)
    if stages.tracklets is not None:
        tracklets += _hand_on(stages.tracklets.close(), sinks)
    seconds = time.perf_counter() - started
    warnings = []
    if count == 0 and failure is None:
        warnings.append("the source gave no frames: nothing was tracked")
        log.warning(warnings[-1])
    files = {name: path for sink in sinks for name, path in sink.close().items()}
    run = StageRun(count, boxes, tracklets, seconds, files, warnings + stages.tracker.warnings)
    if failure is not None:
        raise SourceError(run, failure) from failure
    return run


def replayed_frames(detections: Iterable[Detections], frame_rate: float | None = None) -> Iterator[Frame]:
    """Frames of a detection file replayed without its images (index k: MOT frame k + 1), timed at `frame_rate`
    when given."""
    for index, found in enumerate(detections):
        yield Frame(index, math.nan if frame_rate is None else index / frame_rate, detections=found)


def _hand_on(finished: list[Tracklet], sinks: Sequence[Sink]) -> int:
    if finished:
        for sink in sinks:
            sink.on_tracklets(finished)
    return len(finished)
