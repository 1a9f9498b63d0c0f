"""One logging setup for every command: readable lines on stderr, and a JSON-lines file in each run folder.

Modules log through the standard `logging` module under `trackid.*`; nothing else prints diagnostics. Records may
carry `camera_id`, `track_id` and `identity_id` (`log.warning(..., extra={"camera_id": "north"})`): the console line
appends them, the JSON line has them as fields, so one camera's or one identity's story can be filtered out of a
multi-camera run. What a command shows the user as its result (tables, summaries) is output, not logging, and stays
on rich's console.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
from collections.abc import Iterator
from pathlib import Path

__all__ = ["ID_FIELDS", "JsonLinesFormatter", "log_to_file", "setup_logging"]

ID_FIELDS = ("camera_id", "track_id", "identity_id")
ROOT = "trackid"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class JsonLinesFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, module (logger name), message, and any id fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "module": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: getattr(record, k) for k in ID_FIELDS if getattr(record, k, None) is not None})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


class _ConsoleFormatter(logging.Formatter):
    """`LEVEL module: message [camera_id=... track_id=...]`."""

    def format(self, record: logging.LogRecord) -> str:
        ids = " ".join(f"{k}={getattr(record, k)}" for k in ID_FIELDS if getattr(record, k, None) is not None)
        line = f"{record.levelname.lower()} {record.name}: {record.getMessage()}"
        return f"{line} [{ids}]" if ids else line


def setup_logging(level: str = "WARNING") -> logging.Logger:
    """Configure the `trackid` logger once per process: console lines at `level` on stderr (WARNING by default, so a
    normal run shows only what needs attention). Calling it again replaces the console handler, not adds one."""
    name = level.upper()
    if name not in LEVELS:
        raise ValueError(f"log level {level!r}: choose from {', '.join(LEVELS)}")
    logger = logging.getLogger(ROOT)
    for handler in [h for h in logger.handlers if getattr(h, "_trackid_console", False)]:
        logger.removeHandler(handler)
    console = logging.StreamHandler()
    console.setFormatter(_ConsoleFormatter())
    console.setLevel(name)
    console._trackid_console = True  # type: ignore[attr-defined]
    logger.addHandler(console)
    logger.setLevel(logging.DEBUG)  # handlers filter; a run's JSON file keeps INFO even when the console shows less
    logger.propagate = False
    return logger


@contextlib.contextmanager
def log_to_file(path: Path, level: str = "INFO") -> Iterator[Path]:
    """While the block runs, also write every `trackid` record at `level` or above to `path` as JSON lines."""
    logger = logging.getLogger(ROOT)
    if not logger.handlers:
        setup_logging()
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(JsonLinesFormatter())
    handler.setLevel(level.upper())
    logger.addHandler(handler)
    try:
        yield path
    finally:
        logger.removeHandler(handler)
        handler.close()
