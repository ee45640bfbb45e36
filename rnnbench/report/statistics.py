"""Summaries over seeds, and the tests whose results a ``--compare`` verdict reads.

For ``mean(A) - mean(B)`` over seeds, all from scipy:

- :func:`welch_difference` (the default): Welch's t-test for two independent samples with unequal variances
  (``scipy.stats.ttest_ind(equal_var=False)``): the two-sided p-value and the t-interval at any confidence.
- :func:`paired_difference`: when both sides ran the same seeds (and so the same data splits and
  initial weights drawn from the same generator state), the t-test of the per-seed differences
  (``scipy.stats.ttest_rel``), which removes the seed-to-seed variation both sides share.
- :func:`bootstrap_difference` (on request): the percentile bootstrap of the two means
  (``scipy.stats.bootstrap``'s resamples), its interval and the p-value that matches it (the smallest level at
  which the interval excludes 0). With few seeds it is too narrow (with 2 seeds a side it is the range of the
  pairwise differences): under no true difference it excludes 0 in about a third of comparisons at n = 2 and 13%
  at n = 5, against the 5% it promises (``tests/test_statistics.py`` measures it).

Each also tests *equivalence* within a margin ``±δ`` where one is given: two one-sided tests (TOST, Schuirmann
1987) of ``A - B > -δ`` and ``A - B < δ``, whose p-value is the larger of the two; equivalence is shown where it
is below the level, which is where the ``1 - 2α`` interval lies inside ``(-δ, δ)``.

For an *outcome* (a threshold reached or not), :func:`outcome_difference` compares the fractions of runs that
reached it with Boschloo's exact test (``scipy.stats.boschloo_exact``, two-sided: twice the smaller one-sided
p-value), chosen over Fisher's exact test because it is uniformly more powerful at the same exact level, which
matters at 3 to 10 seeds a side (4/5 against 0/5: Boschloo p = 0.021, Fisher 0.048).

:func:`holm_steps` adjusts a comparison's family of p-values (Holm 1979: step-down Bonferroni, which controls the
family-wise error rate under any dependence) and gives each hypothesis the level at which its interval is read;
hypotheses of which at most one can be true (a row's "no difference" and "a difference of at least δ") count once
in the step's divisor (Shaffer 1986's refinement of Holm, as valid). :func:`detectable_difference` and
:func:`detectable_fraction_difference` give the power note of a row that shows nothing: the smallest effect the
design detects with 80% power at the row's level.

The t-tests assume each side's seed values are roughly normal; with fewer than :data:`FEW_SEEDS` seeds a side,
that assumption cannot be checked and one outlying seed moves the interval a lot, which the tables say in words.
The exact test assumes nothing of the kind.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

__all__ = ["Summary", "Difference", "OutcomeDifference", "HolmStep", "summarize", "welch_difference",
           "paired_difference", "bootstrap_difference", "equivalence_p_value", "outcome_difference",
           "boschloo_p_values", "holm", "holm_steps", "detectable_difference", "detectable_fraction_difference",
           "INTERVALS", "RESAMPLES", "CONFIDENCE", "ALPHA", "POWER", "SEED", "FEW_SEEDS"]

RESAMPLES = 10_000
ALPHA = 0.05  # the family-wise error rate a comparison's verdicts keep
CONFIDENCE = 1 - ALPHA
POWER = 0.8  # the power of an inconclusive row's note: the effect the design detects this often
SEED = 0
FEW_SEEDS = 5  # fewer seeds than this on a side: the table says so instead of trusting a verdict
INTERVALS = ("welch", "paired", "bootstrap")


@dataclass(frozen=True)
class Summary:
    """Mean and sample standard deviation (``ddof=1``) of ``n`` values; ``std`` is None for ``n < 2``."""

    mean: float | None
    std: float | None
    n: int


def summarize(values: Iterable[float]) -> Summary:
    """Summary of the values that are numbers (NaN and None are dropped, infinities are kept)."""
    kept = [float(v) for v in values if v is not None and not math.isnan(v)]
    if not kept:
        return Summary(None, None, 0)
    array = np.asarray(kept, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        mean = float(array.mean())
        std = float(array.std(ddof=1)) if len(kept) > 1 else None
    return Summary(mean, std, len(kept))


class _Claims:
    """What a row's (Holm-adjusted, where adjusted) p-values show at level ``alpha``."""

    p_value: float | None
    p_holm: float | None
    p_equivalence: float | None
    p_equivalence_holm: float | None

    def differs(self, alpha: float = ALPHA) -> bool:
        """Whether A and B differ: the test of no difference rejects."""
        p = self.p_holm if self.p_holm is not None else self.p_value
        return p is not None and p < alpha

    def equivalent(self, alpha: float = ALPHA) -> bool:
        """Whether A and B are equivalent within the margin: both one-sided tests of a difference of at least
        the margin reject."""
        p = self.p_equivalence_holm if self.p_equivalence_holm is not None else self.p_equivalence
        return p is not None and p < alpha


