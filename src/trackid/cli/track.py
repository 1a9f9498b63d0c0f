"""`trackid track`, `eval` and `demo`: videos and MOTChallenge detections into tracks, scored with TrackEval."""

from __future__ import annotations

import json
import math
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from trackid.artifacts import atomic_write_text
from trackid.cli.common import (
    ForceOption,
    InputError,
    fail,
    make_console,
    parse_params,
    print_warnings,
    progress_bar,
    score_table,
    user_errors,
)
from trackid.config import DetectorConfig, RunConfig, load_config
from trackid.pipelines.mot import load_jobs, plan_jobs, run_tracker, track_jobs
from trackid.run_folder import RunFolder
from trackid.sources.motchallenge import read_mot_file, write_mot_results
from trackid.track.tracker import TRACKERS, make_tracker


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
            "--param",
            "-p",
            help="Tracker parameter key=value (values as for --set: 0.5, 1e-3, [1, 2]); repeatable; beats --set.",
        ),
    ] = None,
    min_score: Annotated[
        float | None, typer.Option("--min-score", help="Drop detections scoring below this before tracking.")
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            help="fast_cpu, balanced (default) or high_accuracy; with --detections alone, its tracker part.",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="A YAML config file; with --detections alone, its tracker section applies."
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Override a config key, e.g. tracker.max_lost_s=3; repeatable. With --detections alone only tracker.* "
            "keys apply (others are refused); with VIDEO and --detections, detector.* keys other than min_score are.",
        ),
    ] = None,
    filter_model: Annotated[
        str | None,
        typer.Option(
            "--filter",
            help="With --detections alone: leave out of each result the tracks a persistence filter calls transient "
            "(false positives): `shipped` (the boosted trees that ship), `boosted`, `transformer`, or a filter file "
            "(bench/persistence.py --save-boosted / --save-transformer). Tracks are judged whole, at the end.",
        ),
    ] = None,
    force: ForceOption = False,
) -> None:
    """Track a video into a run folder, or MOTChallenge detections into MOT result files."""
    sets = list(set_ or [])
    if video is not None and filter_model is not None:
        fail("--filter: applies to --detections without a VIDEO (it judges replayed detections' tracks)")
    if video is not None:
        _track_video(video, detections, out, seqinfo, profile, config, sets, param or [], min_score, tracker, force)
        return
    if detections is None or out is None:
        fail("give a VIDEO, or --detections and --out")
    assert detections is not None and out is not None
    with user_errors():
        if min_score is not None and not math.isfinite(min_score):
            raise InputError(f"--min-score {min_score}: give a finite number")
        params = _replay_tracker_params(tracker, config, profile, sets, param or [])
        jobs = plan_jobs(detections, seqinfo, out)
        loaded = load_jobs(jobs)
        persistence, filter_path = _persistence_filter(filter_model)
        folder = None
        if detections.is_dir():  # a batch writes a run folder; a single file is just its result file
            settings = {"tracker": tracker, "params": params, "min_score": min_score, "filter": filter_model}
            inputs = [job.detections for job in jobs] + [job.seqinfo for job in jobs]
            inputs += [filter_path] if filter_path is not None else []
            folder = RunFolder(out, "track", settings, inputs, force=force)
        with folder.running() if folder is not None else nullcontext(), progress_bar() as progress:
            task = progress.add_task("tracking", total=sum(info.length for _, _, info in loaded))
            results = track_jobs(
                loaded,
                tracker,
                params,
                min_score,
                on_sequence=lambda seq: progress.update(task, description=seq),
                on_frame=lambda: progress.advance(task),
                persistence=persistence,
            )
            summary = [(r.seq, r.frames, r.tracks, r.boxes, r.out) for r in results]
            warnings = [f"{r.seq}: {w}" for r in results for w in r.warnings]
            if folder is not None:
                folder.complete({r.seq: r.out for r in results}, warnings, sequences=len(results))
        _print_track_summary(summary)
        if persistence is not None:
            make_console().print(f"persistence filter: {sum(r.dropped for r in results)} transient tracks left out")
        print_warnings(warnings)


