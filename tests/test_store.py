"""The gallery store contract, run on both backends: SQLite + HNSW file and a real PostgreSQL + pgvector."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from trackid.identity.index import HnswIndex
from trackid.identity.settings import GalleryConfig
from trackid.identity.stores import STORES, GalleryStore, SimilarityRecord, StoreError, make_store
from trackid.identity.stores.sqlite import SqliteGalleryStore

DIM = 8
M = {"model_id": "mnv2", "model_version": "1"}

OpenStore = Callable[..., GalleryStore]


def unit(i: int, noise: float = 0.0, seed: int = 0) -> NDArray[np.float32]:
    """Basis vector `i` plus a little noise: distinct individuals are orthogonal, sightings of one are close."""
    rng = np.random.default_rng(seed)
    v = np.eye(DIM, dtype=np.float32)[i] + noise * rng.normal(size=DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def test_create_assign_and_search(open_store: OpenStore) -> None:
    store = open_store()
    assert isinstance(store, GalleryStore)
    alice, bob = store.create_identity(label="alice"), store.create_identity(label="bob")
    for t, seed in ((10.0, 1), (30.0, 2)):
        store.add_sighting(unit(0, 0.05, seed), **M, time=t, identity_id=alice.id, camera="c1")
    loose = store.add_sighting(unit(1, 0.05, 3), **M, time=20.0, quality=0.8)
    assert loose.identity_id is None and [s.id for s in store.sightings(unassigned=True)] == [loose.id]
    store.assign_sighting(loose.id, bob.id)

    got = store.get_identity(alice.id)
    assert (got.first_seen, got.last_seen, got.sighting_count) == (10.0, 30.0, 2)
    assert store.get_sighting(loose.id).identity_id == bob.id
    (hits,) = store.search(unit(0, 0.05, 9), **M, k=2)
    assert [h.identity_id for h in hits] == [alice.id, bob.id]
    assert hits[0].similarity > 0.9 > hits[1].similarity
    batch = store.search(np.stack([unit(1), unit(0)]), **M, k=1)
    assert [b[0].identity_id for b in batch] == [bob.id, alice.id]

    store.unassign_sighting(loose.id)
    assert store.get_identity(bob.id).sighting_count == 0 and store.prototypes(bob.id) == []
    assert [h.identity_id for h in store.search(unit(1), **M, k=5)[0]] == [alice.id]


def test_prototypes_are_few_and_quality_weighted(open_store: OpenStore) -> None:
    store = open_store(max_prototypes=3, merge_similarity=0.95)
    ident = store.create_identity()
    qualities = [0.2, 0.9, 0.5, 0.1, 0.8, 0.3, 0.7]
    for i, q in enumerate(qualities):  # seven distinct appearances compete for three slots
        store.add_sighting(unit(i), **M, time=float(i), quality=q, identity_id=ident.id)
    protos = store.prototypes(ident.id)
    assert len(protos) == 3
    assert sorted(round(p.quality, 6) for p in protos) == [0.7, 0.8, 0.9]
    assert all(p.model_id == "mnv2" and p.model_version == "1" for p in protos)

    # A near-duplicate of the best appearance folds into its prototype, weighted by quality, instead of a slot.
    store.add_sighting(unit(1, 0.01, 5), **M, time=9.0, quality=0.6, identity_id=ident.id)
    protos = store.prototypes(ident.id)
    merged = max(protos, key=lambda p: p.quality)
    assert len(protos) == 3 and merged.sighting_count == 2 and merged.quality == pytest.approx(1.5)
    assert float(merged.vector @ unit(1)) > 0.99
    assert store.check_integrity().ok


def test_models_never_mix_and_mismatches_are_errors(open_store: OpenStore) -> None:
    store = open_store()
    a, b = store.create_identity(), store.create_identity()
    store.add_sighting(unit(0), **M, time=0.0, identity_id=a.id)
    store.add_sighting(unit(0), model_id="mnv2", model_version="2", time=0.0, identity_id=b.id)
    assert [h.identity_id for h in store.search(unit(0), **M, k=5)[0]] == [a.id]
    assert [h.identity_id for h in store.search(unit(0), model_id="mnv2", model_version="2")[0]] == [b.id]

    with pytest.raises(ValueError, match="dimension 4"):
        store.add_sighting(np.ones(4), **M, time=0.0)
    with pytest.raises(ValueError, match="queries has dimension 16"):
        store.search(np.ones(16), **M)
    with pytest.raises(ValueError, match="model_id 'other'"):
        store.search(unit(0), model_id="other", model_version="1")
    with pytest.raises(ValueError, match="dimension 8 in this store, not 16"):
        store.register_model("mnv2", "1", 16)
    assert store.register_model("mnv2", "1", DIM).dim == DIM


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_vectors_are_rejected(open_store: OpenStore, bad: float) -> None:
    store = open_store()
    store.add_sighting(unit(0), **M, time=0.0)
    vector = unit(1)
    vector[3] = bad
    with pytest.raises(ValueError, match="vector contains NaN or infinite"):
        store.add_sighting(vector, **M, time=1.0)
    with pytest.raises(ValueError, match=r"queries\[0\] contains NaN or infinite"):
        store.search(vector, **M)
    with pytest.raises(ValueError, match="zero norm"):
        store.add_sighting(np.zeros(DIM), **M, time=1.0)
    with pytest.raises(ValueError, match="time must be finite"):
        store.add_sighting(unit(1), **M, time=bad)
    assert len(store.sightings()) == 1


def test_unknown_ids_are_errors(open_store: OpenStore) -> None:
    store = open_store()
    known = store.create_identity()
    sighting = store.add_sighting(unit(0), **M, time=0.0)
    with pytest.raises(KeyError, match="identity_id 999"):
        store.get_identity(999)
    with pytest.raises(KeyError, match="identity_id 999"):
        store.add_sighting(unit(0), **M, time=0.0, identity_id=999)
    with pytest.raises(KeyError, match="identity_id 999"):
        store.assign_sighting(sighting.id, 999)
    with pytest.raises(KeyError, match="sighting_id 999"):
        store.assign_sighting(999, known.id)
    with pytest.raises(KeyError, match="from_id 999"):
        store.merge(known.id, 999)
    with pytest.raises(KeyError, match="identity_id 999"):
        store.relabel(999, "x")
    assert len(store.sightings()) == 1, "a failed add leaves nothing behind"


def test_time_window_and_site_filters(open_store: OpenStore) -> None:
    store = open_store()
    early = store.create_identity(site="north")
    late = store.create_identity()
    store.add_sighting(unit(0, 0.1, 1), **M, time=100.0, site="north", identity_id=early.id)
    store.add_sighting(unit(0, 0.1, 2), **M, time=500.0, site="south", identity_id=late.id)

    def found(**filters: object) -> list[int]:
        return [h.identity_id for h in store.search(unit(0), **M, k=5, **filters)[0]]

    assert sorted(found()) == [early.id, late.id]
    assert found(since=0.0, until=200.0) == [early.id]
    assert found(since=400.0) == [late.id]
    assert found(until=50.0) == []
    assert found(site="south") == [late.id]
    assert found(site="north") == [early.id]
    assert found(site="south", until=200.0) == []


def test_attribute_gates(open_store: OpenStore) -> None:
    store = open_store()
    female = store.create_identity(attributes={"sex": "F", "species": "lynx"})
    male = store.create_identity(attributes={"sex": "M", "species": "lynx"})
    unknown = store.create_identity(attributes={"species": "lynx"})
    for i, ident in enumerate((female, male, unknown)):
        store.add_sighting(unit(0, 0.1, i), **M, time=float(i), identity_id=ident.id)
    gated = store.search(unit(0), **M, k=5, attributes={"sex": "F"})[0]
    assert sorted(h.identity_id for h in gated) == [female.id, unknown.id], "unknown sex is not a contradiction"
    assert store.search(unit(0), **M, k=5, attributes={"species": "wolf"})[0] == []
    assert store.get_identity(female.id).attributes == {"sex": "F", "species": "lynx"}
    with pytest.raises(ValueError, match="attributes must be JSON"):
        store.create_identity(attributes={"when": object()})


def test_merge_split_and_their_labelled_pairs(open_store: OpenStore) -> None:
    store = open_store()
    a, b = store.create_identity(label="a"), store.create_identity(label="b")
    a_ids = [store.add_sighting(unit(0, 0.1, s), **M, time=float(s), identity_id=a.id).id for s in range(3)]
    b_ids = [store.add_sighting(unit(0, 0.1, s), **M, time=10.0 + s, identity_id=b.id).id for s in range(3, 5)]

    merge = store.merge(a.id, b.id)
    assert merge.kind == "merge" and store.get_identity(a.id).sighting_count == 5
    assert store.get_identity(b.id).deleted and [i.id for i in store.identities()] == [a.id]
    with pytest.raises(ValueError, match=r"from_id \d+ is deleted"):
        store.merge(a.id, b.id)
    pairs = store.labelled_pairs(**M)
    assert {(p.sighting_a, p.sighting_b) for p in pairs} == {(x, y) for x in b_ids for y in a_ids}
    assert all(p.same and p.correction_id == merge.id and p.similarity > 0.8 for p in pairs)

    split = store.split(a.id, at=10.0, label="b again")
    new = store.get_identity(split.other_identity_id or -1)
    assert new.label == "b again" and [s.id for s in store.sightings(new.id)] == b_ids
    assert store.get_identity(a.id).sighting_count == 3
    different = [p for p in store.labelled_pairs(**M) if not p.same]
    assert {(p.sighting_a, p.sighting_b) for p in different} == {(x, y) for x in b_ids for y in a_ids}

    by_ids = store.split(a.id, sighting_ids=[a_ids[0]])
    assert [s.id for s in store.sightings(by_ids.other_identity_id)] == [a_ids[0]]
    with pytest.raises(ValueError, match="both sides"):
        store.split(new.id, at=0.0)
    with pytest.raises(ValueError, match="do not belong"):
        store.split(new.id, sighting_ids=[a_ids[1]])
    assert store.check_integrity().ok


def test_relabel_delete_and_undo_stack(open_store: OpenStore) -> None:
    store = open_store()
    a, b = store.create_identity(label="a"), store.create_identity(label="b")
    store.add_sighting(unit(0), **M, time=0.0, identity_id=a.id)
    store.add_sighting(unit(1), **M, time=1.0, identity_id=b.id)
    store.relabel(a.id, "alice")
    store.merge(a.id, b.id)
    store.delete_identity(a.id)
    assert store.identities() == [] and store.search(unit(0), **M)[0] == []

    assert store.undo().payload["undone"] == 3  # the delete
    assert [h.identity_id for h in store.search(unit(1), **M, k=1)[0]] == [a.id]
    store.undo()  # the merge: b's sighting goes home, b is live again
    assert [h.identity_id for h in store.search(unit(1), **M, k=1)[0]] == [b.id]
    assert store.labelled_pairs(**M) == [], "an undone merge is no longer a label"
    store.undo()  # the relabel
    assert store.get_identity(a.id).label == "a"
    with pytest.raises(ValueError, match="no correction to undo"):
        store.undo()
    kinds = [(c.kind, c.undone_by is not None) for c in store.corrections()]
    assert kinds == [("relabel", True), ("merge", True), ("delete", True)] + [("undo", False)] * 3
    assert store.check_integrity().ok


def test_undo_split_returns_later_sightings_and_integrity_sees_damage(open_store: OpenStore) -> None:
    store = open_store()
    ident = store.create_identity()
    for t in range(4):
        store.add_sighting(unit(0, 0.1, t), **M, time=float(t), identity_id=ident.id)
    split = store.split(ident.id, at=2.0)
    new_id = split.other_identity_id
    assert new_id is not None
    store.add_sighting(unit(0, 0.1, 7), **M, time=9.0, identity_id=new_id)
    store.undo()
    assert store.get_identity(ident.id).sighting_count == 5 and store.get_identity(new_id).deleted
    assert [h.identity_id for h in store.search(unit(0), **M, k=5)[0]] == [ident.id]
    assert store.check_integrity().ok

    with store._transaction():
        store._execute("UPDATE identities SET sighting_count = 99 WHERE id = ?", (ident.id,))
    assert store.check_integrity().problems == (f"identity {ident.id}: sighting_count differs from its sightings",)


def test_similarity_log_and_retention(open_store: OpenStore) -> None:
    store = open_store()
    day = 86400.0
    records = [
        SimilarityRecord(i, 1, 0.5 + i / 100, 0.7, 0.6, "match" if i % 2 else "new", "mnv2", "1", i * day)
        for i in range(10)
    ]
    store.log_similarities(records)
    assert store.similarity_log() == records
    assert store.similarity_log(since=8 * day) == records[8:]
    assert store.similarity_log(limit=2) == records[8:]
    assert store.prune_similarity_log(max_age_days=5, now=10 * day) == 5
    assert store.prune_similarity_log(max_rows=3) == 2
    assert store.similarity_log() == records[7:]
    with pytest.raises(ValueError, match=r"records\[0\].similarity must be finite"):
        store.log_similarities([SimilarityRecord(None, None, float("nan"), None, None, "new", "m", "1", 0.0)])


def test_restart_keeps_identities_sightings_and_search(open_store: OpenStore) -> None:
    store = open_store()
    idents = [store.create_identity(label=f"id{i}", attributes={"n": i}) for i in range(DIM)]
    for i, ident in enumerate(idents):
        for s in range(3):
            store.add_sighting(unit(i, 0.1, s), **M, time=float(s), identity_id=ident.id, site="x")
    queries = np.stack([unit(i, 0.1, 99) for i in range(DIM)])
    before = store.search(queries, **M, k=3)
    store.close()

    reopened = open_store()
    assert reopened.identities() == [reopened.get_identity(i.id) for i in idents]
    assert [i.label for i in reopened.identities()] == [f"id{i}" for i in range(DIM)]
    assert len(reopened.sightings()) == 3 * DIM
    after = reopened.search(queries, **M, k=3)
    assert [[h.identity_id for h in q] for q in after] == [[h.identity_id for h in q] for q in before]
    assert [q[0].identity_id for q in after] == [i.id for i in idents]
    assert reopened.check_integrity().ok


def test_migrations_are_idempotent(open_store: OpenStore) -> None:
    first = open_store()
    first.create_identity(label="kept")
    version = first.schema_version
    first.close()
    for _ in range(2):
        again = open_store()
        assert again.schema_version == version >= 1
        assert [i.label for i in again.identities()] == ["kept"]
        versions = again._fetchall("SELECT version FROM schema_version ORDER BY version")
        assert versions == [(v,) for v in range(1, version + 1)]
        again.close()


def test_a_version_1_sqlite_store_upgrades_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import trackid.identity.stores.sqlite as backend

    path = tmp_path / "old.db"
    with monkeypatch.context() as patch:
        patch.setattr(backend, "MIGRATIONS", backend.MIGRATIONS[:1])
        old = SqliteGalleryStore(path)
        ident = old.create_identity(label="before")
        old._execute("INSERT INTO models (model_id, model_version, dim) VALUES (?, ?, ?)", ("mnv2", "1", DIM))
        old._execute(
            "INSERT INTO sightings (identity_id, time, quality, model_key, vector) VALUES (?, 5.0, 1.0, 1, ?)",
            (ident.id, old._encode_vector(unit(0))),
        )
        assert old.schema_version == 1
        old._conn.close()
        os.close(old._lock)  # as the kernel does for a process that ends without closing the store
    store = SqliteGalleryStore(path)
    assert store.schema_version == len(backend.MIGRATIONS) >= 2
    (sighting,) = store.sightings()
    assert sighting.identity_id == ident.id and sighting.source is None
    assert store.count_without_model("better", "2") == 1
    store.close()


def test_sqlite_index_file_is_rebuilt_when_missing_or_stale(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    store = SqliteGalleryStore(path)
    ident = store.create_identity()
    store.add_sighting(unit(0), **M, time=0.0, identity_id=ident.id)
    index_file = store.index_path(**M)
    store.close()
    assert index_file.is_file()

    index_file.unlink()
    store = SqliteGalleryStore(path)
    assert store.search(unit(0), **M)[0][0].identity_id == ident.id
    store.close()

    # A write that never reached the index file (no close: as after a crash) makes the saved file stale.
    stale = SqliteGalleryStore(path)
    other = stale.create_identity()
    stale.add_sighting(unit(1), **M, time=1.0, identity_id=other.id)
    stale._conn.close()
    os.close(stale._lock)  # a crashed process's lock goes with it
    store = SqliteGalleryStore(path)
    assert store.search(unit(1), **M)[0][0].identity_id == other.id
    report = store.check_integrity()
    assert report.ok and report.repaired == ()

    store._indexes[1].remove(np.array([p.id for p in store.prototypes(other.id)]))
    assert store.search(unit(1), **M)[0][0].identity_id != other.id
    assert store.check_integrity().repaired == ("index of model mnv2 1 rebuilt from the database",)
    assert store.search(unit(1), **M)[0][0].identity_id == other.id
    store.close()


def test_sources_and_vectors_of_a_second_model(open_store: OpenStore) -> None:
    store = open_store()
    a, b = store.create_identity(), store.create_identity()
    source = {"image": "cam1/0001.jpg", "box": [1.0, 2.0, 30.0, 60.0]}
    s1 = store.add_sighting(unit(0), **M, time=1.0, identity_id=a.id, source=source)
    s2 = store.add_sighting(unit(1), **M, time=2.0, identity_id=b.id)
    s3 = store.add_sighting(unit(2), **M, time=3.0)  # unassigned
    assert store.get_sighting(s1.id).source == source and s2.source is None
    new = {"model_id": "better", "model_version": "2"}
    assert store.count_without_model(**new) == 3
    assert [s.id for s in store.sightings_without_model(**new, limit=2)] == [s1.id, s2.id]
    assert [s.id for s in store.sightings_without_model(**new, after=s2.id)] == [s3.id]

    v = np.eye(4, dtype=np.float32)
    assert store.add_sighting_vectors([s1.id, s3.id], 3 * v[[0, 1]], **new) == 2
    assert store.add_sighting_vectors([s1.id], v[[2]], **new) == 0  # kept, never duplicated
    assert [s.id for s in store.sightings_without_model(**new)] == [s2.id]
    assert store.count_without_model(**new) == 1 and store.sightings_without_model(**M) == []
    got = store.vectors_of([s1.id, s2.id, s3.id], **new)
    assert sorted(got) == [s1.id, s3.id]
    np.testing.assert_allclose(got[s1.id], v[0])

    # The new model's prototypes make `a` searchable in the new space; the unassigned sighting adds none ...
    assert [h.identity_id for h in store.search(v[0], **new, k=5)[0]] == [a.id]
    # ... until it is assigned, when all its vectors fold in; corrections rebuild every model's prototypes.
    store.assign_sighting(s3.id, b.id)
    assert store.search(v[1], **new, k=5)[0][0].identity_id == b.id
    store.merge(b.id, a.id)
    assert {h.identity_id for h in store.search(v[0], **new, k=5)[0]} == {b.id}
    store.undo()
    assert store.search(v[0], **new, k=5)[0][0].identity_id == a.id
    assert store.check_integrity().ok
    assert [s.id for s in store.sightings(b.id)] == [s2.id, s3.id]  # a second vector is not a second sighting
    assert store.get_identity(b.id).sighting_count == 2


def test_second_model_vectors_are_checked(open_store: OpenStore) -> None:
    store = open_store()
    s1 = store.add_sighting(unit(0), **M, time=1.0)
    new = {"model_id": "better", "model_version": "2"}
    store.add_sighting_vectors([s1.id], np.ones((1, 4)), **new)
    with pytest.raises(KeyError, match="sighting_id 999"):
        store.add_sighting_vectors([999], np.ones((1, 4)), **new)
    with pytest.raises(ValueError, match=r"vectors\[0\] has dimension 3 but the model's vectors have dimension 4"):
        store.add_sighting_vectors([s1.id], np.ones((1, 3)), model_id="better", model_version="2")
    with pytest.raises(ValueError, match=r"vectors\[1\] contains NaN"):
        s2 = store.add_sighting(unit(1), **M, time=2.0)
        store.add_sighting_vectors([s1.id, s2.id], np.array([[1, 0, 0, 0], [np.nan, 0, 0, 0]]), **new)
    with pytest.raises(ValueError, match=r"vectors must be \(2, dim\)"):
        store.add_sighting_vectors([s1.id, 2], np.ones((1, 4)), **new)
    with pytest.raises(ValueError, match="source must be a mapping"):
        store.add_sighting(unit(0), **M, time=1.0, source="img.jpg")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="JSON-serialisable"):
        store.add_sighting(unit(0), **M, time=1.0, source={"image": object()})
    assert store.count_without_model(**new) == 1  # nothing partial was written by the failed batches


def test_sqlite_compacts_the_index_in_the_background(tmp_path: Path) -> None:
    store = SqliteGalleryStore(tmp_path / "g.db", compact_after=0.5, max_prototypes=1, merge_similarity=-1.0)
    store.COMPACT_MIN_TOMBSTONES = 4  # type: ignore[misc]  # a small gallery for the test
    ident = store.create_identity()
    for t in range(3):  # each fold replaces the one prototype: one tombstone per write after the first
        store.add_sighting(unit(0, 0.1, t), **M, time=float(t), identity_id=ident.id)
    index = store._indexes[1]
    assert isinstance(index, HnswIndex) and index.tombstones == 2
    others = [store.create_identity() for _ in range(3)]
    for i, other in enumerate(others):
        store.add_sighting(unit(i + 1), **M, time=0.0, identity_id=other.id)
    store.add_sighting(unit(0, 0.1, 7), **M, time=7.0, identity_id=ident.id)
    store.add_sighting(unit(0, 0.1, 8), **M, time=8.0, identity_id=ident.id)  # 4 tombstones >= 0.5 * 4 entries
    deadline = time.monotonic() + 10
    while store._indexes[1].tombstones and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store._indexes[1].tombstones == 0 and len(store._indexes[1]) == 4
    assert store.search(unit(0), **M, k=1)[0][0].identity_id == ident.id
    store.add_sighting(unit(0, 0.1, 9), **M, time=9.0, identity_id=ident.id)
    assert store.compact(wait=True) == 1 and store._indexes[1].tombstones == 0
    assert store.check_integrity().ok
    store.close()


def test_sqlite_rebuilds_an_index_file_built_with_other_settings(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    store = SqliteGalleryStore(path, index_params={"connectivity": 8, "dtype": "f32"})
    ident = store.create_identity()
    store.add_sighting(unit(0), **M, time=0.0, identity_id=ident.id)
    store.close()
    same = SqliteGalleryStore(path, index_params={"connectivity": 8, "dtype": "f32"})
    loaded = same._indexes[1]
    assert isinstance(loaded, HnswIndex) and (loaded.connectivity, loaded.dtype) == (8, "f32")
    same.close()
    changed = SqliteGalleryStore(path)  # defaults: connectivity 32, bf16
    rebuilt = changed._indexes[1]
    assert isinstance(rebuilt, HnswIndex) and (rebuilt.connectivity, rebuilt.dtype) == (32, "bf16")
    assert changed.search(unit(0), **M)[0][0].identity_id == ident.id
    changed.close()


def test_sqlite_opens_its_saved_index_file_without_a_rebuild(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cleanly closed store's index file is loaded, not rebuilt (at 100,000 prototypes a rebuild takes minutes),
    and keeps inserting with the configured ef_construction, which the file does not record."""
    path = tmp_path / "g.db"
    store = SqliteGalleryStore(path, index_params={"ef_construction": 150})
    ident = store.create_identity()
    store.add_sighting(unit(0), **M, time=0.0, identity_id=ident.id)
    store.close()

    def no_rebuild(self: SqliteGalleryStore, model: object) -> None:
        raise AssertionError("the saved index file was rebuilt instead of loaded")

    monkeypatch.setattr(SqliteGalleryStore, "_rebuilt_index", no_rebuild)
    reopened = SqliteGalleryStore(path, index_params={"ef_construction": 150})
    loaded = reopened._indexes[1]
    assert isinstance(loaded, HnswIndex) and loaded.ef_construction == 150
    assert reopened.search(unit(0), **M)[0][0].identity_id == ident.id
    reopened.close()


