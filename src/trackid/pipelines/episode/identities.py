"""Stage 3 of an episode: face tracks -> identities (`trackid.cluster`), with their cohesion and screen time.

Constraints, not hints:
- tracks seen in one frame are different people (cannot-link);
- a track that starts in the same shot within `rejoin_gap_s` of another's end, where that one's last face was
  (IoU >= `REJOIN_IOU`), is the same face after an occlusion or a missed detection (must-link), except for the
  two parts cleanup cut a track into, which the embeddings alone decide.
The threshold comes from the episode's own pairs (`threshold_from_pairs`: halves of a track against tracks on
screen together), or the fallback with the reason when the episode has no such pairs. After clustering, a track
whose distance to the rest of its identity exceeds the threshold is an outlier: with `outliers:
treat_as_singletons` it becomes an identity of its own.

Writes `identities.json` (the threshold and how it was chosen; per identity: identity_id, track_ids, faces,
screen_time_s, cohesion_score (mean similarity of its tracks to its centre), min_identity_sim (lowest similarity of
two of its tracks), outlier, low_cohesion) and adds singleton_fraction, largest_cluster_fraction and the screen
time per identity to `track_metrics.json`. `cleanup.py` builds its identities with the same functions.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from trackid.artifacts import atomic_write_text
from trackid.cluster import (
    ThresholdChoice,
    cluster_with_constraints,
    cosine_distances,
    half_track_distances,
    threshold_from_pairs,
)
from trackid.geometry import iou_matrix
from trackid.pipelines.episode.embed_faces import FALLBACK_THRESHOLDS, face_vectors, read_detections
from trackid.pipelines.episode.settings import EpisodeConfig

__all__ = [
    "REJOIN_IOU",
    "EpisodeTracks",
    "IdentitiesResult",
    "cluster_identities",
    "identity_document",
    "identity_metrics",
    "load_tracks",
    "tracks_on_screen_together",
    "tracks_split_at_occlusion",
]

log = logging.getLogger(__name__)
REJOIN_IOU = 0.3


@dataclass(frozen=True)
class IdentitiesResult:
    identities: int
    tracks: int
    threshold: float
    threshold_source: str
    warnings: list[str]
    files: dict[str, Path]


@dataclass
class EpisodeTracks:
    """The embedded face tracks of a run, as clustering needs them; rows in `track_ids` order."""

    track_ids: list[int]
    pooled: NDArray[np.float64]  # unit sum of each track's accepted face embeddings
    faces: list[NDArray[np.float64]]  # each track's accepted face embeddings, in frame order
    face_frames: list[NDArray[np.int64]]  # the frame of each of those faces
    detections: dict[int, list[dict[str, Any]]]  # every tracked face of each track (detections.jsonl)
    shot_of: dict[int, int]
    embedder: str
    seconds_per_frame: float
    split_from: dict[int, int] = field(default_factory=dict)  # cleanup's parts -> the track they were cut from


def tracks_on_screen_together(frames_of: dict[int, set[int]]) -> list[tuple[int, int]]:
    """Pairs of track ids that share a frame (two faces at once are two people)."""
    by_frame: dict[int, list[int]] = defaultdict(list)
    for track, frames in frames_of.items():
        for f in frames:
            by_frame[f].append(track)
    pairs = {(min(a, b), max(a, b)) for ts in by_frame.values() for i, a in enumerate(ts) for b in ts[i + 1 :]}
    return sorted(pairs)


def tracks_split_at_occlusion(
    detections: dict[int, list[dict[str, Any]]], shot_of: dict[int, int], max_gap_frames: float
) -> list[tuple[int, int]]:
    """Pairs (a, b): b starts in a's shot, within `max_gap_frames` after a ends, where a's last face was."""
    ends = sorted(detections, key=lambda t: detections[t][-1]["frame"])
    pairs = []
    for a in ends:
        last = detections[a][-1]
        for b, rows in detections.items():
            gap = rows[0]["frame"] - last["frame"]
            if b == a or shot_of.get(a) != shot_of.get(b) or not 0 < gap <= max_gap_frames:
                continue
            if iou_matrix(np.array([last["xyxy"]]), np.array([rows[0]["xyxy"]]))[0, 0] >= REJOIN_IOU:
                pairs.append((a, b))
    return pairs


def load_tracks(out: Path) -> EpisodeTracks:
    """Stages 1 and 2's outputs of the run folder `out`."""
    stored = np.load(out / "track_embeddings.npz")
    track_ids = [int(t) for t in stored["track_ids"]]
    metrics = json.loads((out / "track_metrics.json").read_text())
    detections = read_detections(out / "detections.jsonl")
    tracks = [json.loads(line) for line in (out / "tracks.jsonl").read_text().splitlines()]
    faces, frames = _face_vectors(out, track_ids)
    return EpisodeTracks(
        track_ids,
        stored["vectors"].astype(np.float64),
        faces,
        frames,
        {t: detections[t] for t in track_ids},
        {int(t["track_id"]): int(t.get("shot", 0)) for t in tracks},
        str(stored["embedder"]) if "embedder" in stored.files else "dlib",
        metrics["frame_stride"] / metrics["frame_rate"],
    )


