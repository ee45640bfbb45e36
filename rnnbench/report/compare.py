"""``rnnbench table --compare KEY=A KEY=B``: the difference of means between two values of one setting, per row of
the remaining grouping and per metric, with a paired or Welch t-interval (or a percentile bootstrap), its p-value,
Holm's adjustment over the comparison's rows and the verdict in words."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from rnnbench.record.keys import REPLICATE_KEYS
from rnnbench.record.schema import DIVERGED, FAILED, INTERRUPTED
from rnnbench.report.cells import Cell, Interval, Key, Number, Stat, Text, Verdict
from rnnbench.report.notes import table_context
from rnnbench.report.records import ReportError, Run, RunSet, display, hashable, matches, parse_value, varying_keys
from rnnbench.report.rows import TASK_KEYS, check_keys, distinct_values, group_rows, split_keys
from rnnbench.report.statistics import (CONFIDENCE, FEW_SEEDS, INTERVALS, RESAMPLES, SEED, Difference,
                                        bootstrap_difference, holm, paired_difference, summarize, welch_difference)
from rnnbench.report.table import Table, check_metrics, completed_values, default_metrics

__all__ = ["build_comparison", "EVERY"]

EVERY = "*"  # --compare KEY=* KEY=B: every other value of KEY against B


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


def _apart_keys(candidates: Sequence[str], a_sides: Sequence[Sequence[Run]], b_runs: Sequence[Run]) -> list[str]:
    """The keys among ``candidates`` whose values on some A side never meet B's, judged within each task (the
    :data:`TASK_KEYS` values; runs of different tasks never share a row): a key is apart when, in every task
    where it varies, some A side shares no value with B. So a choice that sets a key in one task (an Adam
    rate per LSTM variant on adding) and leaves it alone in another (one SGD rate on The Time Machine) still
    counts as what the choice sets; a key that varies within a task on both sides is a grouping key."""
    def by_task(runs: Sequence[Run]) -> dict[tuple, list[Run]]:
        return {row.values: row.runs for row in group_rows(runs, TASK_KEYS)}

    def values(runs: Iterable[Run], k: str) -> set:
        return {hashable(run.settings.get(k)) for run in runs}

    b_tasks, a_tasks = by_task(b_runs), [by_task(side) for side in a_sides]
    apart = []
    for k in candidates:
        verdicts = []  # per task where k varies: is some A side apart from B there?
        for task, b_task in b_tasks.items():
            b_values = values(b_task, k)
            sides = [values(side[task], k) for side in a_tasks if task in side]
            if sides and len(b_values.union(*sides)) > 1:
                verdicts.append(any(not (v & b_values) for v in sides))
        if verdicts and all(verdicts):
            apart.append(k)
    return apart


def _of_another_task(metric: str, runs: Sequence[Run]) -> bool:
    """Whether ``metric`` is one that no run of ``runs`` logs at all: a logged metric (``test/perplexity``)
    absent from every record, or a ``steps_to:`` whose metric no run's history holds (a run that never got
    there, diverged or not, has a value: infinity)."""
    if metric.startswith("steps_to:"):
        return all(run.value(metric) is None for run in runs)
    return "/" in metric and not any(metric in (run.record.get("metrics") or {}) for run in runs)


def build_comparison(runset: RunSet, compare: Sequence[str], metrics: Sequence[str] | None = None,
                     by: Sequence[str] | None = None, interval: str = "auto", resamples: int = RESAMPLES,
                     seed: int = SEED) -> Table:
    """Per group of the remaining keys and per metric: A, B as mean ± std (n), A - B, its interval, p-value,
    Holm-adjusted p-value over the comparison's rows and the verdict in words. ``KEY=*`` as side A compares
    every other value of KEY with B (a row per value, the first column), Holm's adjustment over all of them.

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
    if key in REPLICATE_KEYS:
        raise ReportError(f"--compare {compare[0]} {compare[1]} is not allowed: the seeds are each side's samples, "
                          "not a setting to compare (compare a setting, model.cell=A model.cell=B: the seeds pair "
                          "its runs)")
    check_keys(runs, [key], "--compare")
    if by:
        check_keys(runs, by, "--by")
    every = a == EVERY
    for text, wanted in (() if every else ((compare[0], a),)) + ((compare[1], b),):
        if not any(matches(run.settings.get(key), wanted) for run in runs):
            raise ReportError(f"--compare {text}: no run has it ({key} is one of {distinct_values(runs, key)})")
    b_runs = [run for run in runs if matches(run.settings.get(key), b)]
    # KEY=*: every other value of KEY that a run has; a run without KEY at all (a record older than the setting,
    # or a run of another preset) has no value to compare, and stays out.
    a_runs = [run for run in runs if not matches(run.settings.get(key), b)
              and (key in run.settings if every else matches(run.settings.get(key), a))]
    if not a_runs:
        raise ReportError(f"--compare {compare[0]} {compare[1]}: every run has {key}={display(b)}: nothing to compare")
    # Side A's values: the one asked for, or (KEY=*) every other value, each compared with B on its own rows.
    a_values = sorted({hashable(run.settings.get(key)) for run in a_runs}, key=lambda v: display(v)) if every \
        else [hashable(a)]
    b_ids = {id(run) for run in b_runs}
    both = a_runs + b_runs
    # Keys whose values on the two sides never meet: the compared choice may imply them (d2l=lstm sets
    # model.cell and optim.lr), which is fine; for a plain setting they confound the comparison.
    # With KEY=* each value of A is its own comparison with B, so a key is apart when it is for any of them.
    a_sides = {v: [r for r in a_runs if matches(r.settings.get(key), v)] for v in a_values}
    apart = _apart_keys([k for k in varying_keys(both) if k != key], list(a_sides.values()), b_runs)
    is_choice = all(key in (run.record.get("choices") or {}) for run in both)
    if apart and not is_choice and not by:
        raise ReportError(f"--compare {compare[0]} {compare[1]} is not allowed: the sides differ in more than {key}: "
                          + "; ".join(f"{k} ({distinct_values(a_runs, k)} against {distinct_values(b_runs, k)})" for k in apart)
                          + ": compare runs that differ only in the compared setting")
    if by:
        keys = [k for k in dict.fromkeys(by) if k != key]
    else:  # a setting some records lack (it did not exist when they ran) is pooled, as the table pools it, not split
        keys = [k for k in varying_keys(both) if k != key and k not in apart and all(k in r.settings for r in both)]
    keys = split_keys(both, keys, excluded=[key, *apart])
    metrics = list(dict.fromkeys(metrics)) if metrics else default_metrics(both)
    check_metrics(both, metrics)
    a_name, b_name = (key if every else f"{key}={display(a)}"), f"{key}={display(b)}"
    columns = [*([key] if every else []), *keys, "metric", "A" if every else f"A: {a_name}", f"B: {b_name}", "A - B",
               f"{CONFIDENCE:.0%} CI", "p", "p (Holm)", "verdict"]
    entries = []
    for a_value in a_values:
        for row in group_rows(a_sides[a_value] + b_runs, keys):
            values, members = row.values, row.runs
            side_a = [run for run in members if id(run) not in b_ids]
            side_b = [run for run in members if id(run) in b_ids]
            if not side_a or not side_b:
                if every and not side_a:
                    continue  # this value of KEY has no run in this group
                raise ReportError(f"--compare {compare[0]} {compare[1]} is not allowed: the group "
                                  + ", ".join(f"{k}={display(v)}" for k, v in zip(keys, values))
                                  + f" has runs of only one side: the sides differ in more than {key}")
            for metric in metrics:
                va, vb = completed_values(side_a, metric), completed_values(side_b, metric)
                if not va and not vb and _of_another_task(metric, members):
                    continue  # perplexity on an adding row (a row whose runs all diverged stays)
                entries.append(((*((a_value,) if every else ()), *values), metric, va, vb,
                                _difference(va, vb, interval, resamples, seed)))
    adjusted = holm([d.p_value for *_, d in entries])
    rows: list[list[Cell]] = []
    for (values, metric, va, vb, difference), p_holm in zip(entries, adjusted):
        difference = replace(difference, p_holm=p_holm)
        rows.append([*(Key(v) for v in values), Text(metric), Stat(summarize(v for _, v in va), va),
                     Stat(summarize(v for _, v in vb), vb), Number(difference.difference), Interval(difference),
                     Number(difference.p_value), Number(difference.p_holm), Verdict(difference)])
    warnings, notes = table_context(both, runset, keys, metrics, excluded=[key, *apart])
    if apart:
        notes.append(f"the sides also differ in what {key} sets: " + "; ".join(
            f"{k} ({distinct_values(a_runs, k)} against {distinct_values(b_runs, k)})" for k in apart))
    for name, side in ((a_name if not every else f"{key}≠{display(b)}", a_runs), (b_name, b_runs)):
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
    a_described = f"each other {key}" if every else a_name
    notes.append(f"A - B = mean over seeds of {a_described} minus {b_name}; {CONFIDENCE:.0%} CI: "
                 + "; ".join(described[m] for m in methods or ["welch"])
                 + f"; p (Holm): Holm's adjustment over the {len(entries)} row(s); the verdict reads the adjusted p "
                 f"at {1 - CONFIDENCE:.2f}")
    if any(d.few_seeds for *_, d in entries):
        notes.append(f"a side with fewer than {FEW_SEEDS} seeds: its interval rests on the seeds being roughly normal, "
                     "which so few cannot show; read the verdict as indicative")
    return Table(columns, rows, warnings, notes)
