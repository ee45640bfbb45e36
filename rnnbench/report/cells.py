"""Table cells: what one cell of a table holds, and how it renders as text, CSV fields and JSON.

``Key`` (a grouping value), ``Text``, ``Number``, ``Stat`` (``mean ± std (n)`` over seeds, each seed's value
kept), ``Censored`` (a ``steps_to:`` median with how many runs reached the threshold), ``Fraction`` (``k/n``
runs), ``Interval`` and ``Verdict`` (a ``--compare`` row's interval and its reading). ``sort_value`` is what a
page sorts the column by. :func:`align_notation` gives each column of numbers one notation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rnnbench.report.formatting import csv_number, format_number, format_summary, has_exponent, json_number
from rnnbench.report.records import display
from rnnbench.report.statistics import Difference, Summary

__all__ = ["Cell", "Key", "Text", "Number", "Stat", "Censored", "Fraction", "Interval", "Verdict", "align_notation"]


class Cell:
    numeric = False

    def text(self) -> str:
        raise NotImplementedError

    def fields(self, column: str) -> list[tuple[str, str]]:
        """(header, value) pairs for the machine-readable CSV."""
        return [(column, self.text())]

    def json(self) -> Any:
        return self.text()

    def sort_value(self) -> Any:
        """What a page sorts the column by: a number where the cell has one (None: last), else the text."""
        return self.text()


@dataclass
class Key(Cell):
    value: Any

    def sort_value(self) -> Any:
        value = self.value
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else self.text()

    def text(self) -> str:
        return display(self.value)

    def json(self) -> Any:
        if isinstance(self.value, tuple):
            return list(self.value)
        return json_number(self.value) if isinstance(self.value, float) else self.value


@dataclass
class Text(Cell):
    value: str

    def text(self) -> str:
        return self.value


@dataclass
class Number(Cell):
    value: float | None
    scientific: bool = False  # the column's notation (align_notation)
    numeric = True

    def sort_value(self) -> Any:
        return json_number(self.value)

    def text(self) -> str:
        return format_number(self.value, scientific=self.scientific)

    def fields(self, column: str) -> list[tuple[str, str]]:
        return [(column, csv_number(self.value))]

    def json(self) -> Any:
        return json_number(self.value)


def _seed_text(seed: Any) -> str:
    return display(seed)


@dataclass
class Stat(Cell):
    """``mean ± std (n)`` over seeds; keeps each seed's value for CSV (``seed:value;...``) and JSON."""

    summary: Summary
    values: list[tuple[Any, float]] = field(default_factory=list)
    scientific: bool = False  # the column's notation (align_notation)
    numeric = True

    def sort_value(self) -> Any:
        return json_number(self.summary.mean)

    def text(self) -> str:
        return format_summary(self.summary, scientific=self.scientific)

    def fields(self, column: str) -> list[tuple[str, str]]:
        s = self.summary
        return [(f"{column} mean", csv_number(s.mean)), (f"{column} std", csv_number(s.std)),
                (f"{column} n", str(s.n)),
                (f"{column} values", ";".join(f"{_seed_text(seed)}:{csv_number(v)}" for seed, v in self.values))]

    def json(self) -> Any:
        s = self.summary
        return {"mean": json_number(s.mean), "std": json_number(s.std), "n": s.n,
                "values": [{"seed": seed, "value": json_number(v)} for seed, v in self.values]}


@dataclass
class Censored(Cell):
    """A ``steps_to:`` column: the median over every run (one that never reached the threshold counts as
    infinity) and how many reached it; ``never`` when the median run did not."""

    values: list[tuple[Any, float]]
    numeric = True

    def sort_value(self) -> Any:
        median = self.median
        return None if median is None else (1e300 if math.isinf(median) else median)

    @property
    def reached(self) -> int:
        return sum(math.isfinite(v) for _, v in self.values)

    @property
    def median(self) -> float | None:
        ordered = sorted(v for _, v in self.values)
        if not ordered:
            return None
        middle = len(ordered) // 2
        return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2

    def text(self) -> str:
        if not self.values:
            return ""
        median = self.median
        shown = "never" if median is None or math.isinf(median) else format_number(median)
        return f"{shown} ({self.reached}/{len(self.values)} reached)"

    def fields(self, column: str) -> list[tuple[str, str]]:
        median = self.median
        return [(f"{column} median", "inf" if median is not None and math.isinf(median) else csv_number(median)),
                (f"{column} reached", str(self.reached)), (f"{column} n", str(len(self.values))),
                (f"{column} values", ";".join(f"{_seed_text(seed)}:{'inf' if math.isinf(v) else csv_number(v)}"
                                              for seed, v in self.values))]

    def json(self) -> Any:
        median = self.median
        return {"median": None if median is None or math.isinf(median) else median, "reached": self.reached,
                "n": len(self.values), "values": [{"seed": seed, "value": None if math.isinf(v) else v}
                                                  for seed, v in self.values]}


@dataclass
class Fraction(Cell):
    """``k/n``: how many of the group's runs ended so."""

    count: int
    total: int
    numeric = True

    def sort_value(self) -> Any:
        return self.count / self.total if self.total else None

    def text(self) -> str:
        return f"{self.count}/{self.total}"

    def fields(self, column: str) -> list[tuple[str, str]]:
        return [(column, str(self.count)), (f"{column} of", str(self.total))]

    def json(self) -> Any:
        return {"count": self.count, "of": self.total}


@dataclass
class Interval(Cell):
    difference: Difference
    numeric = True

    def sort_value(self) -> Any:
        return self.difference.low

    def text(self) -> str:
        d = self.difference
        if not d.defined:
            return d.reason or "undefined"
        return f"[{format_number(d.low)}, {format_number(d.high)}]"

    def fields(self, column: str) -> list[tuple[str, str]]:
        d = self.difference
        return [(f"{column} low", csv_number(d.low)), (f"{column} high", csv_number(d.high)),
                (f"{column} excludes 0", "" if d.excludes_zero is None else str(d.excludes_zero).lower()),
                (f"{column} note", d.reason or "")]

    def json(self) -> Any:
        d = self.difference
        return {"low": d.low, "high": d.high, "confidence": d.confidence, "method": d.method,
                "excludes_zero": d.excludes_zero, "undefined": d.reason}


@dataclass
class Verdict(Cell):
    """What the row shows, after Holm's adjustment, in words."""

    difference: Difference

    def text(self) -> str:
        return self.difference.verdict()


def align_notation(rows: Sequence[Sequence[Cell]]) -> None:
    """One notation per column: where a number of the column shows an exponent, the column's other large numbers
    (from :data:`rnnbench.report.formatting.SCIENTIFIC_FROM` up) show one too, so that ``5.8e+09`` never stands
    beside ``868214``."""
    for column in zip(*rows):
        numbers = [cell for cell in column if isinstance(cell, (Number, Stat))]
        scientific = any(has_exponent(cell.text()) for cell in numbers)
        for cell in numbers:
            cell.scientific = scientific
