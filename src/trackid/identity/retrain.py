"""Retraining from corrections: the metric and the calibration refitted on what people fixed, the gallery re-embedded.

Corrections already recalibrate scores (`Gallery.refit_calibration`); this makes the representation learn from
them too. The sightings corrections name (`corrected_labels`) are cropped again from their source images and
described by a feature embedder (e.g. `lomo`); a metric learner (XQDA, KISSME, LDA: `trackid.embed.metric`) is fitted
on them; every sighting of the store gets a vector of the learned embedder (`reembed`), so a gallery of that model
can take over. The calibration is fitted on out-of-fold similarities (the metric fitted without an individual scores
that individual's pairs), since pairs the metric was fitted on look far easier than the newcomers it will meet.

A run is resumable: the fitted metric is saved before re-embedding with a digest of what it was fitted on, and a run
that finds it (same corrections, features and metric) loads it instead of fitting again, so the vector space, and
with it the model version the store's vectors carry, stays the same; `reembed` then skips what was committed.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from trackid.artifacts import atomic_write_text
from trackid.embed.base import Embedder
from trackid.embed.metric import MetricEmbedder, load_metric, make_metric
from trackid.identity.calibration import MatchCalibrator
from trackid.identity.corrected_labels import CorrectedLabels, corrected_labels
from trackid.identity.reembed import ReembedReport, reembed, sighting_crop
from trackid.identity.stores import GalleryStore, Sighting

__all__ = [
    "CorrectedCrops",
    "LabelledFeatures",
    "RetrainResult",
    "corrected_crops",
    "labelled_features",
    "out_of_fold_pairs",
    "retrain_gallery",
]


@dataclass
class LabelledFeatures:
    """Feature rows of the corrected sightings, with their individuals and cameras."""

    features: NDArray[np.float32]
    labels: NDArray[np.str_]
    cameras: NDArray[np.str_]
    sighting_ids: list[int]
    skipped: Counter[str] = field(default_factory=Counter)
    """Sightings whose pixels could not be read again, by reason."""


@dataclass
class CorrectedCrops:
    """The corrected sightings whose pixels could be read, their crops and labels, and the others by reason."""

    crops: list[NDArray[np.uint8]]
    labels: list[str]
    sightings: list[Sighting]
    skipped: Counter[str]


@dataclass
class RetrainResult:
    """What `retrain_gallery` fitted and wrote (`retrain.json` in the output folder)."""

    model_id: str
    model_version: str
    individuals: int
    sightings: int
    corrections_used: int
    pairs: dict[str, int]
    metric_reused: bool
    reembed: ReembedReport
    skipped: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "model_version": self.model_version,
            "individuals": self.individuals,
            "sightings": self.sightings,
            "corrections_used": self.corrections_used,
            "calibration_pairs": self.pairs,
            "metric_reused": self.metric_reused,
            "vectors_added": self.reembed.added,
            "reembed_skipped": dict(self.reembed.skipped),
            "skipped": self.skipped,
        }


def retrain_gallery(
    store: GalleryStore,
    *,
    features: Embedder,
    metric: str,
    metric_params: Mapping[str, Any] | None = None,
    out: Path,
    prior: LabelledFeatures | None = None,
    folds: int = 2,
    seed: int = 0,
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
) -> RetrainResult:
    """Fit `metric` on the corrected sightings' `features`, calibrate it out of fold, save both in `out`
    (`metric.npz`, `calibrator.json`, `retrain.json`) and give every sighting a vector of the learned embedder.

    `prior`: labelled feature rows the metric learns from besides the corrections (e.g. the photos it was tuned on),
    so that a few corrected individuals add to what it knew instead of replacing it."""
    params = dict(metric_params or {})
    corrected = corrected_labels(store)
    data = labelled_features(store, corrected, features)
    _check_trainable(data, corrected)
    if prior is not None:
        data = _joined(prior, data)
    out.mkdir(parents=True, exist_ok=True)
    digest = _training_digest(data, features, metric, params)
    metric_file, inputs_file = out / "metric.npz", out / "metric_inputs.json"
    reused = metric_file.is_file() and inputs_file.is_file() and _recorded_digest(inputs_file) == digest
    if reused:
        learned = load_metric(metric_file)
    else:
        learned = make_metric(metric, **params).fit(data.features, data.labels, data.cameras)
        learned.save(metric_file)
        atomic_write_text(inputs_file, json.dumps({"digest": digest, "metric": metric, "params": params}) + "\n")
    similarity, same = out_of_fold_pairs(data, metric, params, folds=folds, seed=seed)
    calibrator = MatchCalibrator().fit(similarity, same)
    calibrator.save(out / "calibrator.json")
    embedder = MetricEmbedder(features, learned)
    added = reembed(store, embedder, batch_size=batch_size, progress=progress)
    result = RetrainResult(
        model_id=embedder.model_id,
        model_version=embedder.version,
        individuals=corrected.individuals,
        sightings=sum(i >= 0 for i in data.sighting_ids),
        corrections_used=corrected.corrections_used,
        pairs={"same": int(same.sum()), "different": int((~same).sum())},
        metric_reused=reused,
        reembed=added,
        skipped=dict(data.skipped),
    )
    atomic_write_text(out / "retrain.json", json.dumps(result.to_json(), indent=2) + "\n")
    return result


def corrected_crops(corrected: CorrectedLabels) -> CorrectedCrops:
    """Each corrected sighting's pixels, read again from the image its source names; unreadable ones counted."""
    crops, labels, kept = [], [], []
    skipped: Counter[str] = Counter()
    last = None
    for sighting, label in zip(corrected.sightings, corrected.labels, strict=True):
        try:
            crop, last = sighting_crop(sighting.source, last)
        except ValueError as exc:
            skipped[str(exc)] += 1
            continue
        crops.append(crop)
        labels.append(label)
        kept.append(sighting)
    return CorrectedCrops(crops, labels, kept, skipped)


