"""``rnnbench table``: one row per group of runs, each metric as mean ± std (n) over seeds.

Rows group the runs by the settings that vary between them (seed and bookkeeping excluded) or by
``--by`` keys; ``n`` counts the completed runs (seeds) that have the metric. The fractions of the group's runs
that completed, diverged and failed have their own columns; interrupted, running and killed runs count in
their totals only (a note says how many). ``--success METRIC<X`` adds a column of how many runs met a threshold
(:func:`reached_values`). :func:`rnnbench.report.compare.build_comparison` makes the ``--compare`` table instead.
Runs of different tasks (or sequence lengths, or input layouts) are never pooled in one row: those settings join
the grouping.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rnnbench.record.schema import COMPLETED, DIVERGED, FAILED
from rnnbench.report.cells import Cell, Censored, Fraction, Key, Stat, align_notation
from rnnbench.report.formatting import format_number, format_summary
from rnnbench.report.notes import table_context
from rnnbench.report.records import ReportError, Run, RunSet, Threshold, is_bookkeeping
from rnnbench.report.rows import TASK_KEYS, grouping
from rnnbench.report.statistics import summarize

__all__ = ["Table", "build_table", "default_metrics", "metric_cell", "completed_values", "reached_values",
           "parse_success", "steps_to_reached", "check_metrics", "FORMATS", "FRACTION_STATUSES", "TASK_KEYS",
           "REACHED_NOTE", "format_number", "format_summary"]

FORMATS = ("markdown", "csv", "latex", "json")
# The statuses whose fraction of a group's runs has a column (interrupted, running: in the totals only).
FRACTION_STATUSES = (COMPLETED, DIVERGED, FAILED)
_SUCCESS = re.compile(r"(?P<metric>[^<>]+)(?P<op>[<>])(?P<limit>[^<>]+)$")
REACHED_NOTE = ("of the completed runs that have the metric and the diverged runs, how many reached the threshold "
                "(a diverged run counts as not reaching it; failed, interrupted and running runs are left out)")


# --- the table -----------------------------------------------------------------------------------------------

def _spreadsheet_safe(value: Any) -> Any:
    """A text cell a spreadsheet would read as a formula (``=HYPERLINK(...)``, ``+``, ``-``, ``@``, a tab or a carriage
    return first: OWASP's list) gets a leading ``'``; numbers, negative ones included, are left as they are."""
    if not isinstance(value, str) or not value.startswith(("=", "+", "-", "@", "\t", "\r")):
        return value
    try:
        float(value)
        return value
    except ValueError:
        return "'" + value


@dataclass
class Table:
    """Columns, rows of cells, and what the reader must know: warnings (also to stderr) and notes."""

    columns: list[str]
    rows: list[list[Cell]]
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        align_notation(self.rows)

    def render(self, fmt: str = "markdown") -> str:
        if fmt not in FORMATS:
            raise ReportError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
        return getattr(self, f"_{fmt}")()

    def _markdown(self) -> str:
        def escape(text: str) -> str:
            return text.replace("|", "\\|")

        lines = ["| " + " | ".join(escape(c) for c in self.columns) + " |"]
        align = [("---:" if any(row[i].numeric for row in self.rows) else "---") for i in range(len(self.columns))]
        lines.append("| " + " | ".join(align) + " |")
        lines += ["| " + " | ".join(escape(cell.text()) for cell in row) + " |" for row in self.rows]
        trailer = [f"- **Warning:** {w}" for w in self.warnings] + [f"- Note: {n}" for n in self.notes]
        return "\n".join(lines + ([""] + trailer if trailer else [])) + "\n"

    def _csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        header: list[str] = []
        body: list[list[str]] = []
        for r, row in enumerate(self.rows):
            pairs = [pair for column, cell in zip(self.columns, row) for pair in cell.fields(column)]
            if r == 0:
                header = [name for name, _ in pairs]
            body.append([value for _, value in pairs])
        if not self.rows:
            header = list(self.columns)
        writer.writerow(header)
        writer.writerows([[_spreadsheet_safe(value) for value in row] for row in body])
        return out.getvalue()

    def _json(self) -> str:
        rows = [{column: cell.json() for column, cell in zip(self.columns, row)} for row in self.rows]
        return json.dumps(rows, indent=2) + "\n"

    def _latex(self) -> str:
        def escape(text: str) -> str:
            replaced = "".join({"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                                "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                                "^": r"\textasciicircum{}"}.get(ch, ch) for ch in text)
            for symbol, command in (("±", r"$\pm$"), ("‖", r"$\|$"), ("Δ", r"$\Delta$"), ("δ", r"$\delta$"),
                                    ("≥", r"$\geq$"), ("·", r"$\cdot$")):
                replaced = replaced.replace(symbol, command)
            return replaced

        spec = "".join("r" if any(row[i].numeric for row in self.rows) else "l" for i in range(len(self.columns)))
        lines = [f"\\begin{{tabular}}{{{spec}}}", r"\toprule",
                 " & ".join(escape(c) for c in self.columns) + r" \\", r"\midrule"]
        lines += [" & ".join(escape(cell.text()) for cell in row) + r" \\" for row in self.rows]
        lines += [r"\bottomrule", r"\end{tabular}"]
        lines += [f"% warning: {w}" for w in self.warnings] + [f"% note: {n}" for n in self.notes]
        return "\n".join(lines) + "\n"


# --- building ------------------------------------------------------------------------------------------------

def default_metrics(runs: Sequence[Run]) -> list[str]:
    """The task's test metric(s); the test loss where some run's differs from its metric (not on MSE tasks, where
    they are one number); the gradient through time at initialisation and after training, and the clip rate,
    where some run has them."""
    names: list[str] = []
    for run in runs:
        metric = run.task.get("metric")
        if metric and f"test/{metric}" not in names:
            names.append(f"test/{metric}")
    if any(run.value("test/loss") != run.value(f"test/{run.task.get('metric')}") for run in runs):
        names.append("test/loss")
    for name in ("gradients.vanishing_log10_first", "gradients.vanishing_log10", "gradients.clip_rate"):
        if any(run.value(name) is not None for run in runs):
            names.append(name)
    return names


def completed_values(runs: Sequence[Run], metric: str) -> list[tuple[Any, float]]:
    """``(seed, value)`` of every completed run that has the metric."""
    found = [(run.seed, run.value(metric)) for run in runs if run.status == COMPLETED]
    return [(seed, value) for seed, value in found if value is not None]


def parse_success(text: str) -> Threshold:
    """A ``--success`` threshold, ``test/mse<0.01`` or ``test/accuracy>0.9``; ReportError naming the flag."""
    if text.startswith("steps_to:"):
        raise ReportError(f"--success {text!r} is not allowed: a steps_to: metric is already reached or not: give "
                          f"it as --metric {text} (a comparison shows its reached fraction as a row)")
    match = _SUCCESS.match(text.strip())
    if not match or not match["metric"].strip():
        raise ReportError(f"--success {text!r} is not allowed: METRIC<THRESHOLD or METRIC>THRESHOLD, "
                          "e.g. 'test/mse<0.01'")
    try:
        limit = float(match["limit"])
    except ValueError:
        limit = math.nan
    if not math.isfinite(limit):
        raise ReportError(f"--success {text!r} is not allowed: the threshold must be a finite number, "
                          "e.g. 'test/mse<0.01'")
    return Threshold(text.strip(), match["metric"].strip(), match["op"], limit)


def steps_to_reached(metric: str) -> Threshold:
    """A ``steps_to:`` metric as a threshold: met by a run that got there (a finite number of steps)."""
    return Threshold(metric, metric, "<", math.inf)


def reached_values(runs: Sequence[Run], threshold: Threshold) -> list[tuple[Any, bool]]:
    """``(seed, reached)`` of every completed run that has the threshold's metric, and of every diverged run
    (never reached: a run that diverged did not get there to stay); failed, interrupted and running runs are
    left out (they say nothing of the setting's chances)."""
    values = []
    for run in runs:
        if run.status == DIVERGED:
            values.append((run.seed, False))
        elif run.status == COMPLETED and (value := run.value(threshold.metric)) is not None:
            values.append((run.seed, threshold.met(value)))
    return values


def metric_cell(runs: Sequence[Run], metric: str) -> Cell:
    """The cell of one metric over a row's runs: ``mean ± std (n)``, or a censored median for ``steps_to:``."""
    values = completed_values(runs, metric)
    if metric.startswith("steps_to:"):
        return Censored(values)
    return Stat(summarize(v for _, v in values), values)


def check_metrics(runs: Sequence[Run], metrics: Sequence[str], thresholds: Sequence[Threshold] = ()) -> None:
    """ReportError for a metric (of ``--metric``, or of a ``--success`` threshold) that no record holds, listing
    those the records have."""
    asked = [(f"--metric={m!r}", m, "it") for m in metrics] + [(f"--success {t.text!r}", t.metric, t.metric)
                                                                for t in thresholds]
    for given, metric, named in asked:
        if not any(run.value(metric) is not None for run in runs):
            held = sorted({k for run in runs for k in (run.record.get("metrics") or {})})
            raise ReportError(f"{given} is not allowed: no record holds {named} (the records' metrics: "
                              f"{', '.join(held) or 'none'}; also gradients.FIELD, gates.FIELD, record fields such "
                              "as steps, and steps_to:METRIC<X)")


def _status_cells(members: Sequence[Run]) -> list[Cell]:
    return [Fraction(sum(r.status == status for r in members), len(members))
            for status in FRACTION_STATUSES]


def build_table(runset: RunSet, metrics: Sequence[str] | None = None, by: Sequence[str] | None = None,
                success: Sequence[str] = ()) -> Table:
    """The table of ``runset``: one row per row of :func:`rnnbench.report.rows.grouping` (``by``), a column per
    metric (default: :func:`default_metrics`), one per ``success`` threshold (:func:`reached_values`, as ``k/n``)
    and the completed, diverged and failed fractions."""
    runs = runset.runs
    rows_of = grouping(runs, by)
    keys, split = rows_of.requested, rows_of.keys
    if metrics:
        metrics = list(dict.fromkeys(metrics))
        check_metrics(runs, metrics)  # a metric asked for by name must exist; the default ones may all be absent
    else:                             # (a sweep whose every run diverged has no test metric, yet a table of fates)
        metrics = default_metrics(runs)
    thresholds = [parse_success(text) for text in dict.fromkeys(success)]
    check_metrics(runs, (), thresholds)
    columns = [*split, *metrics, *(t.text for t in thresholds), *FRACTION_STATUSES]
    rows: list[list[Cell]] = []
    for row in rows_of.rows:
        reached = [reached_values(row.runs, t) for t in thresholds]
        rows.append([*(Key(v) for v in row.values), *(metric_cell(row.runs, m) for m in metrics),
                     *(Fraction(sum(r for _, r in values), len(values)) for values in reached),
                     *_status_cells(row.runs)])
    warnings, notes = table_context(runs, runset, split, metrics)
    if rows_of.added:
        notes.append("split by " + ", ".join(rows_of.added)
                     + ": runs of different tasks, lengths or layouts are never pooled")
    if thresholds:
        notes.append(", ".join(t.text for t in thresholds) + ": " + REACHED_NOTE)
    if any(m.startswith("steps_to:") for m in metrics):
        notes.append("steps_to: the median over all completed runs, a run that never met the threshold counting as "
                     "infinity (never), and how many met it")
    if any(is_bookkeeping(k) for k in keys):
        notes.append("grouped by bookkeeping settings: " + ", ".join(k for k in keys if is_bookkeeping(k)))
    return Table(columns, rows, warnings, notes)

