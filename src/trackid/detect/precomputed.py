"""Replay of precomputed detections (e.g. the MOTChallenge FRCNN files) in step with the frames of a video."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from trackid.detect.base import register_detector
from trackid.images import check_image
from trackid.registry import BackendParams
from trackid.sources.motchallenge import detections_by_frame, read_mot_file
from trackid.types import Detections

__all__ = ["PrecomputedDetector", "PrecomputedParams"]


class PrecomputedParams(BackendParams):
    """What to replay."""

    frames: list[Detections] | Path = Field(
        description="One `Detections` per frame (index 0 = first frame), or the path of a MOTChallenge det file."
    )
    num_frames: int | None = Field(
        None,
        ge=0,
        description="With a det file, the number of frames to read (rows of later frames are ignored); null: up to "
        "the last frame in the file.",
    )
    min_score: float = Field(
        -np.inf,
        description="With a det file, rows scoring below it are dropped. MOT17's FRCNN files go down to 0.05, so a "
        "tracker without a low-score stage wants ~0.5; one with it loses its second-stage candidates.",
    )


@register_detector("precomputed", params=PrecomputedParams)
class PrecomputedDetector:
    """Returns the detections of frame k on the k-th call to `detect`, ignoring the image's pixels.

    This lets a pipeline built for live detectors replay public detections, so tracking results are comparable with
    published ones. Frames past the end have no detections: a MOT det file has no rows for frames without boxes.

    Args: see `PrecomputedParams`.
    """

    name = "precomputed"

    def __init__(
        self,
        frames: Sequence[Detections] | str | os.PathLike[str],
        num_frames: int | None = None,
        min_score: float = -np.inf,
    ) -> None:
        if isinstance(frames, str | os.PathLike):
            rows = read_mot_file(frames)
            count = int(rows.frame.max(initial=0)) if num_frames is None else num_frames
            if count < 0:
                raise ValueError(f"num_frames must be non-negative, got {num_frames}")
            self.frames_ = detections_by_frame(rows, count, min_score=min_score)
        else:
            if num_frames is not None or min_score != -np.inf:
                raise ValueError("num_frames and min_score apply to a det file; filter a list of Detections yourself")
            bad = next((i for i, f in enumerate(frames) if not isinstance(f, Detections)), None)
            if bad is not None:
                raise ValueError(f"frames[{bad}] must be Detections, got {type(frames[bad]).__name__}")
            self.frames_ = list(frames)
        self.frame_index_ = 0

    @classmethod
    def from_mot_file(
        cls, path: str | os.PathLike[str], num_frames: int | None = None, min_score: float = -np.inf
    ) -> PrecomputedDetector:
        """Replay a MOTChallenge det file; `num_frames` is usually the video's frame count."""
        return cls(path, num_frames=num_frames, min_score=min_score)

    def __len__(self) -> int:
        return len(self.frames_)

    def seek(self, frame_index: int) -> None:
        """Make the next `detect` call return frame `frame_index` (0-based), e.g. to resume a job mid-video."""
        if frame_index < 0:
            raise ValueError(f"frame_index must be non-negative, got {frame_index}")
        self.frame_index_ = frame_index

    def detect(self, image: NDArray[np.uint8]) -> Detections:
        check_image(image)
        k = self.frame_index_
        self.frame_index_ += 1
        return self.frames_[k] if k < len(self.frames_) else Detections.empty()
