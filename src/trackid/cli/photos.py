"""`trackid photos`: photo collections (e.g. trail cameras) into one profile per individual."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from trackid.cli.common import (
    ForceOption,
    InputError,
    fail,
    make_console,
    print_warnings,
    progress_bar,
    user_errors,
)
from trackid.cli.gallery import _reembed_with_progress

log = logging.getLogger(__name__)

photos_app = typer.Typer(
    help="Photo collections (e.g. trail cameras): one profile per individual. Order: tune, ingest, validate, monitor.",
    no_args_is_help=True,
)

PhotoConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="A YAML config (photos:, gallery:).")]
PhotoSetOption = Annotated[
    list[str] | None, typer.Option("--set", help="Override a config key, e.g. photos.burst_gap_s=30; repeatable.")
]
PhotoStoreOption = Annotated[
    str | None, typer.Option("--store", help="Gallery store (overrides gallery.store): SQLite path or postgresql://")
]
LabelsOption = Annotated[
    Path | None, typer.Option("--labels", help="CSV with image,individual[,attribute...] columns.")
]
PatternOption = Annotated[
    str | None,
    typer.Option("--label-pattern", help="Regex with a group (?P<individual>...) matched in file names."),
]
TunedOption = Annotated[Path, typer.Option("--tuned", help="Folder (or tuned.json) written by `photos tune`.")]


def _photo_config(config: Path | None, overrides: list[str] | None, store: str | None) -> Any:
    from trackid.config import load_config

    extra = [*(overrides or []), *([f"gallery.store={store}"] if store else [])]
    return load_config(config, None, extra)[0]


def _labels(labels: Path | None, pattern: str | None, required: bool) -> Any:
    from trackid.pipelines.photos import Labels

    if required and labels is None and pattern is None:
        raise InputError("give --labels CSV and/or --label-pattern REGEX: this command needs to know who is who")
    return Labels(labels, pattern) if (labels is not None or pattern is not None) else None


def _run_folder(out: Path, command: str, run: Any, inputs: list[Path], force: bool, **settings: Any) -> Any:
    """The command's run folder: the photos settings, the store (credentials masked) and what else decides it."""
    from trackid.run_folder import RunFolder, mask_password

    config = {"photos": run.photos.model_dump(mode="json"), "store": mask_password(run.gallery.store), **settings}
    return RunFolder(out, command, config, [p for p in inputs if p.is_file()], force=force)


@photos_app.command("ingest")
def photos_ingest(
    folders: Annotated[list[Path], typer.Argument(help="Photo folders, walked recursively.")],
    site: Annotated[str, typer.Option("--site", help="Where the photos were taken (a search gate and a report key).")],
    tuned: TunedOption,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Folder for ingest_report.json (default runs/photos/<site>)."),
    ] = None,
    labels: LabelsOption = None,
    label_pattern: PatternOption = None,
    config: PhotoConfigOption = None,
    overrides: PhotoSetOption = None,
    store: PhotoStoreOption = None,
    force: ForceOption = False,
) -> None:
    """Walk photo folders, group bursts, detect, embed and assign each individual to a profile (or a new one).
    Re-running continues an interrupted ingest and never stores a burst twice."""
    from trackid.config import ConfigError
    from trackid.pipelines.photos import Tuned, ingest

    with user_errors(ValueError, KeyError, ConfigError):
        run = _photo_config(config, overrides, store)
        settings = Tuned.load(tuned)
        tuned_file = tuned if tuned.is_file() else tuned / "tuned.json"
        out = out or Path("runs") / "photos" / site  # one folder per site: another site's ingest is not refused
        folder = _run_folder(
            out, "photos-ingest", run, [tuned_file], force, site=site, folders=[str(f) for f in folders]
        )
        with folder.running():
            with progress_bar("photos") as bar:
                task = bar.add_task(f"ingest {site}", total=None)
                report = ingest(
                    folders,
                    site=site,
                    config=run.photos,
                    gallery_config=run.gallery,
                    tuned=settings,
                    labels=_labels(labels, label_pattern, required=False),
                    out=out,
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                )
            summary = report.to_json()
            keys = ("photos_found", "bursts", "bursts_already_stored", "photos_already_stored", "sightings_written")
            folder.complete({"report": out / "ingest_report.json"}, report.warnings, **{k: summary[k] for k in keys})
        console = make_console()
        for key in (*keys, "decisions"):
            console.print(Text(f"{key.replace('_', ' ')}: {summary[key]}"), soft_wrap=True)
        _print_skipped(summary["skipped_by_reason"])
        console.print(Text(f"report: {out / 'ingest_report.json'}"), soft_wrap=True)
        print_warnings(report.warnings)


