"""Stage 4 of an episode: cleanup. Split the tracks whose faces change person, re-embed, re-cluster, merge.

A face tracker can hand one track from one person to another (two faces crossing, a cut it missed). Such a track
shows it in its embeddings: the faces before some point and those after it lie further apart than the episode's
threshold between people. Cleanup:
1. finds, per track with at least 2 x `split_min_faces` embedded faces, the split that maximises the cosine distance
   between the summed faces before and after it (`find_jump`). A track had an identity switch when that distance
   exceeds the cluster stage's threshold *and* its faces in time order split further apart than in all but
   `SWITCH_P` of random orders (`jump_p_value`, a permutation test): sums of a few faces of one person scatter by
   about the threshold, so distance alone flags noisy tracks, while a switch is a jump in time. `id_switch_rate` is
   the fraction of such tracks among those tested: a label-free estimate, since there are no labels in an episode;
2. cuts each such track there into two new tracks (new ids, `parent_track_id` naming the old one) and re-embeds each
   part from its own frames (up to `max_crops_per_track` faces each, the same checks as stage 2);
3. re-clusters every track (a split whose two parts land in one identity is undone: one person's change of look),
   then merges each single-track identity into the one whose face-weighted centre lies within the threshold
   (`identity_document(merge_centroids=True)`).

Writes `tracks_clean.jsonl` (tracks.jsonl's schema plus parent_track_id), `faces_clean.jsonl` / `faces_clean.npy`
(the parts' faces, as stage 2's files), `identities_clean.json` (identities.json's schema, over the clean tracks) and
`cleanup_report.json`: the splits and, for every metric, before / after / change / whether it improved. Adds
`id_switch_rate` and `after_cleanup` to `track_metrics.json`. Earlier stages' files are left as they were.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from trackid.artifacts import atomic_write_bytes, atomic_write_text
from trackid.cluster import cosine_distances
from trackid.pipelines.episode.detect_track import track_length_figures
from trackid.pipelines.episode.embed_faces import embed_faces, face_embedder, face_vectors, npy_bytes, unit_sums
from trackid.pipelines.episode.identities import EpisodeTracks, identity_document, identity_metrics, load_tracks
from trackid.pipelines.episode.settings import EpisodeConfig

__all__ = ["METRICS", "CleanupResult", "clean_episode", "find_jump", "find_switches", "is_switch", "jump_p_value"]

log = logging.getLogger(__name__)
SHUFFLES = 199
SWITCH_P = 0.05

METRICS: dict[str, str | None] = {  # metric -> the direction that is better (None: neither, by itself)
    "tracks": None,
    "tracks_per_minute": "lower",
    "short_track_fraction": "lower",
    "id_switch_rate": "lower",
    "identities": None,
    "singleton_fraction": "lower",
    "largest_cluster_fraction": "lower",
    "mean_cohesion": "higher",
    "low_cohesion_identities": "lower",
}


@dataclass(frozen=True)
class CleanupResult:
    splits: int
    identities_before: int
    identities_after: int
    warnings: list[str]
    files: dict[str, Path]


def find_jump(vectors: NDArray[np.float64], min_faces: int) -> tuple[int, float]:
    """(k, distance): the split of the rows (a track's faces in time order) into [:k] and [k:], each of at least
    `min_faces` rows, whose sums are furthest apart in cosine distance; (-1, 0.0) when the track is too short."""
    if len(vectors) < 2 * min_faces:
        return -1, 0.0
    k, distance = _best_splits(np.asarray(vectors, np.float64)[None], min_faces)
    return int(k[0]), float(distance[0])


def jump_p_value(vectors: NDArray[np.float64], min_faces: int, distance: float, shuffles: int = SHUFFLES) -> float:
    """How often the faces in a random order split as far apart as `distance` (a permutation test, seeded by the
    track's length): a real switch is a jump in time, so the true order splits far better than shuffled ones."""
    v = np.asarray(vectors, np.float64)
    rng = np.random.default_rng(len(v))
    order = np.argsort(rng.random((shuffles, len(v))), axis=1)
    _, shuffled = _best_splits(v[order], min_faces)
    return float((1 + np.count_nonzero(shuffled >= distance)) / (1 + shuffles))


def _best_splits(stacks: NDArray[np.float64], min_faces: int) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Per (n, d) stack of `stacks` (s, n, d): the best split point and its cosine distance (see `find_jump`)."""
    n = stacks.shape[1]
    cumulative = np.cumsum(stacks, axis=1)
    splits = np.arange(min_faces, n - min_faces + 1)
    before = cumulative[:, splits - 1]
    after = cumulative[:, -1:] - before
    norms = np.linalg.norm(before, axis=2) * np.linalg.norm(after, axis=2)
    distance = 1.0 - np.einsum("sij,sij->si", before, after) / np.maximum(norms, 1e-12)
    best = np.argmax(distance, axis=1)
    return splits[best], distance[np.arange(len(stacks)), best]


def is_switch(vectors: NDArray[np.float64], min_faces: int, threshold: float) -> tuple[int, float, float]:
    """(k, distance, p-value) of the track's best split; a switch when k >= 0, distance > threshold and
    p < SWITCH_P."""
    k, distance = find_jump(vectors, min_faces)
    if k < 0 or distance <= threshold:
        return k, distance, 1.0
    return k, distance, jump_p_value(vectors, min_faces, distance)


def find_switches(
    tracks: EpisodeTracks, identities: list[dict[str, Any]], threshold: float, min_faces: int
) -> tuple[int, dict[int, tuple[int, float, float]]]:
    """(tracks tested, {track id: (split index, jump, p-value)} of the tracks with an identity switch).

    A switch needs all of: a jump beyond `threshold`, a permutation p-value under `SWITCH_P`, and halves that belong
    to different people: the nearest identity of each half (its centre without this track; none if further than
    `threshold`) differs, or both are new. Faces drift within a shot (pose, light), so the first two alone also
    flag tracks of one person whose look changes slowly."""
    owner = {t: i["identity_id"] for i in identities for t in i["track_ids"]}
    row_of = {t: r for r, t in enumerate(tracks.track_ids)}
    tested, found = 0, {}
    for t, faces in zip(tracks.track_ids, tracks.faces, strict=True):
        k, distance, p_value = is_switch(faces, min_faces, threshold)
        tested += k >= 0
        if k < 0 or p_value >= SWITCH_P:
            continue
        names, centres = [], []
        for identity in identities:
            members = [row_of[m] for m in identity["track_ids"] if m != t and m in row_of]
            if members:
                names.append(identity["identity_id"])
                centres.append(tracks.pooled[members].sum(axis=0))
        halves = np.stack([faces[:k].sum(axis=0), faces[k:].sum(axis=0)])
        nearest: list[object] = ["new", "new"]
        if centres:
            distances = cosine_distances(np.concatenate([halves, np.stack(centres)]))[:2, 2:]
            nearest = [names[int(np.argmin(d))] if d.min() <= threshold else "new" for d in distances]
        if nearest[0] != nearest[1] or nearest[0] == "new" or owner.get(t) is None:
            found[t] = (k, distance, p_value)
    return tested, found


def clean_episode(video: Path, settings: EpisodeConfig, out: Path) -> CleanupResult:
    """Run stage 4 on `video` into the run folder `out` (stages 1-3 done)."""
    tracks = load_tracks(out)
    before = json.loads((out / "identities.json").read_text())
    metrics = json.loads((out / "track_metrics.json").read_text())
    rows = [json.loads(line) for line in (out / "tracks.jsonl").read_text().splitlines()]
    threshold = float(before["threshold"]["threshold"])
    m = settings.split_min_faces
    tested, switched = find_switches(tracks, before["identities"], threshold, m)
    warnings: list[str] = []
    next_id = max((int(r["track_id"]) for r in rows), default=0) + 1
    parts: dict[int, list[dict[str, Any]]] = {}
    splits: list[dict[str, Any]] = []
    for t, (k, distance, p_value) in switched.items():
        at = int(tracks.face_frames[tracks.track_ids.index(t)][k])
        parts[next_id] = [r for r in tracks.detections[t] if r["frame"] < at]
        parts[next_id + 1] = [r for r in tracks.detections[t] if r["frame"] >= at]
        splits.append(
            {
                "track_id": t,
                "at_frame": at,
                "jump": round(distance, 4),
                "p_value": round(p_value, 4),
                "parts": [next_id, next_id + 1],
            }
        )
        next_id += 2
    faces: list[dict[str, Any]] = []
    vectors = np.zeros((0, tracks.pooled.shape[1]), np.float32)
    if parts:
        faces, vectors = embed_faces(
            video, parts, settings.max_crops_per_track, settings, face_embedder(tracks.embedder)
        )
    clean = _with_parts(tracks, parts, faces, vectors, splits)
    document, cluster_warnings = identity_document(clean, settings, merge_centroids=True)
    owner = {t: i["identity_id"] for i in document["identities"] for t in i["track_ids"]}
    undone = [s for s in splits if len({owner.get(p) for p in s["parts"]}) == 1]
    if undone:  # re-clustered into one identity: the jump was one person's change of look, not a switch
        splits = [s for s in splits if s not in undone]
        dropped = {p for s in undone for p in s["parts"]}
        parts = {p: rows_ for p, rows_ in parts.items() if p not in dropped}
        keep = [i for i, f in enumerate(faces) if f["track_id"] not in dropped]
        faces, vectors = _renumber([faces[i] for i in keep], vectors)
        clean = _with_parts(tracks, parts, faces, vectors, splits)
        document, cluster_warnings = identity_document(clean, settings, merge_centroids=True)
    warnings += cluster_warnings
    if len(clean.track_ids) < len(tracks.track_ids) + len(splits):
        warnings.append("a part of a split track kept no usable face and is left out of the identities")
        log.warning(warnings[-1])
    after_tested, after_switched = find_switches(clean, document["identities"], threshold, m)
    clean_rows = _clean_rows(rows, parts, splits, metrics["frame_rate"])
    rates = (len(splits) / max(tested, 1), len(after_switched) / max(after_tested, 1))
    report = {
        "threshold": threshold,
        "tracks_tested": {"before": tested, "after": after_tested},
        "splits": splits,
        "splits_undone": undone,
        "centroid_merges": document["centroid_merges"],
        "metrics": _compare(
            _figures(rows, before, metrics, settings, rates[0]),
            _figures(clean_rows, document, metrics, settings, rates[1]),
        ),
        "warnings": warnings,
    }
    files = {
        "tracks_clean": atomic_write_text(out / "tracks_clean.jsonl", _jsonl(clean_rows)),
        "faces_clean_jsonl": atomic_write_text(out / "faces_clean.jsonl", _jsonl(faces)),
        "faces_clean_npy": atomic_write_bytes(out / "faces_clean.npy", npy_bytes(vectors)),
        "identities_clean": atomic_write_text(out / "identities_clean.json", json.dumps(document, indent=2) + "\n"),
        "cleanup_report": atomic_write_text(out / "cleanup_report.json", json.dumps(report, indent=2) + "\n"),
    }
    metrics["id_switch_rate"] = round(rates[0], 4)
    metrics["after_cleanup"] = {
        **{k: v["after"] for k, v in report["metrics"].items()},
        "screen_time_s": document["screen_time_s"],
    }
    files["track_metrics"] = atomic_write_text(out / "track_metrics.json", json.dumps(metrics, indent=2) + "\n")
    return CleanupResult(len(splits), len(before["identities"]), len(document["identities"]), warnings, files)


def _renumber(faces: list[dict[str, Any]], vectors: NDArray[np.float32]) -> tuple[list[dict[str, Any]], NDArray]:
    """Faces kept from a larger list, their `row`s renumbered into the matching rows of `vectors`."""
    rows = [f["row"] for f in faces if f["row"] >= 0]
    new_row = {old: new for new, old in enumerate(rows)}
    return [{**f, "row": new_row.get(f["row"], -1)} for f in faces], vectors[rows]


def _jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def _with_parts(
    tracks: EpisodeTracks,
    parts: dict[int, list[dict[str, Any]]],
    faces: list[dict[str, Any]],
    vectors: NDArray[np.float32],
    splits: list[dict[str, Any]],
) -> EpisodeTracks:
    """`tracks` with each split track replaced by its embedded parts."""
    cut = {s["track_id"] for s in splits}
    keep = [i for i, t in enumerate(tracks.track_ids) if t not in cut]
    part_ids = sorted({int(f["track_id"]) for f in faces if f["row"] >= 0})
    part_faces, part_frames = face_vectors(faces, vectors, part_ids)
    pooled = unit_sums(part_faces, tracks.pooled.shape[1])
    parent = {p: s["track_id"] for s in splits for p in s["parts"]}
    return replace(
        tracks,
        track_ids=[tracks.track_ids[i] for i in keep] + part_ids,
        pooled=np.concatenate([tracks.pooled[keep], np.asarray(pooled, np.float64)]),
        faces=[tracks.faces[i] for i in keep] + part_faces,
        face_frames=[tracks.face_frames[i] for i in keep] + part_frames,
        detections={**{t: tracks.detections[t] for t in tracks.track_ids if t not in cut}, **parts},
        shot_of={**tracks.shot_of, **{p: tracks.shot_of.get(parent[p], 0) for p in parent}},
        split_from={p: parent[p] for p in part_ids},
    )


def _clean_rows(
    rows: list[dict[str, Any]], parts: dict[int, list[dict[str, Any]]], splits: list[dict[str, Any]], fps: float
) -> list[dict[str, Any]]:
    """tracks.jsonl's rows with each split track replaced by its parts (parent_track_id set)."""
    by_id = {int(r["track_id"]): r for r in rows}
    cut = {s["track_id"] for s in splits}
    out = [{**r, "parent_track_id": None} for r in rows if int(r["track_id"]) not in cut]
    for split in splits:
        parent = by_id[split["track_id"]]
        for part in split["parts"]:
            faces = parts[part]
            out.append(
                {
                    **parent,
                    "track_id": part,
                    "first_frame": faces[0]["frame"],
                    "last_frame": faces[-1]["frame"],
                    "start_s": round((faces[0]["frame"] - 1) / fps, 4),
                    "end_s": round((faces[-1]["frame"] - 1) / fps, 4),
                    "faces": len(faces),
                    "mean_score": round(float(np.mean([f["score"] for f in faces])), 4),
                    "parent_track_id": split["track_id"],
                }
            )
    return sorted(out, key=lambda r: r["track_id"])


def _figures(
    rows: list[dict[str, Any]],
    document: dict[str, Any],
    metrics: dict[str, Any],
    settings: EpisodeConfig,
    id_switch_rate: float,
) -> dict[str, float]:
    step = metrics["frame_stride"] / metrics["frame_rate"]
    cohesion = [i["cohesion_score"] for i in document["identities"]]
    figures = identity_metrics(document)
    return {
        "tracks": len(rows),
        **track_length_figures(rows, metrics["duration_s"], step, settings.short_track_s),
        "id_switch_rate": round(id_switch_rate, 4),
        "identities": figures["identities"],
        "singleton_fraction": figures["singleton_fraction"],
        "largest_cluster_fraction": figures["largest_cluster_fraction"],
        "mean_cohesion": round(float(np.mean(cohesion)), 4) if cohesion else 0.0,
        "low_cohesion_identities": sum(1 for i in document["identities"] if i["low_cohesion"]),
    }


def _compare(before: dict[str, float], after: dict[str, float]) -> dict[str, dict[str, Any]]:
    out = {}
    for name, better in METRICS.items():
        change = round(after[name] - before[name], 4)
        improved = None if better is None else bool(change < 0 if better == "lower" else change > 0)
        out[name] = {"before": before[name], "after": after[name], "change": change, "better": better}
        out[name]["improved"] = improved
    return out
