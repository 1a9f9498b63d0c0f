"""Photo folders as a source: what a real collection holds, when and by which camera each photo was taken, bursts.

Scanning reads every file once: it hashes it (the hash names a photo for resuming and spots exact duplicates),
rejects files that cannot be photos (zero bytes, truncated, not the format their name says) and reads the EXIF
capture time and camera. Decoding pixels is left to the consumer: it is the expensive part. A burst is one
camera's photos close in capture time: one sighting, the photo collection's tracklet.
"""

from __future__ import annotations

import hashlib
import io
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["Photo", "SkippedFile", "group_bursts", "scan_photos"]

EXIF_IFD = 0x8769
EXIF_DATETIME_ORIGINAL, EXIF_BODY_SERIAL = 36867, 42033
TIFF_DATETIME, TIFF_MAKE, TIFF_MODEL = 306, 271, 272


@dataclass(frozen=True, slots=True)
class Photo:
    """One usable-looking file; `time_source` is "exif" or "file", `camera_source` is "exif" or "folder"."""

    path: Path
    sha256: str
    time: float
    time_source: str
    camera: str
    camera_source: str


@dataclass(frozen=True, slots=True)
class SkippedFile:
    """A file left out, and why (in words a person acts on)."""

    path: Path
    reason: str


def scan_photos(folders: Sequence[Path], extensions: Iterable[str]) -> tuple[list[Photo], list[SkippedFile]]:
    """Every file under `folders` as a `Photo` or a `SkippedFile` with the reason; exact duplicates (same content)
    are skipped, naming the file they duplicate. `extensions` (case-insensitive, with the dot) are the formats
    taken; a photo without an EXIF camera serial is named by its folder, one without an EXIF time by its file's
    modification time."""
    wanted = {e.lower() for e in extensions}
    photos: list[Photo] = []
    skipped: list[SkippedFile] = []
    first_with: dict[str, Path] = {}
    for root in folders:
        if not root.is_dir():
            raise FileNotFoundError(f"photo folder not found: {root}")
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            if path.suffix.lower() not in wanted:
                skipped.append(SkippedFile(path, f"unsupported format ({path.suffix or 'no extension'})"))
                continue
            data = path.read_bytes()
            problem = _integrity_problem(data, path.suffix.lower())
            if problem:
                skipped.append(SkippedFile(path, problem))
                continue
            digest = hashlib.sha256(data).hexdigest()
            if digest in first_with:
                skipped.append(SkippedFile(path, f"duplicate of {first_with[digest]}"))
                continue
            first_with[digest] = path
            taken, camera = _exif(data)
            photos.append(
                Photo(
                    path=path,
                    sha256=digest,
                    time=taken if taken is not None else path.stat().st_mtime,
                    time_source="exif" if taken is not None else "file",
                    camera=camera if camera else (Path(root.name) / path.parent.relative_to(root)).as_posix(),
                    camera_source="exif" if camera else "folder",
                )
            )
    return photos, skipped


def group_bursts(photos: Sequence[Photo], gap_s: float, from_file_times: bool = False) -> list[list[Photo]]:
    """Photos of one camera taken within `gap_s` of the previous one, in time order; photos timed only by their
    file are single-photo bursts unless `from_file_times`. Bursts are ordered by time, camera, path."""
    by_camera: dict[str, list[Photo]] = defaultdict(list)
    for photo in photos:
        by_camera[photo.camera].append(photo)
    bursts: list[list[Photo]] = []
    for camera_photos in by_camera.values():
        current: list[Photo] = []
        for photo in sorted(camera_photos, key=lambda p: (p.time, str(p.path))):
            groupable = from_file_times or photo.time_source == "exif"
            same_clock = current and groupable and current[-1].time_source == photo.time_source
            if same_clock and photo.time - current[-1].time <= gap_s:
                current.append(photo)
                continue
            if current:
                bursts.append(current)
            current = [photo]
        if current:
            bursts.append(current)
    return sorted(bursts, key=lambda b: (b[0].time, b[0].camera, str(b[0].path)))


def _integrity_problem(data: bytes, suffix: str) -> str | None:
    """Zero-byte and truncated files, which OpenCV would decode to a grey-padded image without a word."""
    if not data:
        return "zero-byte file"
    if suffix in (".jpg", ".jpeg"):
        if not data.startswith(b"\xff\xd8"):
            return "not a JPEG file (no start-of-image marker)"
        if not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
            return "truncated JPEG (no end-of-image marker)"
    if suffix == ".png":
        if not data.startswith(b"\x89PNG\r\n\x1a\n"):
            return "not a PNG file (bad signature)"
        if b"IEND" not in data[-16:]:
            return "truncated PNG (no IEND chunk)"
    return None


def _exif(data: bytes) -> tuple[float | None, str | None]:
    """Capture time (EXIF DateTimeOriginal, else DateTime; camera-local time read as UTC) and a camera identity
    from the file's EXIF, or None where it has none. The identity needs the body serial number: a team's cameras
    are often one make and model, and merging them would join bursts of different cameras."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            exif = image.getexif()
    except (UnidentifiedImageError, OSError, ValueError):
        return None, None
    sub = exif.get_ifd(EXIF_IFD)
    taken: float | None = None
    stamp = sub.get(EXIF_DATETIME_ORIGINAL) or exif.get(TIFF_DATETIME)
    if isinstance(stamp, str):
        try:
            taken = datetime.strptime(stamp.strip("\x00 "), "%Y:%m:%d %H:%M:%S").replace(tzinfo=UTC).timestamp()
        except ValueError:
            taken = None
    serial = str(sub.get(EXIF_BODY_SERIAL) or "").strip("\x00 ")
    if not serial:
        return taken, None
    parts = [str(v).strip("\x00 ") for v in (exif.get(TIFF_MAKE), exif.get(TIFF_MODEL)) if v]
    return taken, " ".join([*parts, f"#{serial}"])