@photos_app.command("tune")
def photos_tune(
    folders: Annotated[list[Path], typer.Argument(help="Labelled photo folders (e.g. one per camera).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for tuned.json and the report.")],
    labels: LabelsOption = None,
    label_pattern: PatternOption = None,
    seed: Annotated[int, typer.Option("--seed", help="Which half of the individuals tunes (the rest tests).")] = 0,
    label_free: Annotated[
        bool,
        typer.Option(
            "--label-free",
            help="No labels: pairs are mined from the photos (one burst = one individual; two in one photo are two) "
            "and the threshold is set from the mined impostors (trackid.identity.pair_mining).",
        ),
    ] = False,
    site_travel_s: Annotated[
        float | None,
        typer.Option(
            "--site-travel-s",
            help="With --label-free: cameras are at least this many seconds of travel apart, so sightings of two "
            "cameras closer in time are two individuals.",
        ),
    ] = None,
    config: PhotoConfigOption = None,
    overrides: PhotoSetOption = None,
    force: ForceOption = False,
) -> None:
    """Choose ensemble weights and the threshold for photos.target_false_positive_rate on half the labelled
    individuals; measure them on the other half (ROC, histograms, calibration: report/report.html). With
    --label-free, calibrate and set the threshold from pairs mined from unlabelled photos instead."""
    from trackid.config import ConfigError
    from trackid.pipelines.photos import tune
    from trackid.sources.photos import count_reasons

    with user_errors(ValueError, KeyError, ConfigError):
        run = _photo_config(config, overrides, None)
        console = make_console()
        if label_free and (labels is not None or label_pattern is not None):
            raise InputError("--label-free tunes without labels: drop --labels / --label-pattern")
        folder = _run_folder(
            out,
            "photos-tune",
            run,
            [],
            force,
            seed=seed,
            folders=[str(f) for f in folders],
            label_free=label_free,
            site_travel_s=site_travel_s,
        )
        if label_free:
            from trackid.pipelines.photos.label_free import label_free_tune

            with folder.running():
                free = label_free_tune(
                    folders,
                    config=run.photos,
                    out=out,
                    site_travel_s=site_travel_s,
                    progress=lambda message: console.print(Text(message, style="dim")),
                )
                folder.complete({"tuned": out / "tuned.json"})
            console.print(Text(f"label-free threshold p >= {free.threshold:.4f}"), soft_wrap=True)
            console.print(Text(f"mined: {json.dumps(free.evidence['mining']['pairs'])}"), soft_wrap=True)
            console.print(Text(f"written: {out / 'tuned.json'}"), soft_wrap=True)
            return
        with folder.running():
            tuned = tune(
                folders,
                _labels(labels, label_pattern, required=True),
                config=run.photos,
                out=out,
                seed=seed,
                progress=lambda message: console.print(Text(message, style="dim")),
            )
            held = tuned.evidence["held_out"]
            console.print(
                Text(f"weights: {tuned.embedder.params.get('weights')}, threshold p >= {tuned.threshold:.4f}")
            )
            console.print(Text(f"held-out ensemble: {json.dumps(held['ensemble'])}"), soft_wrap=True)
            for name, scores in held["members"].items():
                console.print(Text(f"held-out {name}: {json.dumps(scores)}"), soft_wrap=True)
            console.print(Text(f"held-out decisions: {json.dumps(held['decisions'])}"), soft_wrap=True)
            skipped = count_reasons(s["reason"] for s in tuned.evidence["skipped"])
            folder.complete({"tuned": out / "tuned.json", "report": out / "report" / "report.html"})
        _print_skipped(skipped)
        console.print(Text(f"written: {out / 'tuned.json'}, {out / 'report' / 'report.html'}"), soft_wrap=True)