@dataclass(frozen=True)
class Difference(_Claims):
    """``mean(a) - mean(b)``, its interval at ``confidence`` (``low``/``high`` None when undefined, with ``reason``
    saying why), the two-sided p-value of no difference and, where a ``margin`` is given, the equivalence p-value
    (TOST); their Holm-adjusted values once adjusted; the standard error and degrees of freedom of the t-test
    (for the power note: Welch's for the bootstrap); ``detectable``: the power note, once computed; ``reads``:
    which test the interval answers (``difference``: it excludes 0 where that test rejects at 1 - confidence;
    ``equivalence``: it lies inside ``±margin`` where TOST rejects at (1 - confidence) / 2)."""

    difference: float | None
    low: float | None
    high: float | None
    n_a: int
    n_b: int
    method: str = "welch"
    p_value: float | None = None
    p_holm: float | None = None
    confidence: float = CONFIDENCE
    reason: str | None = None
    margin: float | None = None
    p_equivalence: float | None = None
    p_equivalence_holm: float | None = None
    standard_error: float | None = None
    df: float | None = None
    detectable: float | None = None
    reads: str = "difference"

    @property
    def defined(self) -> bool:
        return self.low is not None and self.high is not None

    @property
    def excludes_zero(self) -> bool | None:
        return None if not self.defined else bool(self.low > 0 or self.high < 0)

    @property
    def few_seeds(self) -> bool:
        return min(self.n_a, self.n_b) < FEW_SEEDS


@dataclass(frozen=True)
class OutcomeDifference(_Claims):
    """How many of each side's runs reached a threshold (of ``n_a`` and ``n_b``), the two-sided p-value of
    Boschloo's exact test of equal chances, its Holm-adjusted value once adjusted, and ``detectable``: the
    smallest difference in the fraction reached that the design detects with 80% power (infinity: none at these
    n), once computed. No interval and no equivalence test."""

    reached_a: int
    n_a: int
    reached_b: int
    n_b: int
    p_value: float | None = None
    p_holm: float | None = None
    detectable: float | None = None
    reason: str | None = None
    # what the interval and verdict cells read of a Difference: an exact test of fractions has none of it
    method = "boschloo"
    margin = None
    p_equivalence = None
    p_equivalence_holm = None
    low = None
    high = None
    confidence = None
    defined = False
    excludes_zero = None
    few_seeds = False  # an exact test: nothing rests on the seeds being normal
    reads = "difference"

    @property
    def difference(self) -> float | None:
        """The fraction of A's runs that reached the threshold minus B's."""
        if not self.n_a or not self.n_b:
            return None
        return self.reached_a / self.n_a - self.reached_b / self.n_b


def _clean(values: Iterable[float | None]) -> np.ndarray:
    return np.asarray([float(v) for v in values if v is not None and not math.isnan(v)], dtype=np.float64)


def _undefined(method: str, a: np.ndarray, b: np.ndarray, confidence: float) -> Difference | None:
    with np.errstate(invalid="ignore"):  # inf - inf (two censored steps_to sides) is NaN: no difference to give
        difference = float(a.mean() - b.mean()) if len(a) and len(b) else None
    if difference is not None and math.isnan(difference):
        difference = None
    if len(a) < 2 or len(b) < 2:
        return Difference(difference, None, None, len(a), len(b), method, confidence=confidence,
                          reason="undefined: n < 2 on a side")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return Difference(difference, None, None, len(a), len(b), method, confidence=confidence,
                          reason="undefined: non-finite values")
    return None


