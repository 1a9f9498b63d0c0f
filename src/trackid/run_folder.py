"""One run folder for every command: the same manifest schema, written atomically as the run goes.

A run folder's `manifest.json` says what ran (`command`, `config`, the inputs' SHA-256, trackid and library
versions), how it went (`status`: `running` from the start, then `complete` or `failed` with the error), how long it
took (`seconds`) and what it wrote (`files`, relative to the folder), plus each command's own summary fields. A
crash therefore leaves `running` behind, never a manifest that claims a result that was not written. While a run
is `running()`, every `trackid` log record also goes to the folder's `log.jsonl` (JSON lines, see `trackid.logs`).

A folder holds one run, so that no manifest ever describes files another run wrote:
- The manifest records the writing process (`process`: host, pid, its start time); `read_manifest` and
  `RunFolder.status_of` report a `running` run whose process is gone as `interrupted` (a killed run cannot say so).
- A new run into a folder that holds another run's manifest (another command, config or input) is refused, unless
  `force`. The same run again (same command, config and inputs' hashes) continues in place: that is how an
  interrupted run is resumed (a photo ingest's progress lives in its store) and how a finished one is repeated.
- `force` replaces the previous run without losing it before the new one succeeds: the previous run's outputs (the
  top-level entries of the files its manifest records, the manifest and the log) are moved into `.previous/` when
  the new run starts and deleted when a run in the folder completes; a failed or killed replacement leaves them
  there. Entries the previous run did not record are left alone: a store or inputs kept in the folder must survive,
  so a killed run's partial outputs (it recorded none) are overwritten by the new run's, not cleared.
- A run still writing the folder (its process alive on this host) is never replaced. Hidden temporary files that a
  killed run's atomic writes left behind are deleted when the next run starts.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import re
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from trackid import __version__
from trackid.artifacts import atomic_write_text, file_sha256
from trackid.logs import log_to_file

__all__ = [
    "LOG_FILE",
    "MANIFEST",
    "PREVIOUS",
    "RUN_KEYS",
    "SCHEMA",
    "RunFolder",
    "RunFolderError",
    "mask_password",
    "read_manifest",
]

SCHEMA = 1
"""Version of the manifest layout; raised when a key changes meaning."""
LOG_FILE = "log.jsonl"
MANIFEST = "manifest.json"
RUN_KEYS = ("schema", "command", "status", "created", "trackid", "versions", "process", "config", "inputs", "files")
"""The manifest's own keys (what ran, how it went); the others are the command's summary (and `seconds`,
`warnings`, `error`)."""
PREVIOUS = ".previous"
"""Where `force` keeps the replaced run's outputs until a run in the folder completes."""
log = logging.getLogger(__name__)
_TEMPORARY = re.compile(r"^\..+\.tmp(\.[^.]+)?$")
"""Names of unfinished atomic writes: `artifacts.atomic_write_bytes` (`.name.XXXX.tmp`) and the streaming sinks
(`.name.tmp`, `.stem.tmp.suffix`)."""


class RunFolderError(ValueError):
    """The run folder cannot take this run: another run's outputs are there, or a run is still writing it."""


