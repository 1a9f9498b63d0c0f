"""Constrained clustering of tracks and its threshold chosen from the episode's own pairs."""

from __future__ import annotations

import numpy as np
import pytest

from trackid.cluster import cluster_with_constraints, half_track_distances, threshold_from_pairs


def _people(rng: np.random.Generator, people: int, per: int, spread: float) -> tuple[np.ndarray, np.ndarray]:
    centres = rng.standard_normal((people, 64))
    truth = np.repeat(np.arange(people), per)
    return centres[truth] + spread * rng.standard_normal((len(truth), 64)), truth


def test_clusters_follow_the_people_at_a_sensible_threshold() -> None:
    vectors, truth = _people(np.random.default_rng(0), 5, 4, 0.3)
    result = cluster_with_constraints(vectors, 0.5)
    assert result.count == 5
    assert len({(t, c) for t, c in zip(truth, result.labels, strict=True)}) == 5  # one cluster per person
    assert result.labels[0] == 0 and result.labels[4] == 1  # numbered in order of first appearance


def test_cannot_link_keeps_two_look_alikes_apart_and_must_link_joins_a_split_track() -> None:
    rng = np.random.default_rng(1)
    twin = rng.standard_normal(64)
    other = rng.standard_normal(64)
    vectors = np.stack([twin, twin + 0.01 * rng.standard_normal(64), other, -other])
    plain = cluster_with_constraints(vectors, 0.5)
    assert plain.labels[0] == plain.labels[1] and plain.labels[2] != plain.labels[3]
    constrained = cluster_with_constraints(vectors, 0.5, cannot_link=[(0, 1)], must_link=[(2, 3)])
    assert constrained.labels[0] != constrained.labels[1]  # on screen together: two people, however alike
    assert constrained.labels[2] == constrained.labels[3]  # one track the tracker cut in two
    assert constrained.dropped_must_links == []


def test_cannot_link_wins_over_a_contradicting_must_link() -> None:
    vectors = np.eye(3)
    result = cluster_with_constraints(vectors, 0.1, cannot_link=[(0, 2)], must_link=[(0, 1), (1, 2)])
    assert result.labels[0] == result.labels[1] != result.labels[2]
    assert result.dropped_must_links == [(1, 2)]


def test_no_cluster_holds_a_cannot_link_pair_even_at_a_huge_threshold() -> None:
    vectors, _ = _people(np.random.default_rng(2), 3, 10, 0.5)
    apart = [(i, i + 10) for i in range(10)] + [(i, i + 20) for i in range(10)]
    result = cluster_with_constraints(vectors, 1.99, cannot_link=apart)
    assert all(result.labels[a] != result.labels[b] for a, b in apart)


@pytest.mark.parametrize(("pairs", "words"), [([(0, 5)], "outside 0..2"), ([(1, 1)], "to itself")])
def test_bad_pairs_are_named(pairs: list[tuple[int, int]], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        cluster_with_constraints(np.eye(3), 0.5, cannot_link=pairs)


def test_threshold_sits_in_the_gap_and_follows_the_scale() -> None:
    rng = np.random.default_rng(3)
    same, different = rng.uniform(0.02, 0.08, 50), rng.uniform(0.2, 0.5, 20)
    choice = threshold_from_pairs(same, different, fallback=0.4)
    assert choice.source == "pairs" and 0.08 < choice.threshold < 0.2 and choice.separation == 1.0
    # an embedder whose distances are three times larger gets a threshold three times larger
    scaled = threshold_from_pairs(3 * same, 3 * different, fallback=0.4)
    assert scaled.threshold == pytest.approx(3 * choice.threshold)


def test_threshold_falls_back_with_a_reason_when_a_kind_of_pair_is_missing() -> None:
    choice = threshold_from_pairs([0.05, 0.07], [], fallback=0.4)
    assert choice.source == "fallback" and choice.threshold == 0.4
    assert "no two faces were on screen together" in choice.reason


def test_half_track_distances_skip_short_tracks() -> None:
    rng = np.random.default_rng(4)
    steady = rng.standard_normal(64) + 0.05 * rng.standard_normal((10, 64))
    jumping = np.concatenate([np.tile(rng.standard_normal(64), (5, 1)), np.tile(rng.standard_normal(64), (5, 1))])
    d = half_track_distances([steady, jumping, steady[:1]])
    assert len(d) == 2 and d[0] < 0.05 < d[1]
