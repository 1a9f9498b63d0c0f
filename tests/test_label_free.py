"""`label_free_tune`: a tuned.json from unlabelled tracklets, synthetic and real (YouTube Faces clips)."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from trackid.cli import app
from trackid.config import EmbedderConfig, PhotosConfig
from trackid.embed import make_embedder
from trackid.identity.pair_mining import mine_pairs
from trackid.pipelines.photos.label_free import label_free_tune
from trackid.pipelines.photos.tuned import Tuned
from trackid.types import Tracklet

COLOUR = EmbedderConfig(name="colour", params={})


def _clip(
    track_id: int, camera: str, crops: list[np.ndarray], boxes: np.ndarray, fps: float, start: int = 1
) -> Tracklet:
    frames = np.arange(start, start + len(crops), dtype=np.int64)
    return Tracklet(
        track_id=track_id,
        camera_id=camera,
        class_id=0,
        frames=frames,
        times=(frames - 1) / fps,
        boxes=np.asarray(boxes, np.float64),
        scores=np.ones(len(frames)),
        quality=np.ones(len(frames)),
        embedding=np.zeros(0, np.float32),
        crops=tuple(crops),
        crop_frames=tuple(frames.tolist()),
        source="video",
    )


def test_synthetic_people_in_one_video_give_a_loadable_tuned_json(tmp_path: Path) -> None:
    # four people in distinct colours, two at a time in each frame, side by side
    rng = np.random.default_rng(0)
    colours = rng.integers(0, 255, (4, 3))
    tracklets = []
    for k, colour in enumerate(colours):
        start = 1 + 40 * (k // 2)
        crops = [np.clip(colour + rng.normal(0, 12, (64, 32, 3)), 0, 255).astype(np.uint8) for _ in range(40)]
        boxes = np.tile([100.0 * (k % 2), 0, 100.0 * (k % 2) + 32, 64], (40, 1))
        tracklets.append(_clip(k, "cam", crops, boxes, 10.0, start))
    config = PhotosConfig(embedder=COLOUR, camera_centring=False, target_false_positive_rate=0.05)
    tuned = label_free_tune(tracklets, config=config, out=tmp_path)
    loaded = Tuned.load(tmp_path)
    assert loaded.evidence["mining"]["pairs"]["same-frame"] == 2  # people 0-1 together, then 2-3
    assert loaded.evidence["mining"]["pairs"]["within-tracklet"] == 12
    assert loaded.threshold == pytest.approx(tuned.threshold)
    assert loaded.embedder == COLOUR
    with pytest.raises(ValueError, match="not a mix"):
        label_free_tune([tracklets[0], tmp_path], config=config, out=tmp_path)  # type: ignore[list-item]
    # two cameras far apart, each seeing its own two people: global centring gives
    # every camera the one mean of all sightings (camera centring would not)
    alone = [replace(t, camera_id=f"cam{t.track_id % 2}") for t in tracklets]
    both = label_free_tune(alone, config=config, out=tmp_path / "global", centring="global", site_travel_s=3600.0)
    assert both.evidence["centring"] == "global" and both.centring is not None
    means = list(both.centring.means_.values())
    assert len(means) == 2 and np.allclose(means[0], means[1])
    per_camera = label_free_tune(alone, config=config, out=tmp_path / "camera", centring="camera", site_travel_s=3600.0)
    assert per_camera.centring is not None
    assert not np.allclose(*per_camera.centring.means_.values())
    with pytest.raises(ValueError, match="centring"):
        label_free_tune(alone, config=config, out=tmp_path, centring="clip")  # type: ignore[arg-type]


def test_youtube_faces_clips_as_far_apart_sites(data: Path, tmp_path: Path) -> None:
    """Real clips: 5 people, 6 clips taken as sites recorded at once (assembled). The far-sites negatives are
    right except Alek_Wek's two clips, which are one person: exactly one wrong negative pair of 15."""
    folder = data / "faces" / "ytf_subset"
    labels = sorted(folder.glob("*/*.labeled_faces.txt"))
    if len(labels) != 6:
        pytest.skip(f"YouTube Faces subset not found under {folder}")
    tracklets, people = [], []
    for k, label_file in enumerate(labels):
        crops, boxes = [], []
        for line in label_file.read_text().splitlines()[::20]:
            fields = line.split(",")
            cx, cy, w, h = (float(v) for v in fields[2:6])
            image = cv2.imread(str(label_file.parent / fields[0].replace("\\", "/").split("/", 1)[1]))
            assert image is not None
            y0, x0 = max(int(cy - h / 2), 0), max(int(cx - w / 2), 0)
            crops.append(np.ascontiguousarray(image[y0 : int(cy + h / 2), x0 : int(cx + w / 2)]))
            boxes.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
        tracklets.append(_clip(k, label_file.stem, crops, np.asarray(boxes), 1.5))
        people.append(label_file.parent.name)
    config = PhotosConfig(embedder=COLOUR, camera_centring=False)
    tuned = label_free_tune(tracklets, config=config, out=tmp_path, site_travel_s=3600.0)
    assert tuned.evidence["mining"]["pairs"]["far-sites"] == 15
    assert tuned.evidence["mining"]["pairs"]["same-frame"] == 0
    embedder = make_embedder("colour")
    pairs = mine_pairs(tracklets, [embedder.embed(list(t.crops)) for t in tracklets], site_travel_s=3600.0)
    negatives = pairs.select(~pairs.same)
    who = np.array(people)
    assert int(np.sum(who[negatives.first] == who[negatives.second])) == 1
    assert 0 < tuned.threshold <= 1


def test_cli_label_free_tune_on_photo_folders(data: Path, tmp_path: Path) -> None:
    """Unlabelled folders: two-photo bursts of one person (a photo and its mirror image, a second apart) in each
    camera, and at each moment the other camera shows someone else (cameras an hour of travel apart)."""
    source = data / "reid" / "viper"
    ids = sorted({p.name[:4] for p in source.glob("*.png")})[:30]
    for cam, shift in (("0001", 0), ("0002", 1)):
        folder = tmp_path / "photos" / f"cam{cam[-1]}"
        folder.mkdir(parents=True)
        for n in range(len(ids)):
            image = cv2.imread(str(source / f"{ids[(n + shift) % len(ids)]}{cam}.png"))
            for k, shot in enumerate((image, image[:, ::-1])):
                path = folder / f"shot{n:03d}_{k}.png"
                cv2.imwrite(str(path), shot)
                os.utime(path, (1e9 + 600 * n + k, 1e9 + 600 * n + k))
    out = tmp_path / "tuned"
    result = CliRunner().invoke(
        app,
        [
            "photos", "tune", str(tmp_path / "photos" / "cam1"), str(tmp_path / "photos" / "cam2"), "--label-free",
            "--site-travel-s", "3600", "--set", "photos.bursts_from_file_times=true", "-o", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "tuned.json").read_text())
    assert saved["evidence"]["label_free"] is True and 0 < saved["threshold"] <= 1
    pairs = saved["evidence"]["mining"]["pairs"]
    assert sum(v for k, v in pairs.items() if "burst" in k or "tracklet" in k) > 0, pairs
    refused = CliRunner().invoke(
        app, ["photos", "tune", str(tmp_path), "--label-free", "--label-pattern", "x", "-o", str(tmp_path / "r")]
    )
    assert refused.exit_code == 2 and "without labels" in refused.output
