"""`trackid multicam run`: a site file of real WILDTRACK cameras (a few frames) into a run folder, and clean failures
for the mistakes a site file invites."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from numpy.typing import NDArray
from typer.testing import CliRunner, Result

from trackid.cli import app
from trackid.config import ConfigError
from trackid.identity.stores import SqliteGalleryStore
from trackid.multiview.site_tracking import METHODS
from trackid.multiview.world_tracking import WorldTracker
from trackid.pipelines.multicam import load_site
from trackid.sources.motchallenge import read_mot_file

runner = CliRunner()
CAMERAS = {"WILDTRACK-C1": "CVLab1", "WILDTRACK-C2": "CVLab2", "WILDTRACK-C3": "CVLab3", "WILDTRACK-C6": "IDIAP3"}
FRAMES = 12


@pytest.fixture
def site(data: Path, tmp_path: Path) -> dict[str, object]:
    """A site of four WILDTRACK views, their detections cut to the first frames and copied into tmp_path, their
    calibration read in place (absolute paths)."""
    return _wildtrack_site(data, tmp_path, range(1, FRAMES + 1))


def _wildtrack_site(data: Path, folder: Path, frames: range) -> dict[str, object]:
    """The four views' detections of `frames` (renumbered from 1, as a recording starting there would be) in
    folder/det, and a site naming them."""
    root = data / "multicam" / "wildtrack"
    cameras: list[dict[str, Any]] = []
    for view, files in CAMERAS.items():
        det = folder / "det" / f"{view}.txt"
        det.parent.mkdir(parents=True, exist_ok=True)
        rows = np.loadtxt(root / "det" / view / "det" / "det.txt", delimiter=",", ndmin=2)
        rows = rows[(rows[:, 0] >= frames.start) & (rows[:, 0] < frames.stop)]
        rows[:, 0] -= frames.start - 1
        np.savetxt(det, rows, fmt="%d,%d,%.2f,%.2f,%.2f,%.2f,%.4f,%d,%d,%d")
        calibration = {
            "intrinsics": str(root / "cameras" / "intrinsic_zero" / f"intr_{files}.xml"),
            "extrinsics": str(root / "cameras" / "extrinsic" / f"extr_{files}.xml"),
            "unit": 0.01,
        }
        cameras.append({"id": view, "calibration": calibration, "detections": f"det/{view}.txt"})
        cameras[-1]["image_size"] = [1920, 1080]
    cameras[0]["min_score"] = 0.4
    return {"site": "wt-small", "fps": 2, "min_score": 0.5, "cameras": cameras}


def _write(site: dict[str, object], folder: Path) -> Path:
    path = folder / "site.yaml"
    path.write_text(yaml.safe_dump(site, sort_keys=False))
    return path


def _run(config: Path, out: Path, *extra: str) -> Result:
    return runner.invoke(app, ["multicam", "run", "--config", str(config), "--out", str(out), *extra])


def _assert_clean_failure(result: Result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


def test_run_writes_global_tracks_and_views(site: dict[str, object], tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = _run(_write(site, tmp_path), out)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["command"] == "multicam-run"
    assert set(manifest["files"].values()) >= {"ground_tracks.csv", "birdseye.png", "summary.json"}
    assert (out / "birdseye.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert summary["cameras"] == 4 and summary["frames"] == FRAMES and summary["global_tracks"] > 5
    assert summary["warnings"] == []

    ground = np.loadtxt(out / "ground_tracks.csv", delimiter=",", skiprows=1, ndmin=2)
    assert (out / "ground_tracks.csv").read_text().startswith("frame,time_s,global_id,x,y,x_m,y_m\n")
    np.testing.assert_allclose(ground[:, 1], ground[:, 0] / 2)
    ids = set(ground[:, 2].astype(int).tolist())
    tracks = [json.loads(line) for line in (out / "ground_tracks.jsonl").read_text().splitlines()]
    assert {t["global_id"] for t in tracks} == ids and len(ids) == summary["global_tracks"]
    assert sum(len(t["points_m"]) for t in tracks) == len(ground)

    for view in CAMERAS:
        rows = read_mot_file(out / "views" / f"{view}.txt")
        assert len(rows) == summary["boxes_per_camera"][view]["with_global_id"] > 0
        assert set(rows.track_id.tolist()) <= ids  # every box carries a global id
        pairs = np.column_stack([rows.frame, rows.track_id])
        assert len(np.unique(pairs, axis=0)) == len(pairs), f"{view} gives one global id two boxes in a frame"
    # a global id is seen from several views: that is what linking is for
    per_view = [set(read_mot_file(out / "views" / f"{v}.txt").track_id.tolist()) for v in CAMERAS]
    assert len(set.intersection(*per_view)) > 0

    again = _run(out.parent / "site.yaml", out)  # the same site again: redone in place, same result
    assert again.exit_code == 0, again.output
    assert json.loads((out / "summary.json").read_text())["global_tracks"] == summary["global_tracks"]
    other = _run(out.parent / "site.yaml", out, "--set", "min_views=3")  # another run: refused without --force
    _assert_clean_failure(other, "holds another run", "--force")


def test_wrong_calibration_names_the_camera(site: dict[str, object], tmp_path: Path) -> None:
    cameras = site["cameras"]
    assert isinstance(cameras, list)
    cameras[2]["calibration"]["extrinsics"] = str(tmp_path / "missing.xml")
    result = _run(_write(site, tmp_path), tmp_path / "run")
    _assert_clean_failure(result, "WILDTRACK-C3", "missing.xml")
    assert not (tmp_path / "run").exists()  # checked before the run folder is touched


def test_missing_detections_names_the_camera(site: dict[str, object], tmp_path: Path) -> None:
    cameras = site["cameras"]
    assert isinstance(cameras, list)
    cameras[1]["detections"] = "det/nowhere.txt"
    _assert_clean_failure(_run(_write(site, tmp_path), tmp_path / "run"), "WILDTRACK-C2", "nowhere.txt")


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        (lambda s: s.update(min_veiws=3), ["min_veiws: unknown key", "min_views"]),
        (lambda s: s["cameras"][1].update(treshold=0.3), ["cameras[1] (WILDTRACK-C2).treshold: unknown key"]),
        (lambda s: s.update(method="best"), ["method: 'best' is unknown; choose from " + ", ".join(METHODS)]),
        (lambda s: s["cameras"][3].update(id="WILDTRACK-C1"), ["WILDTRACK-C1 appear more than once"]),
        (lambda s: s["cameras"][0]["calibration"].pop("extrinsics"), ["(WILDTRACK-C1).calibration", "homography"]),
        (lambda s: s.update(identities={"gallery": "g.db", "windw_s": 3}), ["identities.windw_s", "window_s"]),
        (lambda s: s.update(identities={"gallery": "g.db", "window_s": -1}), ["identities.window_s", "0"]),
        (lambda s: s.update(world={"birth_gaet": 0.5}), ["world.birth_gaet: unknown key"]),
        (lambda s: s.update(world={"birth_gate": 1.5}), ["world.birth_gate", "1"]),
    ],
)
def test_site_file_mistakes_are_clear_errors(
    site: dict[str, object], tmp_path: Path, change: object, fragments: list[str]
) -> None:
    assert callable(change)
    change(site)
    _assert_clean_failure(_run(_write(site, tmp_path), tmp_path / "run"), *fragments)


def test_camera_without_detections_is_a_warning(site: dict[str, object], tmp_path: Path) -> None:
    (tmp_path / "det" / "WILDTRACK-C2.txt").write_text("")
    out = tmp_path / "run"
    result = _run(_write(site, tmp_path), out)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert any("WILDTRACK-C2" in w and "no detections" in w for w in summary["warnings"]), summary["warnings"]
    assert json.loads((out / "manifest.json").read_text())["warnings"] == summary["warnings"]
    logged = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert any(r["level"] == "WARNING" and "WILDTRACK-C2" in r["message"] for r in logged)
    assert summary["global_tracks"] > 0 and read_mot_file(out / "views" / "WILDTRACK-C2.txt").frame.size == 0


def test_load_site_paths_and_overrides(site: dict[str, object], tmp_path: Path) -> None:
    path = _write(site, tmp_path)
    loaded = load_site(path, ["cameras.WILDTRACK-C2.min_score=0.7", "min_views=3"])
    assert loaded.cameras[0].detections == tmp_path / "det" / "WILDTRACK-C1.txt"  # relative to the site file
    assert [loaded.min_score_of(c) for c in loaded.cameras] == [0.4, 0.7, 0.5, 0.5]
    assert loaded.min_views == 3
    with pytest.raises(ConfigError, match="no camera 'C9'"):
        load_site(path, ["cameras.C9.min_score=0.7"])


def test_world_settings_reach_the_ground_tracker(site: dict[str, object], tmp_path: Path) -> None:
    """The `world` block's defaults are the tracker's own, and a setting changes the run: linking the cameras'
    tracklets off, and a tracker that reports a track only after 3 s, give other tracks than the defaults."""
    path = _write(site, tmp_path)
    assert load_site(path).world.tracker(1.0) == WorldTracker()
    tuned = load_site(path, ["world.birth_gate=0", "world.handover_s=1"]).world.tracker(2.0)
    assert (tuned.birth_gate, tuned.handover_s, tuned.unit_per_metre) == (0.0, 1.0, 2.0)
    runs = {}
    late = ("--set", "world.min_age_s=3", "--set", "world.view_tracklets=false")
    for name, extra in (("default", ()), ("late", late)):
        result = _run(path, tmp_path / name, *extra)
        assert result.exit_code == 0, result.output
        runs[name] = _ground(tmp_path / name)
    assert len(runs["late"]) < len(runs["default"])


def _ground(out: Path) -> NDArray[np.float64]:
    return np.loadtxt(out / "ground_tracks.csv", delimiter=",", skiprows=1, ndmin=2)


def _assert_one_box_per_id_and_frame(out: Path) -> None:
    for view in CAMERAS:
        rows = read_mot_file(out / "views" / f"{view}.txt")
        pairs = np.column_stack([rows.frame, rows.track_id])
        assert len(np.unique(pairs, axis=0)) == len(pairs), f"{view} gives one identity two boxes in a frame"


def test_identities_continue_across_recordings_and_a_rerun_replays(data: Path, tmp_path: Path) -> None:
    """Two consecutive recordings (frames 1-10, then 11-20 renumbered, starting 5 s later) into one gallery."""
    half = 10
    recordings = []
    for number, frames in enumerate((range(1, half + 1), range(half + 1, 2 * half + 1))):
        folder = tmp_path / f"rec{number}"
        site = _wildtrack_site(data, folder, frames)
        site["identities"] = {"gallery": "../gallery.db", "start_time_s": number * half / 2}  # relative: site folder
        recordings.append(_write(site, folder))
    outs = [tmp_path / "run0", tmp_path / "run1"]
    for config, out in zip(recordings, outs, strict=True):
        result = _run(config, out)
        assert result.exit_code == 0, result.output
        assert "gallery identities" in result.output
        _assert_one_box_per_id_and_frame(out)
    first, second = (json.loads((out / "summary.json").read_text())["identities"] for out in outs)
    with SqliteGalleryStore(tmp_path / "gallery.db") as store:  # made where the site files said
        stored = {i.id for i in store.identities() if i.site == "wt-small"}
    a, b = _ground(outs[0]), _ground(outs[1])
    assert set(a[:, 2].astype(int).tolist()) | set(b[:, 2].astype(int).tolist()) == stored
    assert first["identities"] == len(np.unique(a[:, 2])) and first["new_identities"] == first["identities"]
    assert first["tracks"] == first["identities"] + first["reattached"] and not first["replayed"]
    # people walking on across the boundary keep their identity ...
    carried = set(a[:, 2].astype(int).tolist()) & set(b[:, 2].astype(int).tolist())
    assert 0 < len(carried) <= second["continued_from_earlier_runs"]  # a carried identity may be continued twice
    np.testing.assert_allclose(b[:, 1], half / 2 + b[:, 0] / 2)  # time_s continues the first recording's
    # ... and only where they could be: one place per identity and moment over both recordings, and each carried
    # identity's first point within walking reach (2.5 m/s, 1 m slack) of its last point before
    both = np.vstack([a, b])
    moments = np.column_stack([np.round(both[:, 1] * 2), both[:, 2]])
    assert len(np.unique(moments, axis=0)) == len(moments), "an identity in two places at once"
    for identity in carried:
        before, after = a[a[:, 2] == identity], b[b[:, 2] == identity]
        gap = after[:, 1].min() - before[:, 1].max()
        jump = np.linalg.norm(after[np.argmin(after[:, 1]), 5:7] - before[np.argmax(before[:, 1]), 5:7])
        assert 0 < gap <= 1.0 and jump <= 2.5 * gap + 1.0, (identity, gap, jump)

    # the second recording again: the same identities, nothing added to the gallery
    again = _run(recordings[1], tmp_path / "again")
    assert again.exit_code == 0, again.output
    replay = json.loads((tmp_path / "again" / "summary.json").read_text())["identities"]
    assert replay["replayed"] and replay["new_identities"] == second["new_identities"]
    assert (tmp_path / "again" / "ground_tracks.csv").read_text() == (outs[1] / "ground_tracks.csv").read_text()
    with SqliteGalleryStore(tmp_path / "gallery.db") as store:
        assert len(store.identities()) == len(stored)
    # other tracks for those seconds would give the same people second identities: refused
    other = _run(recordings[1], tmp_path / "other", "--set", "min_views=3")
    _assert_clean_failure(other, "'wt-small' already has identities for", "start time")


def test_a_bad_gallery_is_a_clear_error(site: dict[str, object], tmp_path: Path) -> None:
    not_a_store = tmp_path / "notes.db"
    not_a_store.write_text("not a database\n")
    result = _run(_write(site, tmp_path), tmp_path / "run", "--set", f"identities.gallery={not_a_store}")
    _assert_clean_failure(result, str(not_a_store), "not a readable gallery store")
    assert not (tmp_path / "run").exists()  # checked before the run folder is touched
