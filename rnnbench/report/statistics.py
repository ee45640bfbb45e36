"""Summaries over seeds, and intervals for a difference of means that keep their promised coverage.

Three intervals for ``mean(A) - mean(B)`` over seeds, all from scipy:

- :func:`welch_difference` (the default): Welch's t-interval and two-sided p-value for two independent
  samples with unequal variances (``scipy.stats.ttest_ind(equal_var=False)``).
- :func:`paired_difference`: when both sides ran the same seeds (and so the same data splits and
  initial weights drawn from the same generator state), the t-interval of the per-seed differences
  (``scipy.stats.ttest_rel``), which removes the seed-to-seed variation both sides share.
- :func:`bootstrap_difference` (on request): the percentile bootstrap of the two means. With few seeds it
  is too narrow (with 2 seeds a side it is the range of the pairwise differences): under no true
  difference it excludes 0 in about a third of comparisons at n = 2 and 13% at n = 5, against the 5% it
  promises (``tests/test_statistics.py`` measures it); it has no p-value.

:func:`holm` adjusts the p-values of the rows of one comparison (Holm 1979: step-down Bonferroni, which
controls the family-wise error rate under any dependence). The t-intervals assume each side's seed values
are roughly normal; with fewer than :data:`FEW_SEEDS` seeds a side, that assumption cannot be checked and
one outlying seed moves the interval a lot, which the tables say in words.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats

__all__ = ["Summary", "Difference", "summarize", "welch_difference", "paired_difference", "bootstrap_difference",
           "holm", "INTERVALS", "RESAMPLES", "CONFIDENCE", "SEED", "FEW_SEEDS"]

RESAMPLES = 10_000
CONFIDENCE = 0.95
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


@dataclass(frozen=True)
class Difference:
    """``mean(a) - mean(b)``, its interval, p-value and (once adjusted) Holm's p; ``low``/``high`` are None when
    undefined, with ``reason`` saying why."""

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

    @property
    def defined(self) -> bool:
        return self.low is not None and self.high is not None

    @property
    def excludes_zero(self) -> bool | None:
        return None if not self.defined else bool(self.low > 0 or self.high < 0)

    @property
    def few_seeds(self) -> bool:
        return min(self.n_a, self.n_b) < FEW_SEEDS

    def verdict(self, alpha: float | None = None) -> str:
        """In words: whether A and B differ at level ``alpha`` (1 - confidence) after Holm's adjustment (the
        interval, for the bootstrap, which has no p-value); always says when a side has too few seeds."""
        alpha = 1 - self.confidence if alpha is None else alpha
        if not self.defined:
            return self.reason or "undefined"
        p = self.p_holm if self.p_holm is not None else self.p_value
        differs = (p < alpha) if p is not None else bool(self.excludes_zero)
        text = ("A > B" if self.difference > 0 else "A < B") if differs else "no difference shown"
        if self.few_seeds:
            text += f" (n < {FEW_SEEDS} on a side: indicative only)"
        return text


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


def _zero_spread(method: str, difference: float, n_a: int, n_b: int, confidence: float) -> Difference:
    """Both sides constant: the difference is exact (p is 0 or 1), as scipy would otherwise return NaN."""
    return Difference(difference, difference, difference, n_a, n_b, method, 1.0 if difference == 0 else 0.0,
                      confidence=confidence)


def welch_difference(a: Iterable[float | None], b: Iterable[float | None],
                     confidence: float = CONFIDENCE) -> Difference:
    """Welch's t-interval and two-sided p-value for ``mean(a) - mean(b)``, independent samples."""
    xa, xb = _clean(a), _clean(b)
    undefined = _undefined("welch", xa, xb, confidence)
    if undefined is not None:
        return undefined
    difference = float(xa.mean() - xb.mean())
    if xa.std() == 0 and xb.std() == 0:
        return _zero_spread("welch", difference, len(xa), len(xb), confidence)
    result = stats.ttest_ind(xa, xb, equal_var=False)
    interval = result.confidence_interval(confidence)
    return Difference(difference, float(interval.low), float(interval.high), len(xa), len(xb), "welch",
                      float(result.pvalue), confidence=confidence)


def paired_difference(pairs: Sequence[tuple[float, float]], confidence: float = CONFIDENCE) -> Difference:
    """The paired t-interval and p-value of ``mean(a - b)`` over ``(a, b)`` pairs of the same seed."""
    kept = [(float(x), float(y)) for x, y in pairs if x is not None and y is not None
            and not (math.isnan(x) or math.isnan(y))]
    xa, xb = np.asarray([x for x, _ in kept]), np.asarray([y for _, y in kept])
    undefined = _undefined("paired", xa, xb, confidence)
    if undefined is not None:
        return undefined
    difference = float((xa - xb).mean())
    if (xa - xb).std() == 0:
        return _zero_spread("paired", difference, len(xa), len(xb), confidence)
    result = stats.ttest_rel(xa, xb)
    interval = result.confidence_interval(confidence)
    return Difference(difference, float(interval.low), float(interval.high), len(xa), len(xb), "paired",
                      float(result.pvalue), confidence=confidence)


def bootstrap_difference(a: Iterable[float | None], b: Iterable[float | None], resamples: int = RESAMPLES,
                         confidence: float = CONFIDENCE, seed: int = SEED) -> Difference:
    """Percentile bootstrap of ``mean(a) - mean(b)`` for two independent samples (``scipy.stats.bootstrap``,
    a generator seeded with ``seed``, so reproducible). No p-value; too narrow for few seeds (module docstring)."""
    xa, xb = _clean(a), _clean(b)
    undefined = _undefined("bootstrap", xa, xb, confidence)
    if undefined is not None:
        return undefined
    difference = float(xa.mean() - xb.mean())
    if xa.std() == 0 and xb.std() == 0:
        return replace(_zero_spread("bootstrap", difference, len(xa), len(xb), confidence), p_value=None)
    result = stats.bootstrap((xa, xb), lambda x, y, axis=-1: np.mean(x, axis=axis) - np.mean(y, axis=axis),
                             n_resamples=resamples, confidence_level=confidence, method="percentile",
                             vectorized=True, rng=np.random.default_rng(seed))
    interval = result.confidence_interval
    return Difference(difference, float(interval.low), float(interval.high), len(xa), len(xb), "bootstrap",
                      confidence=confidence)


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (None stays None): the i-th smallest of the m p-values becomes
    ``max over j <= i of min(1, (m - j) p_(j))``, so rejecting where the adjusted p < alpha controls the
    chance of any false rejection among the m at alpha."""
    known = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(known)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, index) in enumerate(known):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[index] = running
    return adjusted
