"""One run folder for every command: the same manifest schema, written atomically as the run goes.

A run folder's `manifest.json` says what ran (`command`, `config`, the inputs' SHA-256, trackid and library
versions), how it went (`status`: `running` from the start, then `complete` or `failed` with the error), how long it
took (`seconds`) and what it wrote (`files`, relative to the folder), plus each command's own summary fields. A
crash therefore leaves `running` behind, never a manifest that claims a result that was not written. While a run
is `running()`, every `trackid` log record also goes to the folder's `log.jsonl` (JSON lines, see `trackid.logs`).
"""

from __future__ import annotations

import json
import logging
import platform
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from trackid import __version__
from trackid.artifacts import atomic_write_text, file_sha256
from trackid.logs import log_to_file

__all__ = ["LOG_FILE", "SCHEMA", "RunFolder", "mask_password"]

SCHEMA = 1
"""Version of the manifest layout; raised when a key changes meaning."""
LOG_FILE = "log.jsonl"
log = logging.getLogger(__name__)


class RunFolder:
    """A command's output folder and its manifest.

    Args:
        path: the folder (created).
        command: what ran, e.g. "track-video", "track", "demo".
        config: the settings that decide the result (JSON-serialisable).
        inputs: files whose bytes decide the result; hashed once, at the start.
        extra: command-specific fields recorded from the start (e.g. the video's size and frame rate).
    """

    def __init__(
        self,
        path: str | Path,
        command: str,
        config: Mapping[str, Any],
        inputs: Sequence[str | Path] = (),
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        import cv2
        import numpy as np

        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._started = time.perf_counter()
        self.manifest: dict[str, Any] = {
            "schema": SCHEMA,
            "command": command,
            "status": "running",
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "trackid": __version__,
            "versions": {"python": platform.python_version(), "numpy": np.__version__, "opencv": cv2.__version__},
            "config": dict(config),
            "inputs": {str(p): file_sha256(p) for p in inputs},
            **(extra or {}),
            "warnings": [],
            "files": {},
        }

    def write(self) -> Path:
        return atomic_write_text(self.path / "manifest.json", json.dumps(self.manifest, indent=2, default=str) + "\n")

    def complete(self, files: Mapping[str, Path] | None = None, warnings: Sequence[str] = (), **summary: Any) -> Path:
        """Record success, what was written and the command's summary."""
        return self._finish("complete", files, warnings, summary)

    def fail(self, error: str, files: Mapping[str, Path] | None = None, **summary: Any) -> Path:
        """Record the failure and what was still written before it."""
        return self._finish("failed", files, (), {"error": error, **summary})

    @contextmanager
    def running(self) -> Iterator[RunFolder]:
        """`running` on entry, and the run's log records into `log.jsonl`; an exception marks the run `failed` (and
        propagates); otherwise the block must call `complete` or `fail` itself, since only it knows the summary."""
        self.write()
        with log_to_file(self.path / LOG_FILE):
            log.info("%s started in %s", self.manifest["command"], self.path)
            try:
                yield self
            except BaseException as exc:
                if self.manifest["status"] == "running":
                    log.error("%s failed: %s", self.manifest["command"], str(exc) or type(exc).__name__)
                    self.fail(str(exc) or type(exc).__name__)
                raise

    def _finish(
        self, status: str, files: Mapping[str, Path] | None, warnings: Sequence[str], summary: Mapping[str, Any]
    ) -> Path:
        self.manifest.update(summary)
        self.manifest["status"] = status
        self.manifest["seconds"] = round(time.perf_counter() - self._started, 3)
        self.manifest["warnings"] = list(warnings)
        self.manifest["files"] = {k: _relative(Path(v), self.path) for k, v in (files or {}).items()}
        if (self.path / LOG_FILE).is_file():
            self.manifest["files"].setdefault("log", LOG_FILE)
        self.manifest["files"]["manifest"] = "manifest.json"
        return self.write()


def _relative(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def mask_password(url: str) -> str:
    """A store URL fit for a manifest: `postgresql://me:***@host/db`; paths and password-less URLs unchanged."""
    from urllib.parse import urlsplit

    password = urlsplit(url).password
    return url.replace(f":{password}@", ":***@") if password else url
