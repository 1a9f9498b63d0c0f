"""Labels from corrections: what people fixed in a gallery becomes training data for the metric and calibration.

A merge says the sightings of two identities are one individual; a split says two sets of sightings are two; a
relabel names an identity. Retraining needs per-sighting labels (the metric learners fit on classes), so the
standing corrections are read back as groups of sightings known to be one individual:

- merge: the sightings it moved and those it kept (the store records up to `Corrections.SAMPLE_LIMIT` of the
  latter), as far as they still sit on the merged identity;
- split: each side, the moved and the kept, as two groups;
- relabel (to a name): every sighting the identity holds now. A name is a statement about the identity, and groups
  of one name (two identities relabelled alike) are one individual.

Only sightings a correction names are used for merges and splits: sightings the gallery assigned later were matched
by the model at its threshold, not checked by anyone. An undone correction teaches nothing; a deleted identity's
sightings are left out. Each verified sighting is labelled by the identity it sits on now (corrections chain: a
merge's two sides share one, a split's two sides differ), or by that identity's name.
"""

from __future__ import annotations

from dataclasses import dataclass

from trackid.identity.stores import GalleryStore, Identity, Sighting

__all__ = ["CorrectedLabels", "corrected_labels"]


@dataclass(frozen=True)
class CorrectedLabels:
    """Sightings with the individual label corrections give them, and where each label came from."""

    sightings: list[Sighting]
    labels: list[str]
    """`labels[i]` is `sightings[i]`'s individual: `name:<label>` for a named identity, else `identity:<id>`."""
    corrections_used: int

    @property
    def individuals(self) -> int:
        return len(set(self.labels))


def corrected_labels(store: GalleryStore) -> CorrectedLabels:
    """The sightings the standing merges, splits and relabels of `store` name, labelled by individual."""
    live = {identity.id: identity for identity in store.identities()}
    verified: set[int] = set()
    used = 0
    for event in store.corrections():
        if event.undone_by is not None or event.kind not in ("merge", "split", "relabel"):
            continue
        if event.kind == "relabel":
            if event.payload.get("new") is None or event.identity_id not in live:
                continue
            verified.update(s.id for s in store.sightings(event.identity_id))
        else:
            verified.update(int(s) for s in (*event.payload["moved"], *event.payload["kept"]))
        used += 1
    sightings, labels = [], []
    for sighting in (store.get_sighting(i) for i in sorted(verified)):
        if sighting.identity_id is not None and sighting.identity_id in live:
            sightings.append(sighting)
            labels.append(_label(live[sighting.identity_id]))
    return CorrectedLabels(sightings=sightings, labels=labels, corrections_used=used)


def _label(identity: Identity) -> str:
    """After the corrections, an identity people touched is one individual: named, or known by its id."""
    return f"name:{identity.label}" if identity.label else f"identity:{identity.id}"
