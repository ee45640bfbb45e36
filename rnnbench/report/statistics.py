"""Summaries over seeds and a bootstrap confidence interval for a difference of means (numpy only)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

__all__ = ["Summary", "Difference", "summarize", "bootstrap_difference", "RESAMPLES", "CONFIDENCE", "SEED"]

RESAMPLES = 10_000
CONFIDENCE = 0.95
SEED = 0


@dataclass(frozen=True)
class Summary:
    """Mean and sample standard deviation (``ddof=1``) of ``n`` values; ``std`` is None for ``n < 2``."""

    mean: float | None
    std: float | None
    n: int


def summarize(values: Iterable[float]) -> Summary:
    """Summary of the values that are numbers (NaN is dropped, infinities are kept)."""
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
    """``mean(a) - mean(b)`` with a percentile bootstrap interval; ``low``/``high`` None when undefined."""

    difference: float | None
    low: float | None
    high: float | None
    n_a: int
    n_b: int
    confidence: float = CONFIDENCE
    reason: str | None = None  # why the interval is undefined

    @property
    def defined(self) -> bool:
        return self.low is not None and self.high is not None

    @property
    def excludes_zero(self) -> bool | None:
        return None if not self.defined else bool(self.low > 0 or self.high < 0)


def bootstrap_difference(a: Iterable[float], b: Iterable[float], resamples: int = RESAMPLES,
                         confidence: float = CONFIDENCE, seed: int = SEED) -> Difference:
    """Percentile bootstrap of ``mean(a) - mean(b)`` for two independent samples (e.g. seeds of two cells).

    Each resample draws ``len(a)`` values from ``a`` and ``len(b)`` from ``b`` with replacement, from a
    generator seeded with ``seed``, so the interval is reproducible. Undefined (``low = high = None``,
    ``reason`` set) when either side has fewer than 2 values or a value is not finite.
    """
    xa = np.asarray([float(v) for v in a if v is not None and not math.isnan(v)], dtype=np.float64)
    xb = np.asarray([float(v) for v in b if v is not None and not math.isnan(v)], dtype=np.float64)
    n_a, n_b = len(xa), len(xb)
    difference = float(xa.mean() - xb.mean()) if n_a and n_b else None
    if n_a < 2 or n_b < 2:
        return Difference(difference, None, None, n_a, n_b, confidence, "undefined: n < 2")
    if not (np.isfinite(xa).all() and np.isfinite(xb).all()):
        return Difference(difference, None, None, n_a, n_b, confidence, "undefined: non-finite values")
    rng = np.random.default_rng(seed)
    means_a = xa[rng.integers(0, n_a, size=(resamples, n_a))].mean(axis=1)
    means_b = xb[rng.integers(0, n_b, size=(resamples, n_b))].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means_a - means_b, [tail, 100 - tail])
    return Difference(difference, float(low), float(high), n_a, n_b, confidence)
