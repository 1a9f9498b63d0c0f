"""Shared fixtures: where the real benchmark data lives, and a helper that runs a tracker over a sequence."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from trackid.track import Tracker, track_sequence
from trackid.types import Detections

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data() -> Path:
    """The read-only benchmark data next to the repository; tests that need it skip when it is absent."""
    if not (DATA / "README.md").is_file():
        pytest.skip(f"benchmark data not found at {DATA} (expected ../shared/data relative to the repository)")
    return DATA


def run_tracker(
    tracker: Tracker, frames: Sequence[Detections]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """(frame, track id, xyxy) of every box the tracker reports, frames numbered from 1."""
    return track_sequence(tracker, frames)
