"""Stage 2 of an episode: a few faces of every track, checked and embedded.

Reads stage 1's `detections.jsonl`, picks up to `max_crops_per_track` faces per track (`crop_sampling`), and within
`max_crops_per_episode` in all (tracks then get fewer each, with a warning). Each picked face is cut from its frame
with the box clamped to the image, and rejected with a reason when the clamped box is degenerate (under 2 px a
side), the crop blank (no contrast), blurred (Laplacian variance under `min_blur`) or turned too far (`face_pose`:
yaw or pitch beyond `max_yaw_deg` / `max_pitch_deg`). A track whose every face is turned keeps its least turned
one, so that no face track drops out of the identities for its pose alone. The rest are embedded (`embedder`: dlib's
ResNet, or FaceRes when fetched). Writes:
- `faces.jsonl`: one line per picked face: track_id, frame, xyxy (clamped), quality, blur, yaw, pitch, accepted,
  reason, and `row` into `faces.npy` (-1 when rejected);
- `faces.npy`: the accepted faces' embeddings (float32, unit rows);
- `track_embeddings.npz`: `track_ids`, `vectors` (the unit sum of each track's accepted faces; a track with none
  accepted is left out and named in the warnings) and `embedder` (its name, for the threshold's fallback).
"""

from __future__ import annotations

import io
import itertools
import json
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from trackid.artifacts import atomic_write_bytes, atomic_write_text
from trackid.embed import DlibFaceEmbedder, Embedder, FaceResEmbedder
from trackid.embed.face_align import FaceLandmarks
from trackid.models.files import fetched_model_path
from trackid.pipelines.episode.face_pose import pose_angles
from trackid.pipelines.episode.settings import EpisodeConfig
from trackid.sources.video import VideoSource

__all__ = [
    "FALLBACK_THRESHOLDS",
    "EmbedResult",
    "embed_faces",
    "embed_track_faces",
    "face_embedder",
    "face_vectors",
    "npy_bytes",
    "pick_faces",
    "pool_tracks",
    "read_detections",
    "resolve_embedder",
    "unit_sums",
]

log = logging.getLogger(__name__)
BATCH = 32
TURNED = "turned"
FALLBACK_THRESHOLDS = {"dlib": 0.05, "faceres": 0.26, "faceres-aligned": 0.24}
"""Per embedder, the cosine distance between its farthest tracks of one person and its nearest of two people on
the assembled episode (`bench/episode_tracks.py`): used only when an episode has no pairs to choose from."""


@dataclass(frozen=True)
class EmbedResult:
    picked: int
    accepted: int
    rejected: dict[str, int]
    tracks_embedded: int
    warnings: list[str]
    files: dict[str, Path]


def read_detections(path: Path) -> dict[int, list[dict[str, Any]]]:
    """Stage 1's faces by track, in frame order."""
    tracks: dict[int, list[dict[str, Any]]] = defaultdict(list)
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            tracks[int(row["track_id"])].append(row)
    return dict(tracks)


def pick_faces(quality: NDArray[np.float64], k: int, how: str) -> NDArray[np.int64]:
    """Indices (sorted) of at most `k` of a track's faces: `uniform` in time, the best `quality`, or `stratified`
    (the best of each of k equal stretches)."""
    n = len(quality)
    if n <= k:
        return np.arange(n)
    if how == "uniform":
        return np.unique(np.linspace(0, n - 1, k).round().astype(np.int64))
    if how == "quality":
        return np.sort(np.argsort(-quality, kind="stable")[:k])
    edges = np.linspace(0, n, k + 1).round().astype(np.int64)
    return np.array([a + int(np.argmax(quality[a:b])) for a, b in itertools.pairwise(edges)])


def resolve_embedder(name: str) -> str:
    """`auto` -> `faceres` when `trackid models fetch` has converted it, else `dlib`."""
    if name != "auto":
        return name
    return "faceres" if fetched_model_path("faceres").is_file() else "dlib"


def face_embedder(name: str) -> Embedder:
    """The embedder `resolve_embedder(name)` names."""
    resolved = resolve_embedder(name)
    if resolved == "dlib":
        return DlibFaceEmbedder()
    return FaceResEmbedder(align=resolved == "faceres-aligned")


