"""`trackid multicam`: several overlapping cameras of one site, one global id per person across them."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from trackid.cli.common import ForceOption, fail, make_console, print_warnings, progress_bar, user_errors
from trackid.multiview.site_tracking import METHODS

multicam_app = typer.Typer(
    help="Overlapping cameras of one site: global ids on the ground plane and in every view.", no_args_is_help=True
)


@multicam_app.command("run")
def multicam_run(
    config: Annotated[
        Path,
        typer.Option(
            "--config",
            "-c",
            help="Site YAML: site, fps, unit_per_metre, method, min_views, min_score, and cameras (id, calibration, "
            "detections, image_size, min_score), optionally identities (gallery, window_s, max_speed_mps, "
            "start_time_s); relative paths are read from its folder.",
        ),
    ],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run folder (default runs/multicam/<site>).")] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help=f"Override a site key, e.g. min_views=3, method={METHODS[0]} (one of {', '.join(METHODS)}) or "
            "cameras.<id>.min_score=0.4 or identities.gallery=/data/site.db (relative: from the site file's folder); "
            "repeatable.",
        ),
    ] = None,
    force: ForceOption = False,
) -> None:
    """Link a site's recorded per-camera detections into global tracks: ground-plane CSV/JSONL, per-view MOT files
    with global ids, a bird's-eye plot and a summary, in one run folder. Running the same site again redoes it in
    place. With an identities gallery the global ids are its persistent identities (a rerun of the same recording
    reuses them)."""
    from trackid.identity.global_ids import RunOverlapError
    from trackid.pipelines.multicam import load_site, run_site

    with user_errors(RunOverlapError):
        site = load_site(config, set_ or [])
        run_dir = out or Path("runs") / "multicam" / site.site
        with progress_bar("steps") as progress:
            # run_site reports each step done (every camera loaded, tracking, writing); the bar names the next one
            following = iter([*["cameras"] * (len(site.cameras) - 1), site.method, "writing", "done"])
            task = progress.add_task(f"{site.site}: cameras", total=len(site.cameras) + 2)
            run = run_site(
                site,
                run_dir,
                force=force,
                on_stage=lambda _: progress.update(task, advance=1, description=f"{site.site}: {next(following)}"),
            )
        _print_summary(run.summary)
        print_warnings(run.warnings)
        console = make_console()
        for key in ("ground_tracks_csv", "ground_tracks_jsonl", "birdseye", "summary", "manifest"):
            console.print(Text(f"{key.replace('_', ' '):>19}: {run.files[key]}"), soft_wrap=True)
        console.print(Text(f"{'per-view MOT files':>19}: {run.out / 'views'}"), soft_wrap=True)


def _print_summary(summary: dict[str, object]) -> None:
    boxes = summary["boxes_per_camera"]
    assert isinstance(boxes, dict)
    table = Table(
        title=f"{summary['site']}: {summary['global_tracks']} global tracks over {summary['frames']} frames "
        f"({summary['method']}, {summary['realtime_factor']}x real time)",
        title_style="bold",
    )
    for column in ("camera", "detections", "above min_score", "with global id", "global ids"):
        table.add_column(column, justify="left" if column == "camera" else "right")
    for name, counts in boxes.items():
        table.add_row(
            name,
            *(str(counts[k]) for k in ("detections", "above_min_score", "with_global_id", "global_ids")),
        )
    console = make_console()
    console.print(table)
    identities = summary.get("identities")
    if isinstance(identities, dict):
        replayed = " (replayed: this recording was resolved before)" if identities["replayed"] else ""
        console.print(
            Text(
                f"{identities['tracks']} tracks -> {identities['identities']} gallery identities "
                f"({identities['new_identities']} new, {identities['continued_from_earlier_runs']} continued from "
                f"earlier runs, {identities['reattached']} re-attached) in {identities['gallery']}{replayed}"
            ),
            soft_wrap=True,
        )


_SITE_HELP = "Site YAML (as for `multicam run`), with its optional service: block (broker, spool_dir, waits)."
_SET_HELP = (
    "Override a site key, e.g. service.broker.url=redis://host:6379/0 or cameras.<id>.min_score=0.4; repeatable."
)
_LOG_FILE_HELP = "Also write JSON-lines logs (level, time, module, message, camera_id / identity_id) to this file."


@multicam_app.command("edge")
def multicam_edge(
    config: Annotated[Path, typer.Option("--config", "-c", help=_SITE_HELP)],
    camera: Annotated[
        str | None, typer.Option("--camera", help="The camera's id (needed when the site lists several).")
    ] = None,
    speed: Annotated[
        float, typer.Option("--speed", min=0, help="Replay speed of recorded detections: 1 real time, 0 flat out.")
    ] = 1.0,
    metrics_port: Annotated[int, typer.Option("--metrics-port", min=0, help="Serve /metrics here (0: none).")] = 0,
    set_: Annotated[list[str] | None, typer.Option("--set", help=_SET_HELP)] = None,
    log_file: Annotated[Path | None, typer.Option("--log-file", help=_LOG_FILE_HELP)] = None,
    start_gate: Annotated[
        Path | None,
        typer.Option("--start-gate", help="Simulated cameras (replay): once warm, wait in this folder for the others."),
    ] = None,
) -> None:
    """One camera's edge worker: track its detections, spool every frame's tracklet update, publish to the site's
    Redis Stream. Survives broker outages (spools, reconnects, resends); a restart continues after the spool."""
    from trackid.pipelines.multicam import load_site
    from trackid.pipelines.multicam.edge import EdgeWorker

    with user_errors(), _logging_to(log_file), _stopping() as stop:
        site = load_site(config, set_ or [])
        worker = EdgeWorker(site, camera, speed=speed, metrics_port=metrics_port, stop=stop, start_gate=start_gate)
        summary = worker.run()
        make_console().print(
            Text(
                f"camera {summary.camera}: {summary.frames} frames tracked (after {summary.resumed_after} spooled "
                f"before), {summary.published} messages published, {summary.reconnects} reconnects, "
                f"{summary.dropped} dropped by the spool cap"
            ),
            soft_wrap=True,
        )


@multicam_app.command("central")
def multicam_central(
    config: Annotated[list[Path], typer.Option("--config", "-c", help=_SITE_HELP + " Repeatable: one per site.")],
    name: Annotated[
        str | None, typer.Option("--name", help="This consumer's name in the group (default: host-pid).")
    ] = None,
    until_done: Annotated[
        bool, typer.Option("--until-done", help="Exit once every site's cameras have ended and all is committed.")
    ] = False,
    metrics_port: Annotated[int, typer.Option("--metrics-port", min=0, help="Serve /metrics here (0: none).")] = 0,
    set_: Annotated[list[str] | None, typer.Option("--set", help=_SET_HELP + " Applies to every site.")] = None,
    log_file: Annotated[Path | None, typer.Option("--log-file", help=_LOG_FILE_HELP)] = None,
) -> None:
    """The central linker: consume the sites' streams in the consumer group, link the cameras' tracklets into global
    identities in the sites' gallery, exactly once. Start it on several machines to share the sites."""
    import os
    import socket

    from trackid.pipelines.multicam import load_site
    from trackid.pipelines.multicam.central import CentralLinker

    with user_errors(), _logging_to(log_file), _stopping() as stop:
        sites = [load_site(path, set_ or []) for path in config]
        linker = CentralLinker(
            sites, name=name or f"{socket.gethostname()}-{os.getpid()}", metrics_port=metrics_port, stop=stop
        )
        summary = linker.run(until_done=until_done)
        for site, applied in summary.applied.items():
            make_console().print(
                Text(
                    f"site {site}: {applied} messages applied, {summary.identities[site]} identities created, "
                    f"{summary.late[site]} late messages dropped"
                ),
                soft_wrap=True,
            )
        make_console().print(
            Text(f"{summary.duplicates} duplicates dropped, {summary.dead_letters} dead letters"), soft_wrap=True
        )


