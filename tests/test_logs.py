"""One logging setup (issue #14, item 10): console lines, JSON lines per run folder, id fields."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from trackid.logs import log_to_file, setup_logging
from trackid.track import make_tracker
from trackid.types import Detections


def test_json_lines_parse_and_carry_the_camera_of_a_stream_warning(tmp_path: Path) -> None:
    setup_logging("ERROR")
    tracker = make_tracker("trackid", 10.0)
    box = np.array([[10.0, 10.0, 50.0, 110.0]])
    with log_to_file(tmp_path / "log.jsonl"):
        logging.getLogger("trackid.test").info("hello", extra={"track_id": 7, "identity_id": "id-3"})
        for _ in range(60):  # every score the same: the constant-score warning
            tracker.update(Detections.from_arrays(box, [0.5], camera_id="north"))
    lines = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert lines[0]["message"] == "hello" and lines[0]["track_id"] == 7 and lines[0]["identity_id"] == "id-3"
    assert {"time", "level", "module", "message"} <= set(lines[0])
    warning = next(line for line in lines if line["level"] == "WARNING")
    assert warning["module"] == "trackid.track" and warning["camera_id"] == "north"
    assert "every score is 0.5" in warning["message"]


def test_a_bad_level_is_named() -> None:
    with pytest.raises(ValueError, match="log level 'LOUD'"):
        setup_logging("LOUD")


def test_a_video_run_writes_its_log(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from trackid.cli import app

    clip = Path(__file__).resolve().parent.parent / "demo" / "pets09_s2l1_clip.mp4"
    args = ["track", str(clip), "--profile", "fast_cpu", "--set", "frame_stride=30", "--out", str(tmp_path / "run")]
    result = CliRunner().invoke(app, ["--log-level", "INFO", *args])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert lines[-1]["message"].startswith("complete: 5 frames")
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["files"]["log"] == "log.jsonl"
