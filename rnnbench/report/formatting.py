"""Numbers as the tables show them: compact numbers, ``mean ± std (n)`` rounded to the std's second digit, and
their CSV and JSON forms."""

from __future__ import annotations

import math

from rnnbench.report.statistics import Summary

__all__ = ["format_number", "format_summary", "csv_number", "json_number"]


def format_number(value: float | None, digits: int = 4) -> str:
    if value is None:
        return ""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == int(value) and abs(value) < 1e9:
        return str(int(value))
    return format(value, f".{digits}g")


def _decimals(std: float) -> int | None:
    """Decimals that show 2 significant digits of ``std``; None where fixed point would not suit."""
    if not math.isfinite(std) or std <= 0:
        return None
    decimals = max(0, 1 - math.floor(math.log10(std)))
    return decimals if decimals <= 8 else None


def format_summary(summary: Summary) -> str:
    """``mean ± std (n)``; the mean rounded to the std's second significant digit; blank for n = 0."""
    if summary.n == 0 or summary.mean is None:
        return ""
    mean, std = summary.mean, summary.std
    if std is None or not math.isfinite(mean) or not math.isfinite(std) or std == 0:
        text = format_number(mean)
        if std is not None and std == 0:
            text += " ± 0"
    else:
        decimals = _decimals(std)
        if decimals is not None and abs(mean) < 1e7:
            text = f"{mean:.{decimals}f} ± {std:.{decimals}f}"
        else:
            text = f"{format_number(mean)} ± {format(std, '.2g')}"
    return f"{text} ({summary.n})"


def csv_number(value: float | int | None) -> str:
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def json_number(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value
