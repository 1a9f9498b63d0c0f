"""One manifest schema for every command's run folder (issue #14, item 8)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trackid.cli import app
from trackid.run_folder import PREVIOUS, RunFolder, RunFolderError, read_manifest

KEYS = {"schema", "command", "status", "created", "trackid", "versions", "config", "inputs", "warnings", "files"}


def _manifest(folder: Path) -> dict[str, object]:
    return json.loads((folder / "manifest.json").read_text())


def test_a_run_is_running_then_complete_or_failed(tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("x")
    folder = RunFolder(tmp_path / "a", "test", {"k": 1}, [source])
    with folder.running():
        assert _manifest(tmp_path / "a")["status"] == "running"
        folder.complete({"out": tmp_path / "a" / "out.txt"}, ["careful"], items=3)
    done = _manifest(tmp_path / "a")
    assert set(done) >= KEYS and done["status"] == "complete" and done["items"] == 3
    files = {"out": "out.txt", "log": "log.jsonl", "manifest": "manifest.json"}
    assert done["files"] == files and done["warnings"] == ["careful"]
    started = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert started[0]["level"] == "INFO" and "test started" in started[0]["message"]
    broken = RunFolder(tmp_path / "b", "test", {}, [])
    with pytest.raises(RuntimeError), broken.running():
        raise RuntimeError("disk full")
    failed = _manifest(tmp_path / "b")
    assert failed["status"] == "failed" and failed["error"] == "disk full"
    last = json.loads((tmp_path / "b" / "log.jsonl").read_text().splitlines()[-1])
    assert last["level"] == "ERROR" and "disk full" in last["message"]


def test_every_command_writes_the_same_schema(tmp_path: Path, data: Path) -> None:
    runner = CliRunner()
    demo = runner.invoke(app, ["demo", "--out", str(tmp_path / "demo")])
    assert demo.exit_code == 0, demo.output
    dets, ini = data / "mot15" / "det_frcnn", data / "mot15" / "gt" / "MOT15-train"
    batch = runner.invoke(app, ["track", "-d", str(dets), "-s", str(ini), "-o", str(tmp_path / "mot")])
    assert batch.exit_code == 0, batch.output
    clip = Path(__file__).resolve().parent.parent / "demo" / "pets09_s2l1_clip.mp4"
    video = runner.invoke(app, ["track", str(clip), "--set", "frame_stride=50", "-o", str(tmp_path / "video")])
    assert video.exit_code == 0, video.output
    for name, command in [("demo", "demo"), ("mot", "track"), ("video", "track-video")]:
        manifest = _manifest(tmp_path / name)
        assert set(manifest) >= KEYS, (name, sorted(KEYS - set(manifest)))
        assert manifest["command"] == command and manifest["status"] == "complete" and manifest["schema"] == 1
        assert all(len(h) == 64 for h in manifest["inputs"].values())  # type: ignore[union-attr]
        assert manifest["inputs"] or name == "demo"  # the demo generates its scene from the seed in its config
    for name in ("mot", "video"):
        manifest = _manifest(tmp_path / name)
        assert manifest["files"]["log"] == "log.jsonl"  # type: ignore[index]
        records = [json.loads(line) for line in (tmp_path / name / "log.jsonl").read_text().splitlines()]
        assert records and all({"level", "time", "module", "message"} <= set(r) for r in records)


KILLED_RUN = """
import sys, time
from trackid.run_folder import PREVIOUS, RunFolder, RunFolderError, read_manifest
folder = RunFolder(sys.argv[1], "test", {"k": 1})
with folder.running():
    (folder.path / ".tracks.txt.tmp").write_text("half a file")
    print("started", flush=True)
    time.sleep(60)
