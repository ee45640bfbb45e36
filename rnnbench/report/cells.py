"""Table cells: what one cell of a table holds, and how it renders as text, CSV fields and JSON.

``Key`` (a grouping value), ``Text``, ``Number``, ``Stat`` (``mean ± std (n)`` over seeds, each seed's value
kept), ``Censored`` (a ``steps_to:`` median with how many runs reached the threshold), ``Fraction`` (``k/n``
runs), and a ``--compare`` row's ``MetricName`` (a metric, with those equal to it on every run), ``Reached``
(``k/n`` of a side's runs that reached a threshold, in a column of ``Stat``), ``Interval`` (the interval the
verdict reads, at its level) and ``Verdict`` (the verdict in words). ``sort_value`` is what a page sorts the
column by. :func:`align_notation` gives each column of numbers one notation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rnnbench.report.formatting import csv_number, format_number, format_summary, has_exponent, json_number
from rnnbench.report.records import display
from rnnbench.report.statistics import FEW_SEEDS, POWER, Difference, OutcomeDifference, Summary

__all__ = ["Cell", "Key", "Text", "Number", "Stat", "Censored", "Fraction", "MetricName", "Reached", "Interval",
           "Verdict", "align_notation"]


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

    def answers_to(self, text: str) -> bool:
        """Whether a ``--published`` file's value ``text`` names this cell."""
        return self.text() == text


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
class MetricName(Cell):
    """A ``--compare`` row's metric: ``test/mse``, or ``test/mse (= test/loss)`` where others equal it on every
    run (one row per distinct quantity); a ``--published`` file may name it by any of them."""

    name: str
    same: list[str] = field(default_factory=list)

    def text(self) -> str:
        return self.name + (f" (= {', '.join(self.same)})" if self.same else "")

    def answers_to(self, text: str) -> bool:
        return text in (self.text(), self.name, *self.same)


@dataclass
class Reached(Cell):
    """``k/n``: how many of a side's runs reached a threshold (a diverged run counts as not reaching it). In a
    column of :class:`Stat` cells, so with a Stat's CSV and JSON fields: the mean of reached (1) and not (0), n,
    and each seed's 1 or 0."""

    values: list[tuple[Any, bool]]
    numeric = True

    @property
    def reached(self) -> int:
        return sum(reached for _, reached in self.values)

    def sort_value(self) -> Any:
        return self.reached / len(self.values) if self.values else None

    def text(self) -> str:
        return f"{self.reached}/{len(self.values)}"

    def fields(self, column: str) -> list[tuple[str, str]]:
        return [(f"{column} mean", csv_number(self.sort_value())), (f"{column} std", ""),
                (f"{column} n", str(len(self.values))),
                (f"{column} values", ";".join(f"{_seed_text(seed)}:{int(reached)}" for seed, reached in self.values))]

    def json(self) -> Any:
        return {"mean": self.sort_value(), "std": None, "n": len(self.values), "reached": self.reached,
                "values": [{"seed": seed, "value": int(reached)} for seed, reached in self.values]}


def _percent(confidence: float) -> str:
    return f"{100 * confidence:.4g}%"


@dataclass
class Interval(Cell):
    """The interval a ``--compare`` verdict reads, with its confidence: ``[0.036, 0.221] (98.3%)``; why there is
    none where there is none (an outcome row's exact test has none)."""

    difference: Difference | OutcomeDifference
    numeric = True

    def sort_value(self) -> Any:
        return self.difference.low

    def text(self) -> str:
        d = self.difference
        if not d.defined:
            return d.reason or ("exact test: no interval" if isinstance(d, OutcomeDifference) else "undefined")
        return f"[{format_number(d.low)}, {format_number(d.high)}] ({_percent(d.confidence)})"

    def fields(self, column: str) -> list[tuple[str, str]]:
        d = self.difference
        return [(f"{column} low", csv_number(d.low)), (f"{column} high", csv_number(d.high)),
                (f"{column} confidence", csv_number(d.confidence)),
                (f"{column} excludes 0", "" if d.excludes_zero is None else str(d.excludes_zero).lower()),
                (f"{column} note", "" if d.defined else self.text())]

    def json(self) -> Any:
        d = self.difference
        return {"low": d.low, "high": d.high, "confidence": d.confidence, "method": d.method, "reads": d.reads,
                "excludes_zero": d.excludes_zero, "undefined": None if d.defined else self.text()}


def _power_note(detectable: float | None) -> list[str]:
    if detectable is None:
        return []
    if math.isinf(detectable):
        return [f"no difference has {POWER:.0%} power at these n"]
    if detectable == 0:
        return ["no spread: any difference would show"]
    return [f"{POWER:.0%} power for |Δ| ≥ {format_number(detectable, digits=3)}"]


@dataclass
class Verdict(Cell):
    """A ``--compare`` row's verdict, read from its Holm-adjusted p-values: ``A > B`` or ``A < B`` (a difference
    shown; ``by less than δ`` where equivalence within ±δ is shown too), ``equivalent within ±δ``, or
    ``inconclusive`` with the power note (the smallest |A - B| the design detects with 80% power at the row's
    level) or why the row has no test; ``n < 5 on a side: indicative only`` where a t-test rests on few seeds."""

    difference: Difference | OutcomeDifference

    def text(self) -> str:
        d = self.difference
        if d.p_value is None:
            return f"inconclusive ({d.reason or 'undefined'})"
        details = []
        if d.differs():
            words = "A > B" if d.difference > 0 else "A < B"
            if d.equivalent():
                details.append(f"by less than {format_number(d.margin)}")
        elif d.equivalent():
            words = f"equivalent within ±{format_number(d.margin)}"
        else:
            words = "inconclusive"
            details += _power_note(d.detectable)
        if d.few_seeds:
            details.append(f"n < {FEW_SEEDS} on a side: indicative only")
        return words + (f" ({'; '.join(details)})" if details else "")


def align_notation(rows: Sequence[Sequence[Cell]]) -> None:
    """One notation per column: where a number of the column shows an exponent, the column's other large numbers
    (from :data:`rnnbench.report.formatting.SCIENTIFIC_FROM` up) show one too, so that ``5.8e+09`` never stands
    beside ``868214``."""
    for column in zip(*rows):
        numbers = [cell for cell in column if isinstance(cell, (Number, Stat))]
        scientific = any(has_exponent(cell.text()) for cell in numbers)
        for cell in numbers:
            cell.scientific = scientific
