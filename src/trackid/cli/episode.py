"""`trackid episode VIDEO`: faces in a video -> face tracks -> embeddings -> identities (`pipelines/episode`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from trackid.cli.common import ForceOption, make_console, user_errors

__all__ = ["episode"]


def episode(
    video: Annotated[Path, typer.Argument(help="The episode's video file.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Run folder (default runs/episodes/<video name>).")
    ] = None,
    stage: Annotated[
        list[str] | None,
        typer.Option(
            "--stage",
            help="Run only this stage (detect-track, embed, cluster, cleanup, report); repeatable. Default: all; "
            "done ones are skipped.",
        ),
    ] = None,
    profile: Annotated[
        str | None, typer.Option("--profile", help="fast_cpu, balanced (default) or high_accuracy.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="A YAML config file (its episode: block).")
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a config key, e.g. episode.frame_stride=3; repeatable.")
    ] = None,
    force: ForceOption = False,
) -> None:
    """Find the faces of a video, track them, embed a few per track and group the tracks into identities, writing
    each stage's artifacts into the run folder (resumable: a stage already done is skipped)."""
    from trackid.config import load_config
    from trackid.pipelines.episode.run import STAGES, EpisodeError, run_episode

    console = make_console()
    with user_errors(EpisodeError):
        run_config, chosen = load_config(config, profile, set_ or [])
        folder = out or Path("runs") / "episodes" / video.stem
        result = run_episode(
            video,
            run_config,
            folder,
            stages=stage or STAGES,
            force=force,
            on_stage=lambda name, what: console.print(Text(f"{name}: {what}")),
        )
        summary = result.summary
        if "cluster" in summary:
            c = summary["cluster"]
            line = f"{c['tracks']} face tracks -> {c['identities']} identities "
            line += f"(threshold {c['threshold']:g}, {c['threshold_source']})"
            if "cleanup" in summary:
                line += f"; cleanup: {summary['cleanup']['splits']} tracks split, {summary['cleanup']['identities']}"
                line += " identities"
        elif "detect-track" in summary:
            line = f"{summary['detect-track']['tracks']} face tracks"
        else:
            line = "nothing run"
        console.print(Text(f"{line}; profile {chosen}; run folder {folder}"), soft_wrap=True)
        for warning in result.warnings:
            console.print(Text(f"warning: {warning}", style="yellow"), soft_wrap=True)
