"""Property-based fuzzing of the photo side's parsers: labels CSV files and label patterns, EXIF, image headers
and the pixel guard. Each target feeds arbitrary (and almost-valid) input and asserts the one contract every
parser keeps: it parses, or raises the project's clean input error (a ValueError naming the input), never
anything else. `make fuzz` runs them with TRACKID_FUZZ_EXAMPLES=10000; `make test` with the default."""

from __future__ import annotations

import io
import os
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from trackid.images import MAX_IMAGE_PIXELS, check_declared_size, read_image
from trackid.pipelines.photos.labels import Labels, LabelsError
from trackid.sources.photos import read_exif, scan_photos


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"\0")) + _chunk(b"IEND", b"")


def _jpeg_with_exif() -> bytes:
    info = Image.Exif()
    info[271], info[272] = "Bushnell", "Core"
    info.get_ifd(0x8769).update({36867: "2026:05:01 06:30:00", 42033: "B-17"})
    buffer = io.BytesIO()
    Image.new("RGB", (24, 32), (200, 30, 30)).save(buffer, "JPEG", exif=info.tobytes())
    return buffer.getvalue()


JPEG = _jpeg_with_exif()
SEEDS = [JPEG, _png(32, 24), _png(30000, 30000), b"\xff\xd8\xff\xc0\x00\x11\x08\xea\x60\xea\x60\x03", b"BM" + bytes(60)]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid image (JPEG with EXIF, PNG, a bomb's header) with bytes overwritten, inserted or cut off."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 8))):
        at = draw(st.integers(0, max(0, len(data) - 1)))
        action = draw(st.sampled_from(("set", "insert", "cut")))
        if action == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif action == "insert":
            data[at:at] = draw(st.binary(max_size=16))
        else:
            del data[at:]
    return bytes(data)


@st.composite
def exif_jpeg(draw: st.DrawFn) -> bytes:
    """A JPEG whose APP1 EXIF block is an arbitrary TIFF structure (header valid or not, random IFD entries)."""
    order = draw(st.sampled_from((b"II*\x00", b"MM\x00*", b"")))
    entries = draw(
        st.lists(st.tuples(st.integers(0, 0xFFFF), st.integers(0, 20), st.integers(0, 2**32 - 1)), max_size=6)
    )
    fmt = "<" if order.startswith(b"II") else ">"
    ifd = struct.pack(fmt + "H", len(entries)) + b"".join(
        struct.pack(fmt + "HHII", tag, kind, 1, value) for tag, kind, value in entries
    )
    tiff = order + struct.pack(fmt + "I", 8) + ifd + draw(st.binary(max_size=64))
    app1 = b"Exif\x00\x00" + tiff
    return JPEG[:2] + b"\xff\xe1" + struct.pack(">H", min(len(app1) + 2, 0xFFFF)) + app1 + JPEG[2:]


ANY_IMAGE_BYTES = st.one_of(st.binary(max_size=512), mutated(), exif_jpeg())


@settings(max_examples=int(os.environ.get("TRACKID_FUZZ_EXAMPLES", "200")), deadline=None)
@given(ANY_IMAGE_BYTES)
def test_exif_reading_gives_an_answer_for_any_bytes(data: bytes) -> None:
    taken, camera = read_exif(data)
    assert taken is None or isinstance(taken, float)
    assert camera is None or (isinstance(camera, str) and "#" in camera)


@settings(max_examples=int(os.environ.get("TRACKID_FUZZ_EXAMPLES", "200")), deadline=None)
@given(ANY_IMAGE_BYTES)
def test_the_pixel_guard_reads_any_header_or_refuses_it_by_name(data: bytes) -> None:
    try:
        width, height = check_declared_size(data, "fuzzed.img")
    except ValueError as exc:
        assert type(exc) is ValueError and str(exc).startswith("fuzzed.img: ")
    else:
        assert width > 0 and height > 0 and width * height <= MAX_IMAGE_PIXELS


@settings(max_examples=int(os.environ.get("TRACKID_FUZZ_EXAMPLES", "200")), deadline=None)
@given(ANY_IMAGE_BYTES, st.sampled_from((".jpg", ".png", ".bmp", ".tif")))
def test_decoding_any_file_gives_an_image_or_a_reason_naming_it(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"photo{suffix}"
        path.write_bytes(data)
        try:
            image = read_image(path)
        except ValueError as exc:
            assert type(exc) is ValueError and str(exc).startswith(f"{path}: ")
        else:
            assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3


@settings(max_examples=int(os.environ.get("TRACKID_FUZZ_EXAMPLES", "200")), deadline=None)
@given(st.lists(st.tuples(ANY_IMAGE_BYTES, st.sampled_from((".jpg", ".png"))), min_size=1, max_size=4))
def test_scanning_a_folder_of_any_files_keeps_or_skips_each_with_a_reason(files: list[tuple[bytes, str]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        for i, (data, suffix) in enumerate(files):
            (Path(folder) / f"{i}{suffix}").write_bytes(data)
        photos, skipped = scan_photos([Path(folder)], (".jpg", ".png"))
        assert len(photos) + len(skipped) == len(files) and all(s.reason for s in skipped)


CELL = st.one_of(
    st.sampled_from(("a.jpg", "cam1/a.jpg", "doe", "F", "", " ", '"', '""', ",", "\n", "\r\n", "\x00", "/", "..")),
    st.text(max_size=12),
)


@st.composite
def labels_csv(draw: st.DrawFn) -> bytes:
    """A labels file: arbitrary bytes, or CSV-shaped text (a header that may lack columns, rows of odd cells, a BOM,
    repeated images) in UTF-8 or another encoding."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=256))
    header = draw(st.lists(st.sampled_from(("image", "individual", "sex", "", "image ")), min_size=0, max_size=4))
    if draw(st.booleans()):
        header = ["image", "individual", *header]
    rows = draw(st.lists(st.lists(CELL, max_size=5), max_size=6))
    rows += draw(st.lists(st.sampled_from(rows), max_size=2)) if rows else []
    text = "\n".join(",".join(line) for line in [header, *rows])
    encoding = draw(st.sampled_from(("utf-8", "utf-8-sig", "latin-1", "utf-16")))
    return text.encode(encoding, errors="replace")


@settings(max_examples=int(os.environ.get("TRACKID_FUZZ_EXAMPLES", "200")), deadline=None)
@given(labels_csv())
def test_any_labels_file_is_read_or_refused_naming_the_file(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "labels.csv"
        path.write_bytes(data)
        try:
            labels = Labels(path)
        except LabelsError as exc:
            assert str(exc).startswith(f"{path}")
        else:
            assert isinstance(labels(Path(folder) / "a.jpg"), dict)


@settings(max_examples=int(os.environ.get("TRACKID_FUZZ_EXAMPLES", "200")), deadline=None)
@given(st.one_of(st.text(max_size=24), st.sampled_from(("(", "(?P<individual>", "[", "*", "(?P<individual>\\d+)"))))
def test_any_label_pattern_compiles_or_is_refused_naming_it(pattern: str) -> None:
    try:
        labels = Labels(pattern=pattern)
    except LabelsError as exc:
        assert f"label pattern {pattern!r}" in str(exc)
    else:
        assert isinstance(labels(Path("0001.png")), dict)