def test_sqlite_search_skips_prototypes_deleted_since_the_index_found_them(tmp_path: Path) -> None:
    store = SqliteGalleryStore(tmp_path / "g.db")
    ids = store.create_identities(3)
    store.add_sightings(_batch(3, seed=9), **M, times=0.0, identity_ids=ids)
    gone = [p.id for p in store.prototypes(ids[0])]
    store._execute(f"DELETE FROM prototypes WHERE id IN ({', '.join('?' * len(gone))})", gone)  # index not told
    found = store.search(_batch(3, seed=9), **M, k=3)
    assert all(ids[0] not in [c.identity_id for c in row] for row in found)
    assert [row[0].identity_id for row in found[1:]] == ids[1:]
    store._execute("DELETE FROM prototypes")
    assert store.search(_batch(3, seed=9), **M, k=3) == [[], [], []]
    store.close()


def test_source_keys_make_writes_idempotent_and_transactions_group_writes(open_store: OpenStore) -> None:
    store = open_store()
    first = store.add_sighting(unit(0), **M, time=1.0, source_key="photo:abc#0")
    assert first.source_key == "photo:abc#0" and store.get_sighting(first.id).source_key == "photo:abc#0"
    with pytest.raises(ValueError, match="source_key 'photo:abc#0' is already stored"):
        store.add_sighting(unit(1), **M, time=2.0, source_key="photo:abc#0")
    with pytest.raises(ValueError, match="source_key must be a non-empty string"):
        store.add_sighting(unit(1), **M, time=2.0, source_key="")
    assert store.stored_source_keys(["photo:abc#0", "photo:def#0"]) == {"photo:abc#0"}

    with pytest.raises(RuntimeError, match="interrupted"), store.transaction():  # all or nothing
        ident = store.create_identity(label="half-written")
        store.add_sighting(unit(2), **M, time=3.0, identity_id=ident.id, source_key="photo:def#0")
        raise RuntimeError("interrupted")
    assert store.stored_source_keys(["photo:def#0"]) == set()
    assert [i.label for i in store.identities()] == [] and len(store.sightings()) == 1
    with store.transaction():
        ident = store.create_identity(label="whole")
        store.add_sighting(unit(2), **M, time=3.0, identity_id=ident.id, source_key="photo:def#0")
    assert store.stored_source_keys(["photo:def#0"]) == {"photo:def#0"}
    assert store.search(unit(2), **M, k=1)[0][0].identity_id == ident.id


