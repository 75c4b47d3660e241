"""The report's statistics against scipy and hand computation (no store needed)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from ablate.reporting import stats


@pytest.mark.parametrize(("a", "b"), [
    ([0.74, 0.75, 0.76], [0.70, 0.72, 0.71]),
    ([1.0, 2.0, 3.0], [2.0, 4.0, 5.5, 6.0]),
    ([0.5, 0.9], [0.6, 0.61, 0.62, 0.64, 0.7]),
])
def test_welch_difference_matches_scipy(a, b):
    estimate = stats.welch_difference(a, b)
    expected = sps.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert estimate.value == pytest.approx(np.mean(a) - np.mean(b))
    assert estimate.low == pytest.approx(expected.low)
    assert estimate.high == pytest.approx(expected.high)


def test_welch_by_hand():
    a, b = [0.74, 0.75, 0.76], [0.70, 0.72, 0.71]
    # both variances 1e-4 with n=3: se = sqrt(2e-4/3), df = 4
    se = math.sqrt(2e-4 / 3)
    half = sps.t.ppf(0.975, 4) * se
    estimate = stats.welch_difference(a, b)
    assert (estimate.low, estimate.high) == pytest.approx((0.04 - half, 0.04 + half))
    assert not estimate.includes_zero


def test_no_interval_with_a_single_repeat():
    estimate = stats.welch_difference([0.8], [0.70, 0.72, 0.71])
    assert estimate.value == pytest.approx(0.09)
    assert not estimate.has_interval and not estimate.includes_zero


def test_zero_spread_gives_a_point_interval():
    estimate = stats.welch_difference([0.5, 0.5], [0.4, 0.4])
    assert (estimate.low, estimate.high) == pytest.approx((0.1, 0.1))
    assert not estimate.includes_zero


def test_pareto_front_on_a_crafted_set():
    # (objective to maximise, gflops to minimise)
    points = np.array([
        [0.80, 2.0],   # front: best objective
        [0.75, 1.0],   # front
        [0.71, 1.0],   # dominated by the previous one
        [0.75, 1.5],   # dominated (same objective, more flops)
        [0.60, 0.5],   # front: cheapest
        [0.75, 1.0],   # a duplicate of a front point: on the front too
        [math.nan, 0.1],  # unknown objective: never on the front
    ])
    front = stats.pareto_front(points, [True, False])
    assert front.tolist() == [True, True, False, False, True, True, False]
    # both minimised: only the cheapest-and-lowest corner survives
    assert stats.pareto_front(points[:5], [False, False]).tolist() == [
        False, False, False, False, True]


@pytest.mark.parametrize("k", [2, 3])
def test_pareto_front_equals_the_pairwise_definition(k):
    """Against every pair checked directly, on ties, duplicates and NaNs (rounded values)."""
    rng = np.random.default_rng(k)
    points = np.round(rng.uniform(size=(400, k)), 1)
    points[rng.choice(400, 20, replace=False), rng.integers(k)] = math.nan
    points[:30] = points[30:60]  # duplicates
    maximize = [True] + [False] * (k - 1)
    costs = points * np.where(maximize, -1.0, 1.0)
    expected = [
        not np.isnan(c).any() and not any(
            np.all(o <= c) and np.any(o < c) for o in costs if not np.isnan(o).any())
        for c in costs
    ]
    assert stats.pareto_front(points, maximize).tolist() == expected
    assert 0 < sum(expected) < 400


def test_summary_uses_ddof_1():
    mean, std, n = stats.summary(pd.Series([0.70, 0.72, 0.71, math.nan]))
    assert (mean, n) == (pytest.approx(0.71), 3)
    assert std == pytest.approx(np.std([0.70, 0.72, 0.71], ddof=1))
    assert math.isnan(stats.summary(pd.Series([0.5]))[1])
