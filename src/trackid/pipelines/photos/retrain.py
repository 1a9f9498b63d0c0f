"""`photos retrain`: tune again with what people corrected, then move the store to the new model.

The corrected sightings (`trackid.identity.corrected_labels`: merges, splits, relabels that stand) are cropped
again from their photos and join the labelled folders' tuning side as extra individuals (`tune(..., extra=...)`),
so the learned metric, the weights, the calibration and the threshold all see them, while the folders' held-out
half still measures the result as before. Every sighting of the store then gets a vector of the new model
(`reembed`, camera-centred as ingest would), so `photos ingest --tuned <out>` and `photos reprocess` take over.

Resumable: the new `tuned.json` records a digest of what it was tuned on; a run that finds it unchanged (same
corrections, folders and settings) keeps it, so the model version stays the same and `reembed` skips what it
committed before the interruption.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trackid.config import GalleryConfig, PhotosConfig
from trackid.identity.corrected_labels import corrected_labels
from trackid.identity.reembed import ReembedReport, reembed
from trackid.identity.retrain import corrected_crops
from trackid.pipelines.photos.labels import Labels
from trackid.pipelines.photos.tune import ExtraLabels, tune
from trackid.pipelines.photos.tuned import Tuned

__all__ = ["RetrainReport", "retrain"]


@dataclass
class RetrainReport:
    """What `retrain` learned from and wrote."""

    tuned: Tuned
    retuned: bool
    corrected_individuals: int
    corrected_sightings: int
    unreadable: Counter[str] = field(default_factory=Counter)
    reembedded: ReembedReport = field(default_factory=ReembedReport)
    uncentred: Counter[str] = field(default_factory=Counter)
    """Cameras the new tuning has no mean for, with their sightings (re-embedded uncentred)."""


def retrain(
    folders: Sequence[Path],
    labels: Labels,
    *,
    config: PhotosConfig,
    gallery_config: GalleryConfig,
    out: Path,
    seed: int = 0,
    batch_size: int = 64,
    progress: Callable[[str], None] | None = None,
    reembed_progress: Callable[[int], None] | None = None,
) -> RetrainReport:
    """Tune on `folders` plus the store's corrected sightings into `out`, then re-embed the store with it."""
    with gallery_config.open_store(create=False) as store:
        corrected = corrected_labels(store)
        read = corrected_crops(corrected)
        crops, individuals, unreadable = read.crops, read.labels, read.skipped
        cameras = [s.camera or "" for s in read.sightings]
        if not crops:
            raise ValueError(
                f"{gallery_config.store}: no corrected sighting to learn from ({corrected.corrections_used} standing "
                f"corrections, {sum(unreadable.values())} unreadable sightings); merge, split or relabel some first"
            )
        digest = _digest(folders, corrected.sightings, individuals, config, seed)
        previous = _previous(out, digest)
        if previous is None:
            tuned = tune(
                folders,
                labels,
                config=config,
                out=out,
                seed=seed,
                progress=progress,
                extra=ExtraLabels(crops, individuals, cameras),
            )
            tuned.evidence["retrain"] = {
                "digest": digest,
                "corrected_sightings": len(crops),
                "corrected_individuals": len(set(individuals)),
                "unreadable": dict(unreadable),
            }
            tuned.save(out)
        else:
            tuned = previous
        embedder = tuned.make_embedder()
        uncentred: Counter[str] = Counter()
        added = reembed(
            store,
            embedder,
            batch_size=batch_size,
            progress=reembed_progress,
            adjust=tuned.sighting_adjuster(embedder, uncentred),
            model_version=tuned.model_version(embedder),
        )
    return RetrainReport(
        tuned=tuned,
        retuned=previous is None,
        corrected_individuals=len(set(individuals)),
        corrected_sightings=len(crops),
        unreadable=unreadable,
        reembedded=added,
        uncentred=uncentred,
    )


def _digest(
    folders: Sequence[Path], sightings: Sequence[Any], individuals: Sequence[str], config: PhotosConfig, seed: int
) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([sorted(str(f.resolve()) for f in folders), seed, config.model_dump(mode="json")]).encode())
    h.update(json.dumps([[s.id for s in sightings], list(individuals)]).encode())
    return h.hexdigest()


def _previous(out: Path, digest: str) -> Tuned | None:
    """The tuned settings an interrupted run with the same inputs already wrote, if any."""
    if not (out / "tuned.json").is_file():
        return None
    try:
        tuned = Tuned.load(out)
    except ValueError:
        return None
    return tuned if tuned.evidence.get("retrain", {}).get("digest") == digest else None