def _batch(n: int, seed: int) -> NDArray[np.float32]:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_batched_writes_equal_one_by_one(open_store: OpenStore, tmp_path: Path) -> None:
    """`add_sightings` and `create_identities` leave the rows, prototypes and identity summaries that the same
    calls one at a time leave (the store's batch path is an optimisation, not another policy)."""
    vectors = _batch(40, seed=3)
    owners_of = [i % 6 for i in range(40)]  # several sightings per identity: prototypes fold and fill slots
    times = [float(t) for t in range(40)]
    one, many = open_store(max_prototypes=2), make_store(tmp_path / "batched.db", max_prototypes=2)
    ids_one = [one.create_identity(site="s").id for _ in range(6)]
    for i, v in enumerate(vectors):
        one.add_sighting(v, **M, time=times[i], quality=0.5, site="s", identity_id=ids_one[owners_of[i]])
    ids_many = many.create_identities(6, site="s")
    assert len(ids_many) == 6
    added = many.add_sightings(
        vectors, **M, times=times, qualities=0.5, site="s", identity_ids=[ids_many[o] for o in owners_of]
    )
    assert len(added) == 40 and added == sorted(added)
    for a, b in zip(ids_one, ids_many, strict=True):
        ia, ib = one.get_identity(a), many.get_identity(b)
        assert (ia.sighting_count, ia.first_seen, ia.last_seen, ia.site) == (
            ib.sighting_count,
            ib.first_seen,
            ib.last_seen,
            ib.site,
        )
        pa, pb = one.prototypes(a), many.prototypes(b)
        assert [(p.quality, p.sighting_count) for p in pa] == [(p.quality, p.sighting_count) for p in pb]
        np.testing.assert_allclose([p.vector for p in pa], [p.vector for p in pb], atol=1e-6)
    assert many.check_integrity().ok
    many.close()