def _standard_error(values: np.ndarray) -> float:
    """The standard error of the mean of ``values``: their sample standard deviation over the square root of n."""
    return float(values.std(ddof=1)) / math.sqrt(len(values))


def _zero_spread(method: str, difference: float, n_a: int, n_b: int, confidence: float,
                 margin: float | None) -> Difference:
    """Both sides constant: the difference is exact (p is 0 or 1, and so is the equivalence p), as scipy would
    otherwise return NaN; any difference would be detected."""
    return Difference(difference, difference, difference, n_a, n_b, method, 1.0 if difference == 0 else 0.0,
                      confidence=confidence, margin=margin,
                      p_equivalence=None if margin is None else float(abs(difference) >= margin),
                      standard_error=0.0)


def equivalence_p_value(a: np.ndarray, b: np.ndarray, margin: float, paired: bool = False,
                        axis: int = -1) -> np.ndarray:
    """The p-value of two one-sided t-tests (TOST) that ``mean(a) - mean(b)`` lies inside ``(-margin, margin)``:
    the larger of the p-values of ``> -margin`` and ``< margin`` (Welch's test, or the paired test of ``a - b``),
    along ``axis`` (vectorised: a batch of comparisons at once)."""
    if paired:
        lower = stats.ttest_1samp(a - b, -margin, axis=axis, alternative="greater").pvalue
        upper = stats.ttest_1samp(a - b, margin, axis=axis, alternative="less").pvalue
    else:  # mean(a) - mean(b - margin) = A - B + margin: greater than 0 where A - B > -margin
        lower = stats.ttest_ind(a, b - margin, equal_var=False, axis=axis, alternative="greater").pvalue
        upper = stats.ttest_ind(a, b + margin, equal_var=False, axis=axis, alternative="less").pvalue
    return np.maximum(lower, upper)


def _t_difference(method: str, xa: np.ndarray, xb: np.ndarray, confidence: float,
                  margin: float | None) -> Difference:
    paired = method == "paired"
    undefined = _undefined(method, xa, xb, confidence)
    if undefined is not None:
        return undefined
    difference = float((xa - xb).mean()) if paired else float(xa.mean() - xb.mean())
    if ((xa - xb).std() == 0) if paired else (xa.std() == 0 and xb.std() == 0):
        return _zero_spread(method, difference, len(xa), len(xb), confidence, margin)
    result = stats.ttest_rel(xa, xb) if paired else stats.ttest_ind(xa, xb, equal_var=False)
    interval = result.confidence_interval(confidence)
    standard_error = _standard_error(xa - xb) if paired else math.hypot(_standard_error(xa), _standard_error(xb))
    return Difference(difference, float(interval.low), float(interval.high), len(xa), len(xb), method,
                      float(result.pvalue), confidence=confidence, margin=margin,
                      p_equivalence=None if margin is None else float(equivalence_p_value(xa, xb, margin, paired)),
                      standard_error=standard_error, df=float(result.df))


def welch_difference(a: Iterable[float | None], b: Iterable[float | None], confidence: float = CONFIDENCE,
                     margin: float | None = None) -> Difference:
    """Welch's t-interval and two-sided p-value for ``mean(a) - mean(b)``, independent samples; the TOST p-value
    of equivalence within ``±margin`` where one is given."""
    return _t_difference("welch", _clean(a), _clean(b), confidence, margin)


def paired_difference(pairs: Sequence[tuple[float, float]], confidence: float = CONFIDENCE,
                      margin: float | None = None) -> Difference:
    """The paired t-interval and p-value of ``mean(a - b)`` over ``(a, b)`` pairs of the same seed; the TOST
    p-value of equivalence within ``±margin`` where one is given."""
    kept = [(float(x), float(y)) for x, y in pairs if x is not None and y is not None
            and not (math.isnan(x) or math.isnan(y))]
    return _t_difference("paired", np.asarray([x for x, _ in kept]), np.asarray([y for _, y in kept]), confidence,
                         margin)


