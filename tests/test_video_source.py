"""Video files: frames come out in order, and broken files fail with the file (and frame) named."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from trackid.sources.video import VideoError, VideoSource

CLIP = Path(__file__).resolve().parents[1] / "demo" / "pets09_s2l1_clip.mp4"


def _write_video(path: Path, frames: int, size: tuple[int, int] = (64, 48)) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, size)
    for k in range(frames):
        writer.write(np.full((size[1], size[0], 3), 10 * k % 255, np.uint8))
    writer.release()
    return path


def test_reads_every_frame_in_order(tmp_path: Path) -> None:
    source = VideoSource(_write_video(tmp_path / "v.mp4", 12))
    assert (source.info.frame_count, source.info.width, source.info.height) == (12, 64, 48)
    indices = [index for index, frame in source]
    assert indices == list(range(12))


def test_stride_and_limits(tmp_path: Path) -> None:
    path = _write_video(tmp_path / "v.mp4", 10)
    assert [i for i, _ in VideoSource(path, stride=3)] == [0, 3, 6, 9]
    assert VideoSource(path, stride=3).frames_to_read == 4
    assert [i for i, _ in VideoSource(path, max_frames=4)] == [0, 1, 2, 3]
    assert VideoSource(path, frame_rate=7.0).info.frame_rate == 7.0


def test_the_shipped_demo_clip_is_a_real_video() -> None:
    source = VideoSource(CLIP)
    assert (source.info.width, source.info.height) == (768, 576)
    assert source.info.frame_rate == 7.0 and source.info.frame_count == 150
    assert CLIP.stat().st_size < 5 * 2**20
    index, frame = next(iter(source))
    assert index == 0 and frame.shape == (576, 768, 3) and frame.dtype == np.uint8


def test_missing_and_non_video_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match="not found"):
        VideoSource(tmp_path / "nope.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 100)
    with pytest.raises(VideoError, match=r"junk\.mp4: cannot open"):
        VideoSource(junk)


def test_truncated_video_names_the_frame(tmp_path: Path) -> None:
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(CLIP.read_bytes()[: CLIP.stat().st_size // 2])
    try:
        source = VideoSource(truncated)
    except VideoError as exc:  # some demuxers already refuse to open a cut mp4
        assert "cut.mp4" in str(exc)
        return
    with pytest.raises(VideoError, match=r"cut\.mp4: frame \d+ unreadable"):
        for _ in source:
            pass


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="stride"):
        VideoSource(CLIP, stride=0)
    with pytest.raises(ValueError, match="frame_rate"):
        VideoSource(CLIP, frame_rate=-1)
