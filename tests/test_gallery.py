"""The gallery end to end on a real SQLite store: recognise, remember, decide jointly, log, reprocess, learn."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from trackid.identity.calibration import MatchCalibrator
from trackid.identity.gallery import Gallery
from trackid.identity.settings import LogRetention
from trackid.identity.stores import make_store
from trackid.types import Tracklet

DIM = 32
MODEL = {"model_id": "synthetic-embedder", "model_version": "1"}


def _people(n: int, seed: int = 0) -> np.ndarray:
    centres = np.random.default_rng(seed).normal(size=(n, DIM))
    return centres / np.linalg.norm(centres, axis=1, keepdims=True)


def _views(centres: np.ndarray, noise: float, seed: int) -> np.ndarray:
    """Sightings of the given people: their centre plus noise (synthetic stand-ins for embeddings)."""
    views = centres + noise * np.random.default_rng(seed).normal(size=centres.shape) / np.sqrt(DIM)
    return (views / np.linalg.norm(views, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def calibrator() -> MatchCalibrator:
    """Fitted on labelled pairs of the same synthetic model: same person vs different people."""
    people = _people(200, seed=1)
    a, b = _views(people, 0.5, 2), _views(people, 0.5, 3)
    sims = a @ b.T
    same = np.eye(len(people), dtype=bool)
    return MatchCalibrator().fit(sims.ravel(), same.ravel())


def _gallery(path: Path, calibrator: MatchCalibrator, **kwargs: object) -> Gallery:
    threshold = calibrator.threshold_for_false_match_rate(0.01)
    return Gallery(make_store(path, index_kind="exact"), calibrator=calibrator, threshold=threshold, **MODEL, **kwargs)  # type: ignore[arg-type]


def test_new_people_then_recognised_after_restart(tmp_path: Path, calibrator: MatchCalibrator) -> None:
    people = _people(12)
    gallery = _gallery(tmp_path / "g.db", calibrator)
    first = gallery.identify_vectors(_views(people, 0.5, 10), time=100.0, site="north")
    assert [r.match.decision for r in first] == ["new"] * 12
    ids = [r.identity_id for r in first]
    assert len(set(ids)) == 12
    gallery.store.close()

    gallery = _gallery(tmp_path / "g.db", calibrator)  # identities survive a restart
    second = gallery.identify_vectors(_views(people, 0.5, 11), time=200.0, site="north")
    recognised = [r.identity_id for r in second if r.match.decision == "match"]
    assert len(recognised) >= 10
    assert all(r.identity_id == ids[i] for i, r in enumerate(second) if r.match.decision == "match")
    log = gallery.store.similarity_log()
    assert len(log) == 24 and {rec.decision for rec in log} >= {"new", "match"}
    assert all(rec.threshold == gallery.threshold for rec in log)
    gallery.store.close()


def test_a_batch_cannot_give_one_identity_to_two_queries(tmp_path: Path, calibrator: MatchCalibrator) -> None:
    person = _people(1, seed=5)
    gallery = _gallery(tmp_path / "g.db", calibrator)
    (known,) = gallery.identify_vectors(_views(person, 0.3, 1), time=1.0)
    both = gallery.identify_vectors(np.concatenate([_views(person, 0.3, 2), _views(person, 0.3, 3)]), time=2.0)
    decisions = sorted(r.match.decision for r in both)
    assert decisions[0] == "match" and decisions[1] in ("new", "new_conflict")
    assert [r.identity_id for r in both].count(known.identity_id) == 1
    gallery.store.close()


@pytest.mark.parametrize("index_kind", ["hnsw", "exact"])
def test_batched_and_per_query_identify_decide_the_same(
    tmp_path: Path, calibrator: MatchCalibrator, index_kind: str
) -> None:
    """The batched path is an optimisation, not another policy: from identical copies of one store, deciding queries
    of distinct people one per call or all in one call gives the same decisions, identities and similarities."""
    people = _people(300, seed=20)
    seed = make_store(tmp_path / "seed" / "g.db", index_kind=index_kind)
    seed.register_model(**MODEL, dim=DIM)
    ids = seed.create_identities(len(people))
    seed.add_sightings(_views(people, 0.3, 21), **MODEL, times=1.0, identity_ids=ids)
    seed.close()
    strangers = _people(40, seed=22)
    queries = np.concatenate([_views(people[:120], 0.3, 23), _views(strangers, 0.3, 24)])
    queries = queries[np.random.default_rng(25).permutation(len(queries))]
    # P(same) at cosine 0.8: re-sightings (~0.9) pass, no stranger (the best of 300 random 32-d cosines, ~0.6)
    # takes someone's identity, so a batch's queries never compete for one
    threshold = float(calibrator.predict_proba(np.array([0.8]))[0])
    outcomes = {}
    for path, size in (("one", 1), ("all", len(queries))):
        shutil.copytree(tmp_path / "seed", tmp_path / path, ignore=shutil.ignore_patterns("*.lock"))
        store = make_store(tmp_path / path / "g.db", index_kind=index_kind)
        gallery = Gallery(store, calibrator=calibrator, threshold=threshold, **MODEL)  # type: ignore[arg-type]
        decided = [
            r
            for at in range(0, len(queries), size)
            for r in gallery.identify_vectors(queries[at : at + size], time=2.0)
        ]
        # a new identity's id and closest candidate are not compared: one query at a time sees the strangers
        # before it as identities, a batch does not (its queries never match each other)
        outcomes[path] = [
            (r.match.decision, r.identity_id, r.match.similarity)
            if r.match.decision == "match"
            else (r.match.decision,)
            for r in decided
        ]
        store.close()
    assert outcomes["one"] == outcomes["all"]
    assert 110 <= sum(o[0] == "match" for o in outcomes["one"]) <= 120


def test_unassigned_sightings_are_reprocessed_once(tmp_path: Path, calibrator: MatchCalibrator) -> None:
    people = _people(6, seed=7)
    gallery = _gallery(tmp_path / "g.db", calibrator)
    gallery.identify_vectors(_views(people, 0.4, 1), time=1.0)
    gallery.store.close()  # one open store at a time
    strict = _gallery(tmp_path / "g.db", calibrator, create_new=False)
    strict.threshold = 1.0  # nothing reaches it (probabilities stay below 1): the sightings stay unassigned
    held = strict.identify_vectors(_views(people, 0.4, 2), time=2.0)
    assert all(r.identity_id is None for r in held)
    assert len(strict.store.sightings(unassigned=True)) == 6
    strict.threshold = calibrator.threshold_for_false_match_rate(0.01)  # threshold tuned: re-decide them
    counts = strict.reprocess_unassigned()
    assert counts["reprocessed"] == 6 and counts["assigned"] >= 5
    again = strict.reprocess_unassigned()  # resumable: what was assigned is not reprocessed
    assert again["reprocessed"] == counts["still_unassigned"]
    strict.store.close()


def test_corrections_refit_the_calibration(tmp_path: Path, calibrator: MatchCalibrator) -> None:
    people = _people(2, seed=9)
    gallery = _gallery(tmp_path / "g.db", calibrator)
    with pytest.raises(ValueError, match="both same and different pairs"):
        gallery.refit_calibration()
    first = gallery.identify_vectors(_views(people, 0.4, 1), time=1.0)
    # a reviewer finds person 0 filed twice (merge: a "same" pair) ...
    duplicate = gallery.store.create_identity()
    gallery.store.add_sighting(_views(people[:1], 0.4, 2)[0], time=2.0, identity_id=duplicate.id, **MODEL)
    gallery.store.merge(int(first[0].identity_id), duplicate.id)  # type: ignore[arg-type]
    # ... and person 1's identity holding someone else's later sighting (split: a "different" pair)
    gallery.store.add_sighting(
        _views(_people(1, seed=99), 0.4, 3)[0], time=9.0, identity_id=first[1].identity_id, **MODEL
    )
    gallery.store.split(int(first[1].identity_id), at=5.0)  # type: ignore[arg-type]
    refit = gallery.refit_calibration()
    assert refit is gallery.calibrator and refit.n_positive_ >= 1 and refit.n_negative_ >= 1
    gallery.store.close()


def test_log_retention_prunes_as_the_gallery_logs(tmp_path: Path, calibrator: MatchCalibrator) -> None:
    retention = LogRetention(max_age_days=None, max_rows=5, prune_every=4)
    gallery = _gallery(tmp_path / "g.db", calibrator, log_retention=retention)
    people = _people(3, seed=4)
    for t in range(4):  # 3 decisions logged per call: pruned after the 2nd (6 >= 4) and the 4th call
        gallery.identify_vectors(_views(people, 0.4, t), time=float(t))
    log = gallery.store.similarity_log()
    assert len(log) == 5 and [rec.query for rec in log] == list(range(8, 13))
    keep_all = _gallery(tmp_path / "g2.db", calibrator)  # no retention: nothing is dropped
    for t in range(4):
        keep_all.identify_vectors(_views(people, 0.4, t), time=float(t))
    assert len(keep_all.store.similarity_log()) == 12
    gallery.store.close()
    keep_all.store.close()


def test_reprocess_uses_the_vectors_reembed_added(tmp_path: Path, calibrator: MatchCalibrator) -> None:
    people = _people(4, seed=12)
    store = make_store(tmp_path / "g.db", index_kind="exact")
    old = {"model_id": "old", "model_version": "0"}
    known = [store.create_identity().id for _ in people]
    for identity_id, view in zip(known, _views(people, 0.4, 1), strict=True):  # known people, in both models
        sighting = store.add_sighting(np.ones(3), **old, time=1.0, identity_id=identity_id)
        store.add_sighting_vectors([sighting.id], view[None], **MODEL)
    later = [store.add_sighting(np.ones(3), **old, time=2.0).id for _ in people]  # unassigned, old model only
    store.add_sighting_vectors(later, _views(people, 0.4, 2), **MODEL)
    gallery = Gallery(store, calibrator=calibrator, threshold=calibrator.threshold_for_false_match_rate(0.01), **MODEL)
    counts = gallery.reprocess_unassigned()
    assert counts["reprocessed"] == 4 and counts["assigned"] >= 3
    assert all(store.get_sighting(s).identity_id in (k, None) for s, k in zip(later, known, strict=True))
    store.close()


def test_bad_arguments_are_named(tmp_path: Path, calibrator: MatchCalibrator) -> None:
    store = make_store(tmp_path / "g.db", index_kind="exact")
    with pytest.raises(ValueError, match="threshold"):
        Gallery(store, calibrator=calibrator, threshold=0.0, **MODEL)
    gallery = Gallery(store, calibrator=calibrator, threshold=0.5, **MODEL)
    with pytest.raises(ValueError, match="quality"):
        gallery.identify_vectors(_views(_people(2), 0.1, 1), time=1.0, quality=[1.0])
    with pytest.raises(ValueError, match="sources has 1 entries for 2 vectors"):
        gallery.identify_vectors(_views(_people(2), 0.1, 1), time=1.0, sources=[{"image": "a.jpg"}])
    store.close()


def _store_with_corrections(path: Path, calibrator: MatchCalibrator) -> list[int]:
    """A store whose corrections give same and different pairs; returns the identities of 10 people."""
    people = _people(10, seed=21)
    gallery = _gallery(path, calibrator)
    ids = [int(r.identity_id) for r in gallery.identify_vectors(_views(people, 0.4, 1), time=1.0)]  # type: ignore[arg-type]
    for i in range(3):
        twin = gallery.store.create_identity()
        gallery.store.add_sighting(_views(people[i : i + 1], 0.4, 10 + i)[0], time=2.0, identity_id=twin.id, **MODEL)
        gallery.store.merge(ids[i], twin.id)
    for i in range(3, 6):
        stranger = _views(_people(1, seed=100 + i), 0.4, 3)[0]
        gallery.store.add_sighting(stranger, time=9.0, identity_id=ids[i], **MODEL)
        gallery.store.split(ids[i], at=5.0)
    gallery.store.close()
    return ids


def test_cli_report_and_reprocess(tmp_path: Path, calibrator: MatchCalibrator) -> None:
    from typer.testing import CliRunner

    from trackid.cli import app

    db = tmp_path / "g.db"
    _store_with_corrections(db, calibrator)
    runner = CliRunner()
    model = ["--model-id", MODEL["model_id"], "--model-version", MODEL["model_version"]]
    out, saved = tmp_path / "report", tmp_path / "calibrator.json"
    result = runner.invoke(
        app, ["gallery", "report", "--store", str(db), *model, "--out", str(out), "--save-calibrator", str(saved)]
    )
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} >= {"report.html", "report.json", "roc.png", "calibration.png"}
    assert saved.is_file()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["command"] == "gallery-report" and manifest["status"] == "complete" and manifest["pairs"] > 0

    strict = _gallery(db, calibrator, create_new=False)
    strict.threshold = 1.0  # nothing reaches it: these stay unassigned
    strict.identify_vectors(_views(_people(10, seed=21)[:4], 0.4, 7), time=20.0)
    strict.store.close()
    result = runner.invoke(
        app,
        [
            "gallery",
            "reprocess",
            "--store",
            str(db),
            *model,
            "--calibrator",
            str(saved),
            "--unassigned",
            "--threshold",
            str(calibrator.threshold_for_false_match_rate(0.01)),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "reprocessed: 4" in result.output


def test_cli_report_needs_both_kinds_of_pairs(tmp_path: Path, calibrator: MatchCalibrator) -> None:
    from typer.testing import CliRunner

    from trackid.cli import app

    db = tmp_path / "g.db"
    gallery = _gallery(db, calibrator)
    gallery.identify_vectors(_views(_people(3), 0.4, 1), time=1.0)
    gallery.store.close()
    model = ["--model-id", MODEL["model_id"], "--model-version", MODEL["model_version"]]
    result = CliRunner().invoke(app, ["gallery", "report", "--store", str(db), *model, "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "needs both" in result.output
    failed = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert failed["status"] == "failed" and "needs both" in failed["error"]
    result = CliRunner().invoke(
        app,
        [
            "gallery",
            "report",
            "--store",
            str(db),
            "--model-id",
            "other",
            "--model-version",
            "9",
            "--out",
            str(tmp_path / "r2"),
        ],
    )
    assert result.exit_code == 2 and "no such model" in result.output


def _tracklet(track_id: int, vector: np.ndarray, first_frame: int, source: str = "cam.mp4") -> Tracklet:
    frames = np.arange(first_frame, first_frame + 3, dtype=np.int64)
    return Tracklet(
        track_id=track_id,
        camera_id="north",
        class_id=0,
        frames=frames,
        times=frames / 10.0,
        boxes=np.tile([10.0, 20.0, 50.0, 120.0], (3, 1)),
        scores=np.full(3, 0.9),
        quality=np.array([0.2, 0.7, 0.5]),
        embedding=vector.astype(np.float32),
        crop_frames=(int(frames[1]),),
        source=source,
    )


def test_identify_tracklets(tmp_path: Path, calibrator: MatchCalibrator) -> None:
    """Tracklets are the gallery's queries: one sighting each, with the tracklet's time, camera, best quality and
    where its pixels are; a re-run over the same video stores nothing twice."""
    gallery = _gallery(tmp_path / "g.db", calibrator)
    people = _people(3)
    first = gallery.identify([_tracklet(i + 1, v, 1 + 10 * i) for i, v in enumerate(_views(people, 0.4, 1))])
    assert [r.match.decision for r in first] == ["new"] * 3
    (sighting,) = [s for s in gallery.store.sightings() if s.id == first[1].sighting_id]
    assert (sighting.time, sighting.camera, sighting.quality) == (1.1, "north", 0.7)
    assert sighting.source is not None and sighting.source["frame"] == 12 and sighting.source["track_id"] == 2
    later = gallery.identify([_tracklet(7, _views(people[2:], 0.4, 2)[0], 100, source="cam2.mp4")])
    assert later[0].match.decision == "match" and later[0].identity_id == first[2].identity_id
    with pytest.raises(ValueError, match="already stored"):
        gallery.identify([_tracklet(1, _views(people, 0.4, 1)[0], 1)])


def test_identify_tracklets_names_what_is_missing(tmp_path: Path, calibrator: MatchCalibrator) -> None:
    gallery = _gallery(tmp_path / "g.db", calibrator)
    bare = replace(_tracklet(4, _people(1)[0], 1), embedding=np.zeros(0, np.float32))
    with pytest.raises(ValueError, match="tracklet north/4 has no embedding"):
        gallery.identify([bare])
    timeless = replace(_tracklet(5, _people(1)[0], 1), times=np.full(3, np.nan))
    with pytest.raises(ValueError, match="tracklet north/5 has no time"):
        gallery.identify([timeless])
    assert gallery.identify([]) == []
