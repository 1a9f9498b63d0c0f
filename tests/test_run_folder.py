"""One manifest schema for every command's run folder (issue #14, item 8)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trackid.cli import app
from trackid.run_folder import RunFolder

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
        assert all(len(h) == 64 for h in manifest["inputs"].values()) and manifest["inputs"]  # type: ignore[union-attr]
    for name in ("mot", "video"):
        manifest = _manifest(tmp_path / name)
        assert manifest["files"]["log"] == "log.jsonl"  # type: ignore[index]
        records = [json.loads(line) for line in (tmp_path / name / "log.jsonl").read_text().splitlines()]
        assert records and all({"level", "time", "module", "message"} <= set(r) for r in records)
