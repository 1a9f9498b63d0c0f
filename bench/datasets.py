"""The shared data sets as the benchmark scripts read them (from ../shared/data, never copied into the repo)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from report import REPO
from trackid.images import read_image

DATA = REPO.parent / "shared" / "data"

__all__ = ["DATA", "YTF", "PridSet", "YtfClip", "load_prid", "load_viper", "ytf_clips"]

YTF = DATA / "faces" / "ytf_subset"


@dataclass(frozen=True)
class YtfClip:
    """One YouTube Faces clip: its person, its frames in order, and the labelled face box (top-left x, y, w, h) of
    each (the label files give the box's centre; converted here)."""

    person: str
    name: str
    frames: list[Path]
    boxes: NDArray[np.float64]


def ytf_clips(root: Path = YTF) -> list[YtfClip]:
    """Every labelled clip under `root` (`<Name>/<Name><clip>.labeled_faces.txt`), sorted by label file."""
    labels = sorted(root.glob("*/*.labeled_faces.txt"))
    if not labels:
        raise SystemExit(f"YouTube Faces subset not found under {root}")
    clips = []
    for label_file in labels:
        frames, boxes = [], []
        for line in label_file.read_text().splitlines():
            fields = line.split(",")
            cx, cy, w, h = (float(v) for v in fields[2:6])
            frames.append(label_file.parent / fields[0].replace("\\", "/").split("/", 1)[1])
            boxes.append((cx - w / 2, cy - h / 2, w, h))
        name = label_file.name.removesuffix(".labeled_faces.txt")
        clips.append(YtfClip(label_file.parent.name, name, frames, np.asarray(boxes, np.float64)))
    return clips


def load_viper() -> tuple[list[NDArray[np.uint8]], list[NDArray[np.uint8]]]:
    """VIPeR (camera 1 crops, camera 2 crops), aligned by identity (`IIIICCCC.png`: id, camera)."""
    folder = DATA / "reid" / "viper"
    ids = sorted({p.name[:4] for p in folder.glob("*.png")})
    if not ids:
        raise SystemExit(f"VIPeR not found at {folder}")
    return [read_image(folder / f"{i}0001.png") for i in ids], [read_image(folder / f"{i}0002.png") for i in ids]


@dataclass(frozen=True)
class PridSet:
    """PRID 2011 single-shot: every cam_a and cam_b crop with its person id (ids 1-200 appear in both cameras)."""

    cam_a: list[NDArray[np.uint8]]
    cam_a_ids: NDArray[np.int64]
    cam_b: list[NDArray[np.uint8]]
    cam_b_ids: NDArray[np.int64]


def load_prid() -> PridSet:
    """PRID 2011 single-shot (`cam_a/person_XXXX.png`, 385 people; `cam_b/`, 749), in id order."""
    folder = DATA / "reid" / "prid2011"
    a_files, b_files = sorted((folder / "cam_a").glob("person_*.png")), sorted((folder / "cam_b").glob("person_*.png"))
    if not a_files or not b_files:
        raise SystemExit(f"PRID 2011 not found at {folder}")
    ids = [np.array([int(f.stem.split("_")[1]) for f in files], np.int64) for files in (a_files, b_files)]
    return PridSet([read_image(f) for f in a_files], ids[0], [read_image(f) for f in b_files], ids[1])
