"""`trackid multicam replay`: a site's cameras simulated from their recorded detections, one edge process each.

Each camera runs as its own `trackid multicam edge` process, as it would on its own machine, so a test or a
benchmark can kill one (`kill -9`) and start it again, and a broker outage hits fifteen independent workers, not
one. The processes inherit the environment (the broker's password variable among it).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from trackid.pipelines.multicam.site import SiteConfig

__all__ = ["edge_command", "replay_cameras"]


def edge_command(
    config: Path,
    camera: str,
    *,
    speed: float,
    overrides: Sequence[str] = (),
    log_file: Path | None = None,
    start_at: float | None = None,
) -> list[str]:
    """The command line of one camera's edge worker."""
    command = [sys.executable, "-m", "trackid", "multicam", "edge", "--config", str(config), "--camera", camera]
    command += ["--speed", repr(float(speed))]
    if start_at is not None:
        command += ["--start-at", repr(float(start_at))]
    for item in overrides:
        command += ["--set", item]
    if log_file is not None:
        command += ["--log-file", str(log_file)]
    return command


def replay_cameras(
    sites: Mapping[Path, SiteConfig],
    *,
    speed: float,
    overrides: Sequence[str] = (),
    log_dir: Path | None = None,
    stop: threading.Event | None = None,
) -> dict[str, int]:
    """Start every camera's edge, wait for all; camera (site/id) -> exit status. `stop` terminates them (SIGTERM:
    each stops between frames, its spool intact)."""
    stop = stop or threading.Event()
    processes: dict[str, subprocess.Popen[bytes]] = {}
    # the cameras film in step from a common frame 1, once all had time to start (~0.4 s a process here)
    start_at = time.time() + 2.0 + 0.4 * sum(len(site.cameras) for site in sites.values()) if speed > 0 else None
    for path, site in sites.items():
        for camera in site.cameras:
            log_file = None if log_dir is None else log_dir / f"{site.site}-{camera.id}.jsonl"
            command = edge_command(
                path, camera.id, speed=speed, overrides=overrides, log_file=log_file, start_at=start_at
            )
            processes[f"{site.site}/{camera.id}"] = subprocess.Popen(command)
    try:
        while any(p.poll() is None for p in processes.values()):
            if stop.wait(0.2):
                for p in processes.values():
                    p.terminate()
    finally:
        for p in processes.values():
            p.wait()
    return {camera: int(p.returncode) for camera, p in processes.items()}
