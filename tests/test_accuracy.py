"""The issues' accuracy bars on real data, with default parameters and one setting for every sequence and detector.

Issue #12: the defaults serve any detector's scores (thresholds are quantiles of each stream's scores), so they are
checked on FRCNN (MOT15, MOT17) and on ACF's unbounded margins (MOT15), against the best peer of each set measured
by `bench/generalise.py`. Peers are not installed in the test environment, so their figures are recorded here
(peers are deterministic); the benchmark compares live. Issue #6's +2.0 lead on MOT15 and MOT17 was a lead that
rested on FRCNN's own score scale; BENCHMARKS.md shows the trade, and these bars are what the detector-independent
defaults keep.
"""

from __future__ import annotations

from dataclasses import replace
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

BEST_PEER = {
    "mot15": {"HOTA": 38.30, "IDSW": 509},
    "mot17": {"HOTA": 48.55, "IDSW": 590},
    "mot15-acf": {"HOTA": 36.26},
}
"""Best peer per set (bench/generalise.py, 2026-12-01): boxmot BoT-SORT on MOT15, boxmot OccluBoost on MOT17,
norfair on MOT15's ACF detections (peers given the margins mapped into [0, 1], the better of two mappings)."""
MARGIN = {"mot15": -0.1, "mot17": 0.1, "mot15-acf": -0.25}
"""The HOTA margin each set must keep: about half a point under what bench/generalise.py measured (+0.42, +0.62,
+0.25 with the heading penalty off; 2026-12-01 23:46), so that a regression fails but the chaos of one changed box
does not."""


def _score_dataset(
    data: Path, dataset: str, out: Path, detections: str = "det_frcnn", remap: object = None, **params: object
) -> dict[str, float]:
    gt_split = next((data / dataset / "gt").glob("*-train"))
    sequences = sorted(p.name for p in (data / dataset / detections).iterdir() if p.is_dir())
    for seq in sequences:
        info = read_seqinfo(gt_split / seq / "seqinfo.ini")
        frames = detections_by_frame(read_mot_file(data / dataset / detections / seq / "det" / "det.txt"), info.length)
        if remap is not None:
            frames = [replace(d, score=remap(d.score)) for d in frames]  # type: ignore[operator]
        result = track_sequence(make_tracker("trackid", info.frame_rate, **params), frames)
        write_mot_results(out / f"{seq}.txt", *result)
    return evaluate_mot(data / dataset / "gt", out, sequences=sequences).combined


@pytest.mark.parametrize(
    ("name", "dataset", "detections"),
    [("mot15", "mot15", "det_frcnn"), ("mot17", "mot17", "det_frcnn"), ("mot15-acf", "mot15", "det_acf")],
)
def test_level_with_or_ahead_of_the_best_peer(
    data: Path, tmp_path: Path, name: str, dataset: str, detections: str
) -> None:
    scores = _score_dataset(data, dataset, tmp_path, detections)
    assert scores["HOTA"] >= BEST_PEER[name]["HOTA"] + MARGIN[name], scores
    if name != "mot15-acf":
        assert scores["IDSW"] <= 0.9 * BEST_PEER[name]["IDSW"], scores
    if name == "mot15":
        assert scores["IDF1"] >= 50.5, scores  # issue #2


def test_a_detector_that_never_reports_above_0_9_is_tracked_as_well(data: Path, tmp_path: Path) -> None:
    """Issue #12: MOT17's FRCNN scores mapped to 0.3 + 0.6 s gave no track at all with raw thresholds; with ranks
    the result is the same as with the scores as given, box for box."""
    given = _score_dataset(data, "mot17", tmp_path / "given")
    squeezed = _score_dataset(data, "mot17", tmp_path / "squeezed", remap=lambda s: 0.3 + 0.6 * s)
    assert squeezed == given
    raw = _score_dataset(
        data, "mot17", tmp_path / "raw", remap=lambda s: 0.3 + 0.6 * s, score_scale="raw", new_track_score=0.97
    )
    assert raw["HOTA"] < 1.0  # the old failure, still there for whoever asks for raw scores (and warned about)


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
