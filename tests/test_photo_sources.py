"""Photo folders as a source: what scanning reads from real files (EXIF time and camera, hashes, the files a
collection holds that cannot be used) and how photos group into bursts."""

from __future__ import annotations

import io
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from trackid.config import PhotosConfig
from trackid.sources.photos import group_bursts, scan_photos


def _jpeg(colour: tuple[int, int, int], exif: dict[int, str] | None = None, sub: dict[int, str] | None = None) -> bytes:
    image = Image.new("RGB", (64, 128), colour)
    info = Image.Exif()
    for tag, value in (exif or {}).items():
        info[tag] = value
    if sub:
        info.get_ifd(0x8769).update(sub)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=info.tobytes())
    return buffer.getvalue()


def test_scan_reads_exif_and_names_every_file_it_cannot_use(tmp_path: Path) -> None:
    folder = tmp_path / "trailcam-7"
    folder.mkdir()
    stamped = _jpeg((200, 30, 30), {271: "Bushnell", 272: "Core"}, {36867: "2026:05:01 06:30:00", 42033: "B-17"})
    (folder / "a.jpg").write_bytes(stamped)
    (folder / "copy-of-a.JPG").write_bytes(stamped)
    (folder / "plain.jpg").write_bytes(_jpeg((30, 200, 30), {271: "Bushnell", 272: "Core"}))  # no serial
    cv2.imwrite(str(folder / "b.png"), np.full((20, 10, 3), 90, np.uint8))
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "cut.jpg").write_bytes(stamped[: len(stamped) // 2])
    (folder / "text.jpg").write_bytes(b"hello, not a photo")
    (folder / "cut.png").write_bytes((folder / "b.png").read_bytes()[:40])
    (folder / "notes.txt").write_text("field notes")
    photos, skipped = scan_photos([folder], PhotosConfig().extensions)

    by_name = {p.path.name: p for p in photos}
    assert sorted(by_name) == ["a.jpg", "b.png", "plain.jpg"]
    a = by_name["a.jpg"]
    assert (a.time_source, a.camera_source, a.camera) == ("exif", "exif", "Bushnell Core #B-17")
    assert a.time == 1777617000.0  # 2026-05-01 06:30:00, read as UTC
    assert (by_name["plain.jpg"].time_source, by_name["plain.jpg"].camera) == ("file", "trailcam-7")
    reasons = {s.path.name: s.reason for s in skipped}
    assert reasons == {
        "copy-of-a.JPG": f"duplicate of {folder / 'a.jpg'}",
        "empty.jpg": "zero-byte file",
        "cut.jpg": "truncated JPEG (no end-of-image marker)",
        "text.jpg": "not a JPEG file (no start-of-image marker)",
        "cut.png": "truncated PNG (no IEND chunk)",
        "notes.txt": "unsupported format (.txt)",
    }
    with pytest.raises(FileNotFoundError, match="photo folder not found"):
        scan_photos([tmp_path / "nope"], PhotosConfig().extensions)


def test_bursts_group_one_camera_close_in_time(tmp_path: Path) -> None:
    shots = [("cam1", 0), ("cam1", 4), ("cam1", 30), ("cam2", 2), ("cam1", 33)]
    for i, (camera, second) in enumerate(shots):
        path = tmp_path / camera / f"{i}.jpg"
        path.parent.mkdir(exist_ok=True)
        stamp = {36867: f"2026:05:01 06:00:{second:02d}", 42033: camera}
        path.write_bytes(_jpeg((i * 40, 10, 10), {272: "Core"}, stamp))
    found, _ = scan_photos([tmp_path], PhotosConfig().extensions)
    bursts = group_bursts(found, gap_s=10)
    assert [[p.path.name for p in b] for b in bursts] == [["0.jpg", "1.jpg"], ["3.jpg"], ["2.jpg", "4.jpg"]]
    for photo in found:  # file times are not capture times: no bursts unless asked
        os.utime(photo.path, (1000.0, 1000.0))
    plain = [p.__class__(p.path, p.sha256, 1000.0, "file", p.camera, p.camera_source) for p in found]
    assert len(group_bursts(plain, gap_s=10)) == 5
    assert len(group_bursts(plain, gap_s=10, from_file_times=True)) == 2
