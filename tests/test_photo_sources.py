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
    cv2.imwrite(str(folder / "b.png"), np.full((20, 16, 3), 90, np.uint8))
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


def png_claiming(width: int, height: int) -> bytes:
    """A tiny, well-formed PNG whose header claims `width` x `height` pixels (one compressed row of data)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def test_a_camera_is_named_by_its_folder_under_the_root_given_whichever_root_is_given(tmp_path: Path) -> None:
    """Issue #15, item 1: `tune tunephotos/` then `ingest photos/` must name the cameras alike (cam1, cam2), as must
    `tune tunephotos/cam1 tunephotos/cam2`; the root's own name is not part of a camera's name."""
    for root in ("tunephotos", "photos"):
        for i, camera in enumerate(("cam1", "cam2", "site-b/cam3")):
            folder = tmp_path / root / camera
            folder.mkdir(parents=True)
            cv2.imwrite(str(folder / f"{root}-{i}.png"), np.full((40, 30, 3), 10 * i + len(root), np.uint8))
    extensions = PhotosConfig().extensions

    def cameras(*folders: Path) -> set[str]:
        photos, skipped = scan_photos(list(folders), extensions)
        assert not skipped and {p.camera_source for p in photos} == {"folder"}
        return {p.camera for p in photos}

    expected = {"cam1", "cam2", "site-b/cam3"}
    assert cameras(tmp_path / "tunephotos") == cameras(tmp_path / "photos") == expected
    assert cameras(tmp_path / "photos" / "cam1", tmp_path / "photos" / "cam2") == {"cam1", "cam2"}
    assert cameras(tmp_path / "photos" / "site-b") == {"cam3"}
    assert cameras(tmp_path / "photos" / "cam1" / ".") == {"cam1"}  # a root's own name, even when written as "."


def test_images_too_small_or_declaring_too_many_pixels_are_skipped_and_the_rest_scanned(tmp_path: Path) -> None:
    """Issue #15, items 3 and 9: a 1x1 px image is not a sighting; a 69-byte PNG claiming 30000x30000 px is
    refused from its header (it used to abort the scan with PIL's DecompressionBombError)."""
    cv2.imwrite(str(tmp_path / "dot.png"), np.zeros((1, 1, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "sliver.png"), np.zeros((400, 3, 3), np.uint8))
    (tmp_path / "bomb.png").write_bytes(png_claiming(30000, 30000))
    huge = bytearray(_jpeg((1, 2, 3)))
    at = huge.index(b"\xff\xc0")
    huge[at + 5 : at + 9] = (60000).to_bytes(2, "big") * 2
    (tmp_path / "bomb.jpg").write_bytes(bytes(huge))
    cv2.imwrite(str(tmp_path / "fine.png"), np.full((40, 30, 3), 90, np.uint8))
    photos, skipped = scan_photos([tmp_path], PhotosConfig().extensions)
    assert [p.path.name for p in photos] == ["fine.png"]
    reasons = {s.path.name: s.reason for s in skipped}
    assert reasons["dot.png"] == "image too small (1x1 px; an individual needs at least 16 px a side)"
    assert reasons["sliver.png"] == "image too small (3x400 px; an individual needs at least 16 px a side)"
    assert reasons["bomb.png"].startswith("the image header declares 30000x30000 px (900 megapixels), over the 64-")
    assert reasons["bomb.jpg"].startswith("the image header declares 60000x60000 px (3,600 megapixels)")
    from trackid.images import read_image

    with pytest.raises(ValueError, match=r"bomb.png: the image header declares 30000x30000 px .*; not decoded"):
        read_image(tmp_path / "bomb.png")  # decoding checks the header too: OpenCV would allocate 2.7 GB for it
    assert read_image(tmp_path / "fine.png").shape == (40, 30, 3)
