"""A site's recorded per-camera detections -> global tracks in a run folder: what `trackid multicam run` runs.

Every camera is loaded (calibration, then detections) before the run folder is touched, so a wrong file costs no
time and leaves an earlier run intact; the error names the camera. Then `track_site` gives one id per person on the
ground and in every view, and the folder receives, each atomically:
- `ground_tracks.csv`: frame, time_s, global_id, x, y (ground units), x_m, y_m;
- `ground_tracks.jsonl`: one line per global track (its span, boxes per view, its points in metres);
- `views/<camera id>.txt`: each view's boxes with their global ids, MOT result files for TrackEval;
- `birdseye.png`: the tracks from above, with the cameras whose position the calibration gives;
- `summary.json`: counts, warnings, timings; the manifest records the same summary.
The same site again into its folder runs again in place, another site's folder is refused unless `force` (the
policy of every run folder, `trackid.run_folder`).

With the site's `identities` block the global ids written are gallery identities instead of the run's track numbers
(`GlobalIdentities`): the gallery is opened (created when new) before the run folder is touched, after tracking each
track gets the identity it continues or a new one, and every file carries those ids (`time_s` then counts from
`start_time_s`, a JSONL line is one identity and lists the run's `tracks` it joins); summary.json's `identities`
says how many tracks, identities, new ones, re-attached tracks. A rerun of the same recording with the same settings
into the same gallery replays the recorded identities (`replayed`: nothing is added); different tracks for a time
the gallery already covers are refused (`RunOverlapError`), since they would give the same people second ids.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from trackid.artifacts import atomic_write_bytes, atomic_write_text
from trackid.config import ConfigError
from trackid.geometry import xywh_to_xyxy
from trackid.identity.global_ids import GlobalIdentities
from trackid.identity.stores import GalleryStore, make_store
from trackid.multiview.cameras import GroundCamera
from trackid.multiview.site_tracking import GlobalTracks, SiteView, track_site
from trackid.pipelines.multicam.site import CameraConfig, SiteConfig
from trackid.reports.birdseye import birdseye_png
from trackid.run_folder import RunFolder, mask_password
from trackid.sources.motchallenge import MotFormatError, MotRows, read_mot_file, write_mot_results

__all__ = ["COMMAND", "MulticamRun", "camera_detections", "ground_camera", "load_views", "run_site"]

COMMAND = "multicam-run"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MulticamRun:
    """What a run wrote (`files`, by artifact name) and found (`summary`, as in summary.json)."""

    out: Path
    files: dict[str, Path]
    summary: dict[str, Any]

    @property
    def warnings(self) -> list[str]:
        return list(self.summary["warnings"])


def load_views(site: SiteConfig, on_camera: Callable[[str], None] | None = None) -> list[SiteView]:
    """Every camera's ground mapping and detections, in the site's order; `on_camera(id)` after each.

    Raises:
        CalibrationError: a calibration file is missing or unusable (names the camera and the file).
        MotFormatError: a detections file is missing or malformed (names the camera and the file's line).
    """
    views = []
    for camera in site.cameras:
        views.append(SiteView(ground_camera(camera), camera_detections(camera), site.min_score_of(camera)))
        if on_camera is not None:
            on_camera(camera.id)
    return views


def run_site(
    site: SiteConfig,
    out: str | Path,
    *,
    force: bool = False,
    on_stage: Callable[[str], None] | None = None,
) -> MulticamRun:
    """Track the site's cameras into the run folder `out`.

    Args:
        force: replace another run in `out` (see `RunFolder`); without it such a folder is refused.
        on_stage: called with what was just done: each camera's id as it is loaded, then "tracking", then "writing".

    Raises:
        StoreError: the site's identities gallery cannot be opened (before `out` is touched).
        RunOverlapError: the gallery already holds other identities of the site for this recording's time span.
    """
    out = Path(out)
    started = time.perf_counter()
    views = load_views(site, on_camera=on_stage)
    loaded = time.perf_counter()
    inputs = [p for c in site.cameras for p in _calibration_files(c)] + [
        c.detections for c in site.cameras if c.detections is not None
    ]
    config = site.model_dump(mode="json")
    with contextlib.ExitStack() as stack:
        # the gallery opens (or fails, naming it) before the run folder is touched, like the cameras
        store = None if site.identities is None else stack.enter_context(make_store(site.identities.gallery))
        if site.identities is not None:
            config["identities"]["gallery"] = mask_password(site.identities.gallery)
        folder = RunFolder(out, COMMAND, config, inputs, {"site": site.site}, force=force)
        with folder.running():
            log.info("tracking site %s: %d cameras, method %s", site.site, len(views), site.method)
            tracks = track_site(views, **site.tracking_options())
            tracked = time.perf_counter()
            result, tracks_of, identities = tracks, None, None
            if store is not None:
                result, tracks_of, identities = _identities(store, site, tracks)
            resolved = time.perf_counter()
            if on_stage is not None:
                on_stage("tracking")
            files = _write_tracks(out, site, result, tracks_of)
            files["birdseye"] = atomic_write_bytes(
                out / "birdseye.png",
                birdseye_png(
                    _in_metres(result.ground, site.unit_per_metre),
                    _camera_places(views, site.unit_per_metre),
                    title=site.site,
                ),
            )
            summary = _summary(site, views, result, len(tracks.ids))
            if identities is not None:
                summary["identities"] = identities
            summary["timings_s"] = {
                "load": round(loaded - started, 3),
                "track": round(tracked - loaded, 3),
                **({"identities": round(resolved - tracked, 3)} if identities is not None else {}),
                "write": round(time.perf_counter() - resolved, 3),
            }
            span = summary["duration_s"]
            summary["realtime_factor"] = round(span / max(tracked - loaded, 1e-9), 1) if span else None
            files["summary"] = atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
            if on_stage is not None:
                on_stage("writing")
            counts = {k: summary[k] for k in ("frames", "cameras", "global_tracks", "boxes_per_camera", "timings_s")}
            log.info("complete: %d global tracks over %d frames", summary["global_tracks"], summary["frames"])
            files["manifest"] = folder.complete(files, result.warnings, **counts)
    return MulticamRun(out, files, summary)


def _identities(
    store: GalleryStore, site: SiteConfig, tracks: GlobalTracks
) -> tuple[GlobalTracks, dict[int, list[int]], dict[str, Any]]:
    """The tracks relabelled with their gallery identities, identity -> the run's tracks it joins, and what the
    resolution did (for summary.json)."""
    settings = site.identities
    assert settings is not None
    gallery = GlobalIdentities(
        store,
        site.site,
        window_s=settings.window_s,
        max_speed_mps=settings.max_speed_mps,
        unit_per_metre=site.unit_per_metre,
    )
    run = gallery.resolve_run(tracks.ground, fps=site.fps, start_time_s=settings.start_time_s)
    log.info(
        "identities: %d tracks -> %d identities (%d new, %d re-attached)%s",
        len(run.ids),
        len(set(run.ids.values())),
        run.new_identities,
        run.reattached,
        ", replayed from an earlier run of this recording" if run.replayed else "",
    )
    keys = np.array(sorted(run.ids), np.int64)
    values = np.array([run.ids[k] for k in keys.tolist()], np.int64)

    def relabel(rows: NDArray[np.float64]) -> NDArray[np.float64]:
        out = rows.copy()
        track = rows[:, 1].astype(np.int64)
        if not np.isin(track, keys).all():  # every view box belongs to a ground track
            raise RuntimeError(
                f"track_site gave view boxes of tracks {sorted(set(track) - set(keys))} not on the ground"
            )
        out[:, 1] = values[np.searchsorted(keys, track)]
        return out

    relabelled = GlobalTracks(
        relabel(tracks.ground), {name: relabel(rows) for name, rows in tracks.views.items()}, list(tracks.warnings)
    )
    summary = {
        "gallery": mask_password(settings.gallery),
        "window_s": settings.window_s,
        "max_speed_mps": settings.max_speed_mps,
        "start_time_s": settings.start_time_s,
        "tracks": len(run.ids),
        "identities": len(set(run.ids.values())),
        "new_identities": run.new_identities,
        "continued_from_earlier_runs": run.continued,
        "reattached": run.reattached,
        "replayed": run.replayed,
    }
    tracks_of: dict[int, list[int]] = {}
    for track, identity in sorted(run.ids.items()):
        tracks_of.setdefault(identity, []).append(track)
    return relabelled, tracks_of, summary


def ground_camera(camera: CameraConfig) -> GroundCamera:
    c = camera.calibration
    if c.homography is not None:
        return GroundCamera.from_homography(camera.id, c.homography, unit=c.unit, image_size=camera.image_size)
    assert c.intrinsics is not None and c.extrinsics is not None  # CalibrationConfig checked one kind is complete
    return GroundCamera.from_opencv(camera.id, c.intrinsics, c.extrinsics, unit=c.unit, image_size=camera.image_size)


def camera_detections(camera: CameraConfig) -> MotRows:
    if camera.detections is None:
        raise ConfigError(
            f"camera {camera.id!r} has a video source and no recorded detections: `multicam run` replays detection "
            "files; its edge worker (`multicam edge`) tracks the video"
        )
    try:
        return read_mot_file(camera.detections)
    except MotFormatError as exc:
        raise MotFormatError(f"camera {camera.id!r}: detections {exc}") from None


def _calibration_files(camera: CameraConfig) -> list[Path]:
    c = camera.calibration
    return [p for p in (c.intrinsics, c.extrinsics, c.homography) if p is not None]


def _write_tracks(
    out: Path, site: SiteConfig, result: GlobalTracks, tracks_of: dict[int, list[int]] | None
) -> dict[str, Path]:
    """ground_tracks.csv, ground_tracks.jsonl and views/<id>.txt."""
    ground = result.ground[np.lexsort((result.ground[:, 1], result.ground[:, 0]))]
    metres = _in_metres(ground, site.unit_per_metre)
    start = _start_time(site)
    table = np.column_stack([ground[:, 0], start + ground[:, 0] / site.fps, ground[:, 1], ground[:, 2:], metres[:, 2:]])
    buffer = io.StringIO()
    np.savetxt(buffer, table, fmt=["%d", "%.3f", "%d", "%.4f", "%.4f", "%.4f", "%.4f"], delimiter=",")
    files = {
        "ground_tracks_csv": atomic_write_text(
            out / "ground_tracks.csv", "frame,time_s,global_id,x,y,x_m,y_m\n" + buffer.getvalue()
        )
    }
    files["ground_tracks_jsonl"] = atomic_write_text(
        out / "ground_tracks.jsonl",
        "".join(json.dumps(line) + "\n" for line in _track_lines(metres, result, site, tracks_of)),
    )
    for name, rows in result.views.items():
        files[f"view_{name}"] = write_mot_results(
            out / "views" / f"{name}.txt",
            rows[:, 0].astype(np.int64),
            rows[:, 1].astype(np.int64),
            xywh_to_xyxy(rows[:, 2:6]),
        )
    return files


def _track_lines(
    metres: NDArray[np.float64], result: GlobalTracks, site: SiteConfig, tracks_of: dict[int, list[int]] | None
) -> list[dict[str, Any]]:
    """One record per global id, ids in order: its span, how many boxes each view gave it, its points (m), and with
    identities the run's tracks it joins."""
    start_s = _start_time(site)
    order = np.lexsort((metres[:, 0], metres[:, 1]))
    rows = metres[order]
    ids, starts, counts = np.unique(rows[:, 1], return_index=True, return_counts=True)
    per_view = {
        name: dict(zip(*(a.tolist() for a in np.unique(boxes[:, 1], return_counts=True)), strict=True))
        for name, boxes in result.views.items()
    }
    lines = []
    for track_id, start, count in zip(ids.tolist(), starts.tolist(), counts.tolist(), strict=True):
        points = rows[start : start + count]
        first, last = int(points[0, 0]), int(points[-1, 0])
        line = {
            "global_id": int(track_id),
            "first_frame": first,
            "last_frame": last,
            "first_time_s": round(start_s + first / site.fps, 3),
            "last_time_s": round(start_s + last / site.fps, 3),
            "boxes": {name: int(c[track_id]) for name, c in per_view.items() if track_id in c},
            "points_m": [[int(f), round(x, 4), round(y, 4)] for f, x, y in points[:, [0, 2, 3]].tolist()],
        }
        if tracks_of is not None:
            line["tracks"] = tracks_of[int(track_id)]
        lines.append(line)
    return lines


def _summary(site: SiteConfig, views: list[SiteView], result: GlobalTracks, tracks: int) -> dict[str, Any]:
    frames = np.unique(np.concatenate([v.detections.frame for v in views]))
    span = (int(frames[0]), int(frames[-1])) if len(frames) else None
    return {
        "site": site.site,
        "method": site.method,
        "fps": site.fps,
        "unit_per_metre": site.unit_per_metre,
        "min_views": site.min_views,
        "frames": len(frames),
        "frame_range": list(span) if span else None,
        "duration_s": round((span[1] - span[0] + 1) / site.fps, 3) if span else 0.0,
        "cameras": len(views),
        "global_tracks": tracks,
        "global_ids": len(result.ids),
        "ground_points": len(result.ground),
        "boxes_per_camera": {
            v.camera.name: {
                "detections": len(v.detections),
                "above_min_score": int((v.detections.score >= v.min_score).sum()),
                "with_global_id": len(result.views[v.camera.name]),
                "global_ids": len(np.unique(result.views[v.camera.name][:, 1])),
            }
            for v in views
        },
        "warnings": list(result.warnings),
    }


def _start_time(site: SiteConfig) -> float:
    """The time of frame 0: given with the identities (a recording's place in the gallery's time), else 0."""
    return 0.0 if site.identities is None else site.identities.start_time_s


def _in_metres(ground: NDArray[np.float64], unit_per_metre: float) -> NDArray[np.float64]:
    out = np.array(ground, np.float64).reshape(-1, 4)
    out[:, 2:] /= unit_per_metre
    return out


def _camera_places(views: list[SiteView], unit_per_metre: float) -> dict[str, tuple[float, float]]:
    """Ground position (metres) of each camera whose calibration says where it stands (OpenCV extrinsics)."""
    return {
        v.camera.name: (v.camera.position[0] / unit_per_metre, v.camera.position[1] / unit_per_metre)
        for v in views
        if v.camera.position is not None
    }
