"""The competitor rule: a candidate's similarity counts less when another identity comes close."""

from __future__ import annotations

import numpy as np
import pytest

from trackid.identity.calibration import MatchCalibrator
from trackid.identity.matching import competitor_scores, match_queries


def test_each_candidate_is_penalised_by_the_best_other_identity_only() -> None:
    ids = np.array([[7, 7, 9, -1], [3, -1, -1, -1]])
    sims = np.array([[0.9, 0.8, 0.6, 0.0], [0.5, 0.0, 0.0, 0.0]])
    valid = ids >= 0
    got = competitor_scores(ids, sims, valid, 0.5)
    # identity 7's two prototypes meet identity 9 as their rival; 9 meets 7's best; a lone candidate meets no one
    np.testing.assert_allclose(got[0, :3], [0.9 - 0.3, 0.8 - 0.3, 0.6 - 0.45])
    assert got[1, 0] == pytest.approx(0.5)
    np.testing.assert_allclose(competitor_scores(ids, sims, valid, 0.0), sims)


def test_a_match_among_near_equals_is_refused_that_a_clear_one_is_not() -> None:
    calibrator = MatchCalibrator().fit(
        np.r_[np.linspace(0.3, 0.9, 50), np.linspace(-0.5, 0.2, 50)], np.r_[[1] * 50, [0] * 50]
    )
    ids = np.array([[1, 2], [3, 4]])
    sims = np.array([[0.6, 0.58], [0.6, -0.4]])  # the same best similarity, a close rival vs none near
    plain = match_queries(calibrator, ids, sims, 0.5)
    ruled = match_queries(calibrator, ids, sims, 0.5, competitor_weight=1.0)
    assert [m.decision for m in plain] == ["match", "match"]
    assert [m.decision for m in ruled] == ["new", "match"]
    assert ruled[0].similarity == pytest.approx(0.6)  # the log keeps the raw similarity
