"""Issue #15's probes of `trackid track` and its config, through the real CLI: each bad input exits 2 with one
message naming the input, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trackid.cli import app

CLIP = Path(__file__).resolve().parents[1] / "demo" / "pets09_s2l1_clip.mp4"
SEQINFO = "[Sequence]\nname=s\nframeRate=25\nseqLength=3\nimWidth=640\nimHeight=480\n"
BINARY = bytes(range(256)) * 4


@pytest.fixture
def seq(tmp_path: Path) -> Path:
    """A three-frame sequence folder: s/det/det.txt beside s/seqinfo.ini."""
    (tmp_path / "s" / "det").mkdir(parents=True)
    (tmp_path / "s" / "seqinfo.ini").write_text(SEQINFO)
    (tmp_path / "s" / "det" / "det.txt").write_text("1,-1,10,10,20,40,0.9\n2,-1,11,10,20,40,0.9\n")
    return tmp_path / "s"


def _seqinfo(seq: Path, text: str | bytes) -> str:
    ini = seq / "seqinfo.ini"
    ini.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(ini)


def _det(seq: Path, text: str) -> str:
    det = seq / "det" / "det.txt"
    det.write_text(text)
    return str(det)


def _yaml(seq: Path, content: bytes) -> str:
    path = seq / "run.yaml"
    path.write_bytes(content)
    return str(path)


# (probe name, a function of the sequence folder -> (CLI arguments after `track`, what the message must name))
PROBES = {
    "binary seqinfo.ini": lambda s: (["-d", f"{s}/det/det.txt"], _seqinfo(s, BINARY)),
    "frameRate=inf": lambda s: (["-d", f"{s}/det/det.txt"], _seqinfo(s, SEQINFO.replace("=25", "=inf"))),
    "frameRate=1e-300": lambda s: (["-d", f"{s}/det/det.txt"], _seqinfo(s, SEQINFO.replace("=25", "=1e-300"))),
    "seqLength=2000000000": lambda s: (["-d", f"{s}/det/det.txt"], _seqinfo(s, SEQINFO.replace("=3", "=2000000000"))),
    "detections past seqLength": lambda s: (["-d", _det(s, "90,-1,10,10,20,40,0.9\n")], "seqLength=3"),
    "1e300 box": lambda s: (["-d", _det(s, "1,-1,1e300,10,20,40,0.9\n")], f"{s}/det/det.txt:1"),
    "byte-order mark then garbage": lambda s: (["-d", _det(s, "\ufeffframe,id\n")], f"{s}/det/det.txt:1"),
    "--min-score nan": lambda s: (["-d", f"{s}/det/det.txt", "--min-score", "nan"], "--min-score"),
    "--param max_lost_s=1e400": lambda s: (["-d", f"{s}/det/det.txt", "-p", "max_lost_s=1e400"], "max_lost_s"),
    "-o is the det file": lambda s: (["-d", f"{s}/det/det.txt", "-o", f"{s}/det/det.txt"], f"{s}/det/det.txt"),
    "batch -o inside -d": lambda s: (["-d", str(s.parent), "-o", f"{s.parent}/out"], f"{s.parent}/out"),
    "missing --config": lambda s: (["-d", f"{s}/det/det.txt", "-c", f"{s}/nope.yaml"], f"{s}/nope.yaml"),
    "binary --config": lambda s: (["-d", f"{s}/det/det.txt", "-c", _yaml(s, BINARY)], f"{s}/run.yaml"),
    "bad --profile": lambda s: (["-d", f"{s}/det/det.txt", "--profile", "turbo"], "turbo"),
    "video, binary YAML": lambda s: ([str(CLIP), "-c", _yaml(s, BINARY)], f"{s}/run.yaml"),
    "video, --param max_lost_s=1e400": lambda s: ([str(CLIP), "-p", "max_lost_s=1e400"], "max_lost_s"),
    "video, detector.params.bogus": lambda s: ([str(CLIP), "--set", "detector.params.bogus=1"], "bogus"),
    "video, embedder.name=nosuch": lambda s: ([str(CLIP), "--set", "embedder.name=nosuch"], "nosuch"),
    "video, detector.tiles=[0,0]": lambda s: ([str(CLIP), "--set", "detector.tiles=[0,0]"], "detector.tiles"),
    "video, --seqinfo": lambda s: ([str(CLIP), "-d", f"{s}/det/det.txt", "-s", f"{s}/seqinfo.ini"], "--seqinfo"),
}


@pytest.mark.parametrize("probe", list(PROBES))
def test_probe_exits_2_naming_the_input_without_a_traceback(seq: Path, probe: str) -> None:
    args, named = PROBES[probe](seq)
    if "-o" not in args:
        args = [*args, "-o", str(seq.parent / "result")]
    result = CliRunner().invoke(app, ["track", *args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    error = " ".join(result.output.split())  # rich wraps long lines
    assert error.startswith("error: ") and named in error, result.output
    assert not (seq.parent / "result").exists()


@pytest.mark.parametrize(("length", "status"), [(2 * 2 + 10_000, 0), (2_000_000_000, 2)])
def test_a_declared_length_at_or_past_the_guard_stays_under_a_gigabyte(seq: Path, length: int, status: int) -> None:
    """Issue #15, item 10: seqLength=2000000000 for a small det file was killed at ~24 GB. The longest length still
    accepted for it (2 x its last frame + `mot.EMPTY_TAIL`) runs; one past the readers' limit is refused."""
    _seqinfo(seq, SEQINFO.replace("seqLength=3", f"seqLength={length}"))
    command = [
        str(Path(sys.executable).with_name("trackid")),
        "track",
        "-d",
        f"{seq}/det/det.txt",
        "-o",
        f"{seq.parent}/o.txt",
    ]
    probe = "import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:], capture_output=True).returncode; "
    probe += "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    done = subprocess.run([sys.executable, "-c", probe, *command], capture_output=True, text=True, check=True)
    rc, peak_kb = map(int, done.stdout.split())
    assert rc == status
    assert peak_kb < 1024 * 1024