def _lower_quantile(values: np.ndarray, fraction: float) -> float:
    """The smallest value with at least ``fraction`` of ``values`` at or below it (the inverse of their
    empirical distribution function)."""
    return float(np.quantile(values, fraction, method="inverted_cdf"))


def bootstrap_difference(a: Iterable[float | None], b: Iterable[float | None], resamples: int = RESAMPLES,
                         confidence: float = CONFIDENCE, seed: int = SEED, margin: float | None = None) -> Difference:
    """Percentile bootstrap of ``mean(a) - mean(b)`` for two independent samples (``scipy.stats.bootstrap``'s
    resamples, a generator seeded with ``seed``, so reproducible): the interval from the resampled differences'
    quantiles, cut alike from both ends, and the p-values that match it exactly: two-sided, twice the smaller
    fraction of resamples at or beyond 0 on either side (the interval excludes 0 exactly where this is below
    1 - confidence); of equivalence, the larger fraction at or beyond ``-margin`` below and ``margin`` above. Too
    narrow for few seeds (module docstring); the power note uses Welch's standard error."""
    xa, xb = _clean(a), _clean(b)
    undefined = _undefined("bootstrap", xa, xb, confidence)
    if undefined is not None:
        return undefined
    difference = float(xa.mean() - xb.mean())
    if xa.std() == 0 and xb.std() == 0:
        return _zero_spread("bootstrap", difference, len(xa), len(xb), confidence, margin)
    result = stats.bootstrap((xa, xb), lambda x, y, axis=-1: np.mean(x, axis=axis) - np.mean(y, axis=axis),
                             n_resamples=resamples, confidence_level=confidence, method="percentile",
                             vectorized=True, rng=np.random.default_rng(seed))
    resampled = np.asarray(result.bootstrap_distribution, dtype=np.float64)
    tail = (1 - confidence) / 2
    welch = stats.ttest_ind(xa, xb, equal_var=False)
    return Difference(difference, _lower_quantile(resampled, tail), -_lower_quantile(-resampled, tail), len(xa),
                      len(xb), "bootstrap",
                      float(min(1.0, 2 * min(np.mean(resampled <= 0), np.mean(resampled >= 0)))),
                      confidence=confidence, margin=margin,
                      p_equivalence=None if margin is None else
                      float(max(np.mean(resampled <= -margin), np.mean(resampled >= margin))),
                      standard_error=math.hypot(_standard_error(xa), _standard_error(xb)), df=float(welch.df))


@functools.lru_cache(maxsize=None)
def boschloo_p_values(n_a: int, n_b: int) -> np.ndarray:
    """The two-sided p-value of Boschloo's exact test (``scipy.stats.boschloo_exact``) for every outcome of
    ``n_a`` and ``n_b`` runs: entry ``[k_a, k_b]`` for ``k_a`` of A's runs and ``k_b`` of B's reaching the
    threshold. Read-only (cached)."""
    table = np.empty((n_a + 1, n_b + 1))
    for k_a in range(n_a + 1):
        for k_b in range(n_b + 1):
            table[k_a, k_b] = stats.boschloo_exact([[k_a, k_b], [n_a - k_a, n_b - k_b]]).pvalue
    table.flags.writeable = False
    return table


def outcome_difference(reached_a: int, n_a: int, reached_b: int, n_b: int) -> OutcomeDifference:
    """The fractions ``reached_a / n_a`` against ``reached_b / n_b`` by Boschloo's exact test (two-sided)."""
    if not n_a or not n_b:
        return OutcomeDifference(reached_a, n_a, reached_b, n_b, reason="undefined: no run on a side")
    return OutcomeDifference(reached_a, n_a, reached_b, n_b, float(boschloo_p_values(n_a, n_b)[reached_a, reached_b]))


