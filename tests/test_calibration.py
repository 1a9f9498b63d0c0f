"""Calibrated matching: probabilities that mean what they say, risk-stated thresholds, joint assignment, metrics.

All data here is synthetic (Gaussian similarity distributions), so the true P(same | s) is known.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Sequence
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

from trackid.eval.reid import evaluate_reid
from trackid.identity.calibration import (
    MatchCalibrator,
    expected_calibration_error,
    f1_optimal_threshold,
    roc_curve,
    threshold_for_false_match_rate,
)
from trackid.identity.matching import assign_queries, match_queries
from trackid.identity.report import write_calibration_report


def pairs(
    n: int, separation: float, seed: int, positive_rate: float = 0.1
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Similarities ~ N(0.2, 0.1) for different pairs and N(0.2 + separation * 0.1, 0.1) for same pairs."""
    rng = np.random.default_rng(seed)
    same = rng.random(n) < positive_rate
    return 0.2 + 0.1 * (rng.standard_normal(n) + separation * same), same


@pytest.mark.parametrize("method", ["platt", "isotonic"])
@pytest.mark.parametrize("separation", [4.0, 1.5])
def test_fitted_probabilities_are_calibrated_and_monotone(method: str, separation: float) -> None:
    s, same = pairs(20_000, separation, seed=1)
    model = MatchCalibrator(method=method).fit(s, same)
    fresh_s, fresh_same = pairs(20_000, separation, seed=2)
    assert expected_calibration_error(model.predict_proba(fresh_s), fresh_same) < 0.02
    grid = np.linspace(-0.5, 1.0, 300)
    assert (np.diff(model.predict_proba(grid)) >= 0).all()


def test_quality_and_time_gap_enter_the_model() -> None:
    rng = np.random.default_rng(3)
    n = 20_000
    same = rng.random(n) < 0.2
    quality = rng.random(n)
    gap = rng.exponential(600.0, n)
    # Low-quality crops blur the evidence: their similarity separates the classes less.
    s = 0.2 + 0.1 * rng.standard_normal(n) + same * 0.4 * quality
    for method in ("platt", "isotonic"):
        model = MatchCalibrator(method=method).fit(s, same, quality=quality, time_gap_s=gap)
        assert model.features_ == ["quality", "time_gap_s"]
        p = model.predict_proba(s, quality, gap)
        assert expected_calibration_error(p, same) < 0.03
        high, low = model.predict_proba([0.6, 0.6], [1.0, 0.1], [60.0, 60.0])
        assert high > low
    with pytest.raises(ValueError, match="quality"):
        model.predict_proba(s)


def test_threshold_for_false_match_rate_holds_on_fitting_and_fresh_pairs() -> None:
    s, same = pairs(40_000, 2.0, seed=4)
    model = MatchCalibrator().fit(s, same)
    target = 0.01
    t = model.threshold_for_false_match_rate(target)
    p = model.predict_proba(s)
    assert ((p >= t) & ~same).sum() / (~same).sum() <= target
    fresh_s, fresh_same = pairs(40_000, 2.0, seed=5)
    fresh_fmr = ((model.predict_proba(fresh_s) >= t) & ~fresh_same).sum() / (~fresh_same).sum()
    assert target / 1.5 <= fresh_fmr <= target * 1.5
    # The lowest such threshold: the next distinct score down would break the budget.
    roc = roc_curve(p, same)
    i = int(np.flatnonzero(roc.threshold == t)[0])
    assert roc.fpr[i] <= target < roc.fpr[i + 1]


def test_policies_on_a_hand_computed_example() -> None:
    scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    same = [1, 1, 0, 1, 0, 0]
    assert threshold_for_false_match_rate(scores, same, 0.0) == 0.8
    assert threshold_for_false_match_rate(scores, same, 1 / 3) == 0.6
    assert f1_optimal_threshold(scores, same) == 0.6  # TP 3, FP 1: F1 = 6/7
    assert threshold_for_false_match_rate([0.9, 0.1], [0, 1], 0.0) == float("inf")
    roc = roc_curve(scores, same)
    np.testing.assert_allclose(roc.tpr, [1 / 3, 2 / 3, 2 / 3, 1, 1, 1])
    assert expected_calibration_error([0.05, 0.95], [0, 1], n_bins=10) == pytest.approx(0.05)


