"""Numbers as the tables show them: compact numbers, ``mean ± std (n)`` rounded to the std's second digit, and
their CSV and JSON forms.

A column shows its large numbers in one notation: where some cell of it needs an exponent (``5.8e+09``), every
cell at or above :data:`SCIENTIFIC_FROM` takes one too (``8.7e+05``, not ``868214`` beside it)."""

from __future__ import annotations

import math
import re

from rnnbench.report.statistics import Summary

__all__ = ["format_number", "format_summary", "csv_number", "json_number", "has_exponent", "SCIENTIFIC_FROM"]

_EXPONENT = re.compile(r"\de[+-]\d")
SCIENTIFIC_FROM = 1e4  # in a column with exponents, numbers this large take one too (smaller ones read well as is)


def format_number(value: float | None, digits: int = 4, scientific: bool = False) -> str:
    """``value`` in ``digits`` significant digits (an integer up to 1e9 in full); ``scientific``: with an exponent
    where it is at least :data:`SCIENTIFIC_FROM` (the column's notation)."""
    if value is None:
        return ""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if scientific and abs(value) >= SCIENTIFIC_FROM:
        return format(value, f".{digits - 1}e")
    if value == int(value) and abs(value) < 1e9:
        return str(int(value))
    return format(value, f".{digits}g")


def has_exponent(text: str) -> bool:
    """Whether a cell's text shows a number with an exponent (``5.765e+09``, ``6.1e-05``)."""
    return _EXPONENT.search(text) is not None


def _decimals(std: float) -> int | None:
    """Decimals that show 2 significant digits of ``std``; None where fixed point would not suit."""
    if not math.isfinite(std) or std <= 0:
        return None
    decimals = max(0, 1 - math.floor(math.log10(std)))
    return decimals if decimals <= 8 else None


def _scientific(mean: float, std: float) -> str:
    """``mean ± std`` with exponents: the std at 2 significant digits, the mean to the std's second digit (2 to 4
    significant digits)."""
    exponent = math.floor(math.log10(abs(mean))) if mean else 0
    decimals = min(3, max(1, exponent - (math.floor(math.log10(std)) - 1)))
    return f"{mean:.{decimals}e} ± {std:.1e}"


def format_summary(summary: Summary, scientific: bool = False) -> str:
    """``mean ± std (n)``; the mean rounded to the std's second significant digit; a spread of exactly 0 (every
    seed the same, such as a parameter count) not shown; blank for n = 0. ``scientific``: the column's notation
    (see the module docstring)."""
    if summary.n == 0 or summary.mean is None:
        return ""
    mean, std = summary.mean, summary.std
    if std is None or not math.isfinite(mean) or not math.isfinite(std) or std == 0:
        text = format_number(mean, scientific=scientific)
    elif max(abs(mean), std) >= 1e7 or (scientific and abs(mean) >= SCIENTIFIC_FROM):
        text = _scientific(mean, std)
    elif (decimals := _decimals(std)) is None:
        text = f"{format_number(mean)} ± {format(std, '.2g')}"
    else:
        text = f"{mean:.{decimals}f} ± {std:.{decimals}f}"
    return f"{text} ({summary.n})"


def csv_number(value: float | int | None) -> str:
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def json_number(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value
