"""`trackid stereo`: a calibrated site's recorded detections -> 3D trajectories, optionally after the persistence
filter."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from trackid.cli.common import ForceOption, make_console, print_warnings, progress_bar, user_errors

stereo_app = typer.Typer(help="Calibrated overlapping cameras: triangulated 3D trajectories.", no_args_is_help=True)


@stereo_app.command("run")
def stereo_run(
    config: Annotated[
        Path,
        typer.Option(
            "--config", "-c", help="Site YAML, as for `multicam run`; every camera needs an OpenCV calibration."
        ),
    ],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run folder (default runs/stereo/<site>).")] = None,
    filter_model: Annotated[
        str | None,
        typer.Option(
            "--filter",
            help="A persistence filter: `shipped` (the default of those that ship with trackid, fitted on "
            "MOT15/MOT17/PETS tracks: the boosted trees), `boosted` or `transformer` (either shipped one), or a "
            "file: a BoostedPersistence .npz (`bench/persistence.py --save-boosted`) or a TransformerPersistence "
            "ONNX file (`--save-transformer`). The site also runs without the detections of transient per-camera "
            "tracks, and the report shows both.",
        ),
    ] = None,
    smooth: Annotated[
        bool,
        typer.Option(
            "--smooth/--no-smooth",
            help="Smooth each global track's ground positions with the world tracker's motion model (forward filter, "
            "backward smoother); the triangulated positions stay beside them in the CSV.",
        ),
    ] = True,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a site key; repeatable.")] = None,
    force: ForceOption = False,
) -> None:
    """Track the site's views into global tracks and triangulate each track's feet from every view that sees it:
    trajectories_3d.csv, summary.json and report.html in one run folder."""
    from trackid.multiview.persistence.shipped import filter_file
    from trackid.pipelines.multicam import load_site
    from trackid.pipelines.stereo import FilterModelError, run_stereo

    with user_errors(FilterModelError):
        site = load_site(config, set_ or [])
        run_dir = out or Path("runs") / "stereo" / site.site
        with progress_bar("steps") as progress:
            task = progress.add_task(f"{site.site}: cameras", total=len(site.cameras) + 2)
            run = run_stereo(
                site,
                run_dir,
                filter_model=None if filter_model is None else filter_file(filter_model),
                smooth=smooth,
                force=force,
                on_stage=lambda stage: progress.update(task, advance=1, description=f"{site.site}: {stage}"),
            )
        table = Table(title=f"{site.site}: 3D trajectories", title_style="bold")
        table.add_column("")
        for name in run.summary["runs"]:
            table.add_column(name, justify="right")
        keys = ("global_tracks", "points", "rejected_by_reprojection", "off_the_ground", "single_view")
        for key in (*keys, "detections_dropped"):
            table.add_row(key.replace("_", " "), *(str(r[key]) for r in run.summary["runs"].values()))
        console = make_console()
        console.print(table)
        print_warnings(run.summary["warnings"])
        for key in ("trajectories", "summary", "report", "manifest"):
            console.print(Text(f"{key:>12}: {run.files[key]}"), soft_wrap=True)
