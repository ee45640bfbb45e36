"""The comparison's tests keep their promise: coverage and error rates measured by simulation (seeded, vectorised
where the tests allow), the arithmetic against scipy, Holm's adjustment against its definition, each verdict
against the interval it reads, and the power note against the power it promises."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats

from rnnbench.report.cells import Verdict
from rnnbench.report.statistics import (ALPHA, Difference, OutcomeDifference, boschloo_p_values,
                                        bootstrap_difference, detectable_difference, detectable_fraction_difference,
                                        equivalence_p_value, holm, holm_steps, outcome_difference, paired_difference,
                                        summarize, welch_difference)

TRIALS = 2000
# A rate at its nominal level stays below this in all but about 1 in 160 seeded simulations of TRIALS draws.
AT_MOST_ALPHA = ALPHA + 2.5 * math.sqrt(ALPHA * (1 - ALPHA) / TRIALS)


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
    assert (exact.low, exact.high, exact.p_value) == (-1.0, -1.0, 0.0) and Verdict(exact).text().startswith("A < B")
    assert Verdict(welch_difference([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])).text().startswith("inconclusive")
    assert welch_difference([1.0, 1.0], [1.5, 1.5], margin=1.0).p_equivalence == 0.0  # exactly 0.5 apart: inside 1
    assert Verdict(welch_difference([1.0], [1.0, 2.0])).text() == "inconclusive (undefined: n < 2 on a side)"
    assert summarize([1.0, None, float("nan"), 3.0]).n == 2


def test_holm_is_the_step_down_bonferroni():
    assert holm([0.01, 0.04, 0.03, None, 0.5]) == pytest.approx([0.04, 0.09, 0.09, None, 0.5])
    assert holm([0.2, 0.9]) == [0.4, 0.9]
    assert holm([]) == []


def test_holm_counts_the_two_tests_of_a_row_once():
    """A row's "no difference" and "a difference of at least δ" cannot both be true: they count once in the
    step's divisor (Shaffer); each hypothesis's level reads as its verdict (p below it exactly where rejected)."""
    assert holm([0.01, 0.02, 0.04], exclusive=[0, 0, 1]) == pytest.approx([0.02, 0.04, 0.04])
    steps = holm_steps([0.004, 0.01, 0.03, 0.3], exclusive=[0, 0, 1, 2])
    assert [s.rejects() for s in steps] == [True, True, False, False]
    assert [s.level for s in steps] == pytest.approx([0.05 / 3, 0.05 / 3, 0.05 / 2, 0.05 / 2])  # stopped at 0.03
    rng = np.random.default_rng(3)
    for _ in range(300):
        p_values = rng.uniform(0, 0.06, 8) ** rng.uniform(0.5, 2)
        for step, p in zip(holm_steps(p_values, exclusive=[0, 0, 1, 1, 2, 3, 4, 4]), p_values):
            assert (p < step.level) == step.rejects()


def test_each_interval_excludes_0_exactly_where_its_p_is_below_its_level():
    """The t-intervals and the bootstrap's: excludes 0 at 1 - a where p < a; lies inside ±δ at 1 - 2a where the
    equivalence p < a."""
    rng = np.random.default_rng(4)
    for _ in range(60):
        n, margin, level = rng.integers(3, 8), rng.uniform(0.2, 2.0), rng.choice([0.05, 0.0125, 0.05 / 7])
        a, b = rng.normal(rng.uniform(-1, 1), 1.0, n), rng.normal(0.0, 0.7, n)
        for test in (lambda c: welch_difference(a, b, confidence=c, margin=margin),
                     lambda c: paired_difference(list(zip(a, b)), confidence=c, margin=margin),
                     lambda c: bootstrap_difference(a, b, resamples=400, confidence=c, margin=margin)):
            difference, equivalence = test(1 - level), test(1 - 2 * level)
            assert difference.excludes_zero == (difference.p_value < level)
            assert (-margin < equivalence.low and equivalence.high < margin) == (equivalence.p_equivalence < level)


@pytest.mark.parametrize("n", [3, 5, 10])
def test_equivalence_test_keeps_its_level_at_the_margin(n):
    """Where the true difference is exactly ±δ (its null's worst case), two one-sided tests declare equivalence in
    at most 5% of comparisons, independent seeds (Welch, unequal spreads) and shared ones (paired); at no
    difference they do declare it (the test is not vacuous)."""
    rng = np.random.default_rng(n)
    # margins 5 standard errors wide, so that only the side at the margin can fail: the level is reached, not
    # undercut by a test too noisy to declare anything
    welch_margin, paired_margin = 5 * math.sqrt((1.0 + 4.0) / n), 5 * math.sqrt(0.5 / n)
    for side in (1, -1):
        a, b = rng.normal(side * welch_margin, 1.0, (TRIALS, n)), rng.normal(0.0, 2.0, (TRIALS, n))
        welch = equivalence_p_value(a, b, welch_margin)
        shared = rng.normal(0.0, 3.0, (TRIALS, n))  # what both sides of a seed share
        pa = shared + rng.normal(side * paired_margin, 0.5, (TRIALS, n))
        pb = shared + rng.normal(0.0, 0.5, (TRIALS, n))
        paired = equivalence_p_value(pa, pb, paired_margin, paired=True)
        assert np.mean(welch < ALPHA) <= AT_MOST_ALPHA and np.mean(paired < ALPHA) <= AT_MOST_ALPHA
    # the batch computes what a table's row does
    assert welch_difference(a[0], b[0], margin=welch_margin).p_equivalence == pytest.approx(welch[0], rel=1e-12)
    assert paired_difference(list(zip(pa[0], pb[0])), margin=paired_margin).p_equivalence == \
        pytest.approx(paired[0], rel=1e-12)
    pa, pb = shared + rng.normal(0.0, 0.5, (TRIALS, n)), shared + rng.normal(0.0, 0.5, (TRIALS, n))
    assert np.mean(equivalence_p_value(pa, pb, paired_margin, paired=True) < ALPHA) > 0.5


@pytest.mark.parametrize("n", [3, 5, 10])
def test_exact_test_keeps_its_level(n):
    """Boschloo's test of equal chances of reaching a threshold rejects in at most 5% of simulated comparisons
    where both sides have the same chance, and its exact size (over every common chance) is at most 5%; it rejects
    wherever Fisher's exact test does (the reason to prefer it)."""
    p_values = boschloo_p_values(n, n)
    rng = np.random.default_rng(n)
    for chance in (0.2, 0.5, 0.8):
        reached_a, reached_b = rng.binomial(n, chance, (2, TRIALS))
        assert np.mean(p_values[reached_a, reached_b] < ALPHA) <= AT_MOST_ALPHA
    chances = np.linspace(0.0, 1.0, 501)
    of = stats.binom.pmf(np.arange(n + 1)[None, :], n, chances[:, None])
    size = np.einsum("ci,ij,cj->c", of, p_values < ALPHA, of)
    assert size.max() <= ALPHA
    fisher = np.array([[stats.fisher_exact([[i, j], [n - i, n - j]]).pvalue for j in range(n + 1)]
                       for i in range(n + 1)])
    assert not ((fisher < ALPHA) & (p_values >= ALPHA)).any()
    result = outcome_difference(n - 1, n, 0, n)
    assert result.p_value == pytest.approx(stats.boschloo_exact([[n - 1, 0], [1, n]]).pvalue, rel=1e-12)
    assert result.difference == pytest.approx((n - 1) / n) and not result.few_seeds


def test_the_family_keeps_its_level_with_a_rows_two_tests_counted_once():
    """Four rows, each tested for a difference and for equivalence within ±1: two with no true difference (their
    first null true), two exactly at the margin (their second null true). Holm's steps, a row's two tests counted
    once, make any false claim in at most 5% of tables."""
    rng = np.random.default_rng(5)
    n, margin, true = 5, 1.0, np.array([0.0, 0.0, 1.0, -1.0])
    a, b = rng.normal(true[:, None], 1.0, (TRIALS, 4, n)), rng.normal(0.0, 1.0, (TRIALS, 4, n))
    differs = stats.ttest_ind(a, b, equal_var=False, axis=-1).pvalue
    equivalent = equivalence_p_value(a, b, margin)
    false_claims = 0
    for p_differs, p_equivalent in zip(differs, equivalent):
        steps = holm_steps(np.column_stack([p_differs, p_equivalent]).ravel(), exclusive=np.repeat(np.arange(4), 2))
        false_claims += any(steps[i].rejects() for i in (0, 2, 5, 7))  # rows 0, 1: a difference; 2, 3: equivalence
    assert false_claims / TRIALS <= AT_MOST_ALPHA


@pytest.mark.parametrize("n", [3, 5, 10])
def test_the_power_note_is_the_effect_found_four_times_in_five(n):
    """At the difference the power note gives (for the spread the sample shows), the t-test at the row's level
    rejects in 80% of simulated comparisons; the outcome note's difference in chance is found with 80% power."""
    rng = np.random.default_rng(n)
    level = ALPHA / 3
    detectable = detectable_difference(1.0 / math.sqrt(n), n - 1, level)
    differences = rng.normal(detectable, 1.0, (TRIALS, n))  # per-seed differences of a paired comparison
    found = np.mean(stats.ttest_1samp(differences, 0.0, axis=-1).pvalue < level)
    assert abs(found - 0.8) <= 2.5 * math.sqrt(0.8 * 0.2 / TRIALS), found
    fraction = detectable_fraction_difference(n, n, 0.0, ALPHA)
    of_b = stats.binom.pmf(np.arange(n + 1), n, 0.0)

    def power(chance: float) -> float:
        return float(stats.binom.pmf(np.arange(n + 1), n, chance) @ (boschloo_p_values(n, n) < ALPHA) @ of_b)
    assert power(fraction) >= 0.8 > power(fraction - 0.002)
    assert detectable_fraction_difference(3, 3, 0.5, ALPHA / 4) == math.inf  # none at this n


def test_the_verdict_in_four_words():
    """A > B and A < B where a difference is shown (and by less than δ where equivalence is too), equivalent
    within ±δ, inconclusive with the power note or why there is no test."""
    base = Difference(0.3, 0.1, 0.5, 5, 5, p_value=0.001, p_holm=0.01, margin=0.5, p_equivalence=0.2,
                      p_equivalence_holm=0.4)
    assert Verdict(base).text() == "A > B"
    assert Verdict(replace(base, difference=-0.3, p_equivalence_holm=0.01)).text() == "A < B (by less than 0.5)"
    assert Verdict(replace(base, p_holm=0.5, p_equivalence_holm=0.01)).text() == "equivalent within ±0.5"
    assert Verdict(replace(base, p_holm=0.5, detectable=0.1234, n_a=3)).text() == \
        "inconclusive (80% power for |Δ| ≥ 0.123; n < 5 on a side: indicative only)"
    assert Verdict(OutcomeDifference(0, 3, 1, 3, 1.0, 1.0, detectable=math.inf)).text() == \
        "inconclusive (no difference has 80% power at these n)"
    assert Verdict(OutcomeDifference(5, 5, 0, 5, 0.002, 0.004)).text() == "A > B"
