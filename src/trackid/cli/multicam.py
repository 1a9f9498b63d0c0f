"""`trackid multicam`: several overlapping cameras of one site, one global id per person across them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from trackid.cli.common import ForceOption, make_console, print_warnings, progress_bar, user_errors
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
