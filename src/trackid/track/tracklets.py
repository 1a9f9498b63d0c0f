"""Tracker output -> tracklets: the unit that leaves a camera (see `trackid.types.Tracklet`).

Only observed rows count (a row reported through an occlusion has score and quality 0, a predicted box, and no
vector). Each tracklet keeps its `best_crops` best crops by quality and pools its detections' vectors, weighted by
crop quality, into one unit embedding: a blurred or truncated crop moves it little. A tracklet is closed once its
track has not been seen for `max_gap` frames (the tracker has dropped it by then), or when the stream ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from trackid.embed.crops import crop_boxes
from trackid.types import Detections, Tracklet

__all__ = ["TrackletBuilder"]


@dataclass
class _Open:
    class_id: int
    frames: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    boxes: list[NDArray[np.float64]] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    quality: list[float] = field(default_factory=list)
    pooled: NDArray[np.float64] | None = None
    crops: list[tuple[float, int, NDArray[np.uint8]]] = field(default_factory=list)  # (quality, frame, pixels)


class TrackletBuilder:
    """Accumulates one camera's tracker output frame by frame.

    Args:
        best_crops: crops kept per tracklet (0 keeps none; no image needed then).
        max_gap: frames a track may go unseen before its tracklet is closed; at least the tracker's `max_lost`
            in frames, else one track is cut into several tracklets.
        source: recorded in every tracklet (e.g. the video path).
    """

    def __init__(self, best_crops: int = 3, max_gap: int = 300, source: str = "") -> None:
        if best_crops < 0 or max_gap < 1:
            raise ValueError(f"best_crops must be >= 0 and max_gap >= 1, got {best_crops}, {max_gap}")
        self.best_crops = best_crops
        self.max_gap = max_gap
        self.source = source
        self.camera_id = ""
        self._open: dict[int, _Open] = {}

    def add(self, frame: int, tracked: Detections, image: NDArray[np.uint8] | None = None) -> list[Tracklet]:
        """Fold in one frame (1-based number) of tracker output; returns the tracklets this frame closed."""
        self.camera_id = tracked.camera_id
        observed = np.flatnonzero((tracked.score != 0) | (tracked.quality != 0))
        crops = self._crops(image, tracked, observed)
        for k, i in enumerate(observed.tolist()):
            track = self._open.setdefault(int(tracked.track_id[i]), _Open(int(tracked.class_id[i])))
            q = float(tracked.quality[i])
            track.frames.append(frame)
            track.times.append(tracked.time)
            track.boxes.append(tracked.xyxy[i])
            track.scores.append(float(tracked.score[i]))
            track.quality.append(q)
            vector = tracked.embedding[i]
            if vector.size and vector.any():
                weighted = q * vector.astype(np.float64)
                track.pooled = weighted if track.pooled is None else track.pooled + weighted
            worth = len(track.crops) < self.best_crops or (track.crops and q > track.crops[-1][0])
            if crops is not None and crops[k].size and worth:
                track.crops.append((q, frame, crops[k].copy()))
                track.crops.sort(key=lambda c: -c[0])
                del track.crops[self.best_crops :]
        stale = [t for t, track in self._open.items() if frame - track.frames[-1] > self.max_gap]
        return [self._close(t) for t in stale]

    def close(self) -> list[Tracklet]:
        """Every tracklet still open (the stream ended), in order of track id."""
        return [self._close(t) for t in sorted(self._open)]

    def _crops(
        self, image: NDArray[np.uint8] | None, tracked: Detections, rows: NDArray[np.intp]
    ) -> list[NDArray[np.uint8]] | None:
        """Views of the observed rows' crops; only those kept are copied (they outlive the frame)."""
        if image is None or self.best_crops == 0 or len(rows) == 0:
            return None
        return crop_boxes(image, tracked.xyxy[rows])

    def _close(self, track_id: int) -> Tracklet:
        track = self._open.pop(track_id)
        if track.pooled is None:
            embedding = np.zeros(0, np.float32)
        else:
            embedding = (track.pooled / max(float(np.linalg.norm(track.pooled)), 1e-12)).astype(np.float32)
        return Tracklet(
            track_id=track_id,
            camera_id=self.camera_id,
            class_id=track.class_id,
            frames=np.asarray(track.frames, np.int64),
            times=np.asarray(track.times, np.float64),
            boxes=np.asarray(track.boxes, np.float64).reshape(-1, 4),
            scores=np.asarray(track.scores, np.float64),
            quality=np.asarray(track.quality, np.float64),
            embedding=embedding,
            crops=tuple(c[2] for c in track.crops),
            crop_frames=tuple(c[1] for c in track.crops),
            source=self.source,
        )