def test_batched_search_equals_per_query(open_store: OpenStore) -> None:
    store = open_store()
    people = _batch(30, seed=5)
    ids = store.create_identities(30)
    store.add_sightings(people, **M, times=np.arange(30.0), identity_ids=ids)
    store.delete_identity(ids[3])  # filtered out by the one SQL query that checks the batch's candidates
    queries = _batch(12, seed=6)
    together = store.search(queries, **M, k=4, since=5.0)
    alone = [store.search(q, **M, k=4, since=5.0)[0] for q in queries]
    assert together == alone
    assert all(ids[3] not in [c.identity_id for c in row] for row in together)
    assert all(c.identity_id >= ids[5] for row in together for c in row)  # seen before t=5: out


def test_batched_writes_are_validated_before_anything_is_written(open_store: OpenStore) -> None:
    store = open_store()
    (known,) = store.create_identities(1)
    store.add_sightings(_batch(1, 1), **M, times=[1.0], source_keys=["a"])
    with pytest.raises(ValueError, match="source_keys repeat"):
        store.add_sightings(_batch(2, 2), **M, times=[1.0, 2.0], source_keys=["b", "b"])
    with pytest.raises(ValueError, match=r"already stored"):
        store.add_sightings(_batch(2, 2), **M, times=[1.0, 2.0], source_keys=["c", "a"])
    with pytest.raises(KeyError, match="do not exist"):
        store.add_sightings(_batch(2, 2), **M, times=[1.0, 2.0], identity_ids=[known, 999])
    with pytest.raises(ValueError, match=r"vectors\[1\] contains NaN"):
        store.add_sightings(np.array([_batch(1, 3)[0], [np.nan] * DIM]), **M, times=[1.0, 2.0])
    with pytest.raises(ValueError, match="times has 1 entries for 2 vectors"):
        store.add_sightings(_batch(2, 2), **M, times=[1.0])
    assert len(store.sightings()) == 1 and store.stored_source_keys(["b", "c"]) == set()


