"""``rnnbench table``: one row per group of runs, each metric as mean ± std (n) over seeds.

Rows group the runs by the settings that vary between them (seed and bookkeeping excluded) or by
``--by`` keys; ``n`` counts the completed runs (seeds) that have the metric. The fractions of the group's runs
that completed, diverged and failed have their own columns; interrupted, running and killed runs count in
their totals only (a note says how many). :func:`build_comparison` makes
the ``--compare`` table instead: the difference of means between two values of one setting, with a Welch (or
paired, or bootstrap) interval, its p-value and Holm's adjustment over the comparison's rows. Runs of different
tasks (or sequence lengths, or input layouts) are never pooled in one row: those settings join the grouping.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from rnnbench.report.records import (ReportError, Run, RunSet, all_keys, code_differences, display, hashable,
                                     is_bookkeeping, matches, parse_value, sort_key, varying_keys)
from rnnbench.report.statistics import (CONFIDENCE, FEW_SEEDS, INTERVALS, RESAMPLES, SEED, Difference, Summary,
                                        bootstrap_difference, holm, paired_difference, summarize, welch_difference)
from rnnbench.tracking.record import COMPLETED, DIVERGED, FAILED, INTERRUPTED, RUNNING

__all__ = ["Table", "build_table", "build_comparison", "default_metrics", "FORMATS", "format_number",
           "format_summary"]

FORMATS = ("markdown", "csv", "latex", "json")
# The statuses whose fraction of a group's runs has a column (interrupted, running: in the totals only).
FRACTION_STATUSES = (COMPLETED, DIVERGED, FAILED)
# The metric look-ups of the task that the baseline note covers.
_TASK_PREFIXES = ("test/", "val/", "best/val/", "train/")


# --- numbers as text -----------------------------------------------------------------------------------------

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


def _csv_number(value: float | int | None) -> str:
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def _json_number(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


# --- cells ---------------------------------------------------------------------------------------------------

class Cell:
    numeric = False

    def text(self) -> str:
        raise NotImplementedError

    def fields(self, column: str) -> list[tuple[str, str]]:
        """(header, value) pairs for the machine-readable CSV."""
        return [(column, self.text())]

    def json(self) -> Any:
        return self.text()


@dataclass
class Key(Cell):
    value: Any

    def text(self) -> str:
        return display(self.value)

    def json(self) -> Any:
        if isinstance(self.value, tuple):
            return list(self.value)
        return _json_number(self.value) if isinstance(self.value, float) else self.value


@dataclass
class Text(Cell):
    value: str

    def text(self) -> str:
        return self.value


@dataclass
class Number(Cell):
    value: float | None
    numeric = True

    def text(self) -> str:
        return format_number(self.value)

    def fields(self, column: str) -> list[tuple[str, str]]:
        return [(column, _csv_number(self.value))]

    def json(self) -> Any:
        return _json_number(self.value)


def _seed_text(seed: Any) -> str:
    return display(seed)


@dataclass
class Stat(Cell):
    """``mean ± std (n)`` over seeds; keeps each seed's value for CSV (``seed:value;...``) and JSON."""

    summary: Summary
    values: list[tuple[Any, float]] = field(default_factory=list)
    numeric = True

    def text(self) -> str:
        return format_summary(self.summary)

    def fields(self, column: str) -> list[tuple[str, str]]:
        s = self.summary
        return [(f"{column} mean", _csv_number(s.mean)), (f"{column} std", _csv_number(s.std)),
                (f"{column} n", str(s.n)),
                (f"{column} values", ";".join(f"{_seed_text(seed)}:{_csv_number(v)}" for seed, v in self.values))]

    def json(self) -> Any:
        s = self.summary
        return {"mean": _json_number(s.mean), "std": _json_number(s.std), "n": s.n,
                "values": [{"seed": seed, "value": _json_number(v)} for seed, v in self.values]}


