"""Stage 3 of an episode: face tracks -> identities (`trackid.cluster`), with their cohesion and screen time.

Tracks seen in one frame are different people (cannot-link); the threshold comes from the episode's own pairs
(`threshold_from_pairs`: halves of a track against tracks on screen together), or `fallback_threshold` with the
reason when the episode has no such pairs. After clustering, a track whose distance to the rest of its identity
exceeds the threshold is an outlier: with `outliers: treat_as_singletons` it becomes an identity of its own.

Writes `identities.json` (the threshold and how it was chosen; per identity: identity_id, track_ids, faces,
screen_time_s, cohesion_score (mean similarity of its tracks to its centre), min_identity_sim (lowest similarity of
two of its tracks), outlier, low_cohesion) and adds singleton_fraction, largest_cluster_fraction and the screen
time per identity to `track_metrics.json`.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from trackid.artifacts import atomic_write_text
from trackid.cluster import cluster_with_constraints, cosine_distances, half_track_distances, threshold_from_pairs
from trackid.pipelines.episode.embed_faces import read_detections
from trackid.pipelines.episode.settings import EpisodeConfig

__all__ = ["IdentitiesResult", "cluster_identities", "tracks_on_screen_together"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IdentitiesResult:
    identities: int
    tracks: int
    threshold: float
    threshold_source: str
    warnings: list[str]
    files: dict[str, Path]


def tracks_on_screen_together(frames_of: dict[int, set[int]]) -> list[tuple[int, int]]:
    """Pairs of track ids that share a frame (two faces at once are two people)."""
    by_frame: dict[int, list[int]] = defaultdict(list)
    for track, frames in frames_of.items():
        for f in frames:
            by_frame[f].append(track)
    pairs = {(min(a, b), max(a, b)) for ts in by_frame.values() for i, a in enumerate(ts) for b in ts[i + 1 :]}
    return sorted(pairs)


def cluster_identities(settings: EpisodeConfig, out: Path) -> IdentitiesResult:
    """Run stage 3 on the run folder `out` (stages 1 and 2 done)."""
    stored = np.load(out / "track_embeddings.npz")
    track_ids = [int(t) for t in stored["track_ids"]]
    pooled = stored["vectors"].astype(np.float64)
    metrics = json.loads((out / "track_metrics.json").read_text())
    seconds_per_frame = metrics["frame_stride"] / metrics["frame_rate"]
    detections = read_detections(out / "detections.jsonl")
    frames_of = {t: {int(r["frame"]) for r in detections[t]} for t in track_ids}
    row_of = {t: i for i, t in enumerate(track_ids)}
    apart = [(row_of[a], row_of[b]) for a, b in tracks_on_screen_together(frames_of)]
    distances = cosine_distances(pooled)
    choice = threshold_from_pairs(
        half_track_distances(_face_vectors(out, track_ids)),
        [distances[a, b] for a, b in apart],
        fallback=settings.fallback_threshold,
    )
    warnings = [choice.reason] if choice.reason else []
    if warnings:
        log.warning("clustering threshold: %s", choice.reason)
    labels = cluster_with_constraints(pooled, choice.threshold, cannot_link=apart).labels
    identities = _identities(labels, pooled, track_ids, choice.threshold, settings.outliers == "treat_as_singletons")
    for identity in identities:
        frames = set().union(*(frames_of[t] for t in identity["track_ids"]))
        identity["faces"] = int(sum(len(detections[t]) for t in identity["track_ids"]))
        identity["screen_time_s"] = round(len(frames) * seconds_per_frame, 3)
    sizes = np.array([len(i["track_ids"]) for i in identities])
    summary = {
        "singleton_fraction": round(float((sizes == 1).mean()), 4) if len(sizes) else 0.0,
        "largest_cluster_fraction": round(float(sizes.max() / sizes.sum()), 4) if len(sizes) else 0.0,
        "screen_time_s": {str(i["identity_id"]): i["screen_time_s"] for i in identities},
    }
    document = {"threshold": asdict(choice), "identities": identities, **summary, "warnings": warnings}
    files = {"identities": atomic_write_text(out / "identities.json", json.dumps(document, indent=2) + "\n")}
    metrics.update(summary, identities=len(identities))
    files["track_metrics"] = atomic_write_text(out / "track_metrics.json", json.dumps(metrics, indent=2) + "\n")
    return IdentitiesResult(len(identities), len(track_ids), choice.threshold, choice.source, warnings, files)


def _face_vectors(out: Path, track_ids: list[int]) -> list[NDArray[np.float64]]:
    """Each track's accepted face embeddings, in frame order (for the track-halves pairs)."""
    vectors = np.load(out / "faces.npy")
    rows: dict[int, list[tuple[int, int]]] = defaultdict(list)  # track -> (frame, row of faces.npy)
    with (out / "faces.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            face = json.loads(line)
            if face["row"] >= 0:
                rows[int(face["track_id"])].append((int(face["frame"]), int(face["row"])))
    return [vectors[[row for _, row in sorted(rows[t])]].astype(np.float64) for t in track_ids]


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
