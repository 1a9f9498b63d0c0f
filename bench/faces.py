"""Face embedders for [episodes] to choose from: dlib's ResNet (shipped) vs HSE FaceRes (fetched, on the crop as it is
and aligned on five landmarks), on real faces.

    .venv/bin/python bench/faces.py                 # prints the table and appends it to BENCHMARKS.md

ORL (40 people x 10 grey stills, 92 x 112) and the YouTube Faces clips (5 people, 6 clips, a labelled face box in
every frame; every 3rd frame is used). Per set: leave-one-out rank-1 and, over every pair of faces, the
verification ROC AUC and the true-accept rate at 1 % false accepts (scikit-learn's `roc_auc_score`, `roc_curve`).
YouTube Faces pairs from one clip are nearly the same image, so its scores are also given on pairs from different
clips only: Alek_Wek's two clips against each other (same person) and every clip against the others' people.
ms/face times `embed` on the ORL faces in batches of 16, best of 3 passes.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import cv2
import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import roc_auc_score, roc_curve

from datasets import ytf_clips
from embed import load_orl
from report import append_section  # bench/ is on sys.path when a script here runs
from trackid.embed import DlibFaceEmbedder, Embedder, FaceResEmbedder

STEP = 3

Crops = list[NDArray[np.uint8]]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-append", action="store_true", help="print only; do not append to BENCHMARKS.md")
    args = parser.parse_args(argv)
    orl, orl_people = load_orl()
    ytf, ytf_people, ytf_clips = load_ytf()
    header = (
        "| embedder | dim | ORL rank-1 % | ORL AUC | ORL TAR@FAR1% | YTF rank-1 % | YTF AUC | YTF TAR@FAR1% "
        "| YTF cross-clip AUC | cross-clip TAR@FAR1% | ms/face |"
    )
    rows = [header, "|" + "---|" * 11]
    embedders: list[tuple[str, Embedder]] = [
        ("dlib ResNet (5-point alignment)", DlibFaceEmbedder()),
        ("HSE FaceRes", FaceResEmbedder()),
        ("HSE FaceRes, aligned on 5 points (align=true)", FaceResEmbedder(align=True)),
    ]
    for name, embedder in embedders:
        o = embedder.embed(orl)
        y = embedder.embed(ytf)
        cross = ytf_clips[:, None] != ytf_clips[None, :]
        cells = [
            *_scores(o, orl_people),
            *_scores(y, ytf_people),
            *_scores(y, ytf_people, cross)[1:],
            f"{_ms_per_face(embedder, orl):.1f}",
        ]
        rows.append(f"| {name} | {embedder.dim} | " + " | ".join(cells) + " |")
        print(rows[-1], flush=True)
    table = "\n".join(rows) + "\n"
    notes = [
        f"data: ORL 400 faces; YouTube Faces {len(ytf)} face crops (every {STEP}rd frame of 6 clips, 5 people; "
        "boxes as labelled, centre + size)",
        "rank-1: nearest other face (cosine) has the same person; AUC / TAR over all pairs (cross-clip: pairs "
        "from different clips only)",
    ]
    print(table)
    if not args.no_append:
        append_section("faces.py", notes, table)
    return 0


def _scores(
    vectors: NDArray[np.float32], people: NDArray[np.int64], pairs: NDArray[np.bool_] | None = None
) -> list[str]:
    """Leave-one-out rank-1 %, verification ROC AUC and TAR at FAR 1 % over the (upper-triangle) pairs."""
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    rank1 = 100 * float((people[sims.argmax(axis=1)] == people).mean())
    upper = np.triu(np.ones_like(sims, bool), 1) & (pairs if pairs is not None else True)
    same, score = (people[:, None] == people[None, :])[upper], sims[upper]
    fpr, tpr, _ = roc_curve(same, score)
    tar = float(np.interp(0.01, fpr, tpr))
    return [f"{rank1:.1f}", f"{roc_auc_score(same, score):.3f}", f"{100 * tar:.1f}"]


def _ms_per_face(embedder: Embedder, faces: Crops) -> float:
    best = np.inf
    embedder.embed(faces[:16])
    for _ in range(3):
        start = time.perf_counter()
        for i in range(0, 160, 16):
            embedder.embed(faces[i : i + 16])
        best = min(best, (time.perf_counter() - start) / 160)
    return 1000 * best


def load_ytf() -> tuple[Crops, NDArray[np.int64], NDArray[np.int64]]:
    """Face crops (every STEP-th labelled frame), person index and clip index per crop."""
    crops, people, clips = [], [], []
    every = ytf_clips()
    names = sorted({c.person for c in every})
    for index, clip in enumerate(every):
        for path, (x, y, w, h) in zip(clip.frames[::STEP], clip.boxes[::STEP], strict=True):
            image = cv2.imread(str(path))
            if image is None:
                raise SystemExit(f"cannot read {path} of clip {clip.name}")
            x0, y0 = max(int(x), 0), max(int(y), 0)
            crops.append(np.ascontiguousarray(image[y0 : int(y + h), x0 : int(x + w)]))
            people.append(names.index(clip.person))
            clips.append(index)
    return crops, np.asarray(people), np.asarray(clips)


if __name__ == "__main__":
    raise SystemExit(main())
