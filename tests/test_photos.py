"""Photo re-identification end to end on real VIPeR photos: tune, ingest (resumable), validate, monitor, and the
photos CLI's run folders and messages."""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from trackid.cli import app
from trackid.config import GalleryConfig, PhotosConfig, PhotoTargets
from trackid.identity.stores import make_store
from trackid.pipelines.photos import Labels, Tuned, ingest, monitor, validate

VIPER_PATTERN = r"^(?P<individual>\d{4})"
PEOPLE = 160


@pytest.fixture(scope="module")
def viper_cameras(data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The first PEOPLE VIPeR people as two camera folders of links to the real photos."""
    source = data / "reid" / "viper"
    if not source.is_dir():
        pytest.skip(f"VIPeR not found at {source}")
    root = tmp_path_factory.mktemp("viper")
    ids = sorted({p.name[:4] for p in source.glob("*.png")})[:PEOPLE]
    for cam in ("0001", "0002"):
        folder = root / f"cam{cam[-1]}"
        folder.mkdir()
        for i in ids:
            (folder / f"{i}{cam}.png").symlink_to(source / f"{i}{cam}.png")
    return root / "cam1", root / "cam2"


@pytest.fixture(scope="module")
def tuned(viper_cameras: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tuned")
    result = CliRunner().invoke(
        app, ["photos", "tune", *map(str, viper_cameras), "--label-pattern", VIPER_PATTERN, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return out


def test_tune_writes_weights_threshold_and_evidence(tuned: Path) -> None:
    settings = Tuned.load(tuned)
    weights = settings.embedder.params["weights"]
    # the two configured members and the learned one
    assert len(weights) == 3 and sum(weights) == pytest.approx(1.0, abs=1e-5)
    assert 0 < settings.threshold < 1
    held = settings.evidence["held_out"]
    assert held["individuals"] == PEOPLE // 2 and set(held["ensemble"]) == {"rank1", "rank5", "mAP"}
    # 39 replayed decisions on 20 held-out people: a handful of false matches is noise here; bench/photos.py
    # measures the rate on VIPeR's and PRID's full held-out halves
    assert len(held["members"]) == 3 and 0 <= held["decisions"]["false_match_rate"] <= 0.2
    assert settings.centring is not None and set(settings.centring.means_) == {"cam1", "cam2"}
    assert settings.evidence["camera_centring"] is True
    assert "+centred-" in settings.model_version(settings.make_embedder())
    assert held["decisions"]["photos"] == PEOPLE  # the held-out half's photos, replayed in ingest order
    assert len(settings.evidence["grid"]) == 66  # 3 members on a 0.1 grid
    assert settings.evidence["metric"]["file"] == "metric.npz" and (tuned / "metric.npz").is_file()
    assert (tuned / "report" / "report.html").is_file() and (tuned / "report" / "roc.png").is_file()


def test_a_moved_tuned_folder_still_finds_its_learned_metric(tuned: Path, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere"
    shutil.copytree(tuned, moved)
    saved = json.loads((moved / "tuned.json").read_text())
    assert saved["embedder"]["params"]["members"][-1]["params"]["model"] == "metric.npz"
    settings = Tuned.load(moved)
    learned = settings.embedder.params["members"][-1]["params"]["model"]
    assert Path(learned) == moved / "metric.npz"
    crop = np.full((128, 48, 3), 100, np.uint8)
    assert np.array_equal(settings.make_embedder().embed([crop]), Tuned.load(tuned).make_embedder().embed([crop]))


def test_ingest_validate_and_monitor_on_real_photos(
    viper_cameras: tuple[Path, Path], tuned: Path, tmp_path: Path
) -> None:
    gallery = GalleryConfig(store=str(tmp_path / "g.db"))
    settings = Tuned.load(tuned)
    first = ingest([viper_cameras[0]], site="north", config=PhotosConfig(), gallery_config=gallery, tuned=settings)
    assert first.photos_found == PEOPLE and first.sightings_written == PEOPLE
    assert first.time_sources == {"file": PEOPLE} and first.camera_sources == {"folder": PEOPLE}
    second = ingest(
        [viper_cameras[1]], site="north", config=PhotosConfig(), gallery_config=gallery, tuned=settings, out=tmp_path
    )
    assert second.sightings_written == PEOPLE and sum(second.decisions.values()) == PEOPLE
    assert (tmp_path / "ingest_report.json").is_file()
    again = ingest([viper_cameras[1]], site="north", config=PhotosConfig(), gallery_config=gallery, tuned=settings)
    assert again.bursts_already_stored == PEOPLE and again.sightings_written == 0
    written = json.loads((tmp_path / "ingest_report.json").read_text())
    assert written["without_exif"]["count"] == PEOPLE and written["seconds_per_photo"]["p99"] > 0
    assert written["uncentred_cameras"] == []  # both cameras were seen by tune

    # re-tuned weights are a new model: reembed gives every sighting its vector, from the photos, resumably
    retuned = tmp_path / "retuned"
    retuned.mkdir()
    params = {**settings.embedder.params, "weights": [1 / 3, 1 / 3, 1 / 3]}
    partial = copy.deepcopy(settings.centring)  # a camera the re-tuning never saw: reembed must say so
    assert partial is not None
    dropped = sorted(partial.means_)[-1]
    del partial.means_[dropped]
    retuned_settings = Tuned(settings.embedder.model_copy(update={"params": params}), settings.calibrator, 0.5, 0.01)
    retuned_settings.centring = partial
    retuned_settings.save(retuned)
    runner = CliRunner()
    store_args = ["--tuned", str(retuned), "--store", str(tmp_path / "g.db")]
    result = runner.invoke(app, ["photos", "reembed", *store_args])
    assert result.exit_code == 0 and f"added {2 * PEOPLE} vectors" in result.output, result.output
    assert f"camera {dropped!r} ({PEOPLE} sightings) was not seen by" in " ".join(result.output.split())
    result = runner.invoke(app, ["photos", "reprocess", "--unassigned", *store_args])
    assert result.exit_code == 0 and "reprocessed: 0" in result.output, result.output

    labels = Labels(pattern=VIPER_PATTERN)
    with gallery.open_store() as store:
        assert len(store.sightings()) == 2 * PEOPLE
        result = validate(store, labels, PhotoTargets(), tmp_path / "validate")
        metrics = result["metrics"]
        assert metrics["sightings"] == 2 * PEOPLE and metrics["individuals"] == PEOPLE
        assert sum(metrics["outcomes"].values()) == 2 * PEOPLE
        assert metrics["accuracy_5plus"] is None and result["checks"]["accuracy_5plus"] is None
        assert result["verdict"] in ("PASS", "FAIL")
        assert (tmp_path / "validate" / "similarities.png").stat().st_size > 0
        report = monitor(store, 3600.0, tmp_path / "monitor")
        assert report["identities_checked"] == len(store.identities())
        assert report["findings"] == []  # one site, no attributes: nothing to flag


def test_monitor_flags_impossible_travel_and_attribute_conflicts(tmp_path: Path) -> None:
    store = make_store(tmp_path / "g.db", index_kind="exact")
    deer = store.create_identity(attributes={"sex": "F"})
    m = {"model_id": "m", "model_version": "1"}
    store.add_sighting(np.ones(4), **m, time=0.0, site="ridge", identity_id=deer.id, source={"attributes": {}})
    store.add_sighting(np.ones(4), **m, time=600.0, site="creek", identity_id=deer.id)
    store.add_sighting(
        np.ones(4), **m, time=90000.0, site="creek", identity_id=deer.id, source={"attributes": {"sex": "M"}}
    )
    found = monitor(store, 3600.0, tmp_path / "monitor")["findings"]
    assert [f["kind"] for f in found] == ["implausible_travel", "attribute_conflict"]
    assert "at ridge and creek 600 s apart" in found[0]["message"]
    assert "sex = F but M in sightings" in found[1]["message"]
    assert (tmp_path / "monitor" / "monitor.html").is_file()
    store.close()


def _store_contents(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Everything an ingest decides, without wall-clock columns."""
    with sqlite3.connect(path) as conn:
        return {
            "identities": conn.execute(
                "SELECT id, label, site, attributes, first_seen, last_seen, sighting_count, deleted FROM identities "
                "ORDER BY id"
            ).fetchall(),
            "sightings": conn.execute(
                "SELECT id, identity_id, time, site, camera, quality, source, source_key FROM sightings ORDER BY id"
            ).fetchall(),
            "prototypes": conn.execute(
                "SELECT identity_id, model_key, sighting_count, round(quality, 6) FROM prototypes ORDER BY id"
            ).fetchall(),
            "log": conn.execute(
                "SELECT query_sighting_id, candidate_identity_id, decision FROM similarity_log ORDER BY id"
            ).fetchall(),
            "similarities": conn.execute("SELECT similarity FROM similarity_log ORDER BY id").fetchall(),
        }


@pytest.fixture(scope="module")
def new_camera(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A camera `tune` never saw: camera 2's photos of VIPeR people 41-70 (new individuals too) in folder cam3."""
    source = data / "reid" / "viper"
    folder = tmp_path_factory.mktemp("new") / "cam3"
    folder.mkdir()
    ids = sorted({p.name[:4] for p in source.glob("*.png")})[PEOPLE : PEOPLE + 30]
    for i in ids:
        (folder / f"{i}0002.png").symlink_to(source / f"{i}0002.png")
    return folder


# Killed before any photo of the new camera, and after its warm-up (its frozen mean already stored).
@pytest.mark.parametrize("kill_at", [10, 2 * PEOPLE + 15])
def test_kill_9_mid_ingest_then_rerun_equals_an_uninterrupted_run(
    viper_cameras: tuple[Path, Path], new_camera: Path, tuned: Path, tmp_path: Path, kill_at: int
) -> None:
    folders = [str(f) for f in (*viper_cameras, new_camera)]

    def command(store: Path) -> list[str]:
        trackid = str(Path(sys.executable).parent / "trackid")
        options = ["--site", "north", "--tuned", str(tuned), "--store", str(store), "--out", str(store.parent)]
        return [trackid, "photos", "ingest", *folders, *options, "--set", "photos.adaptation_warmup=10"]

    whole = tmp_path / "whole" / "g.db"
    whole.parent.mkdir()
    subprocess.run(command(whole), check=True, capture_output=True, timeout=300)
    report = json.loads((whole.parent / "ingest_report.json").read_text())
    assert report["cameras"]["adapted"] == ["cam3"] and report["cameras"]["adapted_in_this_ingest"] == {"cam3": 10}

    killed = tmp_path / "killed" / "g.db"
    killed.parent.mkdir()
    proc = subprocess.Popen(command(killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    written = 0
    deadline = time.monotonic() + 120
    while written < kill_at and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
        if killed.exists():
            try:
                with sqlite3.connect(f"file:{killed}?mode=ro", uri=True, timeout=1) as conn:
                    written = conn.execute("SELECT count(*) FROM sightings").fetchone()[0]
            except sqlite3.OperationalError:  # schema not there yet
                written = 0
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(killed) as conn:
        interrupted = conn.execute("SELECT count(*) FROM sightings").fetchone()[0]
        frozen = conn.execute("SELECT count(*) FROM camera_stats WHERE adaptation IS NOT NULL").fetchone()[0]
    assert kill_at <= interrupted < 2 * PEOPLE + 30, f"the kill must land mid-ingest; {interrupted} sightings"
    assert frozen == (interrupted > 2 * PEOPLE)  # cam3's mean is stored before its first decided sighting

    subprocess.run(command(killed), check=True, capture_output=True, timeout=300)
    resumed, uninterrupted = _store_contents(killed), _store_contents(whole)
    # a resumed batch embeds and matches other rows together, so similarities may differ in the last float bits
    # (0.29686 vs 0.29687 seen): the same decisions, similarities equal to 1e-4
    a, b = (np.array([r[0] for r in x.pop("similarities")], float) for x in (resumed, uninterrupted))
    far = np.flatnonzero(~np.isclose(a, b, atol=1e-4, rtol=0))
    assert not len(far), (
        f"{len(far)} of {len(a)} differ, first at {far[:5]}: {a[far[:5]]} vs {b[far[:5]]}; {interrupted}"
    )
    assert resumed == uninterrupted
    with sqlite3.connect(killed) as conn, sqlite3.connect(whole) as other:
        query = "SELECT camera, adaptation FROM camera_stats ORDER BY camera"
        mine, theirs = conn.execute(query).fetchall(), other.execute(query).fetchall()
    assert [camera for camera, _ in mine] == [camera for camera, _ in theirs]
    for (_, a), (_, b) in zip(mine, theirs, strict=True):  # the cameras' means, to the same float noise
        a, b = (json.loads(x) if x is not None else None for x in (a, b))
        if a is None or b is None:
            assert a == b
            continue
        assert {k: v for k, v in a.items() if k != "total"} == {k: v for k, v in b.items() if k != "total"}
        assert np.allclose(a["total"], b["total"], atol=1e-5, rtol=0)


def test_cli_names_missing_inputs(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["photos", "ingest", str(tmp_path), "--site", "x", "--tuned", str(tmp_path / "t")])
    assert result.exit_code == 2 and "tuned settings not found" in result.output
    result = runner.invoke(app, ["photos", "tune", str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "give --labels CSV and/or --label-pattern" in result.output
    bad = tmp_path / "labels.csv"
    bad.write_text("file,who\na.jpg,1\n")
    result = runner.invoke(app, ["photos", "tune", str(tmp_path), "--labels", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "missing column(s) ['image', 'individual']" in result.output


def test_validate_scores_decisions_against_labels(tmp_path: Path) -> None:
    """Two deer with 6 sightings each: one decision took the other's profile, one sighting started a second
    profile; accuracy of individuals with >= 5 sightings and the false-match rate follow by hand."""
    from trackid.identity.stores import SimilarityRecord

    store = make_store(tmp_path / "g.db", index_kind="exact")
    m = {"model_id": "m", "model_version": "1"}
    doe, buck, stray = (store.create_identity().id for _ in range(3))
    plan = [("doe", doe, "new")] + [("doe", doe, "match")] * 5 + [("buck", buck, "new")]
    plan += [("buck", buck, "match")] * 3 + [("buck", doe, "match"), ("buck", stray, "new")]
    records = []
    for i, (who, identity, decision) in enumerate(plan):
        sighting = store.add_sighting(
            np.ones(4), **m, time=float(i), identity_id=identity, source={"image": f"/photos/{who}_{i}.jpg"}
        )
        records.append(SimilarityRecord(sighting.id, identity, 0.5, 0.5, 0.4, decision, "m", "1", float(i)))
    store.log_similarities(records)
    result = validate(store, Labels(pattern=r"^(?P<individual>[a-z]+)_"), PhotoTargets(), tmp_path / "v")
    metrics = result["metrics"]
    assert metrics["outcomes"] == {"new_correct": 2, "match_correct": 8, "match_wrong": 1, "new_but_known": 1}
    assert metrics["false_match_rate"] == pytest.approx(1 / 12)
    assert metrics["wrong_share_of_matches"] == pytest.approx(1 / 9)
    assert metrics["assignment_rate"] == pytest.approx(9 / 12)
    assert metrics["accuracy_5plus"] == pytest.approx((6 + 4) / 12) and metrics["individuals_5plus"] == 2
    assert result["checks"]["false_match_rate"] == "FAIL" and result["verdict"] == "FAIL"  # 8.3 % > 5 %
    store.close()


def test_attribute_labels_gate_matches_at_ingest(viper_cameras: tuple[Path, Path], tuned: Path, tmp_path: Path) -> None:
    """With a threshold that accepts anything, a photo labelled sex=M cannot join the profile of one labelled F."""
    settings = Tuned.load(tuned)
    permissive = Tuned(settings.embedder, settings.calibrator, 1e-6, 0.5)
    folder = tmp_path / "photos"
    folder.mkdir()
    first, second = sorted(viper_cameras[0].iterdir())[:2]
    for photo in (first, second):
        (folder / photo.name).symlink_to(photo.resolve())
    labels = tmp_path / "labels.csv"
    labels.write_text(f"image,individual,sex\n{first.name},a,F\n{second.name},b,M\n")
    gallery = GalleryConfig(store=str(tmp_path / "gated.db"))
    run = ingest(
        [folder], site="s", config=PhotosConfig(), gallery_config=gallery, tuned=permissive, labels=Labels(labels)
    )
    assert run.decisions == {"new": 2}
    with gallery.open_store() as store:
        assert sorted(i.attributes["sex"] for i in store.identities()) == ["F", "M"]
    ungated = GalleryConfig(store=str(tmp_path / "open.db"))
    run = ingest([folder], site="s", config=PhotosConfig(), gallery_config=ungated, tuned=permissive)
    assert run.decisions == {"new": 1, "match": 1}  # the same threshold matches them when nothing forbids it


def test_photo_commands_write_run_folder_manifests(
    viper_cameras: tuple[Path, Path], tuned: Path, tmp_path: Path
) -> None:
    """Issue #14: the photos commands get the one manifest schema (and a store's password never lands in it)."""
    runner = CliRunner()
    store = ["--store", str(tmp_path / "g.db")]
    out = tmp_path / "ingest"
    result = runner.invoke(
        app, ["photos", "ingest", str(viper_cameras[0]), "--site", "n", "--tuned", str(tuned), "-o", str(out), *store]
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["command"] == "photos-ingest" and manifest["status"] == "complete" and manifest["schema"] == 1
    assert manifest["sightings_written"] == PEOPLE and manifest["files"]["report"] == "ingest_report.json"
    assert len(manifest["inputs"]) == 1 and manifest["config"]["site"] == "n"
    result = runner.invoke(app, ["photos", "monitor", "-o", str(tmp_path / "monitor"), *store])
    assert result.exit_code == 0, result.output
    keys = {"schema", "command", "status", "created", "trackid", "versions", "config", "inputs", "warnings", "files"}
    for folder, command in ((out, "photos-ingest"), (tmp_path / "monitor", "photos-monitor"), (tuned, "photos-tune")):
        manifest = json.loads((folder / "manifest.json").read_text())
        assert set(manifest) >= keys and (manifest["command"], manifest["status"]) == (command, "complete")
        assert manifest["files"]["log"] == "log.jsonl"
        records = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]
        assert records and all({"level", "time", "module", "message"} <= set(r) for r in records)
    from types import SimpleNamespace

    from trackid.cli.photos import _run_folder

    run = SimpleNamespace(gallery=SimpleNamespace(store="postgresql://me:secret@db/gallery"), photos=PhotosConfig())
    _run_folder(tmp_path / "pg", "photos-monitor", run, [], False).write()
    text = (tmp_path / "pg" / "manifest.json").read_text()
    assert "secret" not in text and "postgresql://me:***@db/gallery" in text


def test_cameras_tuned_under_one_root_are_centred_when_ingested_under_another(
    viper_cameras: tuple[Path, Path], tmp_path: Path
) -> None:
    """Issue #15, item 1: `tune tunephotos/` then `ingest photos/` with the same cam1/, cam2/ layout left both
    cameras uncentred (398 of 400 sightings in 2 identities), and only ingest_report.json said so. A camera tune
    never saw is now warned of on the console, in the log and in the manifest."""
    runner = CliRunner()
    tuned = tmp_path / "tuned"
    root = viper_cameras[0].parent
    result = runner.invoke(app, ["photos", "tune", str(root), "--label-pattern", VIPER_PATTERN, "-o", str(tuned)])
    assert result.exit_code == 0, result.output
    settings = Tuned.load(tuned)
    assert settings.centring is not None and set(settings.centring.means_) == {"cam1", "cam2"}
    photos = tmp_path / "photos"
    picks = (("cam1", viper_cameras[0], slice(0, 3)), ("cam2", viper_cameras[1], slice(0, 3)))
    for camera, source, which in (*picks, ("cam3", viper_cameras[1], slice(3, 7))):
        (photos / camera).mkdir(parents=True)
        for photo in sorted(source.iterdir())[which]:
            (photos / camera / photo.name).symlink_to(photo.resolve())
    out = tmp_path / "ingest"
    store = ["--store", str(tmp_path / "g.db")]
    result = runner.invoke(
        app, ["photos", "ingest", str(photos), "--site", "n", "--tuned", str(tuned), "-o", str(out), *store]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "ingest_report.json").read_text())
    assert report["uncentred_cameras"] == ["cam3"] and report["camera_sources"] == {"folder": 10}
    warning = "camera 'cam3' (4 photos) was not seen by `photos tune`"
    assert warning in " ".join(result.output.split())
    manifest = json.loads((out / "manifest.json").read_text())
    # issue #16: cam3 is held back for its warm-up, which 4 photos do not finish: stored unmatched, warned of too
    assert len(manifest["warnings"]) == 2 and manifest["warnings"][0].startswith(warning)
    assert manifest["warnings"][1].startswith("camera 'cam3': its warm-up is not over (4 of 50 crops)")
    assert report["cameras"]["unadapted"] == ["cam3"] and report["cameras"]["awaiting_adaptation"] == {"cam3": 4}
    logged = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [(r["level"], r["camera_id"]) for r in logged if warning in r["message"]] == [("WARNING", "cam3")]


def _timed_copies(viper_cameras: tuple[Path, Path], folder: Path, times: list[float]) -> list[Path]:
    """Copies (not links: their file times are set) of the first photos of camera 1, timed by their files."""
    folder.mkdir(parents=True)
    copies = []
    for photo, when in zip(sorted(viper_cameras[0].iterdir()), times, strict=False):
        copy = folder / photo.name
        copy.write_bytes(photo.read_bytes())
        os.utime(copy, (when, when))
        copies.append(copy)
    return copies


def _photos_per_sighting(store_path: Path) -> list[list[str]]:
    with sqlite3.connect(store_path) as conn:
        return [json.loads(row[0])["photo_sha256"] for row in conn.execute("SELECT source FROM sightings")]


def test_regrouped_bursts_and_a_late_photo_never_store_a_photo_twice(
    viper_cameras: tuple[Path, Path], tuned: Path, tmp_path: Path
) -> None:
    """Issue #15, item 6: re-ingesting with another burst_gap_s regrouped bursts and stored their photos again; a
    late photo with an earlier time re-stored its whole burst. Sightings are now keyed by photo content."""
    root = tmp_path / "photos" / "cam1"
    times = [1000.0, 1001.0, 1002.0, 2000.0, 2001.0, 3000.0, 3001.0, 3002.0]
    _timed_copies(viper_cameras, root, times)
    gallery = GalleryConfig(store=str(tmp_path / "g.db"))
    settings = Tuned.load(tuned)

    def run(gap: float) -> Any:
        config = PhotosConfig(burst_gap_s=gap, bursts_from_file_times=True)
        return ingest([root], site="s", config=config, gallery_config=gallery, tuned=settings)

    first = run(10.0)
    assert (first.bursts, first.sightings_written) == (3, 3)
    for gap in (0.5, 5000.0):
        again = run(gap)
        assert again.sightings_written == 0 and again.photos_already_stored == len(times)
    assert again.bursts_already_stored == again.bursts == 1

    late = _timed_copies(viper_cameras, tmp_path / "late", [0.0] * 9)[-1]
    os.replace(late, root / late.name)
    os.utime(root / late.name, (995.0, 995.0))  # before the first burst, within its gap
    with_late = run(10.0)
    assert with_late.sightings_written == 1 and with_late.photos_already_stored == len(times)
    stored = [h for photos in _photos_per_sighting(tmp_path / "g.db") for h in photos]
    assert len(stored) == len(set(stored)) == len(times) + 1


def test_stores_written_before_photo_hashes_were_recorded_are_not_ingested_twice(
    viper_cameras: tuple[Path, Path], tuned: Path, tmp_path: Path
) -> None:
    """A store written before sightings named their photos' hashes: its photo paths and burst keys say which photos
    it holds, so regrouping it stores nothing again."""
    root = tmp_path / "photos" / "cam1"
    _timed_copies(viper_cameras, root, [1000.0, 1001.0, 1002.0, 2000.0])
    gallery = GalleryConfig(store=str(tmp_path / "g.db"))
    settings = Tuned.load(tuned)
    config = PhotosConfig(burst_gap_s=10.0, bursts_from_file_times=True)
    assert ingest([root], site="s", config=config, gallery_config=gallery, tuned=settings).sightings_written == 2
    with sqlite3.connect(tmp_path / "g.db") as conn:
        conn.execute("UPDATE sightings SET source = json_remove(source, '$.photo_sha256')")
    regrouped = PhotosConfig(burst_gap_s=0.5, bursts_from_file_times=True)
    again = ingest([root], site="s", config=regrouped, gallery_config=gallery, tuned=settings)
    assert again.sightings_written == 0 and again.photos_already_stored == 4
