"""Issue #16 in photos ingest, on real VIPeR photos: a camera `tune` never saw warms up (held back, then adapted, across
two ingests), and the drift watch stops (or only warns about) a camera matched uncentred."""

from __future__ import annotations

from pathlib import Path

import pytest

from trackid.config import GalleryConfig, PhotosConfig
from trackid.identity.stores import make_store
from trackid.pipelines.photos import Labels, Tuned, ingest, tune
from trackid.pipelines.photos.cameras import AWAITING, DRIFT_STOPPED

PEOPLE = 30


@pytest.fixture(scope="module")
def viper(data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """cam1 and cam2: VIPeR people 1-30; cam3 (never tuned): camera 2's photos of people 31-60."""
    source = data / "reid" / "viper"
    if not source.is_dir():
        pytest.skip(f"VIPeR not found at {source}")
    root = tmp_path_factory.mktemp("viper")
    ids = sorted({p.name[:4] for p in source.glob("*.png")})
    folders = []
    for name, cam, people in (
        ("cam1", "0001", ids[:PEOPLE]),
        ("cam2", "0002", ids[:PEOPLE]),
        ("cam3", "0002", ids[PEOPLE : 2 * PEOPLE]),
    ):
        (root / name).mkdir()
        for i in people:
            (root / name / f"{i}{cam}.png").symlink_to(source / f"{i}{cam}.png")
        folders.append(root / name)
    return folders[0], folders[1], folders[2]


@pytest.fixture(scope="module")
def tuned(viper: tuple[Path, Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Tuned:
    labels = Labels(pattern=r"^(?P<individual>\d{4})")
    return tune(viper[:2], labels, config=PhotosConfig(), out=tmp_path_factory.mktemp("tuned"))


def _subset(folder: Path, into: Path, count: int) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    for photo in sorted(folder.iterdir())[:count]:
        if not (into / photo.name).exists():
            (into / photo.name).symlink_to(photo.resolve())
    return into


def test_a_new_camera_warms_up_over_two_ingests_and_stays_adapted(
    viper: tuple[Path, Path, Path], tuned: Tuned, tmp_path: Path
) -> None:
    assert tuned.drift_reference is not None and len(tuned.drift_reference) > 0
    config = PhotosConfig(adaptation_warmup=6)
    gallery = GalleryConfig(store=str(tmp_path / "g.db"))
    cam3 = tmp_path / "in" / "cam3"
    first = ingest([viper[0], _subset(viper[2], cam3, 4)], site="n", config=config, gallery_config=gallery, tuned=tuned)
    assert first.cameras["unadapted"] == ["cam3"] and first.cameras["awaiting_adaptation"] == {"cam3": 4}
    assert first.cameras["states"] == {"cam1": "tuned", "cam3": "warming"}
    embedder = tuned.make_embedder()
    centred, raw = tuned.model_version(embedder), embedder.version
    with make_store(tmp_path / "g.db") as store:
        waiting = [s for s in store.sightings() if s.camera == "cam3"]
        assert [s.source["camera_rule"]["matching"] for s in waiting] == [AWAITING] * 4  # type: ignore[index]
        assert {s.model_version for s in waiting} == {raw}  # uncentred: never compared with a centred vector
        assert all(s.identity_id is not None for s in waiting) and len({s.identity_id for s in waiting}) == 4
        stats = store.camera_stats(model_id=embedder.model_id, model_version=centred)["cam3"].adaptation
        assert stats is not None and stats["count"] == 4 and not stats["frozen"]

    second = ingest([_subset(viper[2], cam3, 12)], site="n", config=config, gallery_config=gallery, tuned=tuned)
    assert second.sightings_written == 8 and second.photos_already_stored == 4
    assert second.cameras["adapted"] == ["cam3"] and second.cameras["adapted_in_this_ingest"] == {"cam3": 2}
    assert second.cameras["promoted_sightings"] == {"cam3": 4}
    with make_store(tmp_path / "g.db") as store:
        rules = {s.id: s.source["camera_rule"] for s in store.sightings() if s.camera == "cam3"}  # type: ignore[index]
        later = [r for r in rules.values() if r["matching"] == "auto"]
        assert [r["held"] for r in later] == [True, True] + [False] * 6
        assert set(
            store.vectors_of(
                [i for i, r in rules.items() if r["matching"] == AWAITING],
                model_id=embedder.model_id,
                model_version=centred,
            )
        ) == {i for i, r in rules.items() if r["matching"] == AWAITING}
        stats = store.camera_stats(model_id=embedder.model_id, model_version=centred)["cam3"].adaptation
        assert stats is not None and stats["count"] == 6 and stats["frozen"]

    third = ingest([_subset(viper[2], cam3, 20)], site="n", config=config, gallery_config=gallery, tuned=tuned)
    assert third.cameras["states"] == {"cam3": "adapted"} and third.cameras["adapted_in_this_ingest"] == {}
    assert not [w for w in third.warnings if "cam3" in w]  # adapted once, adapted for good
    again = ingest([cam3], site="n", config=config, gallery_config=gallery, tuned=tuned)
    assert again.sightings_written == 0


@pytest.mark.parametrize("action", ["stop", "warn"])
def test_the_drift_watch_flags_an_uncentred_camera_and_stops_matching_it(
    viper: tuple[Path, Path, Path], tuned: Tuned, tmp_path: Path, action: str
) -> None:
    config = PhotosConfig(adaptation_warmup=0, drift_action=action, drift_min_scores=10)  # type: ignore[arg-type]
    gallery = GalleryConfig(store=str(tmp_path / "g.db"))
    report = ingest([viper[2]], site="n", config=config, gallery_config=gallery, tuned=tuned)
    assert report.cameras["drifted"] == ["cam3"] and report.cameras["states"] == {"cam3": "uncentred"}
    check = report.cameras["drift"]["cam3"]
    assert check["scores_seen"] == 10 and check["live_median"] > check["reference_median"]
    warned = [w for w in report.warnings if "left the tuned distribution" in w]
    assert len(warned) == 1 and warned[0].startswith("camera 'cam3'")
    with make_store(tmp_path / "g.db") as store:
        matching = [s.source["camera_rule"]["matching"] for s in store.sightings()]  # type: ignore[index]
    stopped = PEOPLE - 11  # the first photo had nothing to compare with; 10 scores later the watch tested
    if action == "stop":
        assert matching == ["auto"] * 11 + [DRIFT_STOPPED] * stopped
        assert report.cameras["stopped_sightings"] == {"cam3": stopped}
    else:
        assert matching == ["auto"] * PEOPLE and report.cameras["stopped_sightings"] == {}