def test_store_settings_are_checked_by_the_registry(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="store 'sqlite' has no parameter 'max_protoypes'; its parameters: "):
        make_store(tmp_path / "g.db", max_protoypes=3)
    with pytest.raises(ValueError, match="store 'sqlite': index_kind"):
        make_store(tmp_path / "g.db", index_kind="flat")
    with pytest.raises(ValueError, match="store 'postgres' has no parameter 'index_kind'"):
        make_store("postgresql://nobody@localhost/none", index_kind="exact")
    assert make_store(tmp_path / "g.db", max_prototypes=2).max_prototypes == 2


def test_a_store_that_is_not_one_is_named_not_a_traceback(tmp_path: Path) -> None:
    """Issue #15, item 11: a non-database or truncated store file gave a raw sqlite3 traceback."""
    junk = tmp_path / "junk.db"
    junk.write_text("hello, not a database\n")
    with pytest.raises(StoreError, match=rf"{junk}: not a readable gallery store \(file is not a database\)"):
        make_store(junk)
    whole = tmp_path / "whole.db"
    with make_store(whole) as store:
        store.add_sightings(_batch(300, 1), **M, times=np.arange(300.0))
    truncated = tmp_path / "truncated.db"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(StoreError, match=rf"{truncated}: not a readable gallery store \(database disk image"):
        make_store(truncated)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(StoreError, match=rf"{other}: a SQLite database, but not a gallery store \(tables: invoices\)"):
        make_store(other)
    with sqlite3.connect(other) as conn:  # nothing was added to it
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("invoices",)]
    with pytest.raises(StoreError, match="a folder, not a gallery store file"):
        make_store(tmp_path)
    make_store(whole).close()  # a refused open leaves no lock behind


