"""Files trackid writes: run artifacts and cached model conversions.

Everything is written atomically (a crash never leaves a half-written file where a complete one was expected) and
derived files are named by the hash of what they were made from (a changed input never reuses a stale file).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import stat
import tempfile
from pathlib import Path

__all__ = [
    "CACHE_ENV",
    "atomic_write_bytes",
    "atomic_write_text",
    "cache_dir",
    "check_model_file",
    "file_sha256",
    "package_file",
]

CACHE_ENV = "TRACKID_CACHE_DIR"
"""Environment variable overriding the cache root (default `$XDG_CACHE_HOME/trackid`, else `~/.cache/trackid`)."""


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write `data` to a temporary file beside `path`, fsync it, then rename it over `path`.

    Readers see either the old file or the complete new one: rename within a directory is atomic on POSIX. The file
    gets the mode `open(path, "w")` would leave: an existing file's own, else 0666 less the umask (the temporary
    file's private 0600 would otherwise hide outputs from the group and from a web server).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def cache_dir(sub: str = "") -> Path:
    """`<cache root>/<sub>`, created if missing; the root is `$TRACKID_CACHE_DIR` or the user's cache folder."""
    root = os.environ.get(CACHE_ENV)
    base = (
        Path(root).expanduser()
        if root
        else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "trackid"
    )
    path = base / sub if sub else base
    path.mkdir(parents=True, exist_ok=True)
    return path


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_model_file(path: str | os.PathLike[str], what: str) -> Path:
    """Resolve a model file path, raising FileNotFoundError naming `what` and the path when it is not a file."""
    resolved = Path(path).expanduser()
    if not resolved.is_file():
        raise FileNotFoundError(f"{what} not found: {resolved}")
    return resolved


def package_file(package: str, relative: str, install: str) -> Path:
    """A file shipped inside an installed package, found without importing the package.

    The packages that carry our pretrained weights import things we must not need at run time (tensorflow,
    pkg_resources, GUI OpenCV), so only their location is looked up. `install` is the command that provides it.
    """
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise FileNotFoundError(f"package {package!r} is not installed: `{install}`")
    path = Path(locations[0]) / relative
    if not path.exists():
        raise FileNotFoundError(f"{package} is installed but lacks {relative}: {path}")
    return path


def _umask() -> int:
    """The process's umask, read without changing it where Linux reports it (`os.umask` can only swap it, which
    would briefly change the mode of files another thread creates)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current
