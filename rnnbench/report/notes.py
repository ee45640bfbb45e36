"""What a reader must know beside a table's numbers: code-version warnings, pooled settings, runs not counted,
repeated configs, the input-blind baseline and the reference model the records carry."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence

from rnnbench.record.schema import COMPLETED, INTERRUPTED, RUNNING
from rnnbench.report.formatting import format_number, format_summary
from rnnbench.report.records import Run, RunSet, code_differences
from rnnbench.report.rows import distinct_values, pooled_keys
from rnnbench.report.statistics import summarize

__all__ = ["table_context", "reference_note", "baseline_note", "task_baseline"]

# The metric look-ups of the task that the baseline note covers.
_TASK_PREFIXES = ("test/", "val/", "best/val/", "train/")


def table_context(runs: Sequence[Run], runset: RunSet, group_keys: Sequence[str], metrics: Sequence[str],
                  excluded: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """Warnings and notes about ``runs`` grouped by ``group_keys`` in one table (``excluded``: settings the
    table accounts for otherwise, such as the compared one)."""
    warnings = list(code_differences(runs))
    notes = []
    # Only keys that vary inside a row are pooled: model.cell does not, when rows are model=gru, model=rnn, ...
    pooled = pooled_keys(runs, group_keys, excluded)
    data = [k for k in pooled if k == "data" or k.startswith("data.")]
    if data:
        warnings.append("runs pooled in one row differ in data settings not used for grouping: "
                        + "; ".join(f"{k} ({distinct_values(runs, k)})" for k in data))
    other = [k for k in pooled if k not in data]
    if other:
        notes.append("rows pool runs that differ in " + "; ".join(f"{k} ({distinct_values(runs, k)})" for k in other)
                     + ": add --by KEY to separate them")
    warnings += runset.warnings()
    repeated = Counter(run.record.get("config_hash") for run in runs)
    repeats = sum(n - 1 for n in repeated.values() if n > 1)
    if repeats:  # two executions of one sweep: the same configuration and seed counted as two samples
        warnings.append(f"{repeats} run(s) repeat the configuration and seed of another run (the same config_hash, "
                        "from another execution or dir): each counts in n, which narrows every interval; "
                        "tabulate one execution's dir")
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


def task_baseline(task: Mapping, column: str) -> float | None:
    """The input-blind baseline of ``column`` on ``task`` (a record's ``task``): its ``baseline_loss`` for a loss
    (``test/loss``, ``best/val/loss``), its ``baseline_metric`` for the task's metric (``test/mse``); None for any
    other column, or where the task gives none."""
    if not column.startswith(_TASK_PREFIXES) or column.endswith("_step"):
        return None
    leaf = column.rsplit("/", 1)[-1]
    baseline = task.get("baseline_loss") if leaf == "loss" else \
        task.get("baseline_metric") if leaf == task.get("metric") else None
    if isinstance(baseline, bool) or not isinstance(baseline, (int, float)) or not math.isfinite(baseline):
        return None
    return float(baseline)


def baseline_note(runs: Sequence[Run], metrics: Sequence[str]) -> str | None:
    """``input-blind baseline (adding, mse: lower is better): test/mse 0.1667, test/loss 0.1667``,
    where all runs that know their task share one."""
    tasks = {(t.get("name"), t.get("metric"), t.get("metric_mode"), t.get("baseline_loss"), t.get("baseline_metric"))
             for t in (run.task for run in runs) if t}
    if len(tasks) != 1:
        return None
    name, metric, mode, loss, value = tasks.pop()
    task = {"metric": metric, "baseline_loss": loss, "baseline_metric": value}
    parts = [f"{column} {format_number(baseline)}" for column in metrics
             if (baseline := task_baseline(task, column)) is not None]
    if not parts:
        parts = [f"{label} {format_number(float(b))}" for label, b in (("loss", loss), (metric, value))
                 if isinstance(b, (int, float)) and math.isfinite(b) and label]
    if not parts:
        return None
    direction = {"min": "lower is better", "max": "higher is better"}.get(mode)
    described = ", ".join(str(x) for x in (name, f"{metric}: {direction}" if direction and metric else None) if x)
    return f"input-blind baseline ({described}): " + ", ".join(dict.fromkeys(parts))
