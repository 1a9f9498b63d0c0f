"""Bad stores and used run folders through the real CLI (issue #15, items 8, 11, 12): exit status 2 and one line
naming the input and what is wrong, never a Python traceback, and nothing created for a misspelt store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from trackid.cli import app
from trackid.identity.calibration import MatchCalibrator
from trackid.identity.stores import make_store

TRACKID = str(Path(sys.executable).parent / "trackid")
MODEL = ["--model-id", "m", "--model-version", "1"]


def _run(*args: str) -> tuple[int, str]:
    """The command run in this process (as the console script runs it); its exit status and its output."""
    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"uncaught {result.exception!r}; output: {result.output}") from result.exception
    return result.exit_code, result.output


def _clean_failure(run: tuple[int, str] | subprocess.CompletedProcess[str], *fragments: str) -> None:
    code, output = (run.returncode, run.stdout + run.stderr) if isinstance(run, subprocess.CompletedProcess) else run
    assert code == 2, output
    assert "Traceback" not in output, output
    for fragment in fragments:
        assert fragment in " ".join(output.split()), (fragment, output)  # rich may wrap a long line


@pytest.fixture
def calibrator(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    similarity = np.concatenate([rng.normal(0.8, 0.05, 200), rng.normal(0.2, 0.1, 200)])
    MatchCalibrator().fit(similarity, np.arange(400) < 200).save(tmp_path / "calibrator.json")
    return tmp_path / "calibrator.json"


def _store_commands(store: str, out: Path, calibrator: Path) -> list[list[str]]:
    """Every gallery and photos command that reads or maintains an existing store."""
    return [
        ["gallery", "report", "--store", store, *MODEL, "--out", str(out)],
        ["gallery", "reprocess", "--store", store, *MODEL, "--calibrator", str(calibrator), "--unassigned"],
        ["gallery", "reembed", "--store", store, "--model", "colour"],
        ["photos", "validate", "--store", store, "--label-pattern", r"(?P<individual>\d+)", "--out", str(out)],
        ["photos", "monitor", "--store", store, "--out", str(out)],
    ]


def test_a_misspelt_store_creates_nothing(tmp_path: Path, calibrator: Path) -> None:
    typo = tmp_path / "galery" / "g.db"
    commands = _store_commands(str(typo), tmp_path / "report", calibrator)
    console = subprocess.run([TRACKID, *commands[0]], capture_output=True, text=True, timeout=120)
    _clean_failure(console, str(typo), "no such gallery store")  # the installed console script, stderr and all
    for command in commands:
        _clean_failure(_run(*command), str(typo), "no such gallery store")
    assert not typo.parent.exists() and not (tmp_path / "report").exists()


def test_a_file_that_is_not_a_store(tmp_path: Path, calibrator: Path) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("not a database\n" * 100)
    whole = tmp_path / "whole.db"
    with make_store(whole) as store:
        rng = np.random.default_rng(1)
        store.add_sightings(rng.normal(size=(300, 16)), model_id="m", model_version="1", times=np.arange(300.0))
    truncated = tmp_path / "truncated.db"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    for bad, what in ((junk, "file is not a database"), (truncated, "database disk image is malformed")):
        for command in _store_commands(str(bad), tmp_path / "report", calibrator):
            _clean_failure(_run(*command), str(bad), "not a readable gallery store", what)


def test_an_unreachable_postgres_with_its_password_masked(tmp_path: Path, calibrator: Path) -> None:
    pytest.importorskip("psycopg")
    url = "postgresql://me:s3cret@127.0.0.1:9/gallery?connect_timeout=2"
    for command in _store_commands(url, tmp_path / "report", calibrator):
        result = _run(*command)
        _clean_failure(result, "postgresql://me:***@127.0.0.1:9/gallery", "cannot connect to PostgreSQL")
        assert "s3cret" not in result[1]


def test_a_store_another_process_has_open(tmp_path: Path, calibrator: Path) -> None:
    store = tmp_path / "g.db"
    holder_code = f"import time; from trackid.identity.stores import make_store; s = make_store({str(store)!r})"
    with subprocess.Popen(
        [sys.executable, "-c", holder_code + "; print('open', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "open\n"
            for command in _store_commands(str(store), tmp_path / "report", calibrator):
                _clean_failure(_run(*command), str(store), f"already open in another process (pid {holder.pid})")
        finally:
            os.kill(holder.pid, signal.SIGKILL)


def test_a_report_into_another_runs_folder(tmp_path: Path) -> None:
    store, out = tmp_path / "g.db", tmp_path / "report"
    make_store(store).close()
    first = _run("gallery", "report", "--store", str(store), *MODEL, "--out", str(out))
    _clean_failure(first, "no such model")  # a failed run: its manifest is in the folder
    other = _run("gallery", "report", "--store", str(store), *MODEL, "--target-fmr", "0.05", "--out", str(out))
    _clean_failure(other, f"{out}: holds another run (gallery-report, failed", "--force")
    forced = _run(
        "gallery", "report", "--store", str(store), *MODEL, "--target-fmr", "0.05", "--out", str(out), "--force"
    )
    _clean_failure(forced, "no such model")
    assert (out / ".previous" / "manifest.json").is_file()  # the replaced run is kept: the new one did not complete
