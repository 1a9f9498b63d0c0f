"""`trackid episode` on a short ASSEMBLED episode (bench/episode_assembly.py, YouTube Faces clips): artifacts,
constraints, resuming, and bad input."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from trackid.config import load_config
from trackid.pipelines.episode.run import EpisodeError, run_episode
from trackid.sources.video import VideoError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from episode_assembly import assemble

ARTIFACTS = ["detections.jsonl", "tracks.jsonl", "track_metrics.json", "faces.jsonl", "faces.npy"]
ARTIFACTS += ["track_embeddings.npz", "identities.json", "progress.json", "manifest.json", "log.jsonl"]
ARTIFACTS += ["tracks_clean.jsonl", "faces_clean.jsonl", "faces_clean.npy", "identities_clean.json"]
ARTIFACTS += ["cleanup_report.json", "report.html", "contact_sheet.jpg", "timeline.png"]
STAGES = ["detect-track", "embed", "cluster", "cleanup", "report"]
DLIB = ["episode.embedder=dlib"]  # the embedder every checkout has (auto picks FaceRes where it was fetched)


@pytest.fixture(scope="module")
def episode(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("episode")
    assemble(folder, max_frames_per_clip=24, root=data / "faces" / "ytf_subset")
    return folder


@pytest.fixture(scope="module")
def finished(episode: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    config, _ = load_config(profile="balanced", overrides=DLIB)
    out = tmp_path_factory.mktemp("run")
    run = run_episode(episode / "episode.avi", config, out)
    assert run.ran == STAGES
    return out


def test_every_stage_writes_its_artifacts(finished: Path) -> None:
    for name in ARTIFACTS:
        assert (finished / name).is_file(), name
    assert json.loads((finished / "manifest.json").read_text())["status"] == "complete"
    metrics = json.loads((finished / "track_metrics.json").read_text())
    for key in ("tracks_per_minute", "short_track_fraction", "singleton_fraction", "largest_cluster_fraction"):
        assert key in metrics
    faces = [json.loads(line) for line in (finished / "faces.jsonl").read_text().splitlines()]
    vectors = np.load(finished / "faces.npy")
    assert len(vectors) == sum(f["accepted"] for f in faces) > 0
    assert all(f["reason"] for f in faces if not f["accepted"])
    assert all("yaw" in f and "pitch" in f for f in faces if f["accepted"])
    assert str(np.load(finished / "track_embeddings.npz")["embedder"]) == "dlib"


def test_the_seeds_bounds_hold_on_the_whole_assembled_episode(data: Path, tmp_path: Path) -> None:
    """tracks_per_minute < 50, short_track_fraction < 0.30, id_switch_rate < 0.10 (no clip switches person), on
    the full 45 s episode that bench/episode.py scores."""
    assemble(tmp_path / "episode", root=data / "faces" / "ytf_subset")
    config, _ = load_config(profile="balanced", overrides=DLIB)
    run_episode(tmp_path / "episode" / "episode.avi", config, tmp_path / "run", stages=STAGES[:-1])
    metrics = json.loads((tmp_path / "run" / "track_metrics.json").read_text())
    for figures in (metrics, metrics["after_cleanup"]):
        assert figures["tracks_per_minute"] < 50
        assert figures["short_track_fraction"] < 0.30
    assert metrics["id_switch_rate"] < 0.10 and metrics["after_cleanup"]["id_switch_rate"] < 0.10


def test_cleanup_reports_every_metric_before_and_after(finished: Path) -> None:
    from trackid.pipelines.episode.cleanup import METRICS

    report = json.loads((finished / "cleanup_report.json").read_text())
    assert set(report["metrics"]) == set(METRICS)
    for name, figures in report["metrics"].items():
        assert figures["change"] == pytest.approx(figures["after"] - figures["before"], abs=1e-3), name
    metrics = json.loads((finished / "track_metrics.json").read_text())
    assert 0.0 <= metrics["id_switch_rate"] <= 1.0
    clean = [json.loads(line) for line in (finished / "tracks_clean.jsonl").read_text().splitlines()]
    identities = json.loads((finished / "identities_clean.json").read_text())["identities"]
    assert sorted(t for i in identities for t in i["track_ids"]) == sorted(t["track_id"] for t in clean)
    progress = json.loads((finished / "progress.json").read_text())
    assert progress["cleanup"]["status"] == "done" and "splits" in progress["cleanup"]


def test_tracks_stop_at_the_cuts(episode: Path, finished: Path) -> None:
    segments = json.loads((episode / "episode.json").read_text())["segments"]
    dissolves = sum(1 for s in segments for c in s["clips"] if "then_clip" in c)  # a shot change, cut or not
    shots = json.loads((finished / "track_metrics.json").read_text())["shots"]
    assert len(segments) <= shots <= len(segments) + dissolves
    starts = np.array([s["first_frame"] for s in segments])
    for line in (finished / "tracks.jsonl").read_text().splitlines():
        track = json.loads(line)
        first, last = (np.searchsorted(starts, track[k], side="right") for k in ("first_frame", "last_frame"))
        assert first == last, f"track {track['track_id']} runs across a cut"


def test_no_identity_holds_two_faces_of_one_frame(finished: Path) -> None:
    identities = json.loads((finished / "identities_clean.json").read_text())["identities"]
    owner = {t: i["identity_id"] for i in identities for t in i["track_ids"]}
    parts = [json.loads(line) for line in (finished / "tracks_clean.jsonl").read_text().splitlines()]
    part_of = {
        (p["parent_track_id"], f): p["track_id"]
        for p in parts
        if p["parent_track_id"] is not None
        for f in range(p["first_frame"], p["last_frame"] + 1)
    }
    seen: dict[tuple[int, int], int] = {}
    for line in (finished / "detections.jsonl").read_text().splitlines():
        face = json.loads(line)
        face["track_id"] = part_of.get((face["track_id"], face["frame"]), face["track_id"])
        if face["track_id"] not in owner:
            continue
        key = (face["frame"], owner[face["track_id"]])
        assert key not in seen, f"identity {key[1]} has two faces in frame {key[0]}"
        seen[key] = face["track_id"]
    # the side-by-side segments put two people on screen: they were there to constrain
    assert json.loads((finished / "identities.json").read_text())["threshold"]["different"] > 0


def test_a_second_run_skips_what_is_done(episode: Path, finished: Path) -> None:
    config, _ = load_config(profile="balanced", overrides=DLIB)
    before = (finished / "identities.json").read_text()
    again = run_episode(episode / "episode.avi", config, finished)
    assert again.ran == [] and again.skipped == STAGES
    assert (finished / "identities.json").read_text() == before


def test_a_stage_before_its_input_is_refused_and_touches_nothing(episode: Path, tmp_path: Path) -> None:
    config, _ = load_config(profile="fast_cpu")
    with pytest.raises(EpisodeError, match=r"needs .*track_embeddings\.npz, which stage embed writes"):
        run_episode(episode / "episode.avi", config, tmp_path / "run", stages=["cluster"])
    assert not (tmp_path / "run").exists()


def test_a_corrupt_video_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.avi"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00AVI garbage" * 10)
    config, _ = load_config(profile="fast_cpu")
    with pytest.raises(VideoError, match=r"broken\.avi"):
        run_episode(broken, config, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_video_without_faces_warns_and_stays_valid(tmp_path: Path) -> None:
    blank = tmp_path / "blank.avi"
    writer = cv2.VideoWriter(str(blank), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (160, 120))
    for k in range(10):
        writer.write(np.full((120, 160, 3), 40 + 10 * k, np.uint8))
    writer.release()
    config, _ = load_config(profile="fast_cpu")
    run = run_episode(blank, config, tmp_path / "run", stages=["detect-track"])
    assert any("no face was found" in w for w in run.warnings)
    metrics = json.loads((tmp_path / "run" / "track_metrics.json").read_text())
    assert metrics["tracks"] == 0 and metrics["warnings"]
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["status"] == "complete"


def test_shot_cuts_follow_the_footage_not_its_noise() -> None:
    from trackid.pipelines.episode.shots import ShotCuts

    rng = np.random.default_rng(0)

    def shot(colour: tuple[int, int, int], noise: float, n: int) -> list[np.ndarray]:
        base = np.zeros((120, 160, 3), np.float64) + colour
        return [np.clip(base + noise * rng.standard_normal(base.shape), 0, 255).astype(np.uint8) for _ in range(n)]

    calm = ShotCuts()
    cuts = [calm.is_cut(f) for f in shot((40, 120, 200), 4, 20) + shot((200, 60, 30), 4, 20)]
    assert cuts.count(True) == 1 and cuts.index(True) == 20
    # heavy sensor noise moves every frame's histogram: the bar rises with it instead of cutting every frame
    noisy = ShotCuts()
    assert sum(noisy.is_cut(f) for f in shot((90, 90, 90), 60, 40)) == 0
