"""Photo folders as a source: what a real collection holds, when and by which camera each photo was taken, bursts.

Scanning reads every file once: it hashes it (the hash names a photo for resuming and spots exact duplicates),
rejects files that cannot be photos (zero bytes, truncated, not the format their name says, too small to show an
individual, or declaring more pixels than may be decoded: see `trackid.images`) and reads the EXIF capture time
and camera. Decoding pixels is left to the consumer: it is the expensive part. A burst is one camera's photos close
in capture time: one sighting, the photo collection's tracklet.

A camera's name must be the same whichever command and root folder see it, because `tune` learns per-camera
means that `ingest` looks up by that name. It is, in order: the EXIF body serial (with make and model); else the
photo's folder relative to the root given on the command line (`tune tunephotos/` and `ingest photos/` both name
`cam1/`'s photos "cam1"); else, for a photo directly in that root, the root's own folder name (`ingest photos/cam1`
names them "cam1" too); else (a root without a name, the file-system root) a fingerprint of the folder's path.
"""

from __future__ import annotations

import hashlib
import io
import struct
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trackid.images import MAX_IMAGE_PIXELS, check_declared_size

__all__ = ["MIN_PHOTO_SIDE", "Photo", "SkippedFile", "count_reasons", "group_bursts", "read_exif", "scan_photos"]

MIN_PHOTO_SIDE = 16
"""Photos (and detected crops) narrower or shorter than this many pixels are skipped: embedders scale a crop up to
their input size (e.g. 128 x 256), and below about 16 px there is nothing of the individual left to scale. Lowering
it admits distant individuals at the price of vectors that mostly encode the blur."""

EXIF_IFD = 0x8769
EXIF_DATETIME_ORIGINAL, EXIF_BODY_SERIAL = 36867, 42033
TIFF_DATETIME, TIFF_MAKE, TIFF_MODEL = 306, 271, 272


@dataclass(frozen=True, slots=True)
class Photo:
    """One usable-looking file; `time_source` is "exif" or "file", `camera_source` is "exif" (body serial) or
    "folder" (see the module docstring)."""

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


def scan_photos(
    folders: Sequence[Path], extensions: Iterable[str], max_pixels: int = MAX_IMAGE_PIXELS
) -> tuple[list[Photo], list[SkippedFile]]:
    """Every file under `folders` as a `Photo` or a `SkippedFile` with the reason; exact duplicates (same content)
    are skipped, naming the file they duplicate. `extensions` (case-insensitive, with the dot) are the formats
    taken; images declaring more than `max_pixels` are skipped before anything decodes them. A photo without an
    EXIF camera serial is named by its folder (see the module docstring), one without an EXIF time by its file's
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
            problem = _integrity_problem(data, path.suffix.lower()) or _size_problem(data, path, max_pixels)
            if problem:
                skipped.append(SkippedFile(path, problem))
                continue
            digest = hashlib.sha256(data).hexdigest()
            if digest in first_with:
                skipped.append(SkippedFile(path, f"duplicate of {first_with[digest]}"))
                continue
            first_with[digest] = path
            taken, camera = read_exif(data)
            photos.append(
                Photo(
                    path=path,
                    sha256=digest,
                    time=taken if taken is not None else path.stat().st_mtime,
                    time_source="exif" if taken is not None else "file",
                    camera=camera if camera else _folder_camera(root, path.parent),
                    camera_source="exif" if camera else "folder",
                )
            )
    return photos, skipped


def count_reasons(reasons: Iterable[str]) -> Counter[str]:
    """How many files were skipped for each of `SkippedFile`'s reasons (duplicates counted together, whatever they
    duplicate)."""
    return Counter("duplicate" if reason.startswith("duplicate of ") else reason for reason in reasons)


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


def read_exif(data: bytes) -> tuple[float | None, str | None]:
    """Capture time (EXIF DateTimeOriginal, else DateTime; camera-local time read as UTC) and a camera identity
    from the file's EXIF, or None for either where the file has none that can be read (any bytes give an answer:
    a garbled EXIF block is no EXIF). The identity needs the body serial number: a team's cameras are often one
    make and model, and merging them would join bursts of different cameras."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PIL warns of odd EXIF layouts and large sizes; the answer covers both
        try:
            with Image.open(io.BytesIO(data)) as image:
                exif = image.getexif()
                sub = exif.get_ifd(EXIF_IFD)
                stamp = sub.get(EXIF_DATETIME_ORIGINAL) or exif.get(TIFF_DATETIME)
                serial = _text(sub.get(EXIF_BODY_SERIAL))
                make_model = [_text(exif.get(tag)) for tag in (TIFF_MAKE, TIFF_MODEL)]
        except (Image.DecompressionBombError, OSError, ValueError, SyntaxError, EOFError, struct.error):
            return None, None  # PIL's ways of saying "no image (or EXIF) I can read"
        except (IndexError, KeyError, TypeError, AttributeError, RecursionError, OverflowError):
            return None, None  # a garbled EXIF block PIL parses past its own checks
    taken: float | None = None
    text = _text(stamp)
    try:
        taken = datetime.strptime(text, "%Y:%m:%d %H:%M:%S").replace(tzinfo=UTC).timestamp() if text else None
    except (ValueError, OverflowError):
        taken = None
    if not serial:
        return taken, None
    return taken, " ".join([*(part for part in make_model if part), f"#{serial}"])


def _text(value: Any) -> str:
    """An EXIF ASCII value as text: str, or bytes where PIL kept them undecoded; other types (numbers) are no text."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return value.strip("\x00 ") if isinstance(value, str) else ""


def _folder_camera(root: Path, folder: Path) -> str:
    """A camera named by its folder: relative to the root given, else the root's own name, else a fingerprint."""
    relative = folder.relative_to(root)
    if relative.parts:
        return relative.as_posix()
    resolved = root.resolve()
    return resolved.name or f"folder-{hashlib.sha256(str(resolved).encode()).hexdigest()[:12]}"


def _size_problem(data: bytes, path: Path, max_pixels: int) -> str | None:
    """An image too small to show an individual, or declaring more pixels than may be decoded (from its header)."""
    try:
        width, height = check_declared_size(data, str(path), max_pixels)
    except ValueError as exc:
        return str(exc).removeprefix(f"{path}: ")
    if min(width, height) < MIN_PHOTO_SIDE:
        return f"image too small ({width}x{height} px; an individual needs at least {MIN_PHOTO_SIDE} px a side)"
    return None
