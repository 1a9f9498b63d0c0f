"""How well a gallery's decisions on photos match who was really there (`trackid photos validate`).

Re-ID's CMC and mAP (`trackid.eval.reid`) rank a closed set of candidates; an ingest instead decides, photo by
photo in time order, "this is profile k" or "someone new", so it is scored on those decisions: each sighting's
outcome against the labels, and the rates a user feels (how often a photo took someone else's profile, how often
it was recognised, how scattered a well-photographed individual's sightings are over profiles).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

__all__ = ["FREQUENT_SIGHTINGS", "Assignment", "AssignmentScores", "evaluate_assignments"]

FREQUENT_SIGHTINGS = 5
"""An individual with this many labelled sightings is expected to have one profile that holds most of them."""


class Assignment(NamedTuple):
    """One labelled sighting as the gallery left it: its profile (None when unassigned) and who it really is."""

    sighting: int
    identity: int | None
    individual: str


@dataclass(frozen=True)
class AssignmentScores:
    """Outcomes of the decisions and the rates that follow.

    A profile belongs to the individual most of its sightings show. Outcomes: `match_correct` (joined the profile
    of its individual), `match_wrong` (joined someone else's), `new_correct` (started a profile for an individual
    not seen before), `new_but_known` (started a profile though its individual had been seen), `unassigned`.
    """

    sightings: int
    individuals: int
    assignment_rate: float
    """Matches (right or wrong) of all decisions."""
    assignment_accuracy: float
    """Correct matches and correct new profiles of all decisions."""
    false_match_rate: float
    """Decisions that took someone else's profile, of all decisions."""
    wrong_share_of_matches: float
    accuracy_5plus: float | None
    """Of individuals with >= `FREQUENT_SIGHTINGS` sightings: the share of their sightings in their main profile."""
    individuals_5plus: int
    outcomes: dict[str, int]
    similarity: dict[str, list[float]]
    """Per outcome, the similarity of each decision's best candidate (decisions with no candidate left out)."""

    def metrics(self) -> dict[str, Any]:
        """The JSON-ready figures (everything but the similarities)."""
        return {
            "sightings": self.sightings,
            "individuals": self.individuals,
            "assignment_rate": self.assignment_rate,
            "assignment_accuracy": self.assignment_accuracy,
            "false_match_rate": self.false_match_rate,
            "wrong_share_of_matches": self.wrong_share_of_matches,
            "accuracy_5plus": self.accuracy_5plus,
            "individuals_5plus": self.individuals_5plus,
            "outcomes": dict(self.outcomes),
        }


def evaluate_assignments(
    assignments: Sequence[Assignment], decisions: Mapping[int, tuple[str, float]]
) -> AssignmentScores:
    """Score labelled sightings (in the store's order) against `decisions`: sighting id -> (the logged decision,
    "match" or "new", and its best candidate's similarity); a sighting without one counts as "unlogged"."""
    if not assignments:
        raise ValueError("assignments is empty: there is nothing labelled to score")
    by_identity: dict[int, Counter[str]] = defaultdict(Counter)
    for a in assignments:
        if a.identity is not None:
            by_identity[a.identity][a.individual] += 1
    owner = {i: c.most_common(1)[0][0] for i, c in by_identity.items()}
    seen: set[str] = set()
    outcome: Counter[str] = Counter()
    similarity: dict[str, list[float]] = defaultdict(list)
    for a in sorted(assignments, key=lambda a: a.sighting):
        kind, sim = decisions.get(a.sighting, ("unlogged", float("nan")))
        if kind == "match":
            right = a.identity is not None and owner.get(a.identity) == a.individual
            verdict = "match_correct" if right else "match_wrong"
        elif a.identity is None:
            verdict = "unassigned"
        else:
            verdict = "new_but_known" if a.individual in seen else "new_correct"
        outcome[verdict] += 1
        if np.isfinite(sim) and sim > -1:
            similarity[verdict].append(sim)
        seen.add(a.individual)
    total = sum(outcome.values())
    matches = outcome["match_correct"] + outcome["match_wrong"]
    counts = Counter(a.individual for a in assignments)
    frequent = {who for who, n in counts.items() if n >= FREQUENT_SIGHTINGS}
    in_main = 0
    for who in frequent:
        per_identity = Counter(a.identity for a in assignments if a.individual == who)
        in_main += per_identity.most_common(1)[0][1]
    return AssignmentScores(
        sightings=total,
        individuals=len(counts),
        assignment_rate=matches / total,
        assignment_accuracy=(outcome["match_correct"] + outcome["new_correct"]) / total,
        false_match_rate=outcome["match_wrong"] / total,
        wrong_share_of_matches=outcome["match_wrong"] / matches if matches else 0.0,
        accuracy_5plus=in_main / sum(counts[w] for w in frequent) if frequent else None,
        individuals_5plus=len(frequent),
        outcomes=dict(outcome),
        similarity=dict(similarity),
    )
