"""Assignment: optimal means optimal (checked by brute force), gates are never crossed, greedy is different."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from numpy.typing import NDArray

from trackid.track.association import AssignmentMethod, assign

GATED = 1e6
MAX_COST = 1e5


def _brute_force(cost: NDArray[np.float64], max_cost: float) -> tuple[int, float]:
    """Best (most pairs, then least total cost) matching using only pairs at or below `max_cost`."""
    n_rows, n_cols = cost.shape
    best = (0, 0.0)
    for size in range(1, min(n_rows, n_cols) + 1):
        for rows in itertools.combinations(range(n_rows), size):
            for cols in itertools.permutations(range(n_cols), size):
                values = cost[list(rows), list(cols)]
                if (values <= max_cost).all():
                    total = float(values.sum())
                    if size > best[0] or (size == best[0] and total < best[1]):
                        best = (size, total)
    return best


def _check_matching(cost: NDArray[np.float64], rows: NDArray[np.intp], cols: NDArray[np.intp], max_cost: float) -> None:
    assert len(rows) == len(cols)
    assert len(set(rows.tolist())) == len(rows), "a row matched twice"
    assert len(set(cols.tolist())) == len(cols), "a column matched twice"
    assert (cost[rows, cols] <= max_cost).all(), "a gated pair was matched"


@pytest.mark.parametrize("seed", range(25))
def test_optimal_matches_brute_force_with_gating(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = tuple(rng.integers(1, 6, size=2))
    cost = rng.uniform(0, 1, shape)
    cost[rng.random(shape) < 0.35] = GATED  # the tracker's way of forbidding a pair
    rows, cols = assign(cost, MAX_COST, "optimal")
    _check_matching(cost, rows, cols, MAX_COST)
    size, total = _brute_force(cost, MAX_COST)
    assert len(rows) == size
    assert cost[rows, cols].sum() == pytest.approx(total, abs=1e-9)


@pytest.mark.parametrize("method", ["optimal", "greedy"])
@pytest.mark.parametrize("seed", range(10))
def test_no_pair_above_the_gate(method: AssignmentMethod, seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    cost = rng.uniform(0, 2, (6, 5))
    rows, cols = assign(cost, 1.0, method)
    _check_matching(cost, rows, cols, 1.0)


@pytest.mark.parametrize("method", ["optimal", "greedy"])
def test_fully_gated_matrix_matches_nothing(method: AssignmentMethod) -> None:
    rows, cols = assign(np.full((3, 4), GATED), MAX_COST, method)
    assert len(rows) == len(cols) == 0


@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (0, 0)])
def test_empty_matrix(shape: tuple[int, int]) -> None:
    rows, cols = assign(np.zeros(shape), MAX_COST)
    assert len(rows) == len(cols) == 0


def test_greedy_differs_from_optimal_on_a_crafted_case() -> None:
    # Greedy takes the cheapest pair (0, 0) first and is left with the expensive (1, 1): total 1.0.
    # The optimum pairs crosswise: 0.2 + 0.15 = 0.35.
    cost = np.array([[0.1, 0.2], [0.15, 0.9]])
    g_rows, g_cols = assign(cost, MAX_COST, "greedy")
    o_rows, o_cols = assign(cost, MAX_COST, "optimal")
    assert sorted(zip(g_rows.tolist(), g_cols.tolist(), strict=True)) == [(0, 0), (1, 1)]
    assert sorted(zip(o_rows.tolist(), o_cols.tolist(), strict=True)) == [(0, 1), (1, 0)]
    assert cost[o_rows, o_cols].sum() == pytest.approx(0.35)