def test_json_round_trip_predicts_the_same(tmp_path: Path) -> None:
    s, same = pairs(5_000, 2.0, seed=6)
    quality = np.random.default_rng(6).random(len(s))
    for method in ("platt", "isotonic"):
        model = MatchCalibrator(method=method).fit(s, same, quality=quality)
        model.save(tmp_path / f"{method}.json")
        loaded = MatchCalibrator.load(tmp_path / f"{method}.json")
        np.testing.assert_array_equal(loaded.predict_proba(s, quality), model.predict_proba(s, quality))
        assert json.loads((tmp_path / f"{method}.json").read_text())["params"]["method"] == method
        with pytest.raises(ValueError, match="no fitting pairs"):
            loaded.threshold_for_false_match_rate(0.01)
        assert loaded.threshold_for_false_match_rate(0.01, s, same, quality) == pytest.approx(
            model.threshold_for_false_match_rate(0.01)
        )


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"similarity": [0.1, np.nan, 0.3], "same": [0, 1, 0]}, "similarity"),
        ({"similarity": [0.1, 0.2, 0.3], "same": [0, 1]}, "same"),
        ({"similarity": [0.1, 0.2, 0.3], "same": [1, 1, 1]}, "same"),
        ({"similarity": [0.1, 0.2, 0.3], "same": [0, 2, 1]}, "same"),
        ({"similarity": [0.1, 0.2, 0.3], "same": [0, 1, 0], "quality": [0.5, 0.5]}, "quality"),
        ({"similarity": [0.1, 0.2, 0.3], "same": [0, 1, 0], "time_gap_s": [1.0, -1.0, 2.0]}, "time_gap_s"),
    ],
)
def test_invalid_input_names_the_argument(kwargs: dict[str, object], argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        MatchCalibrator().fit(**kwargs)


def test_unknown_method_and_unfitted_use_fail_clearly() -> None:
    with pytest.raises(ValueError, match="method"):
        MatchCalibrator(method="beta").fit([0.1, 0.9], [0, 1])
    with pytest.raises(RuntimeError, match="not fitted"):
        MatchCalibrator().predict_proba([0.5])


def greedy(ids: Sequence[Sequence[Hashable]], p: NDArray[np.float64], threshold: float) -> list[Hashable | None]:
    """The baseline: queries in order, each takes its best still-free candidate above threshold."""
    taken: set[Hashable] = set()
    out: list[Hashable | None] = []
    for row_ids, row_p in zip(ids, p, strict=True):
        choice = next((i for j in np.argsort(-row_p) if row_p[j] >= threshold and (i := row_ids[j]) not in taken), None)
        if choice is not None:
            taken.add(choice)
        out.append(choice)
    return out


def test_optimal_assignment_beats_greedy() -> None:
    # Query 0 slightly prefers A, but query 1 can only be A: greedy strands query 1, the optimum does not.
    ids = [["A", "B"], ["A", "C"]]
    p = np.array([[0.90, 0.85], [0.88, 0.01]])
    assert greedy(ids, p, 0.5) == ["A", None]
    matches = assign_queries(ids, p, threshold=0.5)
    assert [m.identity_id for m in matches] == ["B", "A"]
    assert [m.decision for m in matches] == ["match", "match"]
    assert np.prod([m.probability for m in matches]) > 0.90 * 0.5  # vs greedy's A + "new" at the threshold


def test_new_identity_below_threshold_and_no_identity_taken_twice() -> None:
    ids = [[7, 8], [7, 9], [7, 7], [8, 9]]
    p = np.array([[0.95, 0.2], [0.9, 0.3], [0.4, 0.3], [0.1, 0.2]])
    matches = assign_queries(ids, p, threshold=0.5, similarity=p * 0.8)
    assert [m.identity_id for m in matches] == [7, None, None, None]
    assert [m.decision for m in matches] == ["match", "new_conflict", "new", "new"]
    assert matches[1].probability == 0.9 and matches[1].similarity == pytest.approx(0.72)
    assert all(m.threshold == 0.5 for m in matches)
    rng = np.random.default_rng(7)
    ids_r = rng.integers(0, 6, size=(40, 5))
    many = assign_queries(ids_r, rng.random((40, 5)), threshold=0.3)
    chosen = [m.identity_id for m in many if m.identity_id is not None]
    assert len(chosen) == len(set(chosen)) > 0
    assert all(m.probability >= 0.3 for m in many if m.decision == "match")


@pytest.mark.parametrize("seed", range(5))
def test_assignment_by_components_has_the_dense_optimum(seed: int) -> None:
    """Solving each connected component of the allowed edges alone reaches the cost of one dense assignment over
    the whole batch (the dense matrix is what a 10,000-query batch cannot afford)."""
    rng = np.random.default_rng(seed)
    n, k, threshold = 60, 4, 0.4
    ids = rng.integers(0, 30, size=(n, k))
    p = rng.random((n, k))
    matches = assign_queries(ids, p, threshold=threshold)
    chosen = [m.identity_id for m in matches if m.identity_id is not None]
    assert len(chosen) == len(set(chosen))
    best_cost: dict[tuple[int, int], float] = {}
    for q, j in zip(*np.nonzero(p >= threshold), strict=True):
        key = (int(q), int(ids[q, j]))
        best_cost[key] = min(-np.log(p[q, j]), best_cost.get(key, np.inf))
    got = sum(
        -np.log(threshold) if m.identity_id is None else best_cost[(m.query, int(m.identity_id))] for m in matches
    )  # type: ignore[call-overload]
    distinct = sorted({int(i) for i in ids.ravel()})
    dense = np.full((n, len(distinct) + n), np.inf)
    for (q, identity), c in best_cost.items():
        dense[q, distinct.index(int(identity))] = c
    dense[np.arange(n), len(distinct) + np.arange(n)] = -np.log(threshold)
    r, c = linear_sum_assignment(dense)
    assert got == pytest.approx(dense[r, c].sum())


def test_match_queries_calibrates_and_respects_padding() -> None:
    s, same = pairs(5_000, 4.0, seed=8)
    model = MatchCalibrator().fit(s, same)
    sims = np.array([[0.7, 0.1], [0.65, 0.0]])
    valid = np.array([[True, True], [False, False]])
    matches = match_queries(model, [[1, 2], [1, 3]], sims, threshold=0.5, valid=valid)
    assert matches[0].identity_id == 1 and matches[0].probability > 0.5
    assert matches[1].decision == "new" and np.isnan(matches[1].probability)


def test_cmc_and_map_on_a_hand_computed_example() -> None:
    sim = np.array(
        [
            [0.9, 0.8, 0.1, 0.2],  # id 1: correct entries at gallery 1, 3 -> ranks 2 and 3
            [0.1, 0.2, 0.9, 0.3],  # id 2: correct at gallery 2 -> rank 1
            [0.5, 0.4, 0.3, 0.2],  # id 5: absent from the gallery -> skipped
        ]
    )
    scores = evaluate_reid(sim, [1, 2, 5], [3, 1, 2, 1], max_rank=4)
    assert scores.n_queries == 2
    np.testing.assert_allclose(scores.cmc, [0.5, 1.0, 1.0, 1.0])
    assert scores.mean_ap == pytest.approx(((1 / 2 + 2 / 3) / 2 + 1.0) / 2)
    # Same camera and same id: gallery 1 is junk for query 0, so its correct gallery 3 moves up to rank 2.
    cams = evaluate_reid(sim, [1, 2, 5], [3, 1, 2, 1], query_cams=[0, 0, 0], gallery_cams=[1, 0, 1, 1])
    assert cams.rank(1) == 0.5 and cams.mean_ap == pytest.approx((1 / 2 + 1.0) / 2)
    with pytest.raises(ValueError, match="gallery_ids"):
        evaluate_reid(sim, [1, 2, 5], [3, 1, 2])


def test_report_writes_png_html_json(tmp_path: Path) -> None:
    s, same = pairs(4_000, 2.5, seed=9)
    model = MatchCalibrator().fit(s, same)
    summary = write_calibration_report(tmp_path / "report", s, same, model, target_false_match_rate=0.01)
    folder = tmp_path / "report"
    for name in summary["files"]:
        assert (folder / name).stat().st_size > 0
    for png in ("similarity_hist.png", "roc.png", "calibration.png"):
        assert (folder / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "data:image/png;base64," in (folder / "report.html").read_text()
    saved = json.loads((folder / "report.json").read_text())
    point = saved["thresholds"]["probability"]["target_false_match_rate"]
    assert point["false_match_rate"] <= 0.01
    assert saved["thresholds"]["similarity"]["f1_optimal"]["threshold"] > 0.2


def test_platt_fits_a_narrow_similarity_range_with_rare_positives() -> None:
    """Similarities between 0.5 and 0.8 with 1 positive per 1,000 pairs (PRID 2011's shape): unscaled, lbfgs stopped
    early with a negative slope, so higher similarity meant a lower probability."""
    rng = np.random.default_rng(0)
    negatives = rng.normal(0.62, 0.05, 200_000)
    positives = rng.normal(0.69, 0.05, 200)
    similarity = np.concatenate([negatives, positives])
    same = np.concatenate([np.zeros(len(negatives), bool), np.ones(len(positives), bool)])
    calibrator = MatchCalibrator().fit(similarity, same)
    assert calibrator.coef_[0] > 0
    low, high = calibrator.predict_proba(np.array([0.55, 0.8]))
    assert high > 10 * low
    assert abs(calibrator.predict_proba(similarity).mean() - same.mean()) < 2e-4  # calibrated in the large