def test_an_unreachable_postgres_is_named_with_its_password_masked() -> None:
    pytest.importorskip("psycopg")
    url = "postgresql://me:s3cret@127.0.0.1:9/gallery?connect_timeout=2"
    with pytest.raises(StoreError, match=r"postgresql://me:\*\*\*@127\.0\.0\.1:9/gallery.*cannot connect") as failed:
        make_store(url)
    assert "s3cret" not in str(failed.value)
    keywords = "host=127.0.0.1 port=9 dbname=gallery user=me password=s3cret connect_timeout=2"
    with pytest.raises(StoreError, match="cannot connect to PostgreSQL") as failed:
        STORES.make("postgres", {"conninfo": keywords})
    assert "s3cret" not in str(failed.value) and "password=***" in str(failed.value)


def test_create_false_opens_only_an_existing_store(tmp_path: Path, postgres_uri: str) -> None:
    """Issue #15, item 12: a misspelt --store for a read-only command made folders and an empty database."""
    typo = tmp_path / "galery" / "g.db"
    with pytest.raises(StoreError, match=rf"{typo}: no such gallery store"):
        make_store(typo, create=False)
    with pytest.raises(StoreError, match=rf"{typo}: no such gallery store"):
        GalleryConfig(store=str(typo)).open_store(create=False)
    assert not typo.parent.exists()
    make_store(tmp_path / "g.db").close()
    with make_store(tmp_path / "g.db", create=False) as store:
        assert store.identities() == []
    import psycopg

    with psycopg.connect(postgres_uri, autocommit=True) as conn:
        conn.execute("CREATE DATABASE empty_one")
    empty = postgres_uri.replace("/postgres?", "/empty_one?", 1)
    with pytest.raises(StoreError, match="no gallery store in this database"):
        make_store(empty, create=False)
    with psycopg.connect(empty) as conn:
        assert conn.execute("SELECT to_regclass('schema_version')").fetchone() == (None,)
    make_store(empty).close()
    make_store(empty, create=False).close()