@multicam_app.command("replay")
def multicam_replay(
    config: Annotated[list[Path], typer.Option("--config", "-c", help=_SITE_HELP + " Repeatable: one per site.")],
    speed: Annotated[float, typer.Option("--speed", min=0, help="1 real time, 10 ten times faster, 0 flat out.")] = 1.0,
    set_: Annotated[list[str] | None, typer.Option("--set", help=_SET_HELP + " Applies to every site.")] = None,
    log_dir: Annotated[
        Path | None, typer.Option("--log-dir", help="Each edge's JSON-lines log, <site>-<camera>.jsonl.")
    ] = None,
) -> None:
    """Simulated cameras: one edge worker process per camera of the sites, replaying its recorded detections at
    `speed`; waits for all of them and reports each one's exit status."""
    from trackid.pipelines.multicam import load_site
    from trackid.pipelines.multicam.replay import replay_cameras

    with user_errors(), _stopping() as stop:
        sites = {path: load_site(path, set_ or []) for path in config}
        codes = replay_cameras(sites, speed=speed, overrides=set_ or [], log_dir=log_dir, stop=stop)
        failed = {camera: code for camera, code in codes.items() if code != 0}
        make_console().print(Text(f"{len(codes)} cameras replayed, {len(failed)} failed"), soft_wrap=True)
        if failed:
            fail("edge workers exited with " + ", ".join(f"{c}: {code}" for c, code in failed.items()))


@contextlib.contextmanager
def _stopping() -> Iterator[threading.Event]:
    """An event set by SIGTERM or SIGINT, so a service stops between messages (its spool or pending entries keep
    the rest) instead of dying mid-write."""
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _logging_to(path: Path | None) -> contextlib.AbstractContextManager[object]:
    from trackid.logs import log_to_file

    return contextlib.nullcontext() if path is None else log_to_file(path)
