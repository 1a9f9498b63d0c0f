"""The shared data sets as the benchmark scripts read them (from ../shared/data, never copied into the repo)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from report import REPO
from trackid.images import read_image

DATA = REPO.parent / "shared" / "data"

__all__ = ["DATA", "PridSet", "load_prid", "load_viper"]


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
