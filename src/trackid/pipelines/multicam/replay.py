"""`trackid multicam replay`: a site's cameras simulated from their recorded detections, one edge process each.

Each camera runs as its own `trackid multicam edge` process, as it would on its own machine, so a test or a
benchmark can kill one (`kill -9`) and start it again, and a broker outage hits fifteen independent workers, not
one. The processes inherit the environment (the broker's password variable among it).

Started one by one, twenty processes take tens of seconds on a small machine to import and warm up, so at a speed
above 0 they meet at a start gate (a folder): each marks itself ready once its detections are loaded and its
tracker is warm, and waits; the replay opens the gate, with the Unix time of frame 1, when all are ready. The
cameras then film in step, as synchronised cameras do, and a latency measured later is the service's, not the
start-up's. An edge restarted after the gate opened finds it open and catches up.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path

from trackid.artifacts import atomic_write_text
from trackid.pipelines.multicam.site import SiteConfig

__all__ = ["edge_command", "replay_cameras", "wait_at_gate"]

_OPEN = "start"  # the gate file: Unix time of frame 1
GATE_TIMEOUT_S = 300.0


def edge_command(
    config: Path,
    camera: str,
    *,
    speed: float,
    overrides: Sequence[str] = (),
    log_file: Path | None = None,
    start_gate: Path | None = None,
) -> list[str]:
    """The command line of one camera's edge worker."""
    command = [sys.executable, "-m", "trackid", "multicam", "edge", "--config", str(config), "--camera", camera]
    command += ["--speed", repr(float(speed))]
    if start_gate is not None:
        command += ["--start-gate", str(start_gate)]
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
    gate = Path(tempfile.mkdtemp(prefix="trackid-gate-")) if speed > 0 else None
    for path, site in sites.items():
        for camera in site.cameras:
            log_file = None if log_dir is None else log_dir / f"{site.site}-{camera.id}.jsonl"
            command = edge_command(
                path, camera.id, speed=speed, overrides=overrides, log_file=log_file, start_gate=gate
            )
            processes[f"{site.site}/{camera.id}"] = subprocess.Popen(command)
    try:
        if gate is not None:
            _open_gate(gate, processes, stop)
        while any(p.poll() is None for p in processes.values()):
            if stop.wait(0.2):
                for p in processes.values():
                    p.terminate()
    finally:
        for p in processes.values():
            p.wait()
        if gate is not None:
            shutil.rmtree(gate, ignore_errors=True)
    return {camera: int(p.returncode) for camera, p in processes.items()}


def gate_name(site: str, camera: str) -> str:
    """A camera's name in the gate folder (its ready mark is `<name>.ready`)."""
    return urllib.parse.quote(f"{site}/{camera}", safe="")


def wait_at_gate(gate: Path, name: str, stop: threading.Event) -> float | None:
    """Mark `name` ready and wait for the gate to open: the Unix time of frame 1 (None: stopped meanwhile)."""
    gate.mkdir(parents=True, exist_ok=True)
    (gate / f"{name}.ready").touch()
    deadline = time.monotonic() + GATE_TIMEOUT_S
    while not stop.is_set() and time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError, ValueError):
            return float((gate / _OPEN).read_text())
        stop.wait(0.05)
    return None if stop.is_set() else time.time()  # nobody opened it: start alone rather than never


def _open_gate(gate: Path, processes: Mapping[str, subprocess.Popen[bytes]], stop: threading.Event) -> None:
    """Once every live edge is ready, write the start time (atomically: a reader sees all of it or nothing)."""
    deadline = time.monotonic() + GATE_TIMEOUT_S
    while not stop.is_set() and time.monotonic() < deadline:
        ready = {urllib.parse.unquote(p.name.removesuffix(".ready")) for p in gate.glob("*.ready")}
        waiting = [n for n, p in processes.items() if p.poll() is None and n not in ready]
        if not waiting:
            break
        stop.wait(0.1)
    atomic_write_text(gate / _OPEN, repr(time.time() + 0.5))