def _persistence_filter(choice: str | None) -> tuple[Any, Path | None]:
    """`--filter` loaded: (the filter, its file)."""
    if choice is None:
        return None, None
    from trackid.multiview.persistence.shipped import filter_file, load_filter

    path = filter_file(choice)
    try:
        model = load_filter(path)
    except ValueError as exc:
        raise InputError(f"--filter: {exc}") from None
    return model, path


def _replay_tracker_params(
    tracker: str, config_file: Path | None, profile: str | None, sets: list[str], param: list[str]
) -> dict[str, Any]:
    """The tracker's parameters for detections without images: the run config's tracker section (file, profile,
    environment, `--set tracker.*`), then `--param` on top. Settings of the other stages would do nothing here, so
    `--set` refuses them."""
    for item in sets:
        if not item.strip().startswith("tracker."):
            raise InputError(
                f"--set {item!r}: tracking --detections without a video has no detector or embedder to configure; "
                "only tracker.* settings apply"
            )
    params = parse_params(param)
    _check_tracker(tracker, params)
    run_config, _ = load_config(config_file, profile, sets)
    merged = {**run_config.tracker.model_dump(), **params}
    _check_tracker(tracker, merged)
    return merged


def _track_video(
    video: Path,
    detections: Path | None,
    out: Path | None,
    seqinfo: Path | None,
    profile: str | None,
    config_file: Path | None,
    sets: list[str],
    param: list[str],
    min_score: float | None,
    tracker: str,
    force: bool,
) -> None:
    from trackid.pipelines.video import track_video
    from trackid.sources.video import VideoSource

    with user_errors():
        if seqinfo is not None:
            raise InputError(
                f"--seqinfo {seqinfo}: with VIDEO the frame rate and length come from the video; give another frame "
                "rate with --set frame_rate=<frames per second>"
            )
        _check_tracker(tracker, parse_params(param))
        overrides = sets + [f"tracker.{item}" for item in param]
        if min_score is not None:
            overrides.append(f"detector.min_score={min_score}")
        if detections is not None:
            for item in sets:
                if item.strip().startswith("detector.") and not item.strip().startswith("detector.min_score"):
                    raise InputError(f"--set {item!r}: with --detections the detector is the detections file")
        config, chosen = load_config(config_file, profile, overrides)
        run_dir = out or Path("runs") / video.stem
        if detections is not None:
            config = _replay_config(config, detections, VideoSource(video).info.frame_count)
        total = VideoSource(video, stride=config.frame_stride).frames_to_read
        with progress_bar() as progress:
            task = progress.add_task(f"{video.name} ({chosen})", total=total)
            run = track_video(
                video,
                config,
                run_dir,
                on_frame=lambda _: progress.advance(task),
                tracker_name=tracker,
                force=force,
            )
        console = make_console()
        console.print(
            Text(
                f"{run.frames} frames, {run.tracks} tracks, {run.frames_per_second:.1f} frames/s end to end, "
                f"peak memory {run.peak_memory_mb:.0f} MB",
                style="bold",
            )
        )
        print_warnings(run.warnings)
        labels = {"manifest": "report", "annotated_video": "annotated video", "crops": "best crops"}
        for key, path in run.files.items():
            console.print(Text(f"{labels.get(key, key.replace('_', ' ')):>16}: {path}"), soft_wrap=True)


