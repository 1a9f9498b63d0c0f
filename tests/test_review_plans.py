"""What the review page shows and plans, against a real gallery store (SQLite and PostgreSQL)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import OpenStore
from trackid.identity.stores.records import SimilarityRecord
from trackid.service.review_plans import PlanChanged, apply_plan, cards, plan

MODEL = {"model_id": "m", "model_version": "1"}


def _person(store, centre: np.ndarray, n: int, rng: np.random.Generator, noise: float = 0.2) -> int:  # type: ignore[no-untyped-def]
    identity = store.create_identity().id
    for _ in range(n):
        store.add_sighting(centre + noise * rng.normal(size=len(centre)), **MODEL, time=0.0, identity_id=identity)
    return int(identity)


def test_the_uncertain_come_first_and_narrow_matches_count(open_store: OpenStore) -> None:
    store = open_store()
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16))
    tight = _person(store, centres[0], 4, rng, noise=0.05)
    spread = _person(store, centres[1], 4, rng, noise=1.0)
    twin = _person(store, centres[1], 3, rng, noise=0.2)  # close to `spread`
    shown = cards(store)
    assert [c.identity.id for c in shown][-1] == tight and {shown[0].identity.id, shown[1].identity.id} == {
        spread,
        twin,
    }
    assert shown[0].candidates[0][0] in (spread, twin)
    record = SimilarityRecord(None, tight, 0.5, 0.52, 0.5, "match", "m", "1", 1.0)
    store.log_similarities([record] * 4)  # every sighting of `tight` a narrow match: now it needs a look
    again = {c.identity.id: c for c in cards(store)}
    assert again[tight].narrow_matches == 4
    assert again[tight].uncertainty == pytest.approx(shown[-1].uncertainty + 1.0)


def test_plans_say_exactly_what_moves_and_go_stale(open_store: OpenStore) -> None:
    store = open_store()
    rng = np.random.default_rng(1)
    a, b = (_person(store, c, 3, rng) for c in rng.normal(size=(2, 8)))
    moving = sorted(s.id for s in store.sightings(b))
    merge = plan(store, "merge", identity_id=a, other_identity_id=b)
    assert merge.sighting_ids == moving and f"identity {b} into identity {a}" in merge.summary
    store.add_sighting(rng.normal(size=8), **MODEL, time=1.0, identity_id=b)  # the gallery changes
    with pytest.raises(PlanChanged, match="changed since"):
        apply_plan(store, merge)
    assert len(store.sightings(b)) == 4  # nothing moved
    fresh = plan(store, "merge", identity_id=a, other_identity_id=b)
    apply_plan(store, fresh)
    assert sorted(s.id for s in store.sightings(a))[-4:] == fresh.sighting_ids
    late = store.add_sighting(rng.normal(size=8), **MODEL, time=2.0, identity_id=a).id
    undo = plan(store, "undo")
    assert undo.sighting_ids == fresh.sighting_ids and late not in undo.sighting_ids  # a later sighting stays
    apply_plan(store, undo)
    assert sorted(s.id for s in store.sightings(b)) == fresh.sighting_ids


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"action": "merge", "identity_id": 1, "other_identity_id": 1}, "two different identities"),
        ({"action": "merge", "identity_id": 1, "other_identity_id": 99}, "no live identity 99"),
        ({"action": "split", "identity_id": 1, "sighting_ids": []}, "choose sightings"),
        ({"action": "split", "identity_id": 1, "sighting_ids": [1, 2, 3]}, "at least one sighting"),
        ({"action": "split", "identity_id": 1, "sighting_ids": [4]}, "are not its"),
        ({"action": "undo"}, "no correction to undo"),
    ],
)
def test_impossible_actions_are_refused_with_a_reason(open_store: OpenStore, kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
    store = open_store()
    rng = np.random.default_rng(2)
    for centre in rng.normal(size=(2, 8)):
        _person(store, centre, 3, rng)
    with pytest.raises(ValueError, match=message):
        plan(store, **kwargs)


def test_the_photos_monitor_flags_an_identity_seen_at_two_sites_too_close_in_time(open_store: OpenStore) -> None:
    store = open_store()
    rng = np.random.default_rng(3)
    centre = rng.normal(size=8)
    identity = store.create_identity().id
    for time, site in ((0.0, "north"), (60.0, "south")):  # one minute apart, sites an hour apart
        store.add_sighting(centre + 0.1 * rng.normal(size=8), **MODEL, time=time, site=site, identity_id=identity)
    _person(store, rng.normal(size=8), 2, rng)
    plain = {c.identity.id: c for c in cards(store)}
    flagged = {c.identity.id: c for c in cards(store, min_travel_s=3600)}
    assert (
        plain[identity].flags == []
        and len(flagged[identity].flags) == 1
        and "north and south" in flagged[identity].flags[0]
    )
    assert flagged[identity].uncertainty == pytest.approx(plain[identity].uncertainty + 1.0)
