"""The photo side's probes from issue #15 through the real CLI: bad input is exit 2 with one line naming it and
no traceback; unusable files are skipped with a reason and the rest is processed; no input file under 1 MB takes
a photos command past 1 GB."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trackid.cli import app
from trackid.images import MAX_IMAGE_PIXELS

VIPER_PATTERN = r"^(?P<individual>\d{4})"
PEOPLE = 6


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(width: int, height: int, rows: int | None = None) -> bytes:
    """A PNG declaring `width` x `height` px; `rows` of black pixels are really there (all, when None), streamed
    through zlib so that even the guard's largest image is made in little memory and stays well under 1 MB."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    packer = zlib.compressobj(9)
    row = b"\0" * (1 + 3 * width)
    data = b"".join(packer.compress(row) for _ in range(height if rows is None else rows)) + packer.flush()
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    output = " ".join(result.output.split())
    assert "Traceback" not in output
    return result.exit_code, output


@pytest.fixture(scope="module")
def collection(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """VIPeR photos of PEOPLE people as cam1/ and cam2/, plus in cam1/ a 1x1 px image and a 69-byte PNG claiming
    30000x30000 px, both labelled by their names like the rest."""
    source = data / "reid" / "viper"
    if not source.is_dir():
        pytest.skip(f"VIPeR not found at {source}")
    root = tmp_path_factory.mktemp("probes")
    for camera in ("cam1", "cam2"):
        (root / camera).mkdir()
    for photo in sorted(source.glob("*.png"))[: 2 * PEOPLE]:
        (root / f"cam{photo.stem[-1]}" / photo.name).symlink_to(photo)
    (root / "cam1" / "9998dot.png").write_bytes(_png(1, 1))
    (root / "cam1" / "9999bomb.png").write_bytes(_png(30000, 30000, rows=0))
    assert (root / "cam1" / "9999bomb.png").stat().st_size < 100
    return root


def test_bad_labels_are_exit_2_naming_the_input(tmp_path: Path) -> None:
    tune = ["photos", "tune", str(tmp_path), "-o", str(tmp_path / "out")]
    code, output = _cli(*tune, "--label-pattern", "(")
    assert code == 2 and "label pattern '(': not a regular expression" in output
    latin = tmp_path / "latin1.csv"
    latin.write_bytes("image,individual\nr\xe9ne.jpg,doe\n".encode("latin-1"))
    code, output = _cli(*tune, "--labels", str(latin))
    assert code == 2 and f"{latin}: not UTF-8 text" in output
    conflict = tmp_path / "conflict.csv"
    conflict.write_text("image,individual\na.jpg,doe\nb.jpg,buck\na.jpg,fawn\n")
    code, output = _cli(*tune, "--labels", str(conflict))
    assert (
        code == 2 and f"{conflict}:4: 'a.jpg' is labelled individual=fawn here but individual=doe at line 2" in output
    )
    bom = tmp_path / "bom.csv"
    bom.write_bytes("\ufeffimage,individual\na.jpg,doe\n".encode())
    code, output = _cli(*tune, "--labels", str(bom))  # the header is read: what is missing now is photos
    assert code == 2 and "tuning needs labelled photos; found 0" in output and "missing column" not in output


def test_tiny_and_bomb_images_are_skipped_and_tune_and_ingest_go_on(collection: Path, tmp_path: Path) -> None:
    """A 1x1 px image used to become a sighting; a 69-byte PNG claiming 30000x30000 px aborted the whole run."""
    tuned = tmp_path / "tuned"
    code, output = _cli("photos", "tune", str(collection), "--label-pattern", VIPER_PATTERN, "-o", str(tuned))
    assert code == 0, output
    skipped = ["skipped 1: image too small (1x1 px", "skipped 1: the image header declares 30000x30000 px"]
    assert all(line in output for line in skipped), output
    store = ["--store", str(tmp_path / "g.db"), "-o", str(tmp_path / "ingest")]
    code, output = _cli("photos", "ingest", str(collection), "--site", "n", "--tuned", str(tuned), *store)
    assert code == 0 and "photos found: 12" in output and "sightings written: 12" in output, output
    assert all(line in output for line in skipped), output


def test_no_small_file_takes_a_photos_command_past_1_gb(collection: Path, tmp_path: Path) -> None:
    """The guard's own limit: an image of exactly MAX_IMAGE_PIXELS (a few hundred KB of PNG) is decoded and tuned
    on; the bomb beside it is not decoded. The command's peak resident memory stays under 1 GB."""
    folder = tmp_path / "photos"
    for camera in ("cam1", "cam2"):
        (folder / camera).mkdir(parents=True)
        for photo in (collection / camera).iterdir():
            (folder / camera / photo.name).symlink_to(photo.resolve())
    side = int(MAX_IMAGE_PIXELS**0.5)
    large = folder / "cam2" / "9997large.png"
    large.write_bytes(_png(side, side))
    assert large.stat().st_size < 1_000_000
    trackid = str(Path(sys.executable).parent / "trackid")
    command = [trackid, "photos", "tune", str(folder), "--label-pattern", VIPER_PATTERN, "-o", str(tmp_path / "t")]
    # the peak is the child's, measured by a process of its own (this one's other children would count too)
    measure = "import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
    measure += "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    done = subprocess.run([sys.executable, "-c", measure, *command], capture_output=True, text=True, timeout=600)
    rc, peak_kib = map(int, done.stdout.split()[-2:])
    assert rc == 0 and "Traceback" not in done.stderr, done.stderr
    assert peak_kib * 1024 < 1024**3, f"peak RSS {peak_kib / 1024:.0f} MiB"
