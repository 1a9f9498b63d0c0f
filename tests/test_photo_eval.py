"""Scoring a gallery's photo decisions against labels (`trackid.eval.photos`), on cases worked out by hand."""

from __future__ import annotations

import pytest

from trackid.eval.photos import Assignment, evaluate_assignments


def test_outcomes_and_rates_follow_from_the_profiles_owners() -> None:
    """Profile 1 is mostly the doe's, so the buck's sighting in it is a wrong match; the buck's second profile
    started though he was known; one sighting was left unassigned and one decision never logged."""
    plan = [(1, "doe", "new"), (1, "doe", "match"), (1, "doe", "match"), (2, "buck", "new"), (1, "buck", "match")]
    plan += [(3, "buck", "new"), (None, "fawn", "new"), (4, "stag", None)]
    assignments = [Assignment(i, identity, who) for i, (identity, who, _) in enumerate(plan)]
    decisions = {i: (d, 0.1 * i) for i, (_, _, d) in enumerate(plan) if d is not None}
    scores = evaluate_assignments(assignments, decisions)
    assert scores.outcomes == {
        "new_correct": 3,
        "match_correct": 2,
        "match_wrong": 1,
        "new_but_known": 1,
        "unassigned": 1,
    }
    assert (scores.sightings, scores.individuals) == (8, 4)
    assert scores.assignment_rate == pytest.approx(3 / 8)
    assert scores.assignment_accuracy == pytest.approx(5 / 8)
    assert scores.false_match_rate == pytest.approx(1 / 8)
    assert scores.wrong_share_of_matches == pytest.approx(1 / 3)
    assert scores.accuracy_5plus is None and scores.individuals_5plus == 0  # nobody has 5 sightings
    assert scores.similarity["match_wrong"] == [pytest.approx(0.4)]
    assert sum(len(v) for v in scores.similarity.values()) == 7  # all but the unlogged decision
    assert scores.metrics()["outcomes"] == scores.outcomes and "similarity" not in scores.metrics()


def test_accuracy_of_frequent_individuals_is_the_share_in_their_main_profile() -> None:
    assignments = [Assignment(i, 1 if i < 4 else 2, "doe") for i in range(6)]
    scores = evaluate_assignments(assignments, {i: ("match", 0.9) for i in range(6)})
    assert scores.accuracy_5plus == pytest.approx(4 / 6) and scores.individuals_5plus == 1
    with pytest.raises(ValueError, match="assignments is empty"):
        evaluate_assignments([], {})