def identity_document(
    tracks: EpisodeTracks, settings: EpisodeConfig, merge_centroids: bool = False
) -> tuple[dict[str, Any], list[str]]:
    """Cluster `tracks` into identities: (the identities.json document, warnings).

    `merge_centroids` (cleanup's last step) then merges an identity of a single track into the identity whose
    face-weighted centre lies within the threshold and shares no frame with it: average linkage compares tracks, so
    a short track of a person seen at length can stay apart from the many tracks of that person."""
    frames_of = {t: {int(r["frame"]) for r in tracks.detections[t]} for t in tracks.track_ids}
    row_of = {t: i for i, t in enumerate(tracks.track_ids)}
    apart = [(row_of[a], row_of[b]) for a, b in tracks_on_screen_together(frames_of)]
    parent = tracks.split_from
    gap_frames = settings.rejoin_gap_s / tracks.seconds_per_frame
    together = [
        (row_of[a], row_of[b])
        for a, b in tracks_split_at_occlusion(tracks.detections, tracks.shot_of, gap_frames)
        if a not in parent or parent[a] != parent.get(b)  # cleanup split them for a jump: not rejoined
    ]
    choice = _threshold(tracks, apart, settings)
    warnings = [choice.reason] if choice.reason else []
    if warnings:
        log.warning("clustering threshold: %s", choice.reason)
    clusters = cluster_with_constraints(tracks.pooled, choice.threshold, cannot_link=apart, must_link=together)
    labels = clusters.labels
    merges = 0
    if merge_centroids:
        weights = np.array([len(f) for f in tracks.faces], np.float64)
        labels, merges = _merge_centroids(labels, tracks.pooled * weights[:, None], apart, choice.threshold)
    identities = _identities(
        labels, tracks.pooled, tracks.track_ids, choice.threshold, settings.outliers == "treat_as_singletons"
    )
    for identity in identities:
        frames = set().union(*(frames_of[t] for t in identity["track_ids"]))
        identity["faces"] = int(sum(len(tracks.detections[t]) for t in identity["track_ids"]))
        identity["screen_time_s"] = round(len(frames) * tracks.seconds_per_frame, 3)
    sizes = np.array([len(i["track_ids"]) for i in identities])
    document = {
        "threshold": asdict(choice),
        "must_links": len(together),
        "must_links_dropped": len(clusters.dropped_must_links),
        "identities": identities,
        "singleton_fraction": round(float((sizes == 1).mean()), 4) if len(sizes) else 0.0,
        "largest_cluster_fraction": round(float(sizes.max() / sizes.sum()), 4) if len(sizes) else 0.0,
        "screen_time_s": {str(i["identity_id"]): i["screen_time_s"] for i in identities},
        "warnings": warnings,
    }
    if merge_centroids:
        document["centroid_merges"] = merges
    return document, warnings


def cluster_identities(settings: EpisodeConfig, out: Path) -> IdentitiesResult:
    """Run stage 3 on the run folder `out` (stages 1 and 2 done)."""
    tracks = load_tracks(out)
    document, warnings = identity_document(tracks, settings)
    files = {"identities": atomic_write_text(out / "identities.json", json.dumps(document, indent=2) + "\n")}
    metrics = json.loads((out / "track_metrics.json").read_text())
    metrics.update(identity_metrics(document))
    files["track_metrics"] = atomic_write_text(out / "track_metrics.json", json.dumps(metrics, indent=2) + "\n")
    threshold = document["threshold"]
    return IdentitiesResult(
        len(document["identities"]),
        len(tracks.track_ids),
        threshold["threshold"],
        threshold["source"],
        warnings,
        files,
    )


