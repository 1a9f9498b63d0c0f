"""The assembled test episodes (`bench/episode_assembly.py`): labels that match the frames written."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from trackid.sources.video import VideoSource

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from episode_assembly import CANVAS, assemble


def test_assembled_episode_labels_every_face_it_shows(data: Path, tmp_path: Path) -> None:
    info = assemble(tmp_path, max_frames_per_clip=10, root=data / "faces" / "ytf_subset")
    assert info["frames"] == 10 * 10 and json.loads((tmp_path / "episode.json").read_text()) == info
    frames = [image for _, image in VideoSource(tmp_path / "episode.avi")]
    assert len(frames) == 100 and frames[0].shape == (CANVAS[1], CANVAS[0], 3)
    gt = np.loadtxt(tmp_path / "gt.txt", delimiter=",")
    per_frame = np.bincount(gt[:, 0].astype(int), minlength=101)[1:]
    segments = info["segments"]
    assert isinstance(segments, list)
    for segment in segments:
        shown = per_frame[segment["first_frame"] - 1 : segment["last_frame"]]
        assert (shown == len(segment["clips"])).all()  # one labelled face per clip on screen
    assert gt[:, 2].min() >= 0 and (gt[:, 2] + gt[:, 4]).max() <= CANVAS[0]
    assert gt[:, 3].min() >= 0 and (gt[:, 3] + gt[:, 5]).max() <= CANVAS[1]
    # the person of the fifth clip comes back in the eighth segment, the first one in the ninth
    people = [[int(r[1]) for r in gt[gt[:, 0] == s["first_frame"]]] for s in segments]
    assert people[7] == people[4] and people[8] == people[0]
    # the tenth dissolves from one person into another without a cut: its labels change person once, mid-fade
    last = segments[9]
    labels = [int(gt[gt[:, 0] == f][0, 1]) for f in range(last["first_frame"], last["last_frame"] + 1)]
    assert len(set(labels)) == 2 and int(np.count_nonzero(np.diff(labels))) == 1
    # a labelled box holds a face-sized, non-blank patch of the frame it labels
    row = gt[0]
    x, y, w, h = row[2:6].astype(int)
    assert frames[0][y : y + h, x : x + w].std() > 10