@photos_app.command("retrain")
def photos_retrain(
    folders: Annotated[list[Path], typer.Argument(help="The labelled photo folders tuned on before.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the new tuned.json and its report.")],
    labels: LabelsOption = None,
    label_pattern: PatternOption = None,
    seed: Annotated[int, typer.Option("--seed", help="Which half of the folders' individuals tunes.")] = 0,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Crops embedded and committed at once.")] = 64,
    config: PhotoConfigOption = None,
    overrides: PhotoSetOption = None,
    store: PhotoStoreOption = None,
    force: ForceOption = False,
) -> None:
    """Tune again with the store's corrections (merges, splits, relabels) as extra labelled individuals, then give
    every sighting a vector of the new model. Re-running an interrupted run continues it."""
    from trackid.config import ConfigError
    from trackid.pipelines.photos.retrain import retrain

    with user_errors(ValueError, KeyError, ConfigError):
        run = _photo_config(config, overrides, store)
        console = make_console()
        folder = _run_folder(out, "photos-retrain", run, [], force, seed=seed, folders=[str(f) for f in folders])
        with folder.running(), progress_bar("sightings") as bar:
            task = bar.add_task("reembed", total=None)
            report = retrain(
                folders,
                _labels(labels, label_pattern, required=True),
                config=run.photos,
                gallery_config=run.gallery,
                out=out,
                seed=seed,
                batch_size=batch_size,
                progress=lambda message: console.print(Text(message, style="dim")),
                reembed_progress=lambda n: bar.advance(task, n),
            )
            held = report.tuned.evidence["held_out"]
            folder.complete(
                {"tuned": out / "tuned.json", "report": out / "report" / "report.html"},
                retuned=report.retuned,
                corrected_individuals=report.corrected_individuals,
                corrected_sightings=report.corrected_sightings,
                vectors_added=report.reembedded.added,
            )
        console.print(
            Text(
                f"learned from {report.corrected_individuals} corrected individuals ({report.corrected_sightings} "
                f"sightings){'' if report.retuned else ' (tuned.json of the interrupted run kept)'}; added "
                f"{report.reembedded.added} vectors",
                style="bold",
            ),
            soft_wrap=True,
        )
        console.print(Text(f"held-out ensemble: {json.dumps(held['ensemble'])}"), soft_wrap=True)
        for reason, count in (report.unreadable + report.reembedded.skipped).most_common():
            console.print(Text(f"skipped {count}: {reason}", style="yellow"), soft_wrap=True)
        for camera, count in sorted(report.uncentred.items()):
            message = f"camera {camera!r} ({count} sightings) was not seen by the new tuning: not camera-centred"
            log.warning(message, extra={"camera_id": camera})
            console.print(Text(message, style="yellow"), soft_wrap=True)
        console.print(Text(f"use it: --tuned {out}"), soft_wrap=True)


@photos_app.command("validate")
def photos_validate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for validate.json/html.")],
    labels: LabelsOption = None,
    label_pattern: PatternOption = None,
    config: PhotoConfigOption = None,
    overrides: PhotoSetOption = None,
    store: PhotoStoreOption = None,
    force: ForceOption = False,
) -> None:
    """Score the store against labels: assignment rate and accuracy, accuracy of individuals with >= 5 sightings,
    false-match rate; PASS/FAIL against photos.targets (exit status 1 on FAIL)."""
    from trackid.config import ConfigError
    from trackid.pipelines.photos import validate

    with user_errors(ValueError, KeyError, ConfigError):
        run = _photo_config(config, overrides, store)
        chosen = _labels(labels, label_pattern, required=True)
        with run.gallery.open_store(create=False) as gallery_store:  # a misspelt --store fails before --out is made
            inputs = [labels] if labels else []
            folder = _run_folder(out, "photos-validate", run, inputs, force, label_pattern=label_pattern)
            with folder.running():
                result = validate(gallery_store, chosen, run.photos.targets, out)
                folder.complete(
                    {"validate": out / "validate.json"}, verdict=result["verdict"], metrics=result["metrics"]
                )
    console = make_console()
    for key, value in result["metrics"].items():
        console.print(Text(f"{key}: {value}"), soft_wrap=True)
    console.print(Text(f"{result['verdict']}: {result['checks']}", style="bold"), soft_wrap=True)
    if result["verdict"] != "PASS":
        raise typer.Exit(1)


