"""Every job type through the API gives the artifacts its command gives (the same bytes), on small real inputs:
a video, an assembled face episode, a WILDTRACK site (ground tracks and 3D), VIPeR photos tuned then ingested,
and a gallery's unassigned sightings reprocessed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from episode_assembly import assemble
from test_multicam_run import _wildtrack_site, _write
from test_service_jobs import Service, _results, _wait
from trackid.artifacts import file_sha256
from trackid.identity.calibration import MatchCalibrator
from trackid.identity.gallery import Gallery
from trackid.identity.stores import make_store

REPO = Path(__file__).resolve().parent.parent
UNCOMPARED = {"manifest.json", "log.jsonl", "progress.json"}  # they record times and process ids
TIMINGS = {
    "timings_s",
    "realtime_factor",
    "seconds",
    "seconds_per_photo",
}  # how long it took, in a result's JSON: not compared
MODEL = {"model_id": "synthetic-embedder", "model_version": "1"}


@pytest.fixture(scope="module")
def inputs(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One input root: a video clip, an assembled episode, a WILDTRACK site, 40 VIPeR people, a gallery."""
    root = tmp_path_factory.mktemp("inputs")
    shutil.copy(REPO / "demo" / "pets09_s2l1_clip.mp4", root / "clip.mp4")
    assemble(root / "episode", max_frames_per_clip=12, root=data / "faces" / "ytf_subset")
    _write(_wildtrack_site(data, root / "site", range(1, 9)), root / "site")
    ids = sorted({p.name[:4] for p in (data / "reid" / "viper").glob("*.png")})[:40]
    for cam in ("0001", "0002"):
        (root / "viper" / f"cam{cam[-1]}").mkdir(parents=True)
        for i in ids:
            (root / "viper" / f"cam{cam[-1]}" / f"{i}{cam}.png").symlink_to(data / "reid" / "viper" / f"{i}{cam}.png")
    _gallery_with_unassigned(root / "gallery")
    return root


