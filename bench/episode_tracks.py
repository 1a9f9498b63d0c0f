"""Can a face embedder tell the assembled episode's people apart, track by track? (groundwork for [episodes])

    .venv/bin/python bench/episode_tracks.py [--no-append]

The ASSEMBLED episode (`episode_assembly.py`) with its ground-truth tracks (one per clip per segment: 11 tracks of
5 people); each track pools the embeddings of every 5th labelled face. Per embedder: the largest distance between
two tracks of one person, the smallest between two people, the best pairwise F (scikit-learn's
`pair_confusion_matrix`) over every threshold, and the pairwise F at the threshold `trackid.cluster` chooses from the
episode's own pairs (track halves vs the side-by-side segments' cannot-link pairs). Clustering is constrained
(`cluster_with_constraints`). It isolates the embedder: detection and tracking are the labels here.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics.cluster import pair_confusion_matrix

from episode_assembly import SLOT, assemble
from report import append_section
from trackid.cluster import cluster_with_constraints, cosine_distances, half_track_distances, threshold_from_pairs
from trackid.embed import DlibFaceEmbedder, Embedder, FaceResEmbedder
from trackid.sources.video import VideoSource

EVERY = 5


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="trackid-episode-"))
    info = assemble(folder)
    people, segments, crops = _track_crops(folder, info)
    shutil.rmtree(folder, ignore_errors=True)
    rows = []
    choices: list[tuple[str, Callable[[], Embedder]]] = [
        ("dlib ResNet", DlibFaceEmbedder),
        ("HSE FaceRes (fetched)", FaceResEmbedder),
        ("HSE FaceRes, aligned on 5 points", lambda: FaceResEmbedder(align=True)),
    ]
    for name, make in choices:
        try:
            embedder = make()
        except FileNotFoundError as missing:
            print(f"{name}: skipped ({missing})", file=sys.stderr)
            continue
        rows.append((name, *_scores([embedder.embed(c) for c in crops], people, segments)))
    table = (
        "| embedder | one person, farthest tracks | two people, nearest tracks | best pairwise F (threshold) | "
        "data-chosen threshold | pairwise F there | identities |\n|---|---|---|---|---|---|---|\n"
    )
    table += "".join(
        f"| {n} | {same:.3f} | {diff:.3f} | {best:.3f} ({at:.3f}) | {t:.3f} | {f:.3f} | {k} |\n"
        for n, same, diff, best, at, t, f, k in rows
    )
    print(table)
    if not args.no_append:
        append_section(
            "episode_tracks.py",
            [
                f"ASSEMBLED episode from the YouTube Faces clips: {info['frames']} frames, 11 ground-truth tracks of "
                f"5 people; every {EVERY}th labelled face embedded; cosine distances between pooled tracks",
                "cannot-link: tracks side by side in one segment; threshold from track halves vs those pairs",
            ],
            table,
        )
    return 0


def _track_crops(folder: Path, info: dict[str, object]) -> tuple[list[str], list[int], list[list[NDArray[np.uint8]]]]:
    """Per ground-truth track: its person, its segment and its labelled face crops (every EVERY-th frame)."""
    gt = np.loadtxt(folder / "gt.txt", delimiter=",")
    frames = [image for _, image in VideoSource(folder / "episode.avi")]
    people, segments, crops = [], [], []
    for index, segment in enumerate(info["segments"]):  # type: ignore[attr-defined]
        for clip in segment["clips"]:
            if "then_clip" in clip:  # the dissolve holds two people: it is cleanup's test, not the embedder's
                continue
            faces = []
            for f in range(segment["first_frame"], segment["last_frame"] + 1, EVERY):
                row = gt[(gt[:, 0] == f) & (gt[:, 2] >= clip["x"]) & (gt[:, 2] < clip["x"] + SLOT[0])][0]
                x, y, w, h = row[2:6].astype(int)
                faces.append(np.ascontiguousarray(frames[f - 1][y : y + h, x : x + w]))
            people.append(clip["person"])
            segments.append(index)
            crops.append(faces)
    return people, segments, crops


def _scores(
    vectors: list[NDArray[np.float32]], people: list[str], segments: list[int]
) -> tuple[float, float, float, float, float, float, int]:
    pooled = np.stack([v.sum(axis=0) for v in vectors])
    distances = cosine_distances(pooled)
    n = len(pooled)
    upper = np.triu_indices(n, 1)
    same = np.array([[a == b for b in people] for a in people])[upper]
    apart = [(i, j) for i in range(n) for j in range(i + 1, n) if segments[i] == segments[j]]

    def f_at(threshold: float) -> tuple[float, int]:
        labels = cluster_with_constraints(pooled, threshold, cannot_link=apart).labels
        (_, fp), (fn, tp) = pair_confusion_matrix(people, labels)
        return float(2 * tp / max(2 * tp + fp + fn, 1)), int(labels.max() + 1)

    grid = np.unique(distances[upper]) + 1e-9
    scored = [(f_at(t)[0], t) for t in grid]
    best, at = max(scored)
    choice = threshold_from_pairs(half_track_distances(vectors), [distances[a, b] for a, b in apart], fallback=0.4)
    chosen, identities = f_at(choice.threshold)
    far, near = float(distances[upper][same].max()), float(distances[upper][~same].min())
    return far, near, best, float(at), choice.threshold, chosen, identities


if __name__ == "__main__":
    sys.exit(main())
