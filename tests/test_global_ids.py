"""Global identities of a site: tracks continue gallery identities across gaps, runs and store reopenings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from trackid.identity.global_ids import GlobalIdentities, RunOverlapError
from trackid.identity.stores import GalleryStore, SqliteGalleryStore

OpenStore = Callable[[], GalleryStore]
LONG = 600.0  # a window longer than every gap here; the default (1 s) suits geometry-only crowds


@pytest.fixture
def store(tmp_path: Path) -> Iterator[GalleryStore]:
    with SqliteGalleryStore(tmp_path / "gallery.db") as opened:
        yield opened


def track(track_id: int, frames: range, start: tuple[float, float], end: tuple[float, float]) -> NDArray[np.float64]:
    """Rows frame, id, x, y of a track walking in a straight line from `start` to `end` over `frames`."""
    f = np.array(frames, np.float64)
    s = np.linspace(0.0, 1.0, len(f))[:, None]
    xy = (1 - s) * np.array(start) + s * np.array(end)
    return np.column_stack([f, np.full(len(f), track_id), xy])


def test_reattach_within_window_across_a_reopen(open_store: OpenStore) -> None:
    first = open_store()
    ids = GlobalIdentities(first, "hall", window_s=LONG).resolve(
        track(1, range(0, 11), (0, 0), (5, 0)), fps=1.0, start_time_s=100.0
    )
    assert ids == {1: ids[1]} and first.get_identity(ids[1]).site == "hall"
    first.close()
    # a later run on the reopened store: 30 s after the last sighting (t = 110), 2 m from where it was
    again = GlobalIdentities(open_store(), "hall", window_s=LONG)
    assert again.last_seen() == {ids[1]: (110.0, 5.0, 0.0)}
    later = again.resolve(track(4, range(0, 5), (5, 2), (9, 2)), fps=1.0, start_time_s=140.0)
    assert later == {4: ids[1]}
    assert again.last_seen()[ids[1]] == (144.0, 9.0, 2.0)


def test_new_identity_after_the_window_or_out_of_reach(store: GalleryStore) -> None:
    site = GlobalIdentities(store, "hall", window_s=60.0, max_speed_mps=1.0, slack_m=0.5)
    old = site.resolve(track(1, range(0, 11), (0, 0), (5, 0)), fps=1.0)[1]  # last seen at t = 10, (5, 0)
    late = site.resolve(track(1, range(0, 3), (5, 0), (6, 0)), fps=1.0, start_time_s=71.0)[1]  # 61 s later
    assert late != old and old not in site.last_seen()  # no longer continuable, so no longer kept
    # 2 s after `late` was last seen at (6, 0): its reach is 1 m/s * 2 s + 0.5 m = 2.5 m
    assert site.resolve(track(1, range(0, 3), (8.4, 0), (6, 0)), fps=1.0, start_time_s=75.0)[1] == late
    far = site.resolve(track(1, range(0, 3), (8.6, 0), (9, 0)), fps=1.0, start_time_s=79.0)[1]
    assert far not in {old, late}
    assert len(store.identities()) == 3


def test_tracks_overlapping_in_time_never_share_an_identity(store: GalleryStore) -> None:
    rng = np.random.default_rng(0)
    rows, spans = [], {}
    for t in range(60):  # many short tracks crowding a 4 m square, so nearly every one is reachable by many
        start = int(rng.integers(0, 100))
        frames = range(start, start + int(rng.integers(1, 8)))
        spans[t] = (frames[0], frames[-1])
        rows.append(track(t, frames, tuple(rng.uniform(0, 4, 2)), tuple(rng.uniform(0, 4, 2))))
    ids = GlobalIdentities(store, "hall").resolve(np.vstack(rows), fps=2.0)
    assert len(set(ids.values())) < len(ids)  # identities were re-used ...
    for a in spans:
        for b in spans:
            if a < b and ids[a] == ids[b]:  # ... but only by tracks one after the other
                assert spans[a][1] < spans[b][0] or spans[b][1] < spans[a][0], (a, b)


def test_a_running_track_holds_its_identity(store: GalleryStore) -> None:
    site = GlobalIdentities(store, "hall", window_s=LONG)
    old = site.resolve(track(1, range(0, 5), (0, 0), (0, 0)), fps=1.0)[1]
    both = site.resolve(
        np.vstack([track(1, range(0, 9), (0, 1), (0, 1)), track(2, range(3, 9), (0, 1), (0, 1))]),
        fps=1.0,
        start_time_s=10.0,
    )
    assert both[1] == old and both[2] != old  # track 2 starts while track 1 holds the identity


def test_simultaneous_reentries_are_assigned_jointly(store: GalleryStore) -> None:
    site = GlobalIdentities(store, "hall", max_speed_mps=2.5, slack_m=1.0)
    first = site.resolve(
        np.vstack([track(1, range(0, 3), (0, 0), (0, 0)), track(2, range(0, 3), (3, 0), (3, 0))]), fps=1.0
    )
    # 1 s after both were last seen (reach 3.5 m): P at x=1 is nearest to 1 (1 m) but also reaches 2 (2 m); Q at
    # x=-2 reaches only 1 (2 m; 2 is 5 m away). Nearest-first would give P 1 and Q a new identity.
    again = site.resolve(
        np.vstack([track(7, range(3, 6), (1, 0), (1, 0)), track(8, range(3, 6), (-2, 0), (-2, 0))]), fps=1.0
    )
    assert again == {7: first[2], 8: first[1]}


def test_another_site_never_matches(store: GalleryStore) -> None:
    hall = GlobalIdentities(store, "hall", window_s=LONG).resolve(track(1, range(0, 3), (0, 0), (0, 0)), fps=1.0)[1]
    yard = GlobalIdentities(store, "yard", window_s=LONG).resolve(track(1, range(3, 6), (0, 0), (0, 0)), fps=1.0)[1]
    assert yard != hall and store.get_identity(yard).site == "yard"
    assert (
        GlobalIdentities(store, "hall", window_s=LONG).resolve(track(5, range(7, 9), (0, 0), (0, 0)), fps=1.0)[5]
        == hall
    )


def test_appearance_must_agree(open_store: OpenStore) -> None:
    store = open_store()
    alice, bob = np.eye(4)[0], np.eye(4)[1]
    site = GlobalIdentities(store, "hall", model_id="osnet", model_version="1", min_similarity=0.8, window_s=LONG)
    first = site.resolve(track(1, range(0, 3), (0, 0), (0, 0)), fps=1.0, embeddings={1: alice})[1]
    assert [s.identity_id for s in store.sightings()] == [first]
    store.close()
    site = GlobalIdentities(
        open_store(), "hall", model_id="osnet", model_version="1", min_similarity=0.8, window_s=LONG
    )
    # at the very spot, 2 s later: bob's look makes it someone else; then alice, next to it, is alice again
    stranger = site.resolve(track(2, range(4, 6), (0, 0), (0, 0)), fps=1.0, embeddings={2: bob})[2]
    back = site.resolve(track(3, range(8, 9), (0.5, 0), (0.5, 0)), fps=1.0, embeddings={3: alice + 0.1 * bob})[3]
    assert stranger != first and back == first
    unseen = site.resolve(track(4, range(10, 11), (0.5, 0), (0.5, 0)), fps=1.0)[4]  # no vector: geometry decides
    assert unseen == first


def test_bad_input_names_the_problem(store: GalleryStore) -> None:
    site = GlobalIdentities(store, "hall")
    with pytest.raises(ValueError, match=r"ground must be \(M, 4\)"):
        site.resolve(np.zeros((3, 3)), fps=1.0)
    with pytest.raises(ValueError, match="fps"):
        site.resolve(track(1, range(2), (0, 0), (0, 0)), fps=0.0)
    with pytest.raises(ValueError, match="no model_id"):
        site.resolve(track(1, range(2), (0, 0), (0, 0)), fps=1.0, embeddings={1: np.ones(4)})
    with pytest.raises(ValueError, match="track id 9"):
        GlobalIdentities(store, "hall", model_id="m").resolve(
            track(1, range(2), (0, 0), (0, 0)), fps=1.0, embeddings={9: np.ones(4)}
        )
    with pytest.raises(ValueError, match="site"):
        GlobalIdentities(store, "")
    assert store.identities() == []  # nothing written by a refused call
    assert site.resolve(np.zeros((0, 4)), fps=1.0) == {}  # a run with nobody in it


def test_the_same_input_again_replays_and_an_overlapping_one_is_refused(open_store: OpenStore) -> None:
    store = open_store()
    ground = np.vstack([track(1, range(0, 5), (0, 0), (4, 0)), track(2, range(6, 9), (4, 0.5), (6, 0))])
    first = GlobalIdentities(store, "hall").resolve_run(ground, fps=2.0, start_time_s=50.0)
    assert first.ids[2] == first.ids[1] and (first.new_identities, first.reattached, first.replayed) == (1, 1, False)
    store.close()
    store = open_store()
    again = GlobalIdentities(store, "hall").resolve_run(ground[::-1], fps=2.0, start_time_s=50.0)  # rows reordered
    assert again.ids == first.ids and again.replayed and again.new_identities == 1
    assert len(store.identities()) == 1
    other = track(5, range(0, 5), (9, 9), (9, 9))  # other tracks at 50-52 s: a second copy of those seconds
    with pytest.raises(RunOverlapError, match=r"'hall' already has identities for 50\.000-54\.000 s"):
        GlobalIdentities(store, "hall").resolve(other, fps=2.0, start_time_s=50.0)
    later = GlobalIdentities(store, "hall").resolve_run(
        track(3, range(0, 2), (6, 0), (6, 1)), fps=2.0, start_time_s=54.5
    )
    assert later.ids == {3: first.ids[1]} and later.continued == 1 and not later.replayed
    assert GlobalIdentities(store, "yard").resolve(other, fps=2.0, start_time_s=50.0) != {5: first.ids[1]}
