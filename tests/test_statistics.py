"""The comparison intervals keep their promise: coverage measured by simulation (seeded null comparisons), the
arithmetic against scipy, Holm's adjustment against its definition."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from rnnbench.report.statistics import (bootstrap_difference, holm, paired_difference, summarize,
                                        welch_difference)

TRIALS = 2000


def false_alarm_rate(method, n: int, trials: int = TRIALS, seed: int = 0) -> float:
    """Fraction of null comparisons (no true difference, unequal spreads) whose 95% interval excludes 0."""
    rng = np.random.default_rng(seed)
    alarms = 0
    for _ in range(trials):
        a, b = rng.normal(0.0, 1.0, n), rng.normal(0.0, 2.0, n)
        result = method(a, b)
        alarms += bool(result.excludes_zero)
    return alarms / trials


@pytest.mark.parametrize("n", [2, 3, 5])
def test_welch_keeps_its_level_where_the_bootstrap_cries_wolf(n):
    welch = false_alarm_rate(welch_difference, n)
    # the binomial sd of a 5% rate over 2,000 trials is 0.5 points: Welch sits at or below the nominal 5%
    assert welch <= 0.065, welch
    bootstrap = false_alarm_rate(lambda a, b: bootstrap_difference(a, b, resamples=500), n, trials=600)
    assert bootstrap > 0.09, bootstrap  # the percentile bootstrap's intervals are too narrow with few seeds
    assert bootstrap > welch + 0.04


@pytest.mark.parametrize("n", [3, 5])
def test_paired_interval_keeps_its_level_and_removes_the_shared_seed_effect(n):
    rng = np.random.default_rng(1)
    alarms, paired_widths, welch_widths = 0, [], []
    for _ in range(TRIALS):
        seed_effect = rng.normal(0.0, 3.0, n)  # what both sides share: the seed's split and initial weights
        a, b = seed_effect + rng.normal(0.0, 0.5, n), seed_effect + rng.normal(0.0, 0.5, n)
        result = paired_difference(list(zip(a, b)))
        alarms += bool(result.excludes_zero)
        paired_widths.append(result.high - result.low)
        welch = welch_difference(a, b)
        welch_widths.append(welch.high - welch.low)
    assert alarms / TRIALS <= 0.065
    assert np.median(paired_widths) < 0.5 * np.median(welch_widths)


def test_welch_and_paired_arithmetic_is_scipys():
    a, b = [0.31, 0.28, 0.35, 0.30, 0.29], [0.25, 0.27, 0.22, 0.26, 0.24]
    result = welch_difference(a, b)
    reference = stats.ttest_ind(a, b, equal_var=False)
    interval = reference.confidence_interval(0.95)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-12)
    assert (result.low, result.high) == pytest.approx((interval.low, interval.high), rel=1e-12)
    assert result.difference == pytest.approx(np.mean(a) - np.mean(b)) and result.n_a == result.n_b == 5
    paired = paired_difference(list(zip(a, b)))
    reference = stats.ttest_rel(a, b)
    assert paired.p_value == pytest.approx(reference.pvalue, rel=1e-12)
    assert paired.method == "paired" and not paired.few_seeds


def test_undefined_and_degenerate_cases():
    assert welch_difference([1.0], [1.0, 2.0]).reason == "undefined: n < 2 on a side"
    assert welch_difference([1.0, float("inf")], [1.0, 2.0]).reason == "undefined: non-finite values"
    exact = welch_difference([1.0, 1.0, 1.0], [2.0, 2.0, 2.0])
    assert (exact.low, exact.high, exact.p_value) == (-1.0, -1.0, 0.0) and exact.verdict().startswith("A < B")
    assert welch_difference([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]).verdict().startswith("no difference shown")
    assert summarize([1.0, None, float("nan"), 3.0]).n == 2


def test_holm_is_the_step_down_bonferroni():
    assert holm([0.01, 0.04, 0.03, None, 0.5]) == pytest.approx([0.04, 0.09, 0.09, None, 0.5])
    assert holm([0.2, 0.9]) == [0.4, 0.9]
    assert holm([]) == []