def labelled_features(store: GalleryStore, corrected: CorrectedLabels, features: Embedder) -> LabelledFeatures:
    """`features` of each corrected sighting's crop (`corrected_crops`)."""
    read = corrected_crops(corrected)
    vectors = features.embed(read.crops) if read.crops else np.empty((0, features.dim), np.float32)
    cameras = [s.camera or s.site or "" for s in read.sightings]
    return LabelledFeatures(
        vectors,
        np.array(read.labels, dtype=str),
        np.array(cameras, dtype=str),
        [s.id for s in read.sightings],
        read.skipped,
    )


def out_of_fold_pairs(
    data: LabelledFeatures, metric: str, params: Mapping[str, Any], *, folds: int = 2, seed: int = 0
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Similarities and same-individual flags of every pair within a fold, in the space of a metric fitted on the
    other folds: what the calibration must expect of individuals the metric never saw."""
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    people = np.unique(data.labels)
    fold_of = dict(zip(people.tolist(), np.random.default_rng(seed).permutation(len(people)) % folds, strict=True))
    fold = np.array([fold_of[label] for label in data.labels.tolist()])
    sims, sames = [], []
    for k in range(folds):
        test = fold == k
        train = ~test
        if len(np.unique(data.labels[train])) < 2 or test.sum() < 2:
            continue
        learned = make_metric(metric, **params).fit(data.features[train], data.labels[train], data.cameras[train])
        z = learned.transform(data.features[test])
        a, b = np.triu_indices(int(test.sum()), k=1)
        sims.append((z[a] * z[b]).sum(axis=1).astype(np.float64))
        sames.append(data.labels[test][a] == data.labels[test][b])
    similarity = np.concatenate(sims) if sims else np.empty(0)
    same = np.concatenate(sames) if sames else np.empty(0, bool)
    if not same.any() or same.all():
        raise ValueError(
            f"calibrating needs out-of-fold pairs of both kinds; the corrections give {int(same.sum())} same and "
            f"{int((~same).sum())} different pairs (correct more individuals, each with two or more sightings)"
        )
    return similarity, same


def _joined(prior: LabelledFeatures, corrected: LabelledFeatures) -> LabelledFeatures:
    """Both sets as one; prior labels are kept apart from the store's (`prior:` prefix), its rows have no sighting."""
    if prior.features.shape[1] != corrected.features.shape[1]:
        raise ValueError(
            f"prior features are {prior.features.shape[1]}-d but the features embedder gives "
            f"{corrected.features.shape[1]}-d"
        )
    return LabelledFeatures(
        np.concatenate([prior.features, corrected.features]),
        np.concatenate([np.char.add("prior:", prior.labels.astype(str)), corrected.labels]),
        np.concatenate([prior.cameras.astype(str), corrected.cameras]),
        [-1] * len(prior.labels) + corrected.sighting_ids,
        corrected.skipped,
    )


def _check_trainable(data: LabelledFeatures, corrected: CorrectedLabels) -> None:
    counts = Counter(data.labels.tolist())
    repeated = sum(c >= 2 for c in counts.values())
    # two folds of two individuals each is the least an out-of-fold calibration can be made of
    if len(counts) < 4 or repeated < 2:
        raise ValueError(
            f"retraining needs corrections naming at least 4 individuals, 2 of them with two or more readable "
            f"sightings; the store's {corrected.corrections_used} standing corrections name {len(counts)} "
            f"individual(s), {repeated} with two or more (unreadable sightings: {sum(data.skipped.values())})"
        )


def _training_digest(data: LabelledFeatures, features: Embedder, metric: str, params: Mapping[str, Any]) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([features.model_id, features.version, metric, dict(params)], sort_keys=True).encode())
    h.update(json.dumps([data.sighting_ids, data.labels.tolist(), data.cameras.tolist()]).encode())
    h.update(np.ascontiguousarray(data.features).tobytes())  # a changed prior with the same labels is a new fit
    return h.hexdigest()


def _recorded_digest(path: Path) -> str | None:
    try:
        return str(json.loads(path.read_text(encoding="utf-8"))["digest"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
