"""Shared fixtures: where the real benchmark data lives, WILDTRACK's cameras, gallery stores of both backends (one
PostgreSQL for the session), and a helper that runs a tracker over a sequence."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from trackid.identity.stores import GalleryStore, make_store
from trackid.multiview import GroundCamera
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


OpenStore = Callable[..., GalleryStore]
WILDTRACK_FILES = ["CVLab1", "CVLab2", "CVLab3", "CVLab4", "IDIAP1", "IDIAP2", "IDIAP3"]  # views C1..C7


@pytest.fixture(scope="session")
def wildtrack_cameras(data: Path) -> list[GroundCamera]:
    """WILDTRACK's seven views, WILDTRACK-C1..C7, from its zero-distortion intrinsics (ground in metres)."""
    root = data / "multicam" / "wildtrack" / "cameras"
    return [
        GroundCamera.from_opencv(
            f"WILDTRACK-C{v + 1}",
            root / "intrinsic_zero" / f"intr_{name}.xml",
            root / "extrinsic" / f"extr_{name}.xml",
            unit=0.01,
            image_size=(1920, 1080),
        )
        for v, name in enumerate(WILDTRACK_FILES)
    ]


@pytest.fixture(scope="session")
def postgres_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real PostgreSQL (with pgvector) for the session; each test gets its own database in it."""
    pgserver = pytest.importorskip("pgserver")
    pytest.importorskip("psycopg")
    server = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
    yield server.get_uri()
    server.cleanup()


@pytest.fixture(params=["sqlite", "postgres"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenStore]:
    """A function opening (and, called again, reopening) one fresh store of the parametrised backend."""
    opened: list[GalleryStore] = []
    if request.param == "sqlite":

        def factory(**kwargs: object) -> GalleryStore:
            opened.append(make_store(f"sqlite://{tmp_path / 'gallery.db'}", **kwargs))
            return opened[-1]

    else:
        import psycopg

        admin = request.getfixturevalue("postgres_uri")
        name = f"gallery_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        url = admin.replace("/postgres?", f"/{name}?", 1)
        assert url != admin, f"unexpected pgserver URI {admin}"

        def factory(**kwargs: object) -> GalleryStore:
            opened.append(make_store(url, **kwargs))
            return opened[-1]

    yield factory
    for store in opened:
        store.close()


def run_tracker(
    tracker: Tracker, frames: Sequence[Detections]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """(frame, track id, xyxy) of every box the tracker reports, frames numbered from 1."""
    return track_sequence(tracker, frames)
