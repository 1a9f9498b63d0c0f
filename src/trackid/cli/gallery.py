"""`trackid gallery`: the identity gallery's calibration report and maintenance."""

from __future__ import annotations

import json
from collections import Counter
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.text import Text

from trackid.cli.common import (
    ForceOption,
    InputError,
    fail,
    make_console,
    parse_params,
    progress_bar,
    user_errors,
)

gallery_app = typer.Typer(help="The identity gallery: calibration report and maintenance.", no_args_is_help=True)

StoreOption = Annotated[
    str, typer.Option("--store", help="Gallery store: a SQLite file path, or postgresql://... for PostgreSQL.")
]
ModelOption = Annotated[str, typer.Option("--model-id", help="Embedding model whose vectors to use.")]
VersionOption = Annotated[str, typer.Option("--model-version", help="Version of that model.")]


@gallery_app.command("report")
def gallery_report(
    store: StoreOption,
    model_id: ModelOption,
    model_version: VersionOption,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for report.html, report.json and the PNGs.")],
    target_fmr: Annotated[
        float, typer.Option("--target-fmr", help="False-match rate the threshold is chosen for.")
    ] = 0.01,
    calibrator_out: Annotated[
        Path | None, typer.Option("--save-calibrator", help="Also write the calibrator fitted on the pairs (JSON).")
    ] = None,
    force: ForceOption = False,
) -> None:
    """Calibration report from the labelled pairs human corrections produced: similarity histograms, ROC,
    calibration curve, the F1-optimal threshold and the threshold for a target false-match rate."""
    from trackid.identity.calibration import MatchCalibrator
    from trackid.identity.report import write_calibration_report
    from trackid.identity.stores import make_store
    from trackid.run_folder import RunFolder, mask_password

    with user_errors(ValueError, KeyError):
        settings = {"store": mask_password(store), "model_id": model_id, "model_version": model_version}
        with make_store(store, create=False) as gallery_store:  # a misspelt --store fails before --out is made
            folder = RunFolder(out, "gallery-report", {**settings, "target_fmr": target_fmr}, force=force)
            with folder.running():
                if (model_id, model_version) not in {(m.model_id, m.model_version) for m in gallery_store.models()}:
                    raise InputError(
                        f"--model-id {model_id} --model-version {model_version}: no such model in "
                        f"{mask_password(store)}"
                    )
                pairs = gallery_store.labelled_pairs(model_id=model_id, model_version=model_version)
                similarity = np.array([p.similarity for p in pairs])
                same = np.array([p.same for p in pairs], dtype=bool)
                if same.all() or not same.any():
                    raise InputError(
                        f"{mask_password(store)}: the corrections give {int(same.sum())} same and "
                        f"{int((~same).sum())} different pairs; a report needs both (merge and split some identities "
                        "first)"
                    )
                calibrator = MatchCalibrator().fit(similarity, same)
                summary = write_calibration_report(
                    out, similarity, same, calibrator, target_false_match_rate=target_fmr
                )
                if calibrator_out is not None:
                    calibrator.save(calibrator_out)
                plots = {Path(name).stem: out / name for name in summary["files"] if name.endswith(".png")}
                files = {"report": out / "report.html", "report_json": out / "report.json", **plots}
                folder.complete(files, pairs=len(pairs), thresholds=summary["thresholds"])
        console = make_console()
        console.print(Text(f"{len(pairs)} labelled pairs ({int(same.sum())} same)", style="bold"))
        console.print(Text(f"thresholds: {json.dumps(summary['thresholds'])}"), soft_wrap=True)
        console.print(Text(f"report: {out / 'report.html'}"), soft_wrap=True)


@gallery_app.command("reprocess")
def gallery_reprocess(
    store: StoreOption,
    model_id: ModelOption,
    model_version: VersionOption,
    calibrator: Annotated[Path, typer.Option("--calibrator", help="Fitted calibrator (JSON).")],
    unassigned: Annotated[bool, typer.Option("--unassigned", help="Re-decide the unassigned sightings.")] = False,
    threshold: Annotated[
        float,
        typer.Option("--threshold", help="Probability threshold, e.g. the target-FMR one `gallery report` printed."),
    ] = 0.5,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Run folder for the manifest with the counts (default: none written)."),
    ] = None,
) -> None:
    """Re-decide past unassigned sightings after the calibration or threshold changed. Each assignment is committed
    as it is made, so re-running an interrupted run continues it: reprocessed sightings are no longer unassigned."""
    from trackid.identity.calibration import MatchCalibrator
    from trackid.identity.gallery import Gallery
    from trackid.identity.stores import make_store
    from trackid.run_folder import RunFolder, mask_password

    if not unassigned:
        fail("only --unassigned reprocessing exists: pass --unassigned")
    with user_errors(ValueError, KeyError):
        fitted = MatchCalibrator.load(calibrator)
        settings = {"store": mask_password(store), "model_id": model_id, "model_version": model_version}
        config = {**settings, "threshold": threshold}
        folder = None if out is None else RunFolder(out, "gallery-reprocess", config, [calibrator])
        with make_store(store, create=False) as gallery_store, folder.running() if folder else nullcontext():
            gallery = Gallery(
                gallery_store, model_id=model_id, model_version=model_version, calibrator=fitted, threshold=threshold
            )
            counts = gallery.reprocess_unassigned()
            if folder is not None:
                folder.complete({}, (), **counts)
        make_console().print(Text(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in counts.items()), style="bold"))