class RunFolder:
    """A command's output folder and its manifest.

    Args:
        path: the folder (created).
        command: what ran, e.g. "track-video", "track", "demo".
        config: the settings that decide the result (JSON-serialisable).
        inputs: files whose bytes decide the result; hashed once, at the start.
        extra: command-specific fields recorded from the start (e.g. the video's size and frame rate).
        force: replace another run found in the folder (kept in `.previous/` until this run completes) instead of
            refusing it; see the module docstring.

    Raises:
        RunFolderError: `path` is not a folder, holds another run and `force` is false, or a run is still writing it.
    """

    def __init__(
        self,
        path: str | Path,
        command: str,
        config: Mapping[str, Any],
        inputs: Sequence[str | Path] = (),
        extra: Mapping[str, Any] | None = None,
        *,
        force: bool = False,
    ) -> None:
        import cv2
        import numpy as np

        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise RunFolderError(f"{self.path}: not a folder; give a folder for the run's outputs")
        self._started = time.perf_counter()
        self.manifest: dict[str, Any] = {
            "schema": SCHEMA,
            "command": command,
            "status": "running",
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "trackid": __version__,
            "versions": {"python": platform.python_version(), "numpy": np.__version__, "opencv": cv2.__version__},
            "process": _this_process(),
            "config": dict(config),
            "inputs": {str(p): file_sha256(p) for p in inputs},
            **(extra or {}),
            "warnings": [],
            "files": {},
        }
        self._take_over(force)

    @staticmethod
    def status_of(path: str | Path) -> str | None:
        """The status of the run in folder `path` (`interrupted` for a `running` one whose process is gone), or
        None when the folder holds no manifest."""
        return read_manifest(path)["status"] if (Path(path) / MANIFEST).is_file() else None

    def write(self) -> Path:
        return atomic_write_text(self.path / MANIFEST, json.dumps(self.manifest, indent=2, default=str) + "\n")

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
        self.manifest["files"]["manifest"] = MANIFEST
        if status == "complete":
            self.manifest.pop("replaces", None)
        written = self.write()
        if status == "complete" and (self.path / PREVIOUS).exists():
            shutil.rmtree(self.path / PREVIOUS)
        return written

    def _take_over(self, force: bool) -> None:
        """Make the folder this run's: refuse or set aside another run's outputs, drop a killed run's temp files."""
        self.path.mkdir(parents=True, exist_ok=True)
        if not (self.path / MANIFEST).is_file():
            return
        try:
            previous = read_manifest(self.path)
        except RunFolderError:
            if not force:
                raise
            previous = {"status": "unreadable", "files": {}}
        if previous["status"] == "running":
            where = previous.get("process", {})
            if not force or where.get("host") == platform.node():
                raise RunFolderError(
                    f"{self.path}: a {previous.get('command')} run may still be writing this folder (pid "
                    f"{where.get('pid')} on {where.get('host')}); wait for it or choose another output folder"
                    + ("" if where.get("host") == platform.node() else " (--force if that host's run is gone)")
                )
        _remove_temporary_files(self.path)
        if self._same_run(previous):
            log.info("%s: continuing the %s %s run in place", self.path, previous["status"], previous["command"])
            return
        if not force:
            raise RunFolderError(
                f"{self.path}: holds another run ({previous.get('command')}, {previous['status']}, created "
                f"{previous.get('created')}); choose another output folder, or pass --force to replace it (the "
                f"previous run is kept in {self.path / PREVIOUS} until the new one completes)"
            )
        self._set_aside(previous)

    def _same_run(self, previous: Mapping[str, Any]) -> bool:
        mine = json.loads(json.dumps(self.manifest, default=str))
        return all(previous.get(key) == mine[key] for key in ("command", "config", "inputs"))

    def _set_aside(self, previous: Mapping[str, Any]) -> None:
        """Move the previous run's outputs into `.previous/`; if that already holds a completed run (this folder's
        last replacement failed or was killed), keep it and delete the unfinished run's outputs instead."""
        backup = self.path / PREVIOUS
        # Only what the run recorded: a store or an input in the folder must never be moved, let alone deleted.
        outputs = {LOG_FILE}
        for name in previous.get("files", {}).values():
            relative = Path(name)
            if not relative.is_absolute() and relative.parts and relative.parts[0] != "..":
                outputs.add(relative.parts[0])
        moved = [(self.path / entry).resolve() for entry in outputs]
        for source in self.manifest["inputs"]:
            if any(Path(source).resolve().is_relative_to(entry) for entry in moved):
                raise RunFolderError(
                    f"{self.path}: {source} is an input of this run and an output of the run --force would replace; "
                    "choose another output folder"
                )
        # A backup without a manifest is a set-aside that was killed part-way: finish it rather than lose it.
        keep = previous["status"] == "complete" or not (backup / MANIFEST).is_file()
        if keep and (backup / MANIFEST).is_file():
            shutil.rmtree(backup)
        backup.mkdir(exist_ok=True)
        for entry in [*sorted(outputs - {MANIFEST, PREVIOUS}), MANIFEST]:  # the manifest last, so a kill keeps it
            source = self.path / entry
            if not source.exists():
                continue
            if keep:
                source.rename(backup / entry)
            elif source.is_dir():
                shutil.rmtree(source)
            else:
                source.unlink()
        self.manifest["replaces"] = {
            "command": previous.get("command"),
            "status": previous["status"],
            "created": previous.get("created"),
            "kept_in": PREVIOUS,
        }
        log.info("%s: the previous run is kept in %s until this one completes", self.path, backup)


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of the run in folder `path`, its `status` `interrupted` where it says `running` but its process
    (on this host) is gone. Raises RunFolderError when there is none or it is not a manifest."""
    file = Path(path) / MANIFEST
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunFolderError(f"{path}: no {MANIFEST}; not a run folder") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunFolderError(f"{file}: not a readable run manifest ({exc})") from None
    if not isinstance(manifest, dict) or "status" not in manifest:
        raise RunFolderError(f"{file}: not a run manifest (no status)")
    if manifest["status"] == "running" and not _alive(manifest.get("process")):
        manifest["status"] = "interrupted"
    return manifest


def _this_process() -> dict[str, Any]:
    return {"host": platform.node(), "pid": os.getpid(), "started": _process_start(os.getpid())}


def _alive(process: Any) -> bool:
    """Whether the process a manifest names may still run: another host's cannot be checked, so it may."""
    if not isinstance(process, dict) or not isinstance(process.get("pid"), int):
        return False  # a manifest from before `process` was recorded: nothing can still be writing it
    if process.get("host") != platform.node():
        return True
    pid = process["pid"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    started = _process_start(pid)
    # a reused pid has another start time; a zombie (killed, not yet reaped) reports none
    return started is None if process.get("started") is None else started == process["started"]


def _process_start(pid: int) -> int | None:
    """A process's start time in clock ticks since boot (Linux), which tells a reused pid from the original; None
    where /proc does not say, or for a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (command) ": field 3 (state) onwards
    return None if fields[0] in ("Z", "X") else int(fields[19])


def _remove_temporary_files(root: Path) -> None:
    """Delete what a killed run's atomic writes left (hidden `*.tmp` files), in the folder and below."""
    for path in root.rglob(".*"):
        if path.is_file() and _TEMPORARY.match(path.name):
            path.unlink(missing_ok=True)


def _relative(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def mask_password(url: str) -> str:
    """A store URL fit for a manifest: `postgresql://me:***@host/db`; paths and password-less URLs unchanged."""
    from urllib.parse import urlsplit

    password = urlsplit(url).password
    return url.replace(f":{password}@", ":***@") if password else url
