"""Images as every stage receives them: H x W x 3 uint8 arrays in OpenCV's BGR order.

Decoding is guarded by what the file's header declares: a 69-byte PNG may claim 30000 x 30000 pixels, and OpenCV
would try to allocate 2.7 GB for it (PIL raises `DecompressionBombError` out of the middle of a scan). The header
is read first, without decoding anything, and an image over `MAX_IMAGE_PIXELS` is refused with the reason.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

__all__ = ["MAX_IMAGE_PIXELS", "check_declared_size", "check_image", "read_image"]

MAX_IMAGE_PIXELS = 64_000_000
"""The most pixels an image may declare and still be decoded: 64 megapixels are 192 MB of BGR, above the full
resolution of trail and phone cameras (up to about 50 MP). Raising it admits larger images at 3 bytes a pixel of
memory each (and more while they are cropped and resized); lowering it refuses some real photos."""

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
"""Start-of-frame markers (baseline, progressive, lossless, arithmetic); C4, C8 and CC are other segments."""


def read_image(path: str | os.PathLike[str], max_pixels: int = MAX_IMAGE_PIXELS) -> NDArray[np.uint8]:
    """Decode an image file to BGR uint8; ValueError naming the file and the fault (missing, empty, a header that
    declares more than `max_pixels` or none that can be read, undecodable).

    OpenCV's `imread` returns None for all of these without saying which; callers that skip bad files need the
    reason, and an image declaring billions of pixels must be refused before any memory is taken for it.
    """
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"{file}: image file not found")
    data = file.read_bytes()
    if not data:
        raise ValueError(f"{file}: zero-byte file")
    check_declared_size(data, str(file), max_pixels)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{file}: not a decodable image (corrupt, truncated or an unsupported format)")
    return np.asarray(image, np.uint8)


def check_declared_size(data: bytes, name: str, max_pixels: int = MAX_IMAGE_PIXELS) -> tuple[int, int]:
    """The (width, height) the header of the image file `data` declares; ValueError naming `name` when no header
    can be read or it declares a zero side or more than `max_pixels` pixels."""
    size = _declared_size(data, name)
    if size is None:
        raise ValueError(f"{name}: not a decodable image (no readable image header: corrupt, truncated or unsupported)")
    width, height = size
    if width <= 0 or height <= 0:
        raise ValueError(f"{name}: the image header declares {width}x{height} px (no pixels)")
    if width * height > max_pixels:
        raise ValueError(
            f"{name}: the image header declares {width}x{height} px ({width * height / 1e6:,.0f} megapixels), over the "
            f"{max_pixels / 1e6:,.0f}-megapixel limit for one image; not decoded"
        )
    return width, height


def _declared_size(data: bytes, name: str) -> tuple[int, int] | None:
    """The (width, height) an image file's header declares, without decoding pixels: PNG's IHDR chunk, JPEG's
    start-of-frame segment, else PIL's header parser for the other formats; None when there is none to read."""
    if data.startswith(_PNG_SIGNATURE):
        if len(data) < 24 or data[12:16] != b"IHDR":
            return None
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    return _pil_size(data, name)


def check_image(image: object, name: str = "image") -> NDArray[np.uint8]:
    """Return `image` if it is a non-empty H x W x 3 uint8 array, else raise ValueError saying what is wrong.

    Backends call this first: OpenCV and the face libraries otherwise fail deep inside C++ with messages that
    name neither the argument nor the fix.
    """
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{name} must be a numpy array (H x W x 3 uint8, BGR), got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"{name} must have dtype uint8 (H x W x 3, BGR), got {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name} must have shape (H, W, 3) with BGR channels, got {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"{name} has zero size: shape {image.shape}")
    return image


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Walk the JPEG's segments (marker, 2-byte length) up to its first start-of-frame; None if it has none."""
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte before a marker
            at += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # segments without a length
            at += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, or the scan began: no frame header came first
            return None
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        if length < 2:
            return None
        if marker in _JPEG_FRAME_MARKERS:
            if length < 7 or at + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return int(width), int(height)
        at += 2 + length
    return None


def _pil_size(data: bytes, name: str) -> tuple[int, int] | None:
    """PIL's header parsers (opening reads only the header). Its own bomb check is silenced, or, for a size it
    refuses outright (far above `MAX_IMAGE_PIXELS`), turned into the same refusal."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
        except Image.DecompressionBombError as exc:
            raise ValueError(f"{name}: the image header declares too many pixels ({exc}); not decoded") from None
        except (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError, KeyError, TypeError):
            return None  # PIL's ways of saying "no header I know"
    return int(width), int(height)