@photos_app.command("monitor")
def photos_monitor(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for monitor.json/html.")],
    config: PhotoConfigOption = None,
    overrides: PhotoSetOption = None,
    store: PhotoStoreOption = None,
    force: ForceOption = False,
) -> None:
    """List assignments to review: an individual at two sites implausibly close in time, attribute conflicts."""
    from trackid.config import ConfigError
    from trackid.pipelines.photos import monitor

    with user_errors(ValueError, KeyError, ConfigError):
        run = _photo_config(config, overrides, store)
        with run.gallery.open_store(create=False) as gallery_store:  # a misspelt --store fails before --out is made
            folder = _run_folder(out, "photos-monitor", run, [], force)
            with folder.running():
                result = monitor(gallery_store, run.photos.min_travel_s, out)
                folder.complete({"monitor": out / "monitor.json"}, findings=len(result["findings"]))
    console = make_console()
    for finding in result["findings"]:
        console.print(Text(finding["message"], style="yellow"), soft_wrap=True)
    console.print(Text(f"{len(result['findings'])} to review: {out / 'monitor.html'}"), soft_wrap=True)


@photos_app.command("reprocess")
def photos_reprocess(
    tuned: TunedOption,
    unassigned: Annotated[bool, typer.Option("--unassigned", help="Re-decide the unassigned sightings.")] = False,
    config: PhotoConfigOption = None,
    overrides: PhotoSetOption = None,
    store: PhotoStoreOption = None,
) -> None:
    """Re-decide unassigned sightings with the tuned model, calibration and threshold (e.g. after re-tuning).
    Re-running an interrupted run continues it: reprocessed sightings are no longer unassigned."""
    from trackid.config import ConfigError
    from trackid.pipelines.photos import Tuned

    if not unassigned:
        fail("only --unassigned reprocessing exists: pass --unassigned")
    with user_errors(ValueError, KeyError, ConfigError):
        run = _photo_config(config, overrides, store)
        settings = Tuned.load(tuned)
        with run.gallery.open_store(create=False) as gallery_store:
            gallery = settings.gallery(gallery_store, settings.make_embedder(), run.gallery)
            with progress_bar("sightings") as bar:
                task = bar.add_task("reprocess unassigned", total=None)
                counts = gallery.reprocess_unassigned(
                    progress=lambda n, total: bar.update(task, completed=n, total=total)
                )
    make_console().print(Text(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in counts.items()), style="bold"))


@photos_app.command("reembed")
def photos_reembed(
    tuned: TunedOption,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Crops embedded and committed at once.")] = 64,
    config: PhotoConfigOption = None,
    overrides: PhotoSetOption = None,
    store: PhotoStoreOption = None,
) -> None:
    """Give every stored sighting a vector of the tuned ensemble (e.g. after re-tuning its weights), read from the
    photos again. Re-running an interrupted run continues it: sightings that have the vector are skipped."""
    from trackid.config import ConfigError
    from trackid.pipelines.photos import Tuned

    with user_errors(ValueError, KeyError, ConfigError):
        run = _photo_config(config, overrides, store)
        settings = Tuned.load(tuned)
        embedder = settings.make_embedder()
        uncentred: Counter[str] = Counter()
        adjust = settings.sighting_adjuster(embedder, uncentred)
        with run.gallery.open_store(create=False) as gallery_store:
            _reembed_with_progress(
                gallery_store, embedder, batch_size, adjust=adjust, model_version=settings.model_version(embedder)
            )
    for camera, count in sorted(uncentred.items()):
        message = (
            f"camera {camera!r} ({count} sightings) was not seen by `photos tune`: its new vectors are not "
            "camera-centred; tune with photos of it"
        )
        log.warning(message, extra={"camera_id": camera})
        make_console().print(Text(message, style="yellow"), soft_wrap=True)


def _print_skipped(by_reason: Mapping[str, int]) -> None:
    console = make_console()
    for reason, count in by_reason.items():
        console.print(Text(f"skipped {count}: {reason}", style="yellow"), soft_wrap=True)