def identity_metrics(document: dict[str, Any]) -> dict[str, Any]:
    """The identity figures `track_metrics.json` carries."""
    keys = ("singleton_fraction", "largest_cluster_fraction", "screen_time_s")
    return {"identities": len(document["identities"]), **{k: document[k] for k in keys}}


def _threshold(tracks: EpisodeTracks, apart: list[tuple[int, int]], settings: EpisodeConfig) -> ThresholdChoice:
    distances = cosine_distances(tracks.pooled)
    return threshold_from_pairs(
        half_track_distances(tracks.faces),
        [distances[a, b] for a, b in apart],
        fallback=settings.fallback_threshold or FALLBACK_THRESHOLDS[tracks.embedder],
    )


def _face_vectors(out: Path, track_ids: list[int]) -> tuple[list[NDArray[np.float64]], list[NDArray[np.int64]]]:
    faces = [json.loads(line) for line in (out / "faces.jsonl").read_text().splitlines()]
    return face_vectors(faces, np.load(out / "faces.npy"), track_ids)


def _merge_centroids(
    labels: NDArray[np.int64], weighted: NDArray[np.float64], apart: list[tuple[int, int]], threshold: float
) -> tuple[NDArray[np.int64], int]:
    """Merge each identity of one track into the identity whose centre (the sum of its tracks' `weighted` vectors) is
    nearest, when within `threshold` and no cannot-link pair would join; (labels, merges), closest first.

    Only single tracks: the sum of many tracks drifts toward the average face, so centres of two large identities
    lie closer than the track-to-track threshold means; one track against a centre is the scale the outlier test
    uses."""
    labels = labels.copy()
    merges = 0
    while True:
        ids, sizes = np.unique(labels, return_counts=True)
        singles = [int(i) for i, n in zip(ids, sizes, strict=True) if n == 1]
        if not singles or len(ids) < 2:
            break
        centres = np.stack([weighted[labels == i].sum(axis=0) for i in ids])
        distances = cosine_distances(centres)
        for a, b in apart:
            la, lb = np.searchsorted(ids, [labels[a], labels[b]])
            distances[la, lb] = distances[lb, la] = np.inf
        np.fill_diagonal(distances, np.inf)
        rows = np.searchsorted(ids, singles)
        best = distances[rows].min(axis=1)
        k = int(np.argmin(best))
        if best[k] > threshold:
            break
        labels[labels == singles[k]] = ids[int(np.argmin(distances[rows[k]]))]
        merges += 1
    _, labels = np.unique(labels, return_inverse=True)
    return labels.astype(np.int64), merges


def _identities(
    labels: NDArray[np.int64], pooled: NDArray[np.float64], track_ids: list[int], threshold: float, split: bool
) -> list[dict[str, Any]]:
    """Identities in order of first appearance, outliers flagged (and split off when `split`)."""
    groups: list[tuple[list[int], bool]] = []
    for label in range(int(labels.max(initial=-1)) + 1):
        members = np.flatnonzero(labels == label).tolist()
        outliers = [m for m in members if len(members) > 2 and _distance_to_rest(pooled, m, members) > threshold]
        if split and outliers:
            groups.append(([m for m in members if m not in outliers], False))
            groups.extend(([m], True) for m in outliers)
        else:
            groups.append((members, bool(outliers)))
    out = []
    for number, (members, outlier) in enumerate(sorted(groups, key=lambda g: min(g[0])), start=1):
        unit = pooled[members]
        centre = unit.sum(axis=0)
        centre /= max(float(np.linalg.norm(centre)), 1e-12)
        similarity = unit @ unit.T
        cohesion = float((unit @ centre).mean())
        out.append(
            {
                "identity_id": number,
                "track_ids": [track_ids[m] for m in members],
                "cohesion_score": round(cohesion, 4),
                "min_identity_sim": round(float(similarity.min()), 4),
                "outlier": outlier,
                "low_cohesion": cohesion < 1.0 - threshold,
            }
        )
    return out


def _distance_to_rest(pooled: NDArray[np.float64], member: int, members: list[int]) -> float:
    rest = pooled[[m for m in members if m != member]].sum(axis=0)
    return float(cosine_distances(np.stack([pooled[member], rest]))[0, 1])
