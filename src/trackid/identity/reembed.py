"""Re-embed a gallery with a new model: read each sighting's pixels again and store the new model's vector beside
the old one.

Vectors of different models are never compared, so moving to a better embedder needs every remembered sighting in
the new model's space. `reembed` pages through the sightings that lack a vector of the new model (in id order),
crops them from the image their `source` names, embeds a batch at a time and commits each batch, folding the new
vectors into their identities' prototypes of the new model. A killed run is resumed by running it again: what was
committed no longer lacks the vector, and a sighting never gets two. Identities, assignments and corrections are
untouched; only the new model's prototypes appear, so a `Gallery` for the new model can take over.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from trackid.embed.base import Embedder
from trackid.embed.crops import crop_boxes
from trackid.identity.stores import GalleryStore, Sighting
from trackid.images import read_image

__all__ = ["ReembedReport", "reembed", "sighting_crop"]


@dataclass(slots=True)
class ReembedReport:
    """What a run did: vectors added, and the sightings it could not re-embed, counted by reason."""

    added: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    """The first few skipped sightings with their reason, for the user to check."""


def reembed(
    store: GalleryStore,
    embedder: Embedder,
    *,
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
    max_examples: int = 20,
    adjust: Callable[[NDArray[np.float32], Sequence[Sighting]], NDArray[np.float32]] | None = None,
    model_version: str | None = None,
) -> ReembedReport:
    """Add `embedder`'s vector to every sighting that lacks one; `progress(n)` after each page of n sightings.

    `adjust(vectors, sightings)` post-processes a batch with what the sightings know (e.g. per-camera centring in
    `pipelines.photos`); the vectors are then stored under `model_version` (default: the embedder's version), which
    must name the adjustment too, as the adjusted vectors live in another space.

    A sighting without a recorded source, or whose image is missing, unreadable or does not contain its box, is
    skipped with the reason in the report; the others are not held up by it. Bigger batches amortise the model's
    per-call cost and the commit's fsync; the memory held is one batch of crops.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    report = ReembedReport()
    version = model_version or embedder.version
    last_image: tuple[str, NDArray[np.uint8]] | None = None  # bursts and multi-person frames share an image
    after = 0
    while True:
        page = store.sightings_without_model(embedder.model_id, version, after=after, limit=batch_size)
        if not page:
            return report
        after = page[-1].id
        ids, crops, embedded = [], [], []
        for sighting in page:
            try:
                crop, last_image = sighting_crop(sighting.source, last_image)
            except ValueError as exc:
                image = (sighting.source or {}).get("image")
                report.skipped[str(exc).removeprefix(f"{image}: ")] += 1  # counted by reason, not by file
                if len(report.examples) < max_examples:
                    report.examples.append(f"sighting {sighting.id}: {exc}")
                continue
            ids.append(sighting.id)
            crops.append(crop)
            embedded.append(sighting)
        if crops:
            vectors = embedder.embed(crops)
            if adjust is not None:
                vectors = adjust(vectors, embedded)
            report.added += store.add_sighting_vectors(ids, vectors, model_id=embedder.model_id, model_version=version)
        if progress is not None:
            progress(len(page))


def sighting_crop(
    source: Mapping[str, Any] | None, last: tuple[str, NDArray[np.uint8]] | None
) -> tuple[NDArray[np.uint8], tuple[str, NDArray[np.uint8]] | None]:
    """The sighting's pixels: its box of its image (the whole image without a box)."""
    if source is None or "image" not in source:
        raise ValueError("no source image recorded")
    path = str(source["image"])
    image = last[1] if last is not None and last[0] == path else read_image(path)
    box = source.get("box")
    if box is None:
        return image, (path, image)
    if len(box) != 4:
        raise ValueError(f"{path}: box is not [x1, y1, x2, y2]")
    crop = crop_boxes(image, np.asarray(box, np.float64)[None, :])[0]
    if crop.size == 0:
        raise ValueError(f"{path}: box lies outside the image")
    return np.ascontiguousarray(crop), (path, image)
