"""The ground-plane tracker on SYNTHETIC walkers (honestly labelled): ids kept, one-step blips never reported."""

from __future__ import annotations

import numpy as np
import pytest

from trackid.multiview.world_tracking import WorldTracker


def test_two_walkers_keep_their_ids_at_2_fps_and_a_blip_is_never_reported() -> None:
    tracker = WorldTracker()
    rng = np.random.default_rng(0)
    seen: dict[int, set[int]] = {0: set(), 1: set()}
    cov = np.repeat((0.1**2 * np.eye(2))[None], 2, axis=0)
    for step in range(20):
        t = step / 2.0
        walkers = np.array([[t * 1.2, 0.0], [10 - t * 1.0, 3.0]]) + rng.normal(0, 0.05, (2, 2))
        points, covs = walkers, cov
        if step == 7:  # a clutter point far from both
            points, covs = np.vstack([walkers, [[50.0, 50.0]]]), np.vstack([cov, cov[:1]])
        ids, at, rows = tracker.update(t, points, covs)
        assert np.allclose(points[rows], at, atol=1.0)  # each reported track names the position it took
        if step == 0:
            assert ids.size == 0  # nothing is reported before its second position
        for i, xy in zip(ids.tolist(), at, strict=True):
            person = int(np.argmin(np.linalg.norm(walkers - xy, axis=1)))
            seen[person].add(i)
        assert not any(np.linalg.norm(at - [50.0, 50.0], axis=1) < 1.0)
    assert all(len(ids) == 1 for ids in seen.values()) and seen[0] != seen[1]


def test_time_does_not_go_back() -> None:
    tracker = WorldTracker()
    tracker.update(1.0, np.zeros((0, 2)), np.zeros((0, 2, 2)))
    with pytest.raises(ValueError, match="time must not go back"):
        tracker.update(0.5, np.zeros((0, 2)), np.zeros((0, 2, 2)))


def test_a_tracklet_changes_track_only_after_handover_s_of_going_there() -> None:
    tracker = WorldTracker(handover_s=1.0)
    cov = np.repeat((0.05**2 * np.eye(2))[None], 4, axis=0)
    views = np.array([0, 1, 0, 1])
    a, b = np.array([0.0, 0.0]), np.array([5.0, 0.0])
    owner_at = []
    for step in range(12):
        t = step / 2.0
        keys = np.array([10, 11, 20, 21])
        if step >= 6:  # from 3 s on, camera 0's tracklet 10 follows the person at b, and 20 the one at a
            keys = np.array([20, 11, 10, 21])
        tracker.update_views(t, views, np.stack([a, a, b, b]), cov, tracklets=keys)
        owner_at.append(tracker.tracklet_owner(10))
    first = owner_at[2]
    assert first > 0 and all(o == first for o in owner_at[2:8])  # 3 s and 3.5 s: not yet handed over
    assert owner_at[9] != first and owner_at[9] > 0  # after 1 s of going to the other track, it is handed over


@pytest.mark.parametrize("method", ["update", "update_views"])
def test_a_second_image_of_a_tracked_person_starts_no_track_but_a_newcomer_beside_them_does(method: str) -> None:
    """Two views put one standing person 0.3 m apart from the others for a few steps: with the birth gate no
    duplicate starts there (without it one does), while a second person 1.5 m away always gets their own track."""

    def run(birth_gate: float) -> set[int]:
        tracker = WorldTracker(birth_gate=birth_gate, min_age_s=0.0)
        ids: set[int] = set()
        for step in range(12):
            t = step / 10
            person = np.array([[0.0, 0.0]])
            if 4 <= step < 8:  # a pair of views that agree with each other, 0.3 m off the person's track
                person = np.vstack([person, [[0.3, 0.0]]])
            if step >= 6:
                person = np.vstack([person, [[1.5, 0.0]]])
            n = len(person)
            cov = np.repeat((0.05**2 * np.eye(2))[None], n, axis=0)
            if method == "update":
                got = tracker.update(t, person, cov).ids
            else:  # each position seen by views 0 and 1
                views = np.r_[np.zeros(n, int), np.ones(n, int)]
                got = tracker.update_views(t, views, np.vstack([person, person]), np.vstack([cov, cov]))[0].ids
            ids.update(got.tolist())
        return ids

    assert len(run(0.75)) == 2
    assert len(run(0.0)) == 3