@dataclass
class Censored(Cell):
    """A ``steps_to:`` column: the median over every run (one that never reached the threshold counts as
    infinity) and how many reached it; ``never`` when the median run did not."""

    values: list[tuple[Any, float]]
    numeric = True

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
        return [(f"{column} median", "inf" if median is not None and math.isinf(median) else _csv_number(median)),
                (f"{column} reached", str(self.reached)), (f"{column} n", str(len(self.values))),
                (f"{column} values", ";".join(f"{_seed_text(seed)}:{'inf' if math.isinf(v) else _csv_number(v)}"
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

    def text(self) -> str:
        d = self.difference
        if not d.defined:
            return d.reason or "undefined"
        return f"[{format_number(d.low)}, {format_number(d.high)}]"

    def fields(self, column: str) -> list[tuple[str, str]]:
        d = self.difference
        return [(f"{column} low", _csv_number(d.low)), (f"{column} high", _csv_number(d.high)),
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


# --- the table -----------------------------------------------------------------------------------------------

@dataclass
class Table:
    """Columns, rows of cells, and what the reader must know: warnings (also to stderr) and notes."""

    columns: list[str]
    rows: list[list[Cell]]
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

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
        writer.writerows(body)
        return out.getvalue()

    def _json(self) -> str:
        rows = [{column: cell.json() for column, cell in zip(self.columns, row)} for row in self.rows]
        return json.dumps(rows, indent=2) + "\n"

    def _latex(self) -> str:
        def escape(text: str) -> str:
            replaced = "".join({"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                                "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                                "^": r"\textasciicircum{}"}.get(ch, ch) for ch in text)
            return replaced.replace("±", r"$\pm$").replace("‖", r"$\|$")

        spec = "".join("r" if any(row[i].numeric for row in self.rows) else "l" for i in range(len(self.columns)))
        lines = [f"\\begin{{tabular}}{{{spec}}}", r"\toprule",
                 " & ".join(escape(c) for c in self.columns) + r" \\", r"\midrule"]
        lines += [" & ".join(escape(cell.text()) for cell in row) + r" \\" for row in self.rows]
        lines += [r"\bottomrule", r"\end{tabular}"]
        lines += [f"% warning: {w}" for w in self.warnings] + [f"% note: {n}" for n in self.notes]
        return "\n".join(lines) + "\n"


# --- building ------------------------------------------------------------------------------------------------

def default_metrics(runs: Sequence[Run]) -> list[str]:
    """The task's test metric(s) and test loss, plus gradient summaries where some run has them."""
    names: list[str] = []
    for run in runs:
        metric = run.task.get("metric")
        if metric and f"test/{metric}" not in names:
            names.append(f"test/{metric}")
    if "test/loss" not in names:
        names.append("test/loss")
    for name in ("gradients.vanishing_log10", "gradients.clip_rate"):
        if any(run.value(name) is not None for run in runs):
            names.append(name)
    return names


def _check_keys(runs: Sequence[Run], keys: Sequence[str], option: str) -> None:
    known = all_keys(runs)
    for key in keys:
        if key not in known:
            varying = ", ".join(varying_keys(runs)) or "none"
            raise ReportError(f"{option} {key}: no run has this setting (settings that vary: {varying})")


def _groups(runs: Sequence[Run], keys: Sequence[str]) -> list[tuple[tuple, list[Run]]]:
    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        groups.setdefault(tuple(run.settings.get(k) for k in keys), []).append(run)
    return sorted(groups.items(), key=lambda item: tuple(sort_key(v) for v in item[0]))


def _values(runs: Sequence[Run], metric: str) -> list[tuple[Any, float]]:
    """``(seed, value)`` of every completed run that has the metric."""
    found = [(run.seed, run.value(metric)) for run in runs if run.status == COMPLETED]
    return [(seed, value) for seed, value in found if value is not None]


def _metric_cell(runs: Sequence[Run], metric: str) -> Cell:
    values = _values(runs, metric)
    if metric.startswith("steps_to:"):
        return Censored(values)
    return Stat(summarize(v for _, v in values), values)


# Settings that change what a metric means: rows and comparisons never pool runs that differ in them.
TASK_KEYS = ("data", "data.seq_len", "data.layout")


def _never_pooled(runs: Sequence[Run], keys: Sequence[str], excluded: Sequence[str] = ()) -> list[str]:
    """``keys`` plus every task-defining setting that varies between ``runs`` (they are split, not pooled)."""
    varying = varying_keys(runs)
    extra = [k for k in TASK_KEYS if k in varying and k not in keys and k not in excluded]
    return [*extra, *keys]


def _check_metrics(runs: Sequence[Run], metrics: Sequence[str]) -> None:
    for metric in metrics:
        if not any(run.value(metric) is not None for run in runs):
            held = sorted({k for run in runs for k in (run.record.get("metrics") or {})})
            raise ReportError(f"--metric={metric!r} is not allowed: no record holds it (the records' metrics: "
                              f"{', '.join(held) or 'none'}; also gradients.FIELD, record fields such as steps, and "
                              "steps_to:METRIC<X)")


def _distinct(runs: Sequence[Run], key: str) -> str:
    values: dict[Any, None] = {}
    for run in runs:
        values[run.settings.get(key)] = None
    return ", ".join(display(v) for v in sorted(values, key=sort_key))


def _context(runs: Sequence[Run], runset: RunSet, group_keys: Sequence[str], metrics: Sequence[str],
             excluded: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """Warnings and notes about runs pooled in one table."""
    warnings = list(code_differences(runs))
    notes = []
    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        groups.setdefault(tuple(str(run.settings.get(k)) for k in group_keys), []).append(run)
    # Only keys that vary inside a row are pooled: model.cell does not, when rows are model=gru, model=rnn, ...
    pooled = [k for k in varying_keys(runs) if k not in group_keys and k not in excluded
              and any(len({str(r.settings.get(k)) for r in members}) > 1 for members in groups.values())]
    data = [k for k in pooled if k == "data" or k.startswith("data.")]
    if data:
        warnings.append("runs pooled in one row differ in data settings not used for grouping: "
                        + "; ".join(f"{k} ({_distinct(runs, k)})" for k in data))
    other = [k for k in pooled if k not in data]
    if other:
        notes.append("rows pool runs that differ in " + "; ".join(f"{k} ({_distinct(runs, k)})" for k in other)
                     + ": add --by KEY to separate them")
    warnings += runset.warnings()
    completed = [run for run in runs if run.status == COMPLETED]
    for metric in metrics:
        if not any(run.value(metric) is not None for run in completed):
            warnings.append(f"metric {metric!r} is in no completed run's record (blank column)")
    interrupted = sum(run.status == INTERRUPTED for run in runs)
    if interrupted:
        notes.append(f"{interrupted} run(s) interrupted (SIGINT or SIGTERM) before finishing: not counted as "
                     "completed (resume=true continues them)")
    running = sum(run.status == RUNNING for run in runs)
    if running:
        notes.append(f"{running} run(s) still running, or killed before finishing: not counted")
    hashes: dict[str, int] = {}
    for run in runs:
        key = run.record.get("config_hash")
        if key:
            hashes[key] = hashes.get(key, 0) + 1
    repeats = sum(n - 1 for n in hashes.values() if n > 1)
    if repeats:
        notes.append(f"{repeats} run(s) repeat the exact config (seed included) of another run; each counts in n")
    baseline = baseline_note(runs, metrics)
    if baseline:
        notes.append(baseline)
    reference = reference_note(runs)
    if reference:
        notes.append(reference)
    return warnings, notes


def reference_note(runs: Sequence[Run]) -> str | None:
    """``reference on the same splits: logistic regression (...): val/accuracy 0.9593, test/accuracy 0.9556``,
    where every run that knows its task carries the same kind of reference model; where the splits differ (a
    data seed per run), its scores over the runs' distinct splits as ``mean ± std (n)``."""
    carried = [run.task.get("reference") for run in runs if run.task]
    if not carried or not all(isinstance(r, Mapping) and r.get("name") for r in carried) or \
            len({r["name"] for r in carried}) != 1:
        return None
    distinct = list({json.dumps(r, sort_keys=True): r for r in carried}.values())
    scores = []
    for key, value in distinct[0].items():
        if key == "name" or not isinstance(value, (int, float)):
            continue
        values = [r.get(key) for r in distinct]
        scores.append(f"{key} {format_number(float(value))}" if len(distinct) == 1
                      else f"{key} {format_summary(summarize(values))}")
    where = "the same splits" if len(distinct) == 1 else f"the runs' {len(distinct)} distinct splits"
    return f"reference on {where}: {distinct[0]['name']}: {', '.join(scores)}"


def baseline_note(runs: Sequence[Run], metrics: Sequence[str]) -> str | None:
    """``input-blind baseline (adding, mse: lower is better): test/mse 0.1667, test/loss 0.1667``,
    where all runs that know their task share one."""
    tasks = {(t.get("name"), t.get("metric"), t.get("metric_mode"), t.get("baseline_loss"), t.get("baseline_metric"))
             for t in (run.task for run in runs) if t}
    if len(tasks) != 1:
        return None
    name, metric, mode, loss, value = tasks.pop()
    parts = []
    for column in metrics:
        if not column.startswith(_TASK_PREFIXES) or column.endswith("_step"):
            continue
        leaf = column.rsplit("/", 1)[-1]
        baseline = loss if leaf == "loss" else value if leaf == metric else None
        if isinstance(baseline, (int, float)) and math.isfinite(baseline):
            parts.append(f"{column} {format_number(float(baseline))}")
    if not parts:
        parts = [f"{label} {format_number(float(b))}" for label, b in (("loss", loss), (metric, value))
                 if isinstance(b, (int, float)) and math.isfinite(b) and label]
    if not parts:
        return None
    direction = {"min": "lower is better", "max": "higher is better"}.get(mode)
    described = ", ".join(str(x) for x in (name, f"{metric}: {direction}" if direction and metric else None) if x)
    return f"input-blind baseline ({described}): " + ", ".join(dict.fromkeys(parts))


def _status_cells(members: Sequence[Run]) -> list[Cell]:
    return [Fraction(sum(r.status == status for r in members), len(members))
            for status in FRACTION_STATUSES]


def build_table(runset: RunSet, metrics: Sequence[str] | None = None, by: Sequence[str] | None = None) -> Table:
    runs = runset.runs
    if by:
        _check_keys(runs, by, "--by")
    keys = list(dict.fromkeys(by)) if by else varying_keys(runs)
    split = _never_pooled(runs, keys)
    metrics = list(dict.fromkeys(metrics)) if metrics else default_metrics(runs)
    _check_metrics(runs, metrics)
    columns = [*split, *metrics, *FRACTION_STATUSES]
    rows: list[list[Cell]] = []
    for values, members in _groups(runs, split):
        rows.append([*(Key(v) for v in values), *(_metric_cell(members, m) for m in metrics), *_status_cells(members)])
    warnings, notes = _context(runs, runset, split, metrics)
    if len(split) > len(keys):
        notes.append("split by " + ", ".join(k for k in split if k not in keys)
                     + ": runs of different tasks, lengths or layouts are never pooled")
    if any(m.startswith("steps_to:") for m in metrics):
        notes.append("steps_to: the median over all completed runs, a run that never met the threshold counting as "
                     "infinity (never), and how many met it")
    if any(is_bookkeeping(k) for k in keys):
        notes.append("grouped by bookkeeping settings: " + ", ".join(k for k in keys if is_bookkeeping(k)))
    return Table(columns, rows, warnings, notes)


def _side(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ReportError(f"--compare {text!r}: expected KEY=VALUE, e.g. model.cell=lstm")
    return key.strip(), parse_value(value.strip())


def _pairs(side_a: Sequence[tuple[Any, float]], side_b: Sequence[tuple[Any, float]]) -> list[tuple[float, float]] | None:
    """The values of the same seed on both sides, if both sides hold exactly the same seeds once each."""
    seeds_a, seeds_b = [seed for seed, _ in side_a], [seed for seed, _ in side_b]
    if None in seeds_a or len(set(seeds_a)) != len(seeds_a) or sorted(map(str, seeds_a)) != sorted(map(str, seeds_b)):
        return None
    by_seed = {str(seed): value for seed, value in side_b}
    return [(value, by_seed[str(seed)]) for seed, value in side_a]


def _difference(side_a: Sequence[tuple[Any, float]], side_b: Sequence[tuple[Any, float]], interval: str,
                resamples: int, seed: int) -> Difference:
    values_a, values_b = [v for _, v in side_a], [v for _, v in side_b]
    if interval == "bootstrap":
        return bootstrap_difference(values_a, values_b, resamples=resamples, seed=seed)
    pairs = _pairs(side_a, side_b) if interval in ("auto", "paired") else None
    if pairs is not None:
        return paired_difference(pairs)
    if interval == "paired":
        return Difference(None, None, None, len(values_a), len(values_b), "paired",
                          reason="undefined: the sides do not hold the same seeds")
    return welch_difference(values_a, values_b)


def build_comparison(runset: RunSet, compare: Sequence[str], metrics: Sequence[str] | None = None,
                     by: Sequence[str] | None = None, interval: str = "auto", resamples: int = RESAMPLES,
                     seed: int = SEED) -> Table:
    """Per group of the remaining keys and per metric: A, B as mean ± std (n), A - B, its interval, p-value,
    Holm-adjusted p-value over the comparison's rows and the verdict in words.

    ``interval``: ``auto`` (paired where both sides of a row hold the same seeds, else Welch), ``welch``,
    ``paired`` or ``bootstrap``."""
    runs = runset.runs
    if interval not in ("auto", *INTERVALS):
        raise ReportError(f"--interval={interval!r} is not allowed: one of auto, {', '.join(INTERVALS)}")
    if len(compare) != 2:
        raise ReportError(f"--compare takes two KEY=VALUE sides (A and B), got {len(compare)}")
    (key, a), (key_b, b) = _side(compare[0]), _side(compare[1])
    if key != key_b:
        raise ReportError(f"--compare {compare[0]} {compare[1]}: both sides must name the same setting")
    if matches(a, b):
        raise ReportError(f"--compare {compare[0]} {compare[1]}: the two sides are the same value")
    _check_keys(runs, [key], "--compare")
    if by:
        _check_keys(runs, by, "--by")
    for text, wanted in ((compare[0], a), (compare[1], b)):
        if not any(matches(run.settings.get(key), wanted) for run in runs):
            raise ReportError(f"--compare {text}: no run has it ({key} is one of {_distinct(runs, key)})")
    a_runs = [run for run in runs if matches(run.settings.get(key), a)]
    b_runs = [run for run in runs if matches(run.settings.get(key), b)]
    a_ids, b_ids = {id(run) for run in a_runs}, {id(run) for run in b_runs}
    both = [run for run in runs if id(run) in a_ids or id(run) in b_ids]
    # Keys whose values on the two sides never meet: the compared choice may imply them (d2l=lstm sets
    # model.cell and optim.lr), which is fine; for a plain setting they confound the comparison.
    apart = [k for k in varying_keys(both) if k != key and not
             ({hashable(r.settings.get(k)) for r in a_runs} & {hashable(r.settings.get(k)) for r in b_runs})]
    is_choice = all(key in (run.record.get("choices") or {}) for run in both)
    if apart and not is_choice and not by:
        raise ReportError(f"--compare {compare[0]} {compare[1]} is not allowed: the sides differ in more than {key}: "
                          + "; ".join(f"{k} ({_distinct(a_runs, k)} against {_distinct(b_runs, k)})" for k in apart)
                          + ": compare runs that differ only in the compared setting")
    if by:
        keys = [k for k in dict.fromkeys(by) if k != key]
    else:
        keys = [k for k in varying_keys(both) if k != key and k not in apart]
    keys = _never_pooled(both, keys, excluded=[key, *apart])
    metrics = list(dict.fromkeys(metrics)) if metrics else default_metrics(both)
    _check_metrics(both, metrics)
    a_name, b_name = f"{key}={display(a)}", f"{key}={display(b)}"
    columns = [*keys, "metric", f"A: {a_name}", f"B: {b_name}", "A - B", f"{CONFIDENCE:.0%} CI", "p", "p (Holm)",
               "verdict"]
    entries = []
    for values, members in _groups(both, keys):
        side_a = [run for run in members if id(run) in a_ids]
        side_b = [run for run in members if id(run) in b_ids]
        if not side_a or not side_b:
            raise ReportError(f"--compare {compare[0]} {compare[1]} is not allowed: the group "
                              + ", ".join(f"{k}={display(v)}" for k, v in zip(keys, values))
                              + f" has runs of only one side: the sides differ in more than {key}")
        for metric in metrics:
            va, vb = _values(side_a, metric), _values(side_b, metric)
            entries.append((values, metric, va, vb, _difference(va, vb, interval, resamples, seed)))
    adjusted = holm([d.p_value for *_, d in entries])
    rows: list[list[Cell]] = []
    for (values, metric, va, vb, difference), p_holm in zip(entries, adjusted):
        difference = replace(difference, p_holm=p_holm)
        rows.append([*(Key(v) for v in values), Text(metric), Stat(summarize(v for _, v in va), va),
                     Stat(summarize(v for _, v in vb), vb), Number(difference.difference), Interval(difference),
                     Number(difference.p_value), Number(difference.p_holm), Verdict(difference)])
    warnings, notes = _context(both, runset, keys, metrics, excluded=[key, *apart])
    if apart:
        notes.append(f"the sides also differ in what {key} sets: " + "; ".join(
            f"{k} ({_distinct(a_runs, k)} against {_distinct(b_runs, k)})" for k in apart))
    for name, side in ((a_name, a_runs), (b_name, b_runs)):
        diverged = sum(r.status == DIVERGED for r in side)
        failed = sum(r.status == FAILED for r in side)
        interrupted = sum(r.status == INTERRUPTED for r in side)
        if diverged or failed or interrupted:
            notes.append(f"{name}: {diverged} diverged and {failed} failed run(s)"
                         + (f" and {interrupted} interrupted" if interrupted else "") + " are not in its mean")
    methods = sorted({d.method for *_, d in entries if d.defined})
    described = {"welch": "Welch's t-interval (independent seeds, unequal variances)",
                 "paired": "the paired t-interval of per-seed differences (both sides ran the same seeds)",
                 "bootstrap": f"a percentile bootstrap ({resamples} resamples of each side's seeds, generator seed "
                              f"{seed}; no p-value, and too narrow with few seeds)"}
    notes.append(f"A - B = mean over seeds of {a_name} minus {b_name}; {CONFIDENCE:.0%} CI: "
                 + "; ".join(described[m] for m in methods or ["welch"])
                 + f"; p (Holm): Holm's adjustment over the {len(entries)} row(s); the verdict reads the adjusted p "
                 f"at {1 - CONFIDENCE:.2f}")
    if any(d.few_seeds for *_, d in entries):
        notes.append(f"a side with fewer than {FEW_SEEDS} seeds: its interval rests on the seeds being roughly normal, "
                     "which so few cannot show; read the verdict as indicative")
    return Table(columns, rows, warnings, notes)
