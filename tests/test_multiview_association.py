"""Cross-view association at one time step: synthetic views honestly labelled, and WILDTRACK's real boxes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trackid.multiview import GroundCamera
from trackid.multiview.association import associate_views


def test_synthetic_people_are_found_and_no_view_gives_a_group_two_boxes() -> None:
    """SYNTHETIC: 6 people 1 m apart seen by 4 views with 0.1 m noise; a view's duplicate box on one person."""
    rng = np.random.default_rng(0)
    people = np.column_stack([np.arange(6.0), np.zeros(6)])
    views, xy, who = [], [], []
    for v in range(4):
        for p, spot in enumerate(people):
            views.append(v), xy.append(spot + rng.normal(0, 0.1, 2)), who.append(p)
    views.append(0), xy.append(people[2] + [0.05, 0.0]), who.append(2)  # a double box in view 0
    cov = np.repeat((0.1**2 * np.eye(2))[None], len(xy), axis=0)
    got = associate_views(views, xy, cov)
    group, view = got.group, np.array(views)
    for g in np.unique(group):
        members = view[group == g]
        assert len(members) == len(set(members.tolist())), "a view gave one group two boxes"
    by_person = [set(group[np.array(who) == p].tolist()) for p in range(6)]
    assert sum(len(s) == 1 for s in by_person) >= 5  # only the double box may stand apart
    assert len(got.xy) == 7 and np.allclose(np.sort(got.xy[got.views == 4, 0]), np.arange(6.0), atol=0.15)


def test_unusable_points_are_left_out_and_inputs_checked() -> None:
    got = associate_views([0, 1], [[0.0, 0.0], [np.nan, np.nan]], np.repeat(np.eye(2)[None], 2, axis=0))
    assert got.group.tolist() == [0, -1]
    with pytest.raises(ValueError, match="one row per box"):
        associate_views([0], [[0.0, 0.0], [1.0, 1.0]], np.eye(2)[None])
    empty = associate_views([], np.empty((0, 2)), np.empty((0, 2, 2)))
    assert empty.group.size == 0 and empty.xy.shape == (0, 2)


def test_wildtrack_ground_truth_boxes_group_by_person(data: Path, wildtrack_cameras: list[GroundCamera]) -> None:
    root = data / "multicam" / "wildtrack"
    frames = []
    for v, camera in enumerate(wildtrack_cameras):
        gt = np.loadtxt(root / "gt" / "WILDTRACK-train" / f"WILDTRACK-C{v + 1}" / "gt" / "gt.txt", delimiter=",")
        gt = gt[gt[:, 0] == 1]
        found = camera.foot_points(np.column_stack([gt[:, 2], gt[:, 3], gt[:, 2] + gt[:, 4], gt[:, 3] + gt[:, 5]]))
        frames.append((np.full(len(gt), v), gt[:, 1].astype(int), found))
    views = np.concatenate([f[0] for f in frames])
    ids = np.concatenate([f[1] for f in frames])
    got = associate_views(
        views, np.concatenate([f[2].xy for f in frames]), np.concatenate([f[2].covariance for f in frames])
    )
    # purity: the share of boxes whose group's majority person is theirs
    pure = 0
    for g in np.unique(got.group[got.group >= 0]):
        members = ids[got.group == g]
        pure += np.bincount(members).max()
    assert pure / (got.group >= 0).sum() > 0.9
    assert len(np.unique(got.group)) < 1.5 * len(np.unique(ids))  # people are not split view by view


def test_a_box_goes_to_the_group_holding_its_tracklet_when_geometry_is_torn() -> None:
    # two people 0.3 m apart; view 1's boxes of them fall between, each nearer the other person: geometry alone
    # pairs them wrongly, their cameras' tracklets (10 is person 0's, 20 person 1's) pair them right
    views = np.array([0, 0, 1, 1])
    xy = np.array([[0.0, 0.0], [0.3, 0.0], [0.2, 0.0], [0.1, 0.0]])
    cov = np.repeat((0.2**2 * np.eye(2))[None], 4, axis=0)
    plain = associate_views(views, xy, cov)
    assert plain.group[2] == plain.group[1] and plain.group[3] == plain.group[0]  # the nearer group
    keyed = associate_views(views, xy, cov, tracklets=[[1, 10], [2, 20], [10], [20]], tracklet_bonus=4.0)
    assert keyed.group[2] == keyed.group[0] and keyed.group[3] == keyed.group[1]
    with pytest.raises(ValueError, match="one entry per box"):
        associate_views(views, xy, cov, tracklets=[[1]])
