"""The coverage-guided MOTChallenge target (`atheris_motchallenge.py`) for a few seconds, where atheris installs
(its Linux wheels; skipped elsewhere). libFuzzer exits non-zero on an uncaught exception."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")


def test_mot_readers_survive_coverage_guided_inputs(tmp_path: Path) -> None:
    runs = int(os.environ.get("TRACKID_FUZZ_EXAMPLES", "200"))
    target = Path(__file__).with_name("atheris_motchallenge.py")
    done = subprocess.run(
        [sys.executable, str(target), f"-runs={runs}", "-max_len=2000", f"-artifact_prefix={tmp_path}/"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert f"Done {runs} runs" in done.stderr
