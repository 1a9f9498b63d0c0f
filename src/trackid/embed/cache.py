"""Where converted models are cached, and how files are hashed and written safely.

Converted models are named by the hash of their source weights so a changed weights file never reuses a stale
conversion, and are written atomically so two processes converting at once never leave a half-written model.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

__all__ = ["CACHE_ENV", "file_sha256", "model_cache_dir", "write_atomic"]

CACHE_ENV = "TRACKID_CACHE"
"""Environment variable overriding the cache root (default `~/.cache/trackid`, or `$XDG_CACHE_HOME/trackid`)."""


def model_cache_dir() -> Path:
    """`<cache root>/models`, created if missing."""
    root = os.environ.get(CACHE_ENV)
    if root:
        base = Path(root).expanduser()
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "trackid"
    path = base / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, then rename over `path` (atomic on POSIX and Windows)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
