"""`photos tune --label-free`: the threshold and calibration of a new deployment from its own unlabelled data.

Where `tune` needs labelled photos, this needs none: pairs are mined from what the photos (or a tracker's
tracklets) say by themselves (`trackid.identity.pair_mining`): photos of one burst, or frames of one track, are one
individual; individuals in one photo or frame are two; with `site_travel_s`, sightings at two cameras closer in time
than the travel between them are two. The camera means need no labels either (where a camera sees a single
individual, its mean is that individual: `centring="global"` removes the mean of all sightings instead). The
threshold comes from the mined negatives alone (the positives of a burst are far easier than the matches a gallery
must make), for the target false-match rate of decisions in an ingest of these sightings in time order, replayed
against the tracks known to be someone else; the ensemble keeps the weights it is given (choosing them needs
labels). `tuned.json` is written as `tune` writes it, the evidence saying what was mined.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from trackid.config import PhotosConfig
from trackid.embed import Embedder, make_embedder
from trackid.embed.centring import CameraCentring
from trackid.embed.ensemble import EnsembleEmbedder
from trackid.identity.pair_mining import (
    NEGATIVE_SOURCES,
    POSITIVE_SOURCES,
    label_free_calibration,
    mine_pairs,
    replay_impostors,
)
from trackid.pipelines.photos.bursts import PhotoCropper, burst_tracklets
from trackid.pipelines.photos.tuned import Tuned
from trackid.sources.photos import SkippedFile, group_bursts, scan_photos
from trackid.types import Tracklet

__all__ = ["label_free_tune"]


def label_free_tune(
    folders_or_tracklets: Sequence[Path] | Sequence[Tracklet],
    *,
    config: PhotosConfig,
    out: Path,
    crop_vectors: Sequence[NDArray[np.float32]] | None = None,
    site_travel_s: float | None = None,
    segments: int = 3,
    min_gap_s: float = 0.0,
    centring: Literal["camera", "global", "none"] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Tuned:
    """Tune from unlabelled photo folders (each burst's individuals are tracklets) or from tracklets with crops;
    write `out/tuned.json` and return it.

    Args:
        crop_vectors: with tracklets, their crops' vectors already made by `config.embedder` (one (len(crops), D)
            array per tracklet, e.g. kept from tracking), so the crops are not embedded again.
        site_travel_s: every two cameras are at least this many seconds of travel apart, which makes sightings
            of two cameras closer in time than this negatives; None (the default) when cameras may see one
            individual at once (`trackid.identity.pair_mining.mine_pairs`).
        segments, min_gap_s: how positives are cut from a tracklet (`mine_pairs`); photo bursts are short, so
            the defaults take every two of up to 3 parts of a burst.
        centring: "camera": each camera's mean is removed (what makes two people under one light look alike);
            "global": the mean of all sightings is removed from every camera's, for cameras that each see one
            individual (a camera's mean is then that individual, and removing it removes who they are), or
            embedders whose vectors all lean one way (dlib's faces: different people at cosine 0.88);
            "none"; None (the default): "camera" if `config.camera_centring`, else "none".
    """
    if centring not in (None, "camera", "global", "none"):
        raise ValueError(f"centring must be 'camera', 'global', 'none' or None, got {centring!r}")
    mode = centring or ("camera" if config.camera_centring else "none")
    skipped: list[SkippedFile] = []
    if all(isinstance(x, Tracklet) for x in folders_or_tracklets):
        tracklets = [x for x in folders_or_tracklets if isinstance(x, Tracklet)]
        if crop_vectors is not None and len(crop_vectors) != len(tracklets):
            raise ValueError(f"crop_vectors has {len(crop_vectors)} entries for {len(tracklets)} tracklets")
        with_crops = [k for k, t in enumerate(tracklets) if t.crops]  # a track seen only in poor crops has none
        tracklets = [tracklets[k] for k in with_crops]
        crop_vectors = None if crop_vectors is None else [crop_vectors[k] for k in with_crops]
        source = "within-tracklet"
    elif all(isinstance(x, Path) for x in folders_or_tracklets):
        if crop_vectors is not None:
            raise ValueError("crop_vectors: only tracklets come with vectors; photo folders are embedded here")
        tracklets = _photo_tracklets([Path(str(x)) for x in folders_or_tracklets], config, skipped)
        source = "within-burst"
    else:
        raise ValueError("folders_or_tracklets must be photo folders (Path) or tracklets, not a mix")
    if len(tracklets) < 2:
        raise ValueError(f"label-free tuning needs sightings; found {len(tracklets)} with crops")
    embedder = make_embedder(config.embedder.name, **config.embedder.params)
    vectors = _vectors(tracklets, crop_vectors, embedder, progress)
    cameras = np.array([t.camera_id for t in tracklets for _ in t.crops])
    centring = None
    if mode != "none":
        dims, weights = _layout(embedder)
        fitted_on = cameras if mode == "camera" else np.zeros(len(cameras), str)
        centring = CameraCentring(dims=dims, weights=weights).fit(vectors, fitted_on)
        if mode == "global":  # every camera seen gets the one mean (a camera never seen is left as it is)
            centring.means_ = {str(c): centring.means_[""] for c in np.unique(cameras)}
        vectors = centring.transform(vectors, cameras)
    bounds = np.cumsum([0, *(len(t.crops) for t in tracklets)])
    per_tracklet = [vectors[lo:hi] for lo, hi in itertools.pairwise(bounds)]
    pairs = mine_pairs(
        tracklets,
        per_tracklet,
        segments=segments,
        min_gap_s=min_gap_s,
        positive_source=source,  # type: ignore[arg-type]  # one of POSITIVE_SOURCES, chosen above
        site_travel_s=site_travel_s,
    )
    if progress is not None:
        progress(f"mined {len(pairs)} pairs from {len(tracklets)} sightings: {pairs.counts()}")
    impostors = replay_impostors(tracklets, pairs)
    chosen = label_free_calibration(pairs, impostors, target=config.target_false_positive_rate)
    candidates = impostors.candidates
    out.mkdir(parents=True, exist_ok=True)
    tuned = Tuned(
        embedder=config.embedder,
        calibrator=chosen.calibrator,
        threshold=chosen.threshold,
        target_false_positive_rate=config.target_false_positive_rate,
        centring=centring,
        evidence={
            "label_free": True,
            "camera_centring": centring is not None,
            "centring": mode,
            "sightings": len(tracklets),
            "crops": len(vectors),
            "cameras": sorted(set(cameras.tolist())),
            "skipped": [{"path": str(f.path), "reason": f.reason} for f in skipped],
            "mining": {
                "segments": segments,
                "min_gap_s": min_gap_s,
                "site_travel_s": site_travel_s,
                "pairs": pairs.counts(),
                "mean_similarity": {
                    s: float(pairs.similarity[pairs.source == s].mean()) if np.any(pairs.source == s) else None
                    for s in (*POSITIVE_SOURCES, *NEGATIVE_SOURCES)
                },
            },
            "threshold_from": "a replay against the tracks the mined negatives say are someone else (impostor "
            "best-match model); positives fit the calibrator only",
            "replayed_impostors": len(impostors.best),
            "similarity_threshold": chosen.similarity_threshold,
            "expected_false_match_rate": chosen.expected_false_match_rate,
            "impostor_tail": {
                "start": chosen.tail_start,
                "exponential_scale": None if np.isnan(chosen.tail_scale) else chosen.tail_scale,
            },
            "candidates_per_decision": {"max": int(candidates.max()), "mean": float(candidates.mean())},
        },
    )
    tuned.save(out)
    return tuned


def _photo_tracklets(folders: list[Path], config: PhotosConfig, skipped: list[SkippedFile]) -> list[Tracklet]:
    """Every burst's individuals, in time order (as ingest groups them)."""
    photos, found_skipped = scan_photos(folders, config.extensions)
    skipped.extend(found_skipped)
    cropper = PhotoCropper(config)
    bursts = group_bursts(photos, config.burst_gap_s, config.bursts_from_file_times)
    found = [t for burst in bursts for t in burst_tracklets(burst, cropper, skipped)]
    # a burst numbers its individuals from 0: numbered across bursts, each individual of each burst is one track
    return [replace(t, track_id=k) for k, t in enumerate(found)]


def _vectors(
    tracklets: Sequence[Tracklet],
    crop_vectors: Sequence[NDArray[np.float32]] | None,
    embedder: Embedder,
    progress: Callable[[str], None] | None,
) -> NDArray[np.float32]:
    """Every crop's vector, tracklet after tracklet: given, or made by `embedder`."""
    if crop_vectors is None:
        crops = [c for t in tracklets for c in t.crops]
        if progress is not None:
            progress(f"embedding {len(crops)} crops with {embedder.model_id}")
        return np.asarray(embedder.embed(crops), np.float32)
    for k, (t, v) in enumerate(zip(tracklets, crop_vectors, strict=True)):
        if np.shape(v) != (len(t.crops), embedder.dim):
            raise ValueError(f"crop_vectors[{k}] must be ({len(t.crops)}, {embedder.dim}), got {np.shape(v)}")
    return np.concatenate([np.asarray(v, np.float32) for v in crop_vectors])


def _layout(embedder: Embedder) -> tuple[list[int], list[float] | None]:
    """The blocks of the embedder's output and their weights (an ensemble's members), for the camera means."""
    if isinstance(embedder, EnsembleEmbedder):
        return list(embedder.dims), [float(w) for w in embedder.weights]
    return [embedder.dim], None