def _replay_config(config: RunConfig, detections: Path, frames: int) -> RunConfig:
    """`config` with the detections file as its detector (so the manifest records it and its hash), checked against
    the video's length first."""
    rows = read_mot_file(detections)
    if len(rows) and rows.frame[0] > frames:
        raise InputError(
            f"{detections}: every detection (frames {rows.frame[0]}-{rows.frame[-1]}) lies past the video's {frames} "
            "frames; is this the video's detections file?"
        )
    if len(rows) and rows.frame[-1] > frames:
        past = int((rows.frame > frames).sum())
        print_warnings([f"{past} of {len(rows)} detections in {detections} lie past the video's {frames} frames"])
    params = {"frames": str(detections), "num_frames": frames}
    replay = DetectorConfig(name="precomputed", params=params, min_score=config.detector.min_score)
    return config.model_copy(update={"detector": replay})


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

    with user_errors():
        scores = evaluate_mot(gt, results, benchmark=benchmark, split=split, sequences=seq or None)
        make_console().print(score_table(scores.combined, scores.per_sequence, f"{scores.benchmark}-{split}"))
        if json_out is not None:
            atomic_write_text(json_out, json.dumps(scores.to_json(), indent=2) + "\n")
            make_console().print(Text(f"scores written to {json_out}"), soft_wrap=True)


def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder for the scene, results and scores.")] = Path(
        "runs/demo"
    ),
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic scene.")] = 0,
    force: ForceOption = False,
) -> None:
    """Track a generated synthetic scene and score it against its own ground truth (a smoke test, not a benchmark)."""
    from trackid.eval.mot import evaluate_mot
    from trackid.sources.synthetic import SceneConfig, make_scene, write_detections, write_trackeval_gt

    with user_errors():
        scene = make_scene(SceneConfig(seed=seed))
        info = scene.seqinfo
        # the folder is claimed before anything is written: a refused run leaves another run's folder untouched
        folder = RunFolder(out, "demo", {"scene": asdict(scene.config)}, [], force=force)
    with user_errors(), folder.running():
        gt_root = write_trackeval_gt([scene], out)
        det_file = write_detections(scene, out / "det" / info.name / "det" / "det.txt")
        result_file = out / "results" / f"{info.name}.txt"
        with progress_bar() as progress:
            task = progress.add_task(info.name, total=info.length)
            result, warnings = run_tracker(scene.detections, "trackid", info, {}, lambda: progress.advance(task))
        write_mot_results(result_file, *result)
        scores = evaluate_mot(gt_root, result_file.parent)
        scores_file = atomic_write_text(out / "scores.json", json.dumps(scores.to_json(), indent=2) + "\n")
        files = {"detections": det_file, "ground_truth": gt_root, "results": result_file, "scores": scores_file}
        folder.complete(files, warnings)
        print_warnings(warnings)

        console = make_console()
        title = f"SYNTHETIC scene {info.name} (seed {seed}) - not a benchmark result"
        console.print(score_table(scores.combined, {}, title, style="bold yellow"))
        for label, path in [
            ("detections", det_file),
            ("ground truth", gt_root),
            ("results", result_file),
            ("scores", scores_file),
        ]:
            console.print(Text(f"{label:>12}: {path}"), soft_wrap=True)


def _check_tracker(name: str, params: dict[str, Any]) -> None:
    """Validate the tracker name and parameters before reading any data, so mistakes cost no time."""
    if name not in TRACKERS:
        raise InputError(f"--tracker {name!r}: unknown tracker; choose from {', '.join(sorted(TRACKERS))}")
    try:
        make_tracker(name, 25.0, **params)  # a tracker also checks what its params model cannot (direction_span)
    except (ValueError, OverflowError) as exc:
        raise InputError(f"--param: {exc}") from None


def _print_track_summary(summary: list[tuple[str, int, int, int, Path]]) -> None:
    table = Table(title="tracking results", title_style="bold")
    for column in ("sequence", "frames", "tracks", "boxes", "written to"):
        table.add_column(column, justify="left" if column in ("sequence", "written to") else "right")
    for seq, frames, tracks, boxes, dest in summary:
        table.add_row(seq, str(frames), str(tracks), str(boxes), str(dest))
    make_console().print(table)