def embed_track_faces(
    video: Path, settings: EpisodeConfig, out: Path, on_face: Callable[[int], object] | None = None
) -> EmbedResult:
    """Run stage 2 on `video` into `out` (see the module docstring)."""
    tracks = read_detections(out / "detections.jsonl")
    warnings: list[str] = []
    per_track = settings.max_crops_per_track
    wanted = sum(min(len(rows), per_track) for rows in tracks.values())
    if wanted > settings.max_crops_per_episode:
        per_track = max(1, settings.max_crops_per_track * settings.max_crops_per_episode // wanted)
        warnings.append(
            f"{wanted} faces would exceed max_crops_per_episode={settings.max_crops_per_episode}: "
            f"{per_track} per track instead of {settings.max_crops_per_track}"
        )
        log.warning(warnings[-1])
    name = resolve_embedder(settings.embedder)
    faces, vectors = embed_faces(video, tracks, per_track, settings, face_embedder(name), on_face)
    ids, pooled = pool_tracks(faces, vectors)
    missing = sorted(set(tracks) - set(ids))
    if missing:
        warnings.append(f"{len(missing)} tracks had no usable face and are left out: {missing[:20]}")
        log.warning(warnings[-1])
    rejected: dict[str, int] = defaultdict(int)
    for face in faces:
        if not face["accepted"]:
            rejected[face["reason"]] += 1
    arrays: dict[str, NDArray[Any]] = {
        "track_ids": np.array(ids, np.int64),
        "vectors": pooled,
        "embedder": np.array(name),
    }
    files = {
        "faces_jsonl": atomic_write_text(out / "faces.jsonl", "".join(json.dumps(f) + "\n" for f in faces)),
        "faces_npy": atomic_write_bytes(out / "faces.npy", npy_bytes(vectors)),
        "track_embeddings": atomic_write_bytes(out / "track_embeddings.npz", _npz(**arrays)),
    }
    accepted = sum(1 for f in faces if f["accepted"])
    return EmbedResult(len(faces), accepted, dict(rejected), len(ids), warnings, files)


def embed_faces(
    video: Path,
    tracks: dict[int, list[dict[str, Any]]],
    per_track: int,
    settings: EpisodeConfig,
    embedder: Embedder,
    on_face: Callable[[int], object] | None = None,
) -> tuple[list[dict[str, Any]], NDArray[np.float32]]:
    """Pick, cut, check and embed up to `per_track` faces of each track: (faces.jsonl rows, accepted vectors)."""
    picked: dict[int, list[dict[str, Any]]] = defaultdict(list)  # frame -> faces to cut from it
    for track_id, rows in tracks.items():
        quality = np.array([r["quality"] for r in rows], np.float64)
        for i in pick_faces(quality, per_track, settings.crop_sampling).tolist():
            picked[int(rows[i]["frame"])].append({**rows[i], "track_id": track_id})
    faces, cut = _cut(video, picked, settings.min_blur)
    crops = _gate_pose(faces, cut, settings)
    vectors = np.zeros((len(crops), embedder.dim), np.float32)
    for start in range(0, len(crops), BATCH):
        vectors[start : start + BATCH] = embedder.embed(crops[start : start + BATCH])
        if on_face is not None:
            on_face(min(start + BATCH, len(crops)))
    return faces, vectors


def face_vectors(
    faces: list[dict[str, Any]], vectors: NDArray[np.float32], track_ids: list[int]
) -> tuple[list[NDArray[np.float64]], list[NDArray[np.int64]]]:
    """Per track of `track_ids`: its accepted faces' embeddings (rows of `vectors`, as `faces`' `row` says) and their
    frames, in frame order."""
    rows: dict[int, list[tuple[int, int]]] = defaultdict(list)  # track -> (frame, row of vectors)
    for face in faces:
        if face["row"] >= 0:
            rows[int(face["track_id"])].append((int(face["frame"]), int(face["row"])))
    ordered = [sorted(rows[t]) for t in track_ids]
    return (
        [vectors[[row for _, row in o]].astype(np.float64).reshape(len(o), -1) for o in ordered],
        [np.array([frame for frame, _ in o], np.int64) for o in ordered],
    )


def unit_sums(groups: list[NDArray[np.float64]], dim: int) -> NDArray[np.float32]:
    """The unit-length sum of each group of vectors (a track's pooled embedding), stacked."""
    pooled = np.array([g.sum(axis=0) for g in groups], np.float32).reshape(-1, dim)
    pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    return pooled


def pool_tracks(faces: list[dict[str, Any]], vectors: NDArray[np.float32]) -> tuple[list[int], NDArray[np.float32]]:
    """(track ids with an accepted face, sorted; the unit sum of each one's face vectors)."""
    ids = sorted({int(f["track_id"]) for f in faces if f["row"] >= 0})
    return ids, unit_sums(face_vectors(faces, vectors, ids)[0], vectors.shape[1])


def _cut(
    video: Path, picked: dict[int, list[dict[str, Any]]], min_blur: float
) -> tuple[list[dict[str, Any]], list[NDArray[np.uint8] | None]]:
    """Read the video once and cut the picked faces; (faces.jsonl rows in frame order, one crop per row: None
    where rejected)."""
    faces: list[dict[str, Any]] = []
    crops: list[NDArray[np.uint8] | None] = []
    last = max(picked, default=0)
    for index, image in VideoSource(video, max_frames=last):
        for face in picked.get(index + 1, []):
            height, width = image.shape[:2]
            x1, y1, x2, y2 = np.clip(np.asarray(face["xyxy"], np.float64), 0, [width, height, width, height])
            box = [round(float(v), 2) for v in (x1, y1, x2, y2)]
            row = {"track_id": face["track_id"], "frame": index + 1, "xyxy": box, "quality": face["quality"]}
            crop = image[int(y1) : int(np.ceil(y2)), int(x1) : int(np.ceil(x2))]
            reason, blur = "", 0.0
            if crop.shape[0] < 2 or crop.shape[1] < 2:
                reason = "degenerate box (under 2 px after clamping to the image)"
            else:
                grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
                blur = float(cv2.Laplacian(grey, cv2.CV_64F).var())
                if grey.std() < 2.0:
                    reason = "blank crop"
                elif blur < min_blur:
                    reason = f"blurred (Laplacian variance under {min_blur:g})"
            faces.append({**row, "blur": round(blur, 2), "accepted": not reason, "reason": reason, "row": -1})
            crops.append(None if reason else np.ascontiguousarray(crop))
    return faces, crops


def _gate_pose(
    faces: list[dict[str, Any]], crops: list[NDArray[np.uint8] | None], settings: EpisodeConfig
) -> list[NDArray[np.uint8]]:
    """Reject the accepted faces turned beyond the limits (each track keeps its least turned face); number the
    remaining crops (`row`) and return them in that order."""
    checked = [i for i, c in enumerate(crops) if c is not None]
    if checked:
        yaw, pitch = pose_angles(FaceLandmarks().landmarks([crops[i] for i in checked]))  # type: ignore[misc]
        turn = np.maximum(np.abs(yaw) / settings.max_yaw_deg, np.abs(pitch) / settings.max_pitch_deg)
        best: dict[int, int] = {}
        for k, i in enumerate(checked):
            faces[i].update(yaw=round(float(yaw[k]), 1), pitch=round(float(pitch[k]), 1))
            track = faces[i]["track_id"]
            if track not in best or turn[k] < turn[best[track]]:
                best[track] = k
        keep = {faces[checked[k]]["track_id"] for k in range(len(checked)) if turn[k] <= 1.0}
        for k, i in enumerate(checked):
            if turn[k] > 1.0 and (faces[i]["track_id"] in keep or best[faces[i]["track_id"]] != k):
                faces[i].update(accepted=False, reason=f"{TURNED} (yaw or pitch beyond the limits)")
    out: list[NDArray[np.uint8]] = []
    for face, crop in zip(faces, crops, strict=True):
        if face["accepted"] and crop is not None:
            face["row"] = len(out)
            out.append(crop)
    return out


def npy_bytes(array: NDArray[Any]) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _npz(**arrays: NDArray[Any]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()
