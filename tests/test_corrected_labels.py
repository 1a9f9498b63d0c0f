"""Corrections read back as per-sighting individual labels (the training data of `retrain`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from trackid.identity.corrected_labels import corrected_labels
from trackid.identity.stores import GalleryStore, make_store

M = {"model_id": "m", "model_version": "1"}


def _vector(seed: int) -> NDArray[np.float32]:
    v = np.random.default_rng(seed).normal(size=8).astype(np.float32)
    return v / np.linalg.norm(v)


def _store(tmp_path: Path) -> GalleryStore:
    return make_store(f"sqlite://{tmp_path / 'g.db'}")


def _add(store: GalleryStore, identity: int | None, n: int, start: int) -> list[int]:
    return [
        store.add_sighting(_vector(start + i), **M, time=float(start + i), identity_id=identity).id for i in range(n)
    ]


def test_merge_is_one_individual_split_is_two_and_later_assignments_are_not_labels(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        a, b, c = (store.create_identity() for _ in range(3))
        a_ids, b_ids, c_ids = _add(store, a.id, 3, 0), _add(store, b.id, 2, 10), _add(store, c.id, 4, 20)
        store.merge(a.id, b.id)
        split = store.split(c.id, sighting_ids=c_ids[2:])
        later = _add(store, a.id, 1, 30)  # the gallery's own decision after the merge: nobody checked it
        got = corrected_labels(store)
        by_id = dict(zip([s.id for s in got.sightings], got.labels, strict=True))
        assert set(by_id) == {*a_ids, *b_ids, *c_ids}
        assert later[0] not in by_id
        assert len({by_id[s] for s in a_ids + b_ids}) == 1
        assert {by_id[s] for s in c_ids[:2]} == {f"identity:{c.id}"}
        assert {by_id[s] for s in c_ids[2:]} == {f"identity:{split.other_identity_id}"}
        assert got.individuals == 3 and got.corrections_used == 2


def test_names_join_identities_and_undone_or_deleted_teach_nothing(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        a, b, c, d = (store.create_identity() for _ in range(4))
        a_ids, b_ids, c_ids = _add(store, a.id, 2, 0), _add(store, b.id, 2, 10), _add(store, c.id, 2, 20)
        _add(store, d.id, 2, 40)
        store.relabel(a.id, "doe-7")
        store.relabel(b.id, "doe-7")
        store.merge(c.id, d.id)
        store.undo()  # the merge no longer stands
        store.relabel(c.id, "doe-9")
        store.delete_identity(c.id)
        got = corrected_labels(store)
        assert sorted(s.id for s in got.sightings) == sorted(a_ids + b_ids)
        assert set(got.labels) == {"name:doe-7"}
        assert not set(c_ids) & {s.id for s in got.sightings}


def test_a_store_without_corrections_gives_no_labels(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        _add(store, store.create_identity().id, 2, 0)
        got = corrected_labels(store)
        assert got.sightings == [] and got.individuals == 0 and got.corrections_used == 0
