"""`photos monitor`: assignments a person should look at, found by what cannot be true of one individual.

One individual cannot be at two sites closer in time than it can travel, and its attributes (sex, species) do not
change between photos; a profile that breaks either probably holds two individuals.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from itertools import pairwise
from pathlib import Path
from typing import Any

from trackid.artifacts import atomic_write_text
from trackid.identity.stores import GalleryStore, Sighting
from trackid.reports import bullet_list, heading, page

__all__ = ["monitor", "monitor_findings"]


def monitor(store: GalleryStore, min_travel_s: float, out: Path) -> dict[str, Any]:
    """Assignments a person should look at (`monitor_findings`), written to out/monitor.json and monitor.html."""
    findings = monitor_findings(store, min_travel_s)
    result = {"identities_checked": len(store.identities()), "findings": findings, "min_travel_s": min_travel_s}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "monitor.json", json.dumps(result, indent=2) + "\n")
    atomic_write_text(
        out / "monitor.html",
        page(
            "Assignments to review",
            heading(f"Assignments to review ({len(findings)})"),
            bullet_list((f["message"] for f in findings), empty="nothing suspicious"),
        ),
    )
    return result


def monitor_findings(store: GalleryStore, min_travel_s: float | None) -> list[dict[str, Any]]:
    """One individual at two sites closer in time than `min_travel_s` (None: not checked), and sightings whose
    attributes (e.g. sex) contradict each other within one profile; each names its `identity`."""
    findings: list[dict[str, Any]] = []
    for identity in store.identities():
        sightings = store.sightings(identity.id)
        if min_travel_s is not None:
            findings += _travel_findings(identity.id, sightings, min_travel_s)
        findings += _attribute_findings(identity.id, identity.attributes, sightings)
    return findings


def _travel_findings(identity_id: int, sightings: list[Sighting], min_travel_s: float) -> list[dict[str, Any]]:
    out = []
    for a, b in pairwise(sightings):
        if a.site and b.site and a.site != b.site and b.time - a.time < min_travel_s:
            out.append(
                {
                    "kind": "implausible_travel",
                    "identity": identity_id,
                    "sightings": [a.id, b.id],
                    "message": f"identity {identity_id}: at {a.site} and {b.site} {b.time - a.time:.0f} s apart "
                    f"(sightings {a.id}, {b.id}; minimum travel time {min_travel_s:.0f} s)",
                }
            )
    return out


def _attribute_findings(identity_id: int, known: Mapping[str, Any], sightings: list[Sighting]) -> list[dict[str, Any]]:
    values: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for s in sightings:
        for key, value in ((s.source or {}).get("attributes") or {}).items():
            values[key][str(value)].append(s.id)
    out = []
    for key, seen in values.items():
        expected = known.get(key)
        if len(seen) > 1 or (expected is not None and set(seen) != {str(expected)}):
            detail = ", ".join(f"{v} in sightings {ids[:5]}" for v, ids in seen.items())
            out.append(
                {
                    "kind": "attribute_conflict",
                    "identity": identity_id,
                    "attribute": key,
                    "message": f"identity {identity_id}: {key} = {expected if expected is not None else '?'} but "
                    f"{detail}",
                }
            )
    return out