@dataclass(frozen=True)
class HolmStep:
    """One hypothesis in Holm's step-down procedure: its adjusted p-value, and ``level``: alpha / j at its step
    (j: the hypotheses, counted as :func:`holm_steps` says, that could still be true there), or, for a
    hypothesis the procedure does not reject, at the step where it stopped. A two-sided test's ``1 - level``
    interval excludes 0 exactly where the procedure rejects it."""

    p_adjusted: float
    level: float

    def rejects(self, alpha: float = ALPHA) -> bool:
        return self.p_adjusted < alpha


def holm_steps(p_values: Sequence[float | None], exclusive: Sequence[Hashable] | None = None,
               alpha: float = ALPHA) -> list[HolmStep | None]:
    """Holm's step-down adjustment of ``p_values`` (None stays None): the i-th smallest p becomes
    ``max over j <= i of min(1, d_j p_(j))``, where ``d_j`` counts the hypotheses at step j and after. Hypotheses
    with one ``exclusive`` label are ones of which at most one can be true (a row's "no difference" and "a
    difference of at least δ"): they count once in ``d_j`` (Shaffer 1986); without labels each counts, and
    ``d_j = m - j`` (Holm 1979). Rejecting where the adjusted p < ``alpha`` keeps the chance of any false
    rejection at ``alpha`` or below, under any dependence."""
    labels = list(range(len(p_values))) if exclusive is None else list(exclusive)
    known = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    divisors, seen = [], set()
    for _, index in reversed(known):
        seen.add(labels[index])
        divisors.append(len(seen))
    divisors.reverse()
    steps: list[HolmStep | None] = [None] * len(p_values)
    running, stopped = 0.0, None
    for (p, index), divisor in zip(known, divisors):
        running = max(running, min(1.0, divisor * p))
        if running >= alpha and stopped is None:
            stopped = divisor
        steps[index] = HolmStep(running, alpha / (divisor if stopped is None else stopped))
    return steps


def holm(p_values: Sequence[float | None], exclusive: Sequence[Hashable] | None = None) -> list[float | None]:
    """The adjusted p-values of :func:`holm_steps`."""
    return [None if step is None else step.p_adjusted for step in holm_steps(p_values, exclusive)]


def detectable_difference(standard_error: float | None, df: float | None, alpha: float,
                          power: float = POWER) -> float | None:
    """The smallest ``|A - B|`` that a two-sided t-test at level ``alpha`` with this standard error and these
    degrees of freedom detects with probability ``power``: ``λ·se`` where ``T ~ noncentral t(df, λ)``
    (``scipy.stats.nct``) exceeds the critical value in size with probability ``power``. None where there is no
    spread to read."""
    if standard_error == 0:
        return 0.0
    if standard_error is None or df is None:
        return None
    critical = stats.t.isf(alpha / 2, df)

    def shortfall(noncentrality: float) -> float:
        # the far tail (below -critical) is under alpha / 2 for a positive noncentrality; where it is so small
        # that scipy gives NaN, it counts as 0
        far = float(np.nan_to_num(stats.nct.cdf(-critical, df, noncentrality)))
        return float(stats.nct.sf(critical, df, noncentrality)) + far - power

    high = critical + 1.0
    while shortfall(high) < 0:
        high *= 2
    return optimize.brentq(shortfall, 0.0, high, xtol=1e-10) * standard_error


def detectable_fraction_difference(n_a: int, n_b: int, fraction_b: float, alpha: float,
                                   power: float = POWER) -> float:
    """The smallest difference from B's fraction ``fraction_b`` (either way) in A's chance of reaching a
    threshold that Boschloo's test at level ``alpha`` detects with probability ``power``, with ``n_a`` and
    ``n_b`` runs (to 0.001); infinity where none does at these n."""
    reject = boschloo_p_values(n_a, n_b) < alpha
    chances = np.linspace(0.0, 1.0, 1001)
    of_a = stats.binom.pmf(np.arange(n_a + 1)[None, :], n_a, chances[:, None])
    of_b = stats.binom.pmf(np.arange(n_b + 1), n_b, fraction_b)
    detected = of_a @ reject @ of_b >= power
    return float(np.abs(chances[detected] - fraction_b).min()) if detected.any() else math.inf

