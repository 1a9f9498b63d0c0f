"""`trackid episode`: a video's faces -> face tracks -> embeddings -> identities, stage by stage, in one run folder.

Stages, in order (`STAGES`), each reading what the one before wrote:
1. `detect-track` (`detect_track.py`): detections.jsonl, tracks.jsonl, track_metrics.json;
2. `embed` (`embed_faces.py`): faces.jsonl, faces.npy, track_embeddings.npz;
3. `cluster` (`identities.py`): identities.json, and the identity metrics added to track_metrics.json;
4. `cleanup` (`cleanup.py`): tracks split where their faces change person, re-embedded and re-clustered:
   tracks_clean.jsonl, faces_clean.jsonl/.npy, identities_clean.json, cleanup_report.json;
5. `report` (`report.py`): report.html, contact_sheet.jpg, timeline.png (of the clean identities).

Resumable: `progress.json` records each finished stage with a fingerprint of the settings that decide it; a stage
already done with the same fingerprint and outputs is skipped, so a killed run continues where it stopped, and
stages can be run one command at a time. Other settings make another run (the run folder's rule: `--force` sets the
previous one aside). A stage asked for before its input exists is refused with a
message naming the missing file and the stage that makes it, before the folder is touched.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trackid.artifacts import atomic_write_text
from trackid.config import RunConfig
from trackid.pipelines.episode.embed_faces import resolve_embedder
from trackid.run_folder import LOG_FILE, RunFolder
from trackid.sources.video import VideoSource

__all__ = ["STAGES", "EpisodeError", "EpisodeRun", "run_episode"]

log = logging.getLogger(__name__)

STAGES = ("detect-track", "embed", "cluster", "cleanup", "report")
_NEEDS = {
    "embed": ("detections.jsonl", "detect-track"),
    "cluster": ("track_embeddings.npz", "embed"),
    "cleanup": ("identities.json", "cluster"),
    "report": ("identities_clean.json", "cleanup"),
}
_MAKES = {
    "detect-track": ("detections.jsonl", "tracks.jsonl", "track_metrics.json"),
    "embed": ("faces.jsonl", "faces.npy", "track_embeddings.npz"),
    "cluster": ("identities.json",),
    "cleanup": (
        "tracks_clean.jsonl",
        "faces_clean.jsonl",
        "faces_clean.npy",
        "identities_clean.json",
        "cleanup_report.json",
    ),
    "report": ("report.html", "contact_sheet.jpg", "timeline.png"),
}


class EpisodeError(ValueError):
    """A stage cannot run (its input is missing); the message says which stage makes it."""


@dataclass
class EpisodeRun:
    out: Path
    ran: list[str]
    skipped: list[str]
    summary: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def run_episode(
    video: Path,
    config: RunConfig,
    out: Path,
    *,
    stages: Sequence[str] = STAGES,
    force: bool = False,
    on_stage: Callable[[str, str], object] | None = None,
) -> EpisodeRun:
    """Run `stages` (in pipeline order) of `video` into the run folder `out`; `on_stage(stage, "start"|"skip"|"done")`.

    Raises:
        EpisodeError: a stage's input is missing. VideoError: the video cannot be read.
    """
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise EpisodeError(f"unknown stage(s) {', '.join(unknown)}; choose from {', '.join(STAGES)}")
    chosen = [s for s in STAGES if s in stages]
    _check_inputs(chosen, out)
    VideoSource(video)  # a missing or corrupt video fails here, before the folder is touched
    settings = config.model_dump(mode="json")
    folder = RunFolder(out, "episode", settings, [video], {"input": str(video)}, force=force)
    progress = _read_progress(out)
    fingerprints = _fingerprints(settings)
    result = EpisodeRun(out, [], [])
    with folder.running():
        stale = False  # a stage re-run makes every later one stale
        for stage in chosen:
            done = progress.get(stage, {})
            outputs = all((out / name).is_file() for name in _MAKES[stage])
            if not stale and done.get("fingerprint") == fingerprints[stage] and outputs:
                result.skipped.append(stage)
                if on_stage is not None:
                    on_stage(stage, "skip")
                continue
            stale = True
            if on_stage is not None:
                on_stage(stage, "start")
            started = time.perf_counter()
            progress[stage] = {"status": "running"}
            _write_progress(out, progress)
            summary, warnings = _run_stage(stage, video, config, out)
            progress[stage] = {
                "status": "done",
                "fingerprint": fingerprints[stage],
                "seconds": round(time.perf_counter() - started, 2),
                **summary,
            }
            _write_progress(out, progress)
            result.ran.append(stage)
            result.warnings += warnings
            if on_stage is not None:
                on_stage(stage, "done")
        if result.ran:  # what later stages made from the inputs this run replaced is no longer done
            for stage in STAGES[STAGES.index(result.ran[-1]) + 1 :]:
                if stage not in chosen:
                    progress.pop(stage, None)
        _write_progress(out, progress)
        result.summary = {s: progress[s] for s in STAGES if s in progress}
        files = {name: out / name for s in STAGES if s in progress for name in _MAKES[s]}
        files["progress"] = out / "progress.json"
        files["log"] = out / LOG_FILE
        folder.complete(files, result.warnings, stages=result.summary)
    return result


def _run_stage(stage: str, video: Path, config: RunConfig, out: Path) -> tuple[dict[str, Any], list[str]]:
    if stage == "detect-track":
        from trackid.pipelines.episode.detect_track import detect_and_track

        found = detect_and_track(video, config, out)
        return {"frames": found.frames, "tracks": found.tracks, "faces": found.faces}, found.warnings
    if stage == "embed":
        from trackid.pipelines.episode.embed_faces import embed_track_faces

        embedded = embed_track_faces(video, config.episode, out)
        summary = {"faces_picked": embedded.picked, "faces_embedded": embedded.accepted, "rejected": embedded.rejected}
        return summary, embedded.warnings
    if stage == "cleanup":
        from trackid.pipelines.episode.cleanup import clean_episode

        cleaned = clean_episode(video, config.episode, out)
        summary = {
            "splits": cleaned.splits,
            "identities_before": cleaned.identities_before,
            "identities": cleaned.identities_after,
        }
        return summary, cleaned.warnings
    if stage == "report":
        from trackid.pipelines.episode.report import write_report

        write_report(video, out)
        return {}, []
    from trackid.pipelines.episode.identities import cluster_identities

    clustered = cluster_identities(config.episode, out)
    summary = {
        "identities": clustered.identities,
        "tracks": clustered.tracks,
        "threshold": round(clustered.threshold, 5),
        "threshold_source": clustered.threshold_source,
    }
    return summary, clustered.warnings


def _check_inputs(chosen: list[str], out: Path) -> None:
    for stage in chosen:
        needs = _NEEDS.get(stage)
        if needs is None:
            continue
        name, maker = needs
        if maker not in chosen and not (out / name).is_file():
            raise EpisodeError(
                f"stage {stage} needs {out / name}, which stage {maker} writes: run it first "
                f"(`trackid episode VIDEO --out {out} --stage {maker}`) or run every stage"
            )


def _fingerprints(settings: dict[str, Any]) -> dict[str, str]:
    """Per stage, a hash of the settings that decide its output and of every stage before it."""
    episode = settings["episode"]

    def keys(*names: str) -> dict[str, Any]:
        return {n: episode[n] for n in names}

    decides = {
        "detect-track": {
            **keys("face_detector", "face_detector_params", "frame_stride", "detection_fps_limit", "min_face_px"),
            **keys("short_track_s"),
            "tracker": settings["tracker"],
            "quality": settings["quality"],
        },
        "embed": {
            **keys("max_crops_per_track", "crop_sampling", "max_crops_per_episode", "min_blur"),
            **keys("max_yaw_deg", "max_pitch_deg"),
            "embedder": resolve_embedder(episode["embedder"]),
        },
        "cluster": keys("fallback_threshold", "outliers", "rejoin_gap_s"),
        "cleanup": keys("split_min_faces"),
        "report": {},
    }
    out, chain = {}, ""
    for stage in STAGES:
        chain = hashlib.sha256((chain + json.dumps(decides[stage], sort_keys=True)).encode()).hexdigest()[:16]
        out[stage] = chain
    return out


def _read_progress(out: Path) -> dict[str, Any]:
    try:
        data = json.loads((out / "progress.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_progress(out: Path, progress: dict[str, Any]) -> None:
    atomic_write_text(out / "progress.json", json.dumps(progress, indent=2) + "\n")