"""


def _killed_run(path: Path) -> None:
    """A run in `path` killed with SIGKILL while `running`, as a crash or the OOM killer leaves it."""
    child = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(path)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline() == "started\n"
    assert RunFolder.status_of(path) == "running"  # alive: not interrupted
    os.kill(child.pid, signal.SIGKILL)
    child.wait()


def test_a_killed_run_reads_as_interrupted_and_its_temp_files_go(tmp_path: Path) -> None:
    """Issue #15, item 8: a killed run said `running` forever and left hidden temp files."""
    _killed_run(tmp_path / "run")
    raw = _manifest(tmp_path / "run")
    assert raw["status"] == "running" and raw["process"]["pid"] > 0  # type: ignore[index]
    assert RunFolder.status_of(tmp_path / "run") == "interrupted"
    assert read_manifest(tmp_path / "run")["status"] == "interrupted"
    assert RunFolder.status_of(tmp_path / "nothing") is None
    again = RunFolder(tmp_path / "run", "test", {"k": 1})  # the same run again: continues in place
    assert not (tmp_path / "run" / ".tracks.txt.tmp").exists()
    with again.running():
        again.complete()
    assert RunFolder.status_of(tmp_path / "run") == "complete"


def test_another_run_into_a_used_folder_is_refused(tmp_path: Path) -> None:
    """Issue #15, item 8: a re-run with other settings put its manifest beside the first run's outputs."""
    first = RunFolder(tmp_path / "run", "test", {"k": 1})
    with first.running():
        (tmp_path / "run" / "tracks.txt").write_text("first")
        first.complete({"tracks": tmp_path / "run" / "tracks.txt"})
    with pytest.raises(RunFolderError, match=r"run: holds another run \(test, complete.*--force"):
        RunFolder(tmp_path / "run", "test", {"k": 2})
    with pytest.raises(RunFolderError, match="holds another run"):
        RunFolder(tmp_path / "run", "other", {"k": 1})
    assert _manifest(tmp_path / "run")["config"] == {"k": 1} and (tmp_path / "run" / "tracks.txt").is_file()
    RunFolder(tmp_path / "fresh", "test", {"k": 2})  # an empty or missing folder is free
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunFolderError, match="file: not a folder"):
        RunFolder(tmp_path / "file", "test", {})


def test_a_running_run_is_never_replaced(tmp_path: Path) -> None:
    busy = RunFolder(tmp_path / "run", "test", {"k": 1})
    with busy.running(), pytest.raises(RunFolderError, match=r"may still be writing this folder \(pid"):
        RunFolder(tmp_path / "run", "test", {"k": 2}, force=True)


def test_force_keeps_the_previous_run_until_the_new_one_completes(tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = RunFolder(run, "test", {"k": 1})
    with first.running():
        (run / "crops").mkdir()
        (run / "crops" / "1.jpg").write_bytes(b"jpg")
        (run / "tracks.txt").write_text("first")
        first.complete({"tracks": run / "tracks.txt", "crop": run / "crops" / "1.jpg"})
    (run / "gallery.db").write_text("a store kept in the folder: no run's output")

    def replace(k: int, fails: bool) -> None:
        second = RunFolder(run, "test", {"k": k}, force=True)
        with second.running():
            assert not (run / "tracks.txt").exists() and not (run / "crops").exists()  # no mixing
            (run / "tracks.txt").write_text(f"run {k}")
            if fails:
                second.fail("disk full", {"tracks": run / "tracks.txt"})
            else:
                second.complete({"tracks": run / "tracks.txt"})

    with pytest.raises(RunFolderError, match=r"tracks.txt is an input of this run and an output of the run --force"):
        RunFolder(run, "test", {"k": 2}, [run / "tracks.txt"], force=True)
    assert (run / "tracks.txt").read_text() == "first" and not (run / PREVIOUS).exists()
    replace(2, fails=True)
    assert _manifest(run)["status"] == "failed" and _manifest(run)["replaces"]["status"] == "complete"  # type: ignore[index]
    assert (run / PREVIOUS / "tracks.txt").read_text() == "first" and (run / PREVIOUS / "crops" / "1.jpg").is_file()
    replace(3, fails=True)  # the kept run is the complete one, not the failed replacement
    assert _manifest(run / PREVIOUS)["config"] == {"k": 1} and (run / PREVIOUS / "tracks.txt").read_text() == "first"
    replace(4, fails=False)
    assert not (run / PREVIOUS).exists() and (run / "tracks.txt").read_text() == "run 4"
    done = _manifest(run)
    assert done["status"] == "complete" and "replaces" not in done and (run / "gallery.db").is_file()