@gallery_app.command("reembed")
def gallery_reembed(
    store: StoreOption,
    model: Annotated[
        str, typer.Option("--model", "-m", help="Embedder to re-embed with (a registered name, e.g. mobilenetv2).")
    ],
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Embedder parameter key=value (values as for --set); repeatable."),
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Crops embedded and committed at once.")] = 64,
) -> None:
    """Give every sighting a vector of another embedding model, read from the image its source names. Each batch is
    committed as it is done, so re-running an interrupted run continues it (sightings with the vector are skipped)."""
    from trackid.embed import make_embedder
    from trackid.identity.stores import make_store

    with user_errors(ValueError, KeyError):
        embedder = make_embedder(model, **parse_params(param or []))
        with make_store(store, create=False) as gallery_store:
            _reembed_with_progress(gallery_store, embedder, batch_size)


@gallery_app.command("retrain")
def gallery_retrain(
    store: StoreOption,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for metric.npz, calibrator.json, retrain.json.")],
    metric: Annotated[
        str, typer.Option("--metric", help="Metric learner: xqda, kissme or lda (`trackid.embed.metric`).")
    ] = "xqda",
    features: Annotated[
        str, typer.Option("--features", help="Feature embedder the metric is learned on (a registered name).")
    ] = "lomo",
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Metric parameter key=value (values as for --set); repeatable."),
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Crops embedded and committed at once.")] = 64,
    force: ForceOption = False,
) -> None:
    """Learn a metric from the store's corrections (merges, splits, relabels), calibrate it out of fold, and give
    every sighting a vector of the learned model. Re-running an interrupted run continues it: the fitted metric is
    reused and committed vectors are skipped."""
    from trackid.embed import make_embedder
    from trackid.identity.retrain import retrain_gallery
    from trackid.identity.stores import make_store
    from trackid.run_folder import RunFolder, mask_password

    with user_errors(ValueError, KeyError):
        params = parse_params(param or [])
        settings = {"store": mask_password(store), "metric": metric, "features": features, "params": params}
        embedder = make_embedder(features)
        with make_store(store, create=False) as gallery_store:
            folder = RunFolder(out, "gallery-retrain", settings, force=force)
            with folder.running(), progress_bar("sightings") as bar:
                # the total is known once the metric is fitted (its space names the vectors still missing)
                task = bar.add_task(f"retrain {metric} on {features}", total=None)
                result = retrain_gallery(
                    gallery_store,
                    features=embedder,
                    metric=metric,
                    metric_params=params,
                    out=out,
                    batch_size=batch_size,
                    progress=lambda n: bar.advance(task, n),
                )
                folder.complete(
                    {name: out / name for name in ("metric.npz", "calibrator.json", "retrain.json")},
                    **result.to_json(),
                )
        console = make_console()
        console.print(
            Text(
                f"learned {result.model_id} {result.model_version} from {result.corrections_used} corrections "
                f"({result.individuals} individuals, {result.sightings} sightings); added {result.reembed.added} "
                "vectors",
                style="bold",
            ),
            soft_wrap=True,
        )
        for reason, count in (result.reembed.skipped + Counter(result.skipped)).most_common():
            console.print(Text(f"skipped {count}: {reason}", style="yellow"), soft_wrap=True)
        console.print(
            Text(
                f"use it: --model-id {result.model_id} --model-version {result.model_version} "
                f"--calibrator {out / 'calibrator.json'}"
            ),
            soft_wrap=True,
        )


def _reembed_with_progress(
    gallery_store: Any, embedder: Any, batch_size: int, adjust: Any = None, model_version: str | None = None
) -> None:
    """`reembed` behind a progress bar, then what it added and what it skipped, by reason."""
    from trackid.identity.reembed import reembed

    version = model_version or embedder.version
    todo = gallery_store.count_without_model(embedder.model_id, version)
    with progress_bar("sightings") as bar:
        task = bar.add_task(f"reembed {embedder.model_id}", total=todo)
        report = reembed(
            gallery_store,
            embedder,
            batch_size=batch_size,
            progress=lambda n: bar.advance(task, n),
            adjust=adjust,
            model_version=version,
        )
    console = make_console()
    console.print(Text(f"added {report.added} vectors of {embedder.model_id} {version}", style="bold"))
    for reason, count in report.skipped.most_common():
        console.print(Text(f"skipped {count}: {reason}", style="yellow"), soft_wrap=True)
    for line in report.examples:
        console.print(Text(f"  {line}"), soft_wrap=True)