def test_sources_are_read_page_by_page_without_vectors(open_store: OpenStore) -> None:
    store = open_store()
    store.add_sightings(_batch(5, 9), **M, times=np.arange(5.0), sources=[{"image": f"{i}.jpg"} for i in range(5)])
    store.add_sighting(unit(0), **M, time=9.0)  # no source: not listed
    listed = list(store.sources(page=2))
    assert [source["image"] for _, source in listed] == [f"{i}.jpg" for i in range(5)]
    assert [i for i, _ in listed] == sorted(i for i, _ in listed)


def test_camera_stats_persist_per_model_and_a_part_given_as_none_is_kept(open_store: OpenStore) -> None:
    """Issue #16: what ingest learns about a camera (its adapted mean, its drift watch) outlives the store handle."""
    store = open_store()
    store.save_camera_stats(**M, camera="cam_a", adaptation={"count": 3, "total": [0.5, 0.25], "frozen": True})
    store.save_camera_stats(**M, camera="cam_a", drift={"seen": 7, "scores": [0.1, 0.2]})
    store.save_camera_stats(model_id="mnv2", model_version="2", camera="cam_a", drift={"seen": 1})
    with store.transaction():
        store.save_camera_stats(**M, camera="cam_b", adaptation={"count": 1, "total": [1.0, 0.0], "frozen": False})
    store.close()
    again = open_store()
    stats = again.camera_stats(**M)
    assert sorted(stats) == ["cam_a", "cam_b"]
    assert stats["cam_a"].adaptation == {"count": 3, "total": [0.5, 0.25], "frozen": True}
    assert stats["cam_a"].drift == {"seen": 7, "scores": [0.1, 0.2]}
    assert stats["cam_b"].drift is None
    assert again.camera_stats(model_id="mnv2", model_version="2")["cam_a"].adaptation is None
    assert again.camera_stats(model_id="other", model_version="1") == {}
    with pytest.raises(ValueError, match="camera must be"):
        again.save_camera_stats(**M, camera="", drift={})
    with pytest.raises(ValueError, match=r"Out of range float"):
        again.save_camera_stats(**M, camera="c", drift={"x": float("nan")})
