"""A worker process: takes queued jobs from the store (or the shared queue) and runs each as a `trackid` command.

Each job runs in a child process (`python -m trackid <argv>`), in its own process group and bound to die with the
worker (Linux `PR_SET_PDEATHSIG`), so a killed worker never leaves a job running unseen. Every `heartbeat_s` the
worker reads the child's `progress.json` (`trackid.progress`) into the store and looks for a cancel. The child's
output goes to the job's `output.log`; when it ends, exit 0 makes the job complete with the run folder's manifest
summary as its metrics, any other exit makes it failed with the command's own one-line error.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from trackid.progress import ENV as PROGRESS_ENV
from trackid.progress import read_progress
from trackid.run_folder import RUN_KEYS, RunFolderError, read_manifest
from trackid.service.job_types import JobRequest
from trackid.service.paths import InputRefusedError, resolve_inputs
from trackid.service.queue import JobQueue, make_queue
from trackid.service.settings import ServiceSettings
from trackid.service.store import Job, JobStore, StaleSweeper

__all__ = ["OUTPUT_LOG", "PROGRESS_FILE", "Worker", "die_with_parent"]

OUTPUT_LOG = "output.log"
PROGRESS_FILE = "progress.json"
_REQUEST = TypeAdapter(JobRequest)
log = logging.getLogger(__name__)


class Worker:
    """Runs jobs one at a time until `stop` is set."""

    def __init__(self, settings: ServiceSettings, name: str | None = None) -> None:
        self.settings = settings
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.store = JobStore(settings.store_url)
        self.queue: JobQueue = make_queue(settings, self.store, self.name)
        self.stop = threading.Event()

    def run_forever(self, idle_s: float = 0.2) -> None:
        log.info("worker %s: taking jobs from %s", self.name, self.queue.describe())
        sweep = StaleSweeper(self.store, self.settings.stale_s)
        while not self.stop.is_set():
            sweep()
            if not self.run_one(wait_s=idle_s):
                self.stop.wait(0 if self.queue.blocks else idle_s)

    def run_one(self, wait_s: float = 0.0) -> bool:
        """Claim and run one job; False when none was queued."""
        job = self.queue.take(wait_s)
        if job is None:
            return False
        try:
            self._run(job)
        finally:
            self.queue.done(job)
        return True

    def _run(self, job: Job) -> None:
        folder = Path(job.run_dir).parent
        folder.mkdir(parents=True, exist_ok=True)
        try:
            spec = _REQUEST.validate_python(job.request)
            argv = spec.argv(resolve_inputs(spec, self.settings), Path(job.run_dir))
        except (InputRefusedError, ValueError) as exc:  # the roots changed since it was queued
            self.store.finish(job.id, self.name, "failed", {}, f"refused: {exc}")
            return
        progress = folder / PROGRESS_FILE
        progress.unlink(missing_ok=True)
        env = {**os.environ, PROGRESS_ENV: str(progress), "COLUMNS": "120"}
        log.info("job %s (%s): %s", job.id, job.type, " ".join(argv))
        with (folder / OUTPUT_LOG).open("ab") as output:
            output.write(f"--- attempt {job.attempts} by {self.name}: trackid {' '.join(argv)}\n".encode())
            output.flush()
            child = subprocess.Popen(
                [sys.executable, "-m", "trackid", *argv],
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=folder,
                preexec_fn=die_with_parent,
            )
            state = self._supervise(job, child, progress)
        if state == "lost":
            return
        metrics = _metrics(Path(job.run_dir))
        if state == "cancelled":
            self.store.finish(job.id, self.name, "cancelled", metrics, "cancelled while it ran: resume it to finish")
        elif child.returncode == 0:
            self.store.finish(job.id, self.name, "complete", metrics)
        else:
            self.store.finish(job.id, self.name, "failed", metrics, _last_error(folder / OUTPUT_LOG, child.returncode))

    def _supervise(self, job: Job, child: subprocess.Popen[bytes], progress: Path) -> str:
        """Wait for the child, reporting progress; 'done', 'cancelled', or 'lost' (the job is not ours any more)."""
        while True:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=self.settings.heartbeat_s)
            state = read_progress(progress) or {}
            ours = self.store.progress(job.id, self.name, state.get("phase"), state.get("done"), state.get("total"))
            if child.returncode is not None:
                return "done" if ours else "lost"
            if not ours or self.store.cancel_requested(job.id) or self.stop.is_set():
                _stop(child)
                return "cancelled" if ours else "lost"


def die_with_parent(new_group: bool = True) -> None:
    """In a child, before exec: (its own process group, so it can be stopped whole, and) SIGKILL when the parent
    dies (Linux), so a killed worker or server leaves nothing running."""
    if new_group:
        os.setsid()
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _stop(child: subprocess.Popen[bytes], grace_s: float = 5.0) -> None:
    """SIGTERM to the child's process group, SIGKILL after `grace_s`."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, None)):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            return
        try:
            child.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _metrics(run_dir: Path) -> dict[str, Any]:
    """The run folder manifest's summary fields (what each command reports, its warnings), and its status; none
    for a command that writes no run folder."""
    try:
        manifest = read_manifest(run_dir)
    except RunFolderError:
        return {}
    return {k: v for k, v in manifest.items() if k not in RUN_KEYS} | {"run_status": manifest["status"]}


def _last_error(output: Path, code: int) -> str:
    """The command's own error line (`error: ...`), else its last line, else the exit status."""
    try:
        lines = [line.strip() for line in output.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        lines = []
    errors = [line for line in lines if line.startswith("error:")]
    if errors:
        return errors[-1][:2000]
    return (lines[-1][:2000] if lines else "") + f" (exit status {code})"
