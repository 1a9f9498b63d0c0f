"""The issues' accuracy bars on real data, with default parameters and one setting for every sequence.

Issue #6: on MOT15 train (11 sequences, FRCNN detections) and MOT17 train (public FRCNN detections), HOTA at least
2.0 above the best peer measured by `bench/mot.py`, and at most 0.8 times that peer's ID switches. Peers are not
installed in the test environment, so their figures are recorded here (BENCHMARKS.md: boxmot BoT-SORT on MOT15,
boxmot OccluBoost on MOT17; peers are deterministic); the benchmark compares live. Issue #2's IDF1 bar on MOT15
(>= 50.5) still holds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from trackid.eval import evaluate_mot
from trackid.sources.motchallenge import (
    detections_by_frame,
    read_deepsort_detections,
    read_mot_file,
    read_seqinfo,
    write_mot_results,
)
from trackid.track import TrackerConfig, make_tracker, track_sequence

BEST_PEER = {"mot15": {"HOTA": 38.30, "IDSW": 509}, "mot17": {"HOTA": 48.55, "IDSW": 590}}


def _score_dataset(data: Path, dataset: str, out: Path) -> dict[str, float]:
    gt_split = next((data / dataset / "gt").glob("*-train"))
    for seq_dir in sorted(p for p in gt_split.iterdir() if p.is_dir()):
        info = read_seqinfo(seq_dir / "seqinfo.ini")
        rows = read_mot_file(data / dataset / "det_frcnn" / seq_dir.name / "det" / "det.txt")
        result = track_sequence(make_tracker("trackid", info.frame_rate), detections_by_frame(rows, info.length))
        write_mot_results(out / f"{seq_dir.name}.txt", *result)
    return evaluate_mot(data / dataset / "gt", out).combined


@pytest.mark.parametrize("dataset", ["mot15", "mot17"])
def test_a_clear_lead_over_the_best_peer(data: Path, tmp_path: Path, dataset: str) -> None:
    scores = _score_dataset(data, dataset, tmp_path)
    peer = BEST_PEER[dataset]
    assert scores["HOTA"] >= peer["HOTA"] + 2.0, scores
    assert scores["IDSW"] <= 0.8 * peer["IDSW"], scores
    if dataset == "mot15":
        assert scores["IDF1"] >= 50.5, scores


def test_appearance_pays_with_a_reid_embedder(data: Path, tmp_path: Path) -> None:
    """MOT17-05 and -09 with the DeepSORT re-ID embeddings shipped in the data: the default appearance fusion beats
    motion alone clearly (bench/appearance.py: HOTA about +4, a sixth fewer ID switches)."""
    seqs = ["MOT17-05-FRCNN", "MOT17-09-FRCNN"]
    scores = {}
    for weight in (0.0, TrackerConfig().appearance_weight):
        out = tmp_path / f"w{weight}"
        out.mkdir()
        for seq in seqs:
            info = read_seqinfo(next((data / "mot17" / "gt").glob("*-train")) / seq / "seqinfo.ini")
            frames = read_deepsort_detections(data / "mot17" / "deepsort_features" / f"{seq}.npy", info.length)
            tracker = make_tracker("trackid", info.frame_rate, appearance_weight=weight)
            write_mot_results(out / f"{seq}.txt", *track_sequence(tracker, frames))
        scores[weight] = evaluate_mot(data / "mot17" / "gt", out, sequences=seqs).combined
    motion, fused = scores[0.0], scores[TrackerConfig().appearance_weight]
    assert fused["HOTA"] >= motion["HOTA"] + 2.0, (motion, fused)
    assert fused["IDSW"] <= 0.9 * motion["IDSW"], (motion, fused)
