"""The prototype memory policy: how an identity's few remembered appearances absorb new sightings.

An identity is remembered by at most `max_prototypes` quality-weighted unit vectors per model, not by one running
average that drifts towards whatever was seen last. A sighting close to a prototype (cosine >= `merge_similarity`)
is averaged into it with weights quality-so-far : its quality, so a well-supported prototype moves little; otherwise
it takes a free slot, or replaces the weakest prototype if it is better, or is not remembered at all (the sighting
itself still is). Quality-0 sightings never change prototypes.

Folding is sequential by nature (each sighting changes what the next one is compared with), so the loop runs over
sightings and the comparison with all of an identity's slots is one matrix-vector product. The store calls it once
per identity and batch, whatever the number of sightings.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

__all__ = ["PrototypeSlots"]


class PrototypeSlots:
    """One identity's prototypes of one model while they are updated; `ids[i]` is None until inserted.

    After `fold`, `changed()` lists the slots to write: new ones (id None) and those whose content moved.
    """

    def __init__(
        self,
        ids: Sequence[int | None],
        vectors: NDArray[np.float32],
        quality: Sequence[float],
        count: Sequence[int],
    ) -> None:
        self.ids: list[int | None] = list(ids)
        self.vectors = np.array(vectors, np.float32, ndmin=2)  # (M, D), a copy: folding writes into it
        self.quality = [float(q) for q in quality]
        self.count = [int(c) for c in count]
        self._dirty = [False] * len(self.ids)

    def fold(
        self,
        vectors: NDArray[np.float32],
        qualities: Sequence[float],
        *,
        max_prototypes: int,
        merge_similarity: float,
    ) -> None:
        """Absorb unit vectors (N, D) with their qualities, in order."""
        for vector, quality in zip(vectors, qualities, strict=True):
            self._fold_one(np.asarray(vector, np.float32), float(quality), max_prototypes, merge_similarity)

    def changed(self) -> list[int]:
        """Slot positions whose rows must be inserted or updated."""
        return [i for i, dirty in enumerate(self._dirty) if dirty]

    def _fold_one(self, vector: NDArray[np.float32], quality: float, max_prototypes: int, merge: float) -> None:
        if quality <= 0:
            return
        if self.ids:
            sims = self.vectors @ vector
            closest = int(np.argmax(sims))
            if sims[closest] >= merge:
                mixed = self.quality[closest] * self.vectors[closest] + quality * vector
                self.vectors[closest] = mixed / np.linalg.norm(mixed)
                self.quality[closest] += quality
                self.count[closest] += 1
                self._dirty[closest] = True
                return
        if len(self.ids) < max_prototypes:
            self.ids.append(None)
            self.vectors = np.vstack([self.vectors.reshape(-1, len(vector)), vector[None, :]])
            self.quality.append(quality)
            self.count.append(1)
            self._dirty.append(True)
            return
        weakest = int(np.argmin(self.quality))
        if quality > self.quality[weakest]:
            self.vectors[weakest], self.quality[weakest], self.count[weakest] = vector, quality, 1
            self._dirty[weakest] = True
