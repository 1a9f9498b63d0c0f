"""What the review page shows and what each of its actions will change, computed from the gallery store.

The page lists identities most in need of a person first: by `uncertainty`, the similarity of an identity's centre
to its nearest other identity's, minus its own cohesion (its sightings' mean similarity to its centre), plus the
share of its sightings matched to it near the threshold (the similarity log's match decisions whose probability was
within `NEAR_THRESHOLD` of the threshold), plus one for each finding of the photos monitor (an individual at two
sites too close in time, contradicting attributes; `photos.monitor.monitor_findings`). So a spread identity close to
another, or one built from narrow matches, comes before a tight one far from all. Similarities are cosines of the
sightings' recorded vectors (each identity's centre is their normalised mean).

Every action is first a `Plan`: the exact sightings and identities it will touch, in words and as ids. Applying a
plan re-reads the store and refuses (PlanChanged) when any of it changed since the preview, so a merge can never
move more sightings than the page showed, and nothing moves that the person did not see.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np

from trackid.embed.crops import l2_normalise
from trackid.identity.stores.base import GalleryStore
from trackid.identity.stores.records import Correction, Identity, Sighting
from trackid.pipelines.photos.monitor import monitor_findings

__all__ = ["IdentityCard", "Plan", "PlanChanged", "apply_plan", "cards", "plan"]

Action = Literal["merge", "split", "relabel", "undo"]
NEAR_THRESHOLD = 0.1  # a match whose probability was this close to the threshold was a narrow one
LOGGED = 100_000  # the latest similarity-log records read for the narrow matches


class PlanChanged(ValueError):  # noqa: N818 - a state, as the user reads it: "the plan changed"
    """The store changed since the preview: nothing was applied (the message says what)."""


@dataclass(frozen=True)
class IdentityCard:
    identity: Identity
    sightings: list[Sighting]  # best quality first
    cohesion: float | None  # mean cosine of its sightings to its centre (None: one sighting)
    candidates: list[tuple[int, float]]  # other identities by centre similarity, most similar first
    narrow_matches: int  # sightings matched to it within NEAR_THRESHOLD of the threshold
    flags: list[str]  # the photos monitor's findings, as sentences
    uncertainty: float


@dataclass(frozen=True)
class Plan:
    """An action and exactly what it changes; `fingerprint` is of the store state it was made from."""

    action: Action
    summary: str
    identity_id: int | None = None
    other_identity_id: int | None = None
    sighting_ids: list[int] = field(default_factory=list)
    label: str | None = None
    fingerprint: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def cards(store: GalleryStore, max_candidates: int = 5, min_travel_s: float | None = None) -> list[IdentityCard]:
    """Every live identity with its sightings, cohesion, nearest others, narrow matches and monitor findings (the
    travel check with `min_travel_s`), most uncertain first."""
    identities = [i for i in store.identities() if i.sighting_count > 0]
    if not identities:
        return []
    sightings = {i.id: sorted(store.sightings(i.id), key=lambda s: -s.quality) for i in identities}
    centres, cohesion = [], []
    for identity in identities:
        vectors = l2_normalise(np.stack([s.vector for s in sightings[identity.id]]))
        centre = l2_normalise(vectors.mean(axis=0, keepdims=True))[0]
        centres.append(centre)
        cohesion.append(float((vectors @ centre).mean()) if len(vectors) > 1 else None)
    narrow = _narrow_matches(store)
    flags: dict[int, list[str]] = {}
    for finding in monitor_findings(store, min_travel_s):
        flags.setdefault(int(finding["identity"]), []).append(str(finding["message"]))
    similarity = np.stack(centres) @ np.stack(centres).T
    np.fill_diagonal(similarity, -np.inf)
    out = []
    for k, identity in enumerate(identities):
        order = np.argsort(-similarity[k])[:max_candidates]
        candidates = [(identities[j].id, float(similarity[k, j])) for j in order if np.isfinite(similarity[k, j])]
        nearest = candidates[0][1] if candidates else -1.0
        own = cohesion[k]
        spread = 0.0 if own is None else 1.0 - own
        close = narrow.get(identity.id, 0)
        flagged = flags.get(identity.id, [])
        score = nearest + spread + close / max(identity.sighting_count, 1) + len(flagged)
        out.append(IdentityCard(identity, sightings[identity.id], cohesion[k], candidates, close, flagged, score))
    return sorted(out, key=lambda c: (-c.uncertainty, c.identity.id))


def _narrow_matches(store: GalleryStore) -> Counter[int]:
    """Per identity, the logged match decisions for it whose probability was near the threshold."""
    out: Counter[int] = Counter()
    for record in store.similarity_log(limit=LOGGED):
        if record.decision != "match" or record.candidate is None:
            continue
        if record.probability is not None and record.threshold is not None:
            out[record.candidate] += abs(record.probability - record.threshold) <= NEAR_THRESHOLD
    return out


def plan(
    store: GalleryStore,
    action: Action,
    *,
    identity_id: int | None = None,
    other_identity_id: int | None = None,
    sighting_ids: list[int] | None = None,
    label: str | None = None,
) -> Plan:
    """What `action` would change, in words and ids (ValueError naming what is wrong with the request)."""
    if action == "merge":
        into, source = _live(store, identity_id, "identity_id"), _live(store, other_identity_id, "other_identity_id")
        if into.id == source.id:
            raise ValueError("merge needs two different identities")
        moved = sorted(s.id for s in store.sightings(source.id))
        summary = (
            f"Merge {_name(source)} into {_name(into)}: its {len(moved)} sighting(s) {_ids(moved)} move to "
            f"{_name(into)} (then {into.sighting_count + len(moved)} sightings), and {_name(source)} is retired."
        )
        return _fingerprinted(store, Plan("merge", summary, into.id, source.id, moved))
    if action == "split":
        identity = _live(store, identity_id, "identity_id")
        owned = {s.id for s in store.sightings(identity.id)}
        chosen = sorted(set(sighting_ids or []))
        foreign = [s for s in chosen if s not in owned]
        if not chosen or foreign:
            raise ValueError(
                f"choose sightings of {_name(identity)} to split off" + (f" ({foreign} are not its)" if foreign else "")
            )
        if len(chosen) == len(owned):
            raise ValueError(f"a split must leave {_name(identity)} at least one sighting")
        summary = (
            f"Split {len(chosen)} sighting(s) {_ids(chosen)} off {_name(identity)} into a new identity; "
            f"{_name(identity)} keeps {len(owned) - len(chosen)}."
        )
        return _fingerprinted(store, Plan("split", summary, identity.id, None, chosen, label))
    if action == "relabel":
        identity = _live(store, identity_id, "identity_id")
        new = (label or "").strip() or None
        summary = f"Relabel {_name(identity)}: {identity.label or '(no label)'!s} -> {new or '(no label)'}."
        return _fingerprinted(store, Plan("relabel", summary, identity.id, None, [], new))
    if action == "undo":
        latest = _latest_correction(store)
        if latest is None:
            raise ValueError("there is no correction to undo")
        moving = _undo_moves(store, latest)
        summary = f"Undo correction #{latest.id}: {_describe(latest, moving)}."
        return _fingerprinted(store, Plan("undo", summary, latest.identity_id, latest.other_identity_id, moving))
    raise ValueError(f"unknown action {action!r}")


def apply_plan(store: GalleryStore, shown: Plan) -> Correction:
    """Apply `shown` if the store is as it was when it was planned (PlanChanged otherwise)."""
    again = plan(
        store,
        shown.action,
        identity_id=None if shown.action == "undo" else shown.identity_id,
        other_identity_id=shown.other_identity_id,
        sighting_ids=shown.sighting_ids,
        label=shown.label,
    )
    if again.fingerprint != shown.fingerprint or again.sighting_ids != shown.sighting_ids:
        raise PlanChanged(f"the gallery changed since this was shown; nothing was applied. Now: {again.summary}")
    if shown.action == "merge":
        assert shown.identity_id is not None and shown.other_identity_id is not None
        return store.merge(shown.identity_id, shown.other_identity_id)
    if shown.action == "split":
        assert shown.identity_id is not None
        return store.split(shown.identity_id, sighting_ids=shown.sighting_ids, label=shown.label)
    if shown.action == "relabel":
        assert shown.identity_id is not None
        return store.relabel(shown.identity_id, shown.label)
    return store.undo()


def _fingerprinted(store: GalleryStore, planned: Plan) -> Plan:
    """The plan with a hash of what it depends on: the touched identities' sightings and labels, the latest
    correction."""
    touched = [i for i in (planned.identity_id, planned.other_identity_id) if i is not None]
    state: dict[str, Any] = {"latest": getattr(_latest_correction(store), "id", None)}
    for identity_id in touched:
        identity = _identity(store, identity_id)
        state[str(identity_id)] = (
            None
            if identity is None
            else {
                "label": identity.label,
                "deleted": identity.deleted,
                "sightings": sorted(s.id for s in store.sightings(identity_id)),
            }
        )
    digest = hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:16]
    return replace(planned, fingerprint=digest)


def _live(store: GalleryStore, identity_id: int | None, name: str) -> Identity:
    if identity_id is None:
        raise ValueError(f"{name} is required")
    identity = _identity(store, identity_id)
    if identity is None or identity.deleted:
        raise ValueError(f"{name}: no live identity {identity_id}")
    return identity


def _identity(store: GalleryStore, identity_id: int) -> Identity | None:
    try:
        return store.get_identity(identity_id)
    except KeyError:
        return None


def _latest_correction(store: GalleryStore) -> Correction | None:
    standing = [c for c in store.corrections() if c.kind != "undo" and c.undone_by is None]
    return standing[-1] if standing else None


def _undo_moves(store: GalleryStore, correction: Correction) -> list[int]:
    """The sightings undoing `correction` moves, as the store's `undo` will: a merge's moved sightings still on the
    identity they went to; everything now on a split-off identity."""
    if correction.kind == "merge" and correction.identity_id is not None:
        now = {s.id for s in store.sightings(correction.identity_id)}
        return sorted(int(s) for s in correction.payload.get("moved", []) if int(s) in now)
    if correction.kind == "split" and correction.other_identity_id is not None:
        return sorted(s.id for s in store.sightings(correction.other_identity_id))
    return []


def _describe(correction: Correction, moving: list[int]) -> str:
    if correction.kind == "merge":
        return (
            f"identity {correction.other_identity_id} comes back with {len(moving)} sighting(s) {_ids(moving)}, "
            f"taken from identity {correction.identity_id}"
        )
    if correction.kind == "split":
        other = correction.other_identity_id
        return (
            f"the {len(moving)} sighting(s) {_ids(moving)} of identity {other} return to identity "
            f"{correction.identity_id}, and identity {other} is retired"
        )
    if correction.kind == "relabel":
        old = correction.payload.get("old") or "(no label)"
        return f"identity {correction.identity_id}'s label goes back to {old}"
    return f"identity {correction.identity_id} is restored"


def _name(identity: Identity) -> str:
    return f"identity {identity.id}" + (f" ({identity.label})" if identity.label else "")


def _ids(ids: list[int]) -> str:
    shown = ", ".join(map(str, ids[:20]))
    return f"[{shown}{', ...' if len(ids) > 20 else ''}]"
