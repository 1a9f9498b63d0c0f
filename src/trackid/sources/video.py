"""Video files and streams (rtsp://, http://... URLs) as a stream of frames (OpenCV), with the errors a user can
act on.

A video that cannot be opened, reports no frames, or stops delivering frames before its announced end raises
`VideoError` naming the file and the frame; the caller decides whether the frames read so far are still useful
(the video pipeline keeps and finalises what it has written).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

__all__ = ["VideoError", "VideoInfo", "VideoSource", "is_stream_url"]


def is_stream_url(source: str | os.PathLike[str]) -> bool:
    """rtsp://, http(s)://, udp://...: a stream for OpenCV, not a file."""
    return re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", str(source)) is not None


class VideoError(ValueError):
    """A video that cannot be read; the message names the file (and frame, where one is at fault)."""


@dataclass(frozen=True, slots=True)
class VideoInfo:
    path: Path
    frame_rate: float
    frame_count: int
    width: int
    height: int


class VideoSource:
    """Iterate `(index, frame)` over a video file or stream; frames are H x W x 3 uint8 BGR, indices 0-based.

    Args:
        path: the video file, or a stream URL (`scheme://...`), which announces no frame count and ends when it
            stops delivering frames.
        frame_rate: override the container's frame rate (some containers lie, e.g. PETS09-S2L1's AVI says
            10 fps for a 7 fps sequence); trackers scale their time-based parameters with it.
        stride: yield every `stride`-th frame, to trade temporal resolution for speed.
        max_frames: stop after this many frames have been read (None: the whole video).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        frame_rate: float | None = None,
        stride: int = 1,
        max_frames: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.url = str(path) if is_stream_url(path) else None
        self.name = self.url or str(self.path)  # in messages
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        if frame_rate is not None and not frame_rate > 0:
            raise ValueError(f"frame_rate must be positive, got {frame_rate}")
        if self.url is None and not self.path.is_file():
            raise VideoError(f"{self.path}: video file not found")
        capture = cv2.VideoCapture(self.name)
        try:
            if not capture.isOpened():
                what = "cannot open the stream" if self.url else "cannot open as a video (unknown or corrupt container)"
                raise VideoError(f"{self.name}: {what}")
            fps = frame_rate or capture.get(cv2.CAP_PROP_FPS)
            count = 0 if self.url else int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
            width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
            height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        finally:
            capture.release()
        if not fps or not np.isfinite(fps) or fps <= 0:
            raise VideoError(f"{self.name}: the container has no frame rate; pass frame_rate explicitly")
        if width <= 0 or height <= 0:
            raise VideoError(f"{self.name}: frames have zero size ({width}x{height})")
        self.info = VideoInfo(self.path, float(fps), count, width, height)
        self.stride = stride
        self.max_frames = max_frames

    @property
    def frames_to_read(self) -> int:
        """Frames this source will yield if the container's frame count is right."""
        total = self.info.frame_count if self.max_frames is None else min(self.info.frame_count, self.max_frames)
        return -(-max(total, 0) // self.stride)

    def __iter__(self) -> Iterator[tuple[int, NDArray[np.uint8]]]:
        capture = cv2.VideoCapture(self.name)
        try:
            announced = self.info.frame_count if self.info.frame_count > 0 else None  # streams announce nothing
            limit = min(x for x in (announced, self.max_frames, 2**62) if x is not None)
            for index in range(limit):
                ok = capture.grab()
                if not ok and announced is None:
                    return
                if not ok:
                    raise VideoError(
                        f"{self.name}: frame {index} unreadable (the container announces {self.info.frame_count} "
                        "frames; the file may be truncated or corrupt)"
                    )
                if index % self.stride:
                    continue
                ok, frame = capture.retrieve()
                if not ok or frame is None or frame.size == 0:
                    raise VideoError(f"{self.name}: frame {index} could not be decoded")
                yield index, np.asarray(frame, dtype=np.uint8)
        finally:
            capture.release()