@pytest.fixture(scope="module")
def service(inputs: Path, data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    running = Service(tmp_path_factory.mktemp("service"), [inputs, data])
    running.start()
    yield running
    running.stop()


def _through_both(service: Service, request: dict[str, Any], argv: list[str], out: Path) -> dict[str, str]:
    """Run `request` as a job and `argv --out out` as the command; assert the same artifacts, return them."""
    with service.client() as client:
        submitted = client.post("/jobs", json=request)
        assert submitted.status_code == 202, submitted.text
        job = _wait(client, submitted.json()["id"], ("complete", "failed"), timeout=600)
        assert job["state"] == "complete", job
        api = {k: v for k, v in _results(client, job["id"]).items() if Path(k).name not in UNCOMPARED}
    done = subprocess.run([sys.executable, "-m", "trackid", *argv, "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    files = [
        p for p in sorted(out.rglob("*")) if p.is_file() and p.name not in UNCOMPARED and ".previous" not in p.parts
    ]
    cli = {p.relative_to(out).as_posix(): file_sha256(p) for p in files}
    assert set(api) == set(cli) and api, (sorted(api), sorted(cli))
    for name in sorted(n for n in api if api[n] != cli[n]):  # JSON results may differ in their timings only
        assert name.endswith(".json"), f"{name} differs"
        job_file = service.folder / "data" / "jobs" / job["id"] / "run" / name
        assert _without_timings(job_file) == _without_timings(out / name), f"{name} differs beyond its timings"
    return api


def _without_timings(path: Path) -> Any:
    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in TIMINGS}
        return [strip(v) for v in value] if isinstance(value, list) else value

    return strip(json.loads(path.read_text()))


def test_track_a_video(service: Service, inputs: Path, tmp_path: Path) -> None:
    request = {"type": "track", "video": str(inputs / "clip.mp4"), "profile": "fast_cpu"}
    request["overrides"] = ["tracker.max_lost_s=2"]
    files = _through_both(
        service, request, ["track", str(inputs / "clip.mp4"), "--profile", "fast_cpu", "--set", "tracker.max_lost_s=2"],
        tmp_path / "cli",
    )  # fmt: skip
    assert any(name.endswith(".txt") for name in files)


def test_an_episode(service: Service, inputs: Path, tmp_path: Path) -> None:
    video = str(inputs / "episode" / "episode.avi")
    request = {"type": "episode", "video": video, "profile": "fast_cpu", "overrides": ["episode.embedder=dlib"]}
    argv = ["episode", video, "--profile", "fast_cpu", "--set", "episode.embedder=dlib"]
    files = _through_both(service, request, argv, tmp_path / "cli")
    assert {"tracks.jsonl", "identities.json", "cleanup_report.json"} <= set(files)


def test_a_multicam_site(service: Service, inputs: Path, tmp_path: Path) -> None:
    site = str(inputs / "site" / "site.yaml")
    files = _through_both(service, {"type": "multicam", "site": site}, ["multicam", "run", "--config", site],
                          tmp_path / "cli")  # fmt: skip
    assert any(name.endswith(".csv") for name in files)


def test_a_stereo_site_with_the_shipped_filter(service: Service, inputs: Path, tmp_path: Path) -> None:
    site = str(inputs / "site" / "site.yaml")
    request = {"type": "stereo", "site": site, "filter": "shipped"}
    argv = ["stereo", "run", "--config", site, "--filter", "shipped", "--smooth"]
    assert "trajectories_3d.csv" in _through_both(service, request, argv, tmp_path / "cli")


def test_photos_tuned_then_ingested(service: Service, inputs: Path, tmp_path: Path) -> None:
    folders = [str(inputs / "viper" / "cam1"), str(inputs / "viper" / "cam2")]
    pattern = r"^(?P<individual>\d{4})"
    tune = {"type": "photos-tune", "folders": folders, "label_pattern": pattern}
    tuned = inputs / "tuned"  # the command's, under the roots, so that both ingests can read it
    files = _through_both(service, tune, ["photos", "tune", *folders, "--label-pattern", pattern], tuned)
    assert "tuned.json" in files
    for name in ("api", "cli"):  # one store each: an ingest into a store that holds the photos stores nothing new
        (inputs / "stores" / name).mkdir(parents=True, exist_ok=True)
    ingest = {"type": "photos-ingest", "folders": folders[:1], "site": "north", "tuned": str(tuned)}
    ingest |= {"store": str(inputs / "stores" / "api" / "g.db")}
    argv = ["photos", "ingest", folders[0], "--site", "north", "--tuned", str(tuned)]
    argv += ["--store", str(inputs / "stores" / "cli" / "g.db")]
    assert "ingest_report.json" in _through_both(service, ingest, argv, tmp_path / "ingest")


def test_a_gallery_reprocessed(service: Service, inputs: Path, tmp_path: Path) -> None:
    for name in ("api", "cli"):
        shutil.copytree(inputs / "gallery", inputs / f"gallery-{name}")
    common = {"model_id": MODEL["model_id"], "model_version": MODEL["model_version"], "threshold": 0.5}
    request = {"type": "gallery-reprocess", "store": str(inputs / "gallery-api" / "g.db"), **common}
    request["calibrator"] = str(inputs / "gallery" / "calibrator.json")
    argv = ["gallery", "reprocess", "--store", str(inputs / "gallery-cli" / "g.db"), "--unassigned"]
    argv += ["--model-id", MODEL["model_id"], "--model-version", MODEL["model_version"], "--threshold", "0.5"]
    argv += ["--calibrator", str(inputs / "gallery" / "calibrator.json")]
    with service.client() as client:
        job_id = client.post("/jobs", json=request).json()["id"]
        job = _wait(client, job_id, ("complete", "failed"))
    assert job["state"] == "complete" and job["metrics"]["reprocessed"] == 6, job
    done = subprocess.run([sys.executable, "-m", "trackid", *argv, "--out", str(tmp_path / "cli")], capture_output=True)
    assert done.returncode == 0
    cli = json.loads((tmp_path / "cli" / "manifest.json").read_text())
    assert {k: cli[k] for k in ("reprocessed", "assigned", "still_unassigned")} == {
        k: job["metrics"][k] for k in ("reprocessed", "assigned", "still_unassigned")
    }


def _gallery_with_unassigned(folder: Path) -> None:
    """A gallery of 6 synthetic people whose second sightings stayed unassigned (threshold 1), and a calibrator."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    people = rng.normal(size=(200, 32))
    people /= np.linalg.norm(people, axis=1, keepdims=True)

    def views(centres: np.ndarray, seed: int) -> np.ndarray:
        v = centres + 0.5 * np.random.default_rng(seed).normal(size=centres.shape) / np.sqrt(32)
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)

    a, b = views(people, 2), views(people, 3)
    calibrator = MatchCalibrator().fit((a @ b.T).ravel(), np.eye(200, dtype=bool).ravel())
    calibrator.save(folder / "calibrator.json")
    store = make_store(folder / "g.db", index_kind="exact")
    gallery = Gallery(store, calibrator=calibrator, threshold=0.5, **MODEL)  # type: ignore[arg-type]
    gallery.identify_vectors(views(people[:6], 4), time=1.0)
    strict = Gallery(store, calibrator=calibrator, threshold=1.0, create_new=False, **MODEL)  # type: ignore[arg-type]
    assert all(r.identity_id is None for r in strict.identify_vectors(views(people[:6], 5), time=2.0))
    store.close()


def test_a_mot_job_passes_its_persistence_filter_and_refuses_an_unknown_one(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from trackid.service.job_types import MotJob

    det = tmp_path / "seq" / "det" / "det.txt"
    job = MotJob.model_validate({"type": "mot", "detections": str(det), "filter": "shipped"})
    argv = job.argv({"detections": [det]}, tmp_path / "run")
    assert argv[argv.index("--filter") + 1] == "shipped"
    assert "--filter" not in MotJob.model_validate({"type": "mot", "detections": str(det)}).argv(
        {"detections": [det]}, tmp_path / "run"
    )
    with pytest.raises(ValidationError):
        MotJob.model_validate({"type": "mot", "detections": str(det), "filter": "/etc/passwd"})
