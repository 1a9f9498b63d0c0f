"""The shared data sets as the benchmark scripts read them (from ../shared/data, never copied into the repo)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from report import REPO
from trackid.images import read_image

DATA = REPO.parent / "shared" / "data"

__all__ = ["DATA", "load_viper"]


def load_viper() -> tuple[list[NDArray[np.uint8]], list[NDArray[np.uint8]]]:
    """VIPeR (camera 1 crops, camera 2 crops), aligned by identity (`IIIICCCC.png`: id, camera)."""
    folder = DATA / "reid" / "viper"
    ids = sorted({p.name[:4] for p in folder.glob("*.png")})
    if not ids:
        raise SystemExit(f"VIPeR not found at {folder}")
    return [read_image(folder / f"{i}0001.png") for i in ids], [read_image(folder / f"{i}0002.png") for i in ids]
