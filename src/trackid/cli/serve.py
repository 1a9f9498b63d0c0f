"""`trackid serve`, `trackid worker`, `trackid token`: the job service, its workers, and its bearer tokens."""

from __future__ import annotations

import functools
import gc
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from trackid.cli.common import make_console, user_errors

ServiceConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Service YAML: data_dir, store, queue, roots, token_hashes, limits."),
]


def serve(
    config: ServiceConfigOption = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.", min=1, max=65535)] = 8000,
    workers: Annotated[
        int, typer.Option("--workers", help="Worker processes to start beside the web process (0: none).", min=0)
    ] = 1,
) -> None:
    """Start the job API (and its workers): POST /jobs, GET /jobs/{id}, its /events and /artifacts."""
    import uvicorn

    from trackid.service.app import create_app
    from trackid.service.settings import load_settings
    from trackid.service.worker import die_with_parent

    with user_errors():
        settings = load_settings(config)
        app = create_app(settings)
    if not settings.token_hashes:
        make_console().print(
            Text("warning: no tokens configured: every request will be refused (see `trackid token`)", "yellow")
        )
    args = [sys.executable, "-m", "trackid", "worker", *(["--config", str(config)] if config else [])]
    # imported here, not in the forked child: the child only calls it before exec
    bound = functools.partial(die_with_parent, new_group=False)
    children = [subprocess.Popen(args, preexec_fn=bound) for _ in range(workers)]
    gc.freeze()  # the app's start-up objects (pydantic schemas, numpy, ...) out of every later collection
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(timeout=30)


def worker(config: ServiceConfigOption = None) -> None:
    """Run queued jobs, one at a time, until stopped (SIGTERM or Ctrl-C finish nothing half-way: the job running is
    stopped and shown cancelled, to be resumed)."""
    from trackid.service.settings import load_settings
    from trackid.service.worker import Worker

    with user_errors():
        running = Worker(load_settings(config))
    signal.signal(signal.SIGTERM, lambda *_: running.stop.set())
    try:
        running.run_forever()
    except KeyboardInterrupt:
        running.stop.set()


def token() -> None:
    """Make a new bearer token: give the token to the client, and its hash to the service (token_hashes in the
    service file, or TRACKID_SERVICE_TOKEN_HASHES)."""
    from trackid.service.auth import hash_token, new_token

    value = new_token()
    console = make_console()
    console.print(Text(f"token: {value}"), soft_wrap=True)
    console.print(Text(f"hash:  {hash_token(value)}"), soft_wrap=True)
