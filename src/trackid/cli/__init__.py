"""The `trackid` command line: one module per sub-app, registered here.

Every user mistake (a malformed file, a missing input, an unknown or invalid tracker parameter) ends in one red
line naming the input and what is wrong, with exit code 2 and no traceback (`trackid.cli.common.user_errors`).
Outputs are written atomically, so a failed run leaves earlier results intact.
"""

from __future__ import annotations

from typing import Annotated

import typer

from trackid.cli.common import fail, parse_params
from trackid.cli.episode import episode
from trackid.cli.gallery import gallery_app
from trackid.cli.models import models_app
from trackid.cli.multicam import multicam_app
from trackid.cli.photos import photos_app
from trackid.cli.serve import serve, token, worker
from trackid.cli.stereo import stereo_app
from trackid.cli.track import demo, evaluate, track
from trackid.logs import setup_logging

__all__ = ["app", "parse_params"]

app = typer.Typer(
    name="trackid",
    help="Track people in videos or MOTChallenge detections, evaluate with TrackEval, maintain the identity gallery.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _options(
    log_level: Annotated[
        str, typer.Option("--log-level", help="Console log level: DEBUG, INFO, WARNING (default) or ERROR.")
    ] = "WARNING",
) -> None:
    """Settings of every command."""
    try:
        setup_logging(log_level)
    except ValueError as exc:
        fail(f"--log-level: {exc}")


app.command()(track)
app.command("eval")(evaluate)
app.command()(demo)
app.command()(episode)
app.add_typer(gallery_app, name="gallery")
app.add_typer(models_app, name="models")
app.add_typer(photos_app, name="photos")
app.add_typer(multicam_app, name="multicam")
app.add_typer(stereo_app, name="stereo")
app.command()(serve)
app.command()(worker)
app.command()(token)
