"""A job's input paths, checked against the service's roots before anything runs.

A path is refused when it has a `..` part (even one that would land inside a root: a request has no business
climbing), a NUL byte, or resolves (symbolic links followed) outside every root; a relative path is read from the
first root. The command gets the path as named (absolute), not resolved, so a linked file's companions are found
beside the link as the CLI would find them. A site file's own paths (cameras' detections and calibrations) are held
to the same rule, so a site file cannot reach outside the roots for it. Uploaded files (`service.uploads`) are under
a root too. A gallery store given as a URL must be one of the service's `stores`.
"""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import Any

from trackid.service.job_types import JobSpec
from trackid.service.settings import ServiceSettings

__all__ = ["InputRefusedError", "resolve_inputs"]


class InputRefusedError(ValueError):
    """An input path the service will not read (the message names the field and why)."""


def resolve_inputs(job: JobSpec, settings: ServiceSettings) -> dict[str, list[Path]]:
    """Each path field of `job` -> its resolved paths (absent fields left out).

    Raises:
        InputRefusedError: a path is outside the roots, climbs with `..`, does not exist, or a store URL is not allowed.
    """
    out: dict[str, list[Path]] = {}
    for name in job.paths:
        value: Any = getattr(job, name)
        if value is None:
            continue
        values = value if isinstance(value, list) else [value]
        if name == "store" and "://" in values[0]:
            if values[0] not in settings.stores:
                raise InputRefusedError(f"{name}: this gallery URL is not one of the service's stores")
            continue
        out[name] = [_checked(name, v, settings, must_exist=name != "store") for v in values]
    if getattr(job, "type", None) in ("multicam", "stereo"):
        for path in _site_paths(out["site"][0]):
            _within_roots("site", path, path, settings)
    return out


def _checked(field: str, value: str, settings: ServiceSettings, *, must_exist: bool) -> Path:
    if "\x00" in value:
        raise InputRefusedError(f"{field}: a path cannot hold a NUL byte")
    if ".." in PurePath(value).parts:
        raise InputRefusedError(f"{field}: {value!r}: '..' is not allowed in an input path")
    roots = settings.input_roots
    path = Path(value) if Path(value).is_absolute() else roots[0] / value
    target = path.resolve() if must_exist else path.parent.resolve() / path.name
    _within_roots(field, target, Path(value), settings)
    if must_exist and not target.exists():
        raise InputRefusedError(f"{field}: {value!r} does not exist")
    if not must_exist and not target.parent.is_dir():
        raise InputRefusedError(f"{field}: {value!r}: its folder does not exist")
    return path  # as named, links and all: a command looks beside a file for its companions (a det's seqinfo.ini)


def _within_roots(field: str, target: Path, shown: Path, settings: ServiceSettings) -> None:
    if not any(target.resolve().is_relative_to(root) for root in settings.input_roots):
        raise InputRefusedError(f"{field}: {str(shown)!r} is outside the service's input roots")


def _site_paths(site_file: Path) -> list[Path]:
    """Every file a site file names (read leniently: a malformed site fails in the job with the command's message)."""
    from trackid.config import ConfigError
    from trackid.pipelines.multicam import load_site

    try:
        site = load_site(site_file)
    except (ConfigError, ValueError, OSError):
        return []
    out = []
    for camera in site.cameras:
        out += [p for p in (camera.detections,) if p is not None]
        calibration = camera.calibration
        out += [p for p in (calibration.intrinsics, calibration.extrinsics, calibration.homography) if p is not None]
    return out
