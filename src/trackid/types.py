"""The data that flows between stages.

`Detections` is the one currency between detectors, trackers, embedders and sinks: a frozen dataclass of aligned
numpy arrays, one row per box. Optional per-box data (embedding, quality, track id) always exists with a defined
"empty" value, so consumers never None-check: an embedding of width 0 means "no appearance", a quality of 1.0 means
"not scored", a track id of -1 means "not assigned". Two per-frame scalars say where and when the boxes were seen:
`camera_id` ("" when there is one camera) and `time` (seconds; NaN when unknown), so downstream stages that merge
cameras or sessions never have to be told separately.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from trackid.geometry import xyxy_to_xywh

if TYPE_CHECKING:
    import supervision as sv

__all__ = ["NO_TRACK", "Detections", "Tracklet"]

_ARRAYS = ("xyxy", "score", "class_id", "embedding", "quality", "track_id")
"""The per-box fields, aligned row for row; the others are per frame."""

NO_TRACK = -1
"""`track_id` of a box no tracker has claimed."""


@dataclass(frozen=True, slots=True, eq=False)
class Detections:
    """Boxes of one frame (or one image) with aligned per-box arrays.

    Attributes:
        xyxy: (N, 4) float64 corners `x1, y1, x2, y2` in pixels.
        score: (N,) float64 detector confidence.
        class_id: (N,) int64 class index (0 when the detector has one class).
        embedding: (N, D) float32 appearance vectors; D == 0 when none were computed.
        quality: (N,) float64 crop quality in [0, 1]; 1.0 when not scored.
        track_id: (N,) int64 track identity; `NO_TRACK` (-1) when unassigned.
        camera_id: the camera (or photo source) the frame came from; "" for a single camera.
        time: the frame's time in seconds (video position, or capture time); NaN when unknown.
    """

    xyxy: NDArray[np.float64]
    score: NDArray[np.float64]
    class_id: NDArray[np.int64]
    embedding: NDArray[np.float32]
    quality: NDArray[np.float64]
    track_id: NDArray[np.int64]
    camera_id: str = ""
    time: float = float("nan")

    @classmethod
    def from_arrays(
        cls,
        xyxy: ArrayLike,
        score: ArrayLike | None = None,
        class_id: ArrayLike | None = None,
        *,
        embedding: ArrayLike | None = None,
        quality: ArrayLike | None = None,
        track_id: ArrayLike | None = None,
        camera_id: str = "",
        time: float = float("nan"),
    ) -> Detections:
        """Build from array-likes, filling omitted fields with their empty values and validating shapes."""
        boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
        n = len(boxes)
        det = cls(
            xyxy=boxes,
            score=np.ones(n) if score is None else np.asarray(score, dtype=np.float64).reshape(-1),
            class_id=np.zeros(n, np.int64) if class_id is None else np.asarray(class_id, dtype=np.int64).reshape(-1),
            embedding=np.zeros((n, 0), np.float32) if embedding is None else _as_embedding(embedding, n),
            quality=np.ones(n) if quality is None else np.asarray(quality, dtype=np.float64).reshape(-1),
            track_id=(
                np.full(n, NO_TRACK, np.int64) if track_id is None else np.asarray(track_id, np.int64).reshape(-1)
            ),
            camera_id=str(camera_id),
            time=float(time),
        )
        det.validate()
        return det

    @classmethod
    def empty(cls, embedding_dim: int = 0) -> Detections:
        return cls.from_arrays(np.zeros((0, 4)), embedding=np.zeros((0, embedding_dim), np.float32))

    @classmethod
    def merge(cls, parts: Sequence[Detections]) -> Detections:
        """Concatenate several sets of one frame (e.g. its tiles); embeddings must share a width. The first part's
        camera and time are kept."""
        if not parts:
            return cls.empty()
        widths = {p.embedding.shape[1] for p in parts}
        if len(widths) > 1:
            raise ValueError(f"cannot merge detections with embedding widths {sorted(widths)}")
        arrays = {name: np.concatenate([getattr(p, name) for p in parts]) for name in _ARRAYS}
        return cls(**arrays, camera_id=parts[0].camera_id, time=parts[0].time)

    def validate(self) -> None:
        """Raise ValueError naming the field whose length or values do not fit."""
        n = len(self.xyxy)
        if self.xyxy.ndim != 2 or self.xyxy.shape[1] != 4:
            raise ValueError(f"xyxy must have shape (N, 4), got {self.xyxy.shape}")
        for name in _ARRAYS:
            arr = getattr(self, name)
            if len(arr) != n:
                raise ValueError(f"{name} has {len(arr)} rows but xyxy has {n}")
        if not np.isfinite(self.xyxy).all():
            raise ValueError("xyxy contains NaN or infinite coordinates")
        if (self.xyxy[:, 2:] < self.xyxy[:, :2]).any():
            raise ValueError("xyxy has boxes with x2 < x1 or y2 < y1")

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: Any) -> Detections:
        """Vectorised selection by boolean mask, integer array or slice; always returns `Detections`."""
        if isinstance(index, int | np.integer):
            index = slice(int(index), int(index) + 1 or None)
        return Detections(
            self.xyxy[index],
            self.score[index],
            self.class_id[index],
            self.embedding[index],
            self.quality[index],
            self.track_id[index],
            self.camera_id,
            self.time,
        )

    def with_track_ids(self, track_id: ArrayLike) -> Detections:
        ids = np.asarray(track_id, dtype=np.int64).reshape(-1)
        if len(ids) != len(self):
            raise ValueError(f"track_id has {len(ids)} rows but there are {len(self)} detections")
        return replace(self, track_id=ids)

    @property
    def xywh(self) -> NDArray[np.float64]:
        """Top-left corner and size, the MOTChallenge box convention."""
        return xyxy_to_xywh(self.xyxy)

    def to_supervision(self) -> sv.Detections:
        """Convert to `supervision.Detections` (requires the `supervision` extra)."""
        import supervision as sv

        data = {"embedding": self.embedding, "quality": self.quality} if self.embedding.shape[1] else {}
        return sv.Detections(
            xyxy=self.xyxy.astype(np.float32),
            confidence=self.score.astype(np.float32),
            class_id=self.class_id.astype(int),
            tracker_id=np.where(self.track_id == NO_TRACK, -1, self.track_id).astype(int) if len(self) else None,
            data=data,
        )

    @classmethod
    def from_supervision(cls, detections: sv.Detections) -> Detections:
        """Convert from `supervision.Detections`; missing confidences/classes/tracker ids get their empty values."""
        data = detections.data or {}
        return cls.from_arrays(
            detections.xyxy,
            detections.confidence,
            detections.class_id,
            embedding=data.get("embedding"),
            quality=data.get("quality"),
            track_id=detections.tracker_id,
        )


def _as_embedding(embedding: ArrayLike, n: int) -> NDArray[np.float32]:
    """(n, D) float32; an empty input keeps its width so that `empty(embedding_dim=D)` has shape (0, D)."""
    arr = np.asarray(embedding, dtype=np.float32)
    width = arr.shape[-1] if arr.ndim == 2 else (0 if n == 0 else -1)
    return arr.reshape(n, width)


@dataclass(frozen=True, slots=True, eq=False)
class Tracklet:
    """One track's life in one camera: what leaves a camera, and what every later stage (cross-camera linking, the
    gallery, episodes) works on instead of frames.

    Attributes:
        track_id: the tracker's id, unique within `camera_id` and a run.
        camera_id: the camera it was seen by ("" for one camera).
        class_id: its class (COCO index for the COCO detectors; 0 for person-only ones).
        frames: (T,) frame numbers (1-based) where a detection was matched, in order.
        times: (T,) their times in seconds (NaN when unknown).
        boxes: (T, 4) the reported boxes `x1, y1, x2, y2`.
        scores: (T,) detector scores.
        quality: (T,) crop qualities.
        embedding: (D,) unit, quality-weighted mean of the detections' vectors; (0,) when none were computed.
        crops: the best crops by quality, best first (pixels, BGR).
        crop_frames: the frame number of each crop.
        source: where the frames came from (a video path, a folder of photos).
    """

    track_id: int
    camera_id: str
    class_id: int
    frames: NDArray[np.int64]
    times: NDArray[np.float64]
    boxes: NDArray[np.float64]
    scores: NDArray[np.float64]
    quality: NDArray[np.float64]
    embedding: NDArray[np.float32]
    crops: tuple[NDArray[np.uint8], ...] = ()
    crop_frames: tuple[int, ...] = ()
    source: str = ""

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def first_frame(self) -> int:
        return int(self.frames[0])

    @property
    def last_frame(self) -> int:
        return int(self.frames[-1])

    def summary(self) -> dict[str, Any]:
        """JSON-ready description without pixels or vectors (those go to image and array files)."""
        return {
            "track_id": self.track_id,
            "camera_id": self.camera_id,
            "class_id": self.class_id,
            "first_frame": self.first_frame,
            "last_frame": self.last_frame,
            "detections": len(self),
            "start_time": None if np.isnan(self.times[0]) else float(self.times[0]),
            "end_time": None if np.isnan(self.times[-1]) else float(self.times[-1]),
            "mean_score": round(float(self.scores.mean()), 4),
            "best_quality": round(float(self.quality.max()), 4),
            "crop_frames": list(self.crop_frames),
            "embedding_dim": int(self.embedding.shape[0]),
            "source": self.source,
        }
