"""What every command shares: one-line user errors (exit 2, no traceback), progress bars, score tables and
warnings after a summary."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from trackid.config import ConfigError, parse_value
from trackid.identity.stores.base import StoreError
from trackid.multiview.cameras import CalibrationError
from trackid.pipelines.mot import MotInputError
from trackid.progress import ProgressFile
from trackid.run_folder import RunFolderError
from trackid.sources.motchallenge import MotFormatError
from trackid.sources.video import VideoError

EXIT_USAGE = 2
"""Exit status for bad input, the same as for a bad command line."""

SCORE_COLUMNS = ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "FP", "FN")


class InputError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


USER_ERRORS: tuple[type[Exception], ...] = (
    InputError,
    MotFormatError,
    MotInputError,
    ConfigError,
    VideoError,
    RunFolderError,
    StoreError,
    CalibrationError,
    OSError,
)
"""What bad input raises, each with a message that says where and what is wrong: `user_errors` prints it as one
line with exit status 2 (the fuzz tests hold every parser to raising only these)."""


ForceOption = Annotated[
    bool,
    typer.Option(
        "--force", help="Replace another run in the output folder (kept in .previous/ until this one completes)."
    ),
]
"""Every command that writes a run folder takes it: without it, another run's folder is refused, never mixed into."""


def parse_params(items: Sequence[str]) -> dict[str, Any]:
    """Parse `key=value` pairs; values in the one syntax of `--set` (`trackid.config.parse_value`)."""
    params: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"--param {item!r}: expected key=value")
        try:
            params[key] = parse_value(raw.strip())
        except ConfigError as exc:
            raise InputError(f"--param {item!r}: {exc}") from None
    return params


class _Rate(ProgressColumn):
    """Items (frames, sightings) per second over the run so far."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"-- {self.unit}/s" if speed is None else f"{speed:,.0f} {self.unit}/s", style="cyan")


class _ReportingProgress(Progress):
    """A rich progress bar that also writes the task last touched to a `trackid.progress.ProgressFile`."""

    def __init__(self, *columns: Any, progress_file: ProgressFile, **kwargs: Any) -> None:
        super().__init__(*columns, **kwargs)
        self._file = progress_file

    def update(self, task_id: TaskID, **kwargs: Any) -> None:
        super().update(task_id, **kwargs)
        self._report(task_id)

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._report(task_id)

    def add_task(self, description: str, *args: Any, **kwargs: Any) -> TaskID:
        task_id = super().add_task(description, *args, **kwargs)
        self._report(task_id, force=True)
        return task_id

    def stop(self) -> None:
        for task in self.tasks[-1:]:
            self._report(task.id, force=True)
        super().stop()

    def _report(self, task_id: TaskID, force: bool = False) -> None:
        task = self._tasks[task_id]
        self._file.report(str(task.description), task.completed, task.total, force=force)


def progress_bar(unit: str = "frames") -> Progress:
    """The bar every command shows; where `TRACKID_PROGRESS_FILE` is set (a job's worker) it also writes it."""
    progress_file = ProgressFile.from_env()
    if progress_file is not None:
        return _ReportingProgress(*_columns(unit), progress_file=progress_file, console=Console(stderr=True))
    return Progress(*_columns(unit), console=Console(stderr=True), transient=False)


def _columns(unit: str) -> tuple[ProgressColumn, ...]:
    return (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), _Rate(unit), TimeElapsedColumn())


def score_table(
    combined: dict[str, float], per_sequence: dict[str, dict[str, float]], title: str, style: str = "bold"
) -> Table:
    table = Table(title=title, title_style=style)
    table.add_column("sequence")
    for name in SCORE_COLUMNS:
        table.add_column(name, justify="right")
    table.add_row("COMBINED", *(_fmt(name, combined[name]) for name in SCORE_COLUMNS), style="bold")
    for seq, scores in per_sequence.items():
        table.add_row(seq, *(_fmt(name, scores[name]) for name in SCORE_COLUMNS))
    return table


def print_warnings(warnings: list[str]) -> None:
    """The stream warnings of a run, after its summary, so an empty or degenerate result is never silent."""
    console = make_console()
    for warning in warnings:
        console.print(Text(f"warning: {warning}", style="bold yellow"), soft_wrap=True)


@contextmanager
def user_errors(*extra: type[Exception]) -> Iterator[None]:
    """Turn input errors (`USER_ERRORS` and `extra`) into one red line and exit status 2; anything else is a bug and
    keeps its traceback."""
    try:
        yield
    except USER_ERRORS as exc:
        fail(str(exc))
    except Exception as exc:
        if isinstance(exc, extra):
            fail(str(exc))
        # TrackEval's own input checks (e.g. a gt file it cannot parse); matched by name so that commands which never
        # evaluate do not pay for importing trackeval.
        if type(exc).__name__ == "TrackEvalException":
            fail(f"TrackEval: {exc}")
        raise


def fail(message: str) -> None:
    Console(stderr=True).print(Text(f"error: {message}", style="bold red"), soft_wrap=True)
    raise typer.Exit(EXIT_USAGE)


def make_console() -> Console:
    return Console()


def _fmt(name: str, value: float) -> str:
    return f"{value:.0f}" if name in ("IDSW", "FP", "FN") else f"{value:.2f}"
