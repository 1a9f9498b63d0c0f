"""`trackid track VIDEO` end to end: the run folder is complete and valid, and a broken video keeps what was done."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from trackid.cli import app
from trackid.config import load_config
from trackid.pipelines.video import track_video
from trackid.sources.motchallenge import read_mot_file
from trackid.sources.video import VideoError

CLIP = Path(__file__).resolve().parents[1] / "demo" / "pets09_s2l1_clip.mp4"


@pytest.fixture(scope="module")
def colour_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo clip with SSDLite and the cheap colour embedder (appearance path on, test kept fast)."""
    config, _ = load_config(profile="fast_cpu", overrides=["embedder.name=colour"], environ={})
    run_dir = tmp_path_factory.mktemp("run")
    run = track_video(CLIP, config, run_dir)
    assert run.frames == 150 and run.tracks > 3
    return run_dir


def test_run_folder_holds_every_artifact(colour_run: Path) -> None:
    rows = read_mot_file(colour_run / "tracks.txt")
    lines = (colour_run / "tracks.jsonl").read_text().splitlines()
    assert len(lines) == len(rows) > 300
    first = json.loads(lines[0])
    assert set(first) == {"frame", "track_id", "xyxy", "score", "quality"}
    ids = np.unique(rows.track_id)
    assert sorted(p.stem for p in (colour_run / "crops").glob("*.jpg")) == sorted(str(i) for i in ids)
    tracklets = [json.loads(line) for line in (colour_run / "tracklets.jsonl").read_text().splitlines()]
    assert sorted(t["track_id"] for t in tracklets) == sorted(ids.tolist())
    assert sum(t["detections"] for t in tracklets) <= len(rows)  # rows reported through occlusions are not detections
    assert all(t["end_time"] >= t["start_time"] >= 0 and t["crop_frames"] for t in tracklets)
    video = cv2.VideoCapture(str(colour_run / "annotated.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 150
    manifest = json.loads((colour_run / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["frames_processed"] == 150
    assert manifest["config"]["embedder"]["name"] == "colour"
    assert manifest["embedder"]["model_id"] and len(manifest["inputs"][manifest["input"]["path"]]) == 64
    assert manifest["schema"] == 1 and manifest["command"] == "track-video" and manifest["seconds"] > 0
    assert not list(colour_run.glob(".*tmp*")), "temporary files left behind"


def test_tracks_follow_the_people_of_the_clip(colour_run: Path, data: Path) -> None:
    """Most reported boxes overlap a ground-truth person of the same frame (PETS09-S2L1 frame k = clip frame k)."""
    from trackid.geometry import iou_matrix, xywh_to_xyxy

    rows = read_mot_file(colour_run / "tracks.txt")
    gt = read_mot_file(data / "mot15" / "gt" / "MOT15-train" / "PETS09-S2L1" / "gt" / "gt.txt")
    hits = []
    for frame in np.unique(rows.frame):
        mine, theirs = rows.frame == frame, gt.frame == frame
        iou = iou_matrix(xywh_to_xyxy(rows.xywh[mine]), xywh_to_xyxy(gt.xywh[theirs]))
        hits.append(iou.max(axis=1) > 0.5 if theirs.any() else np.zeros(mine.sum(), bool))
    assert np.concatenate(hits).mean() > 0.6


def test_truncated_video_keeps_what_was_tracked(data: Path, tmp_path: Path) -> None:
    broken = tmp_path / "cut.avi"
    broken.write_bytes((data / "pets09_s2l1" / "vtest.avi").read_bytes()[:2_000_000])
    config, _ = load_config(profile="fast_cpu", overrides=["write_video=false"], environ={})
    run_dir = tmp_path / "run"
    with pytest.raises(VideoError, match=r"cut\.avi: frame \d+ unreadable.*written to"):
        track_video(broken, config, run_dir)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "cut.avi" in manifest["error"]
    rows = read_mot_file(run_dir / "tracks.txt")  # complete, parseable file of the frames before the damage
    assert 0 < rows.frame.max() <= manifest["frames_processed"]


def test_cli_reports_bad_inputs_in_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video" * 50)
    result = runner.invoke(app, ["track", str(junk), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "junk.mp4: cannot open" in result.output
    result = runner.invoke(app, ["track", str(CLIP), "--set", "tracker.max_lost_s=-1"])
    assert result.exit_code == 2 and "tracker.max_lost_s" in result.output
    result = runner.invoke(app, ["track", str(CLIP), "--profile", "turbo"])
    assert result.exit_code == 2 and "profile 'turbo'" in result.output
    result = runner.invoke(app, ["track", str(CLIP), "--set", "detector.params.model_path=/no/such/model.pb"])
    assert result.exit_code == 2 and "/no/such/model.pb" in result.output


def test_replayed_detections_are_the_runs_recorded_detector(data: Path, tmp_path: Path) -> None:
    """Issue #15, item 2: replay mode (VIDEO + --detections) recorded the profile's detector and no detections file."""
    det = tmp_path / "det.txt"
    gt = data / "mot15" / "gt" / "MOT15-train" / "PETS09-S2L1" / "gt" / "gt.txt"
    det.write_text("".join(f"{line.rsplit(',', 4)[0]},1\n" for line in gt.read_text().splitlines()[:2000]))
    run_dir = tmp_path / "run"
    args = ["track", str(CLIP), "-d", str(det), "-o", str(run_dir), "--profile", "fast_cpu", "--set", "write_video=0"]
    result = CliRunner().invoke(app, [*args, "--tracker", "trackid"])
    assert result.exit_code == 0, result.output
    assert "lie past the video's 150 frames" in result.output  # the gt rows run on past the clip
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["config"]["detector"]["name"] == "precomputed"
    assert manifest["config"]["detector"]["params"]["frames"] == str(det)
    assert len(manifest["inputs"][str(det)]) == 64 and manifest["tracker"] == "trackid"
    assert len(read_mot_file(run_dir / "tracks.txt")) > 300


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        (["--seqinfo", "seqinfo.ini"], ("--seqinfo seqinfo.ini", "frame_rate")),
        (["--set", "detector.name=ssdlite"], ("--set 'detector.name=ssdlite'", "the detections file")),
        (["--tracker", "nope"], ("--tracker 'nope'",)),
    ],
    ids=["seqinfo", "detector setting", "unknown tracker"],
)
def test_replay_mode_refuses_what_it_cannot_honour(
    tmp_path: Path, extra: list[str], fragments: tuple[str, ...]
) -> None:
    det = tmp_path / "det.txt"
    det.write_text("1,-1,10,10,20,40,0.9\n")
    result = CliRunner().invoke(app, ["track", str(CLIP), "-d", str(det), "-o", str(tmp_path / "run"), *extra])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert all(fragment in result.output for fragment in fragments), result.output
    assert not (tmp_path / "run").exists()
