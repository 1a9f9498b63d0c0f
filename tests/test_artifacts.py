"""Atomic writes behave like a plain `open(path, "w")` apart from atomicity (issue #15, item 15)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from trackid.artifacts import atomic_write_bytes, atomic_write_text


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_gets_the_mode_open_would_give(tmp_path: Path, umask_022: None) -> None:
    assert _mode(atomic_write_text(tmp_path / "a.json", "{}")) == 0o644  # mkstemp alone gives 0600
    plain = tmp_path / "plain.json"
    plain.write_text("{}")
    assert _mode(atomic_write_bytes(tmp_path / "b.bin", b"x")) == _mode(plain)
    os.umask(0o077)
    assert _mode(atomic_write_text(tmp_path / "private.json", "{}")) == 0o600


def test_rewriting_keeps_the_files_mode(tmp_path: Path, umask_022: None) -> None:
    shared = tmp_path / "shared.txt"
    shared.write_text("old")
    shared.chmod(0o664)
    atomic_write_text(shared, "new")
    assert shared.read_text() == "new" and _mode(shared) == 0o664
    assert [p.name for p in tmp_path.iterdir()] == ["shared.txt"]  # no temporary file left beside it
