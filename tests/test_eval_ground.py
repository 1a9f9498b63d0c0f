"""Ground-plane metrics through py-motmetrics: values that can be worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from trackid.eval.ground import ground_metrics


def test_perfect_shifted_missing_and_swapped_hypotheses() -> None:
    truth = np.array([[f, i, float(i), float(f)] for f in range(1, 11) for i in (1, 2)])
    perfect = ground_metrics(truth, truth, 0.5)
    assert perfect["MODA"] == pytest.approx(100) and perfect["IDF1"] == pytest.approx(100)
    assert perfect["MODP"] == pytest.approx(100)
    shifted = truth.copy()
    shifted[:, 2] += 0.3
    assert ground_metrics(truth, shifted, 0.5)["MODP"] == pytest.approx(40)
    assert ground_metrics(truth, shifted, 0.25)["MODA"] == pytest.approx(-100)  # every point a miss and a false one
    missing = truth[truth[:, 1] == 1]
    assert ground_metrics(truth, missing, 0.5)["MODA"] == pytest.approx(50)
    swapped = truth.copy()
    swapped[(swapped[:, 0] > 5), 1] = 3  # person 1's track and person 2's take a new id halfway
    swapped[(swapped[:, 0] > 5) & (truth[:, 1] == 2), 1] = 4
    got = ground_metrics(truth, swapped, 0.5)
    assert got["MODA"] == pytest.approx(100) and got["IDSW"] == 2 and got["IDF1"] < 100
    with pytest.raises(ValueError, match="threshold"):
        ground_metrics(truth, truth, 0)
