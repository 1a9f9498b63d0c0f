"""A command's progress written to a file, for whoever supervises the run (the job service's workers).

Every command shows progress through `cli.common.progress_bar`. When `TRACKID_PROGRESS_FILE` names a file, the bar
also writes it, atomically and at most every `MIN_INTERVAL_S`: `{"phase", "done", "total", "updated"}` of the task
last touched (`phase` is the bar's description, `total` null while unknown). A supervisor reads the file; the
command never waits for it and never fails because of it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from trackid.artifacts import atomic_write_text

__all__ = ["ENV", "MIN_INTERVAL_S", "ProgressFile", "read_progress"]

ENV = "TRACKID_PROGRESS_FILE"
MIN_INTERVAL_S = 0.2
log = logging.getLogger(__name__)


class ProgressFile:
    """Writes the latest (phase, done, total) to `path`, throttled; `from_env` gives one where the variable is set."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._last = 0.0
        self._failed = False

    @classmethod
    def from_env(cls) -> ProgressFile | None:
        value = os.environ.get(ENV)
        return cls(value) if value else None

    def report(self, phase: str, done: float, total: float | None, *, force: bool = False) -> None:
        now = time.monotonic()
        if self._failed or (not force and now - self._last < MIN_INTERVAL_S):
            return
        self._last = now
        state = {"phase": phase, "done": done, "total": total, "updated": time.time()}
        try:
            atomic_write_text(self.path, json.dumps(state) + "\n")
        except OSError as exc:  # progress is a courtesy: the run goes on without it
            self._failed = True
            log.warning("cannot write progress to %s (%s); the run goes on without it", self.path, exc)


def read_progress(path: str | Path) -> dict[str, Any] | None:
    """The progress last written to `path`, or None where there is none (yet) or it is unreadable."""
    try:
        state = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None
