"""Rows: the one grouping of runs that ``rnnbench table``, ``rnnbench plot`` and ``rnnbench report`` share.

A row is the runs that agree on the grouping keys: ``--by`` keys, or by default every setting that varies
between the runs (seed and bookkeeping excluded: seeds are the samples). Runs of different tasks, sequence
lengths or input layouts (:data:`TASK_KEYS`) are never pooled in one row: those settings join the grouping
whenever they vary. Rows are ordered by their values (null first, numbers numerically, text naturally).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rnnbench.record.schema import COMPLETED, DIVERGED, FAILED
from rnnbench.report.records import ReportError, Run, all_keys, display, sort_key, varying_keys

__all__ = ["TASK_KEYS", "Row", "Grouping", "check_keys", "split_keys", "group_rows", "grouping", "pooled_keys",
           "distinct_values"]

# Settings that change what a metric means: rows never pool runs that differ in them.
TASK_KEYS = ("data", "data.seq_len", "data.layout")


@dataclass
class Row:
    """The runs that share ``values`` of the grouping ``keys``."""

    keys: tuple[str, ...]
    values: tuple[Any, ...]
    runs: list[Run]

    @property
    def label(self) -> str:
        """The row's values as a legend shows them: ``gru, 50``; ``all runs`` for a grouping by nothing."""
        return ", ".join(display(v) for v in self.values) or "all runs"

    def with_status(self, status: str) -> list[Run]:
        return [run for run in self.runs if run.status == status]

    @property
    def completed(self) -> list[Run]:
        return self.with_status(COMPLETED)

    def not_completed(self) -> dict[str, int]:
        """How many of the row's runs ended otherwise, by status (``{"diverged": 1}``), in a fixed order."""
        counts: dict[str, int] = {}
        for status in (DIVERGED, FAILED):
            counts[status] = len(self.with_status(status))
        for run in self.runs:
            if run.status not in (COMPLETED, DIVERGED, FAILED):
                counts[run.status] = counts.get(run.status, 0) + 1
        return {status: n for status, n in counts.items() if n}


@dataclass
class Grouping:
    """The keys asked for (``requested``), the keys actually grouped by (``keys``: the task-defining settings
    that vary added in front) and the rows."""

    requested: list[str]
    keys: list[str]
    rows: list[Row]

    @property
    def added(self) -> list[str]:
        """The task-defining keys the grouping added because they vary."""
        return [k for k in self.keys if k not in self.requested]


def check_keys(runs: Sequence[Run], keys: Sequence[str], option: str) -> None:
    """ReportError naming ``option`` for a key that no run has as a setting."""
    known = all_keys(runs)
    for key in keys:
        if key not in known:
            varying = ", ".join(varying_keys(runs)) or "none"
            raise ReportError(f"{option} {key}: no run has this setting (settings that vary: {varying})")


def split_keys(runs: Sequence[Run], keys: Sequence[str], excluded: Sequence[str] = ()) -> list[str]:
    """``keys`` plus, in front, every task-defining setting that varies between ``runs`` (they are split, not
    pooled), except ``excluded``."""
    varying = varying_keys(runs)
    extra = [k for k in TASK_KEYS if k in varying and k not in keys and k not in excluded]
    return [*extra, *keys]


def group_rows(runs: Sequence[Run], keys: Sequence[str]) -> list[Row]:
    """One row per distinct combination of ``keys``' values, in value order; runs keep their order."""
    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        groups.setdefault(tuple(run.settings.get(k) for k in keys), []).append(run)
    ordered = sorted(groups.items(), key=lambda item: tuple(sort_key(v) for v in item[0]))
    return [Row(tuple(keys), values, members) for values, members in ordered]


def grouping(runs: Sequence[Run], by: Sequence[str] | None = None, excluded: Sequence[str] = (),
             option: str = "--by") -> Grouping:
    """The rows of ``runs`` grouped by ``by`` (checked; default: every varying setting but ``excluded``), split
    by the task-defining settings that vary."""
    if by:
        check_keys(runs, by, option)
        requested = [k for k in dict.fromkeys(by) if k not in excluded]
    else:
        requested = [k for k in varying_keys(runs) if k not in excluded]
    keys = split_keys(runs, requested, excluded)
    return Grouping(requested, keys, group_rows(runs, keys))


def pooled_keys(runs: Sequence[Run], keys: Sequence[str], excluded: Sequence[str] = ()) -> list[str]:
    """The varying settings that differ *inside* some row of the grouping by ``keys`` (what a row pools); a key
    that the grouping determines (``model.cell`` when rows are ``model=gru``, ``model=rnn``) is not pooled."""
    rows = group_rows(runs, keys)
    return [k for k in varying_keys(runs) if k not in keys and k not in excluded
            and any(len({str(r.settings.get(k)) for r in row.runs}) > 1 for row in rows)]


def distinct_values(runs: Sequence[Run], key: str) -> str:
    """The values ``key`` takes in ``runs``, in value order: ``gru, lstm, rnn``."""
    values: dict[Any, None] = {}
    for run in runs:
        values[run.settings.get(key)] = None
    return ", ".join(display(v) for v in sorted(values, key=sort_key))
