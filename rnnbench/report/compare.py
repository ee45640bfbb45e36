"""``rnnbench table --compare KEY=A KEY=B``: per row of the remaining grouping and per metric, A against B, and a
verdict in one of four words that mean what they say.

- a *metric row* tests the difference of means over seeds (a paired or Welch t-test, or a percentile bootstrap)
  and, where it has a margin ``±δ`` (``--margin METRIC=δ``, or by default :data:`DEFAULT_MARGIN` of the distance
  from B's mean to the task's input-blind baseline), equivalence within it (two one-sided tests);
- an *outcome row* (``--success METRIC<X``, and each ``steps_to:`` metric) compares the fractions of runs that
  reached a threshold, a diverged run counting as not reaching it, by Boschloo's exact test.

Every test of the table is one family, adjusted by Holm's step-down procedure (a row's two tests counting once:
:func:`rnnbench.report.statistics.holm_steps`), so the chance of any wrong verdict in the table stays at 5%. The
verdict: ``A > B`` or ``A < B`` (a difference shown), ``equivalent within ±δ``, or ``inconclusive`` with the
smallest effect the design would have detected with 80% power. The interval shown is the one the verdict reads:
at the level of the row's Holm step, so that it excludes 0 exactly where a difference is shown. A metric equal to
another on every run (``test/loss`` and ``test/mse`` on an MSE task) is one row."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from rnnbench.record.keys import REPLICATE_KEYS
from rnnbench.record.schema import BUDGETS, DIVERGED, FAILED, INTERRUPTED
from rnnbench.report.cells import Cell, Interval, Key, MetricName, Number, Reached, Stat, Verdict
from rnnbench.report.formatting import format_number
from rnnbench.report.notes import table_context, task_baseline
from rnnbench.report.records import (ReportError, Run, RunSet, Threshold, display, hashable, matches, parse_value,
                                     varying_keys)
from rnnbench.report.rows import TASK_KEYS, check_keys, distinct_values, group_rows, split_keys
from rnnbench.report.statistics import (ALPHA, CONFIDENCE, FEW_SEEDS, INTERVALS, POWER, RESAMPLES, SEED, Difference,
                                        HolmStep, OutcomeDifference, bootstrap_difference, detectable_difference,
                                        detectable_fraction_difference, holm_steps, outcome_difference,
                                        paired_difference, summarize, welch_difference)
from rnnbench.report.table import (REACHED_NOTE, Table, check_metrics, completed_values, default_metrics,
                                   parse_success, reached_values, steps_to_reached)

__all__ = ["build_comparison", "EVERY", "DEFAULT_MARGIN"]

EVERY = "*"  # --compare KEY=* KEY=B: every other value of KEY against B
# The default equivalence margin: this fraction of |B's mean - the task's input-blind baseline|, on the task's metric
# and loss (a difference a tenth of what B learned beyond guessing).
DEFAULT_MARGIN = 0.1


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
                resamples: int, seed: int, margin: float | None, confidence: float) -> Difference:
    """The test ``interval`` names of A's seed values against B's, its interval at ``confidence``."""
    values_a, values_b = [v for _, v in side_a], [v for _, v in side_b]
    if interval == "bootstrap":
        return bootstrap_difference(values_a, values_b, resamples=resamples, seed=seed, confidence=confidence,
                                    margin=margin)
    pairs = _pairs(side_a, side_b) if interval in ("auto", "paired") else None
    if pairs is not None:
        return paired_difference(pairs, confidence=confidence, margin=margin)
    if interval == "paired":
        return Difference(None, None, None, len(values_a), len(values_b), "paired", confidence=confidence,
                          reason="undefined: the sides do not hold the same seeds")
    return welch_difference(values_a, values_b, confidence=confidence, margin=margin)


def _margins(texts: Sequence[str], compared: Sequence[str]) -> dict[str, float]:
    """``--margin METRIC=δ`` (repeatable) as {metric: δ}; ReportError naming the flag and the value for a malformed
    one, a δ not > 0, a metric not among ``compared``, or a second margin of one metric."""
    margins: dict[str, float] = {}
    for text in texts:
        metric, sep, value = text.rpartition("=")
        metric = metric.strip()
        if not sep or not metric:
            raise ReportError(f"--margin {text} is not allowed: METRIC=δ, e.g. test/mse=0.01")
        try:
            margin = float(value)
        except ValueError:
            margin = math.nan
        if not (math.isfinite(margin) and margin > 0):
            raise ReportError(f"--margin {text} is not allowed: a number > 0")
        if metric not in compared:
            raise ReportError(f"--margin {text} is not allowed: {metric} is not a compared metric (compared: "
                              f"{', '.join(compared)})")
        if margins.get(metric, margin) != margin:
            raise ReportError(f"--margin {text} is not allowed: {metric} has a margin already "
                              f"({format_number(margins[metric])})")
        margins[metric] = margin
    return margins


def _distinct_metrics(runs: Sequence[Run], metrics: Sequence[str]) -> list[list[str]]:
    """``metrics`` as groups of those with the same value on every run (and some value on one): ``[["test/mse",
    "test/loss"], ["gradients.vanishing_log10"]]`` on an MSE task, the first of each group named first. A
    ``steps_to:`` metric stands alone (each reads its own threshold)."""
    values = {m: [run.value(m) for run in runs] for m in metrics if not m.startswith("steps_to:")}
    groups: list[list[str]] = []
    for metric in metrics:
        same = [g for g in groups if metric in values and g[0] in values and values[g[0]] == values[metric]
                and any(v is not None for v in values[metric])]
        if same:
            same[0].append(metric)
        else:
            groups.append([metric])
    return groups


def _group_margins(groups: Sequence[Sequence[str]], margins: dict[str, float]) -> dict[str, float]:
    """The ``--margin`` of each group's first metric, given for any metric of the group; ReportError for two
    different margins of one quantity."""
    by_group = {}
    for group in groups:
        named = [m for m in group if m in margins]
        for metric in named[1:]:
            if margins[metric] != margins[named[0]]:
                raise ReportError(f"--margin {metric}={format_number(margins[metric])} is not allowed: {metric} "
                                  f"equals {named[0]} on every run (one row), whose margin is "
                                  f"{format_number(margins[named[0]])}")
        if named:
            by_group[group[0]] = margins[named[0]]
    return by_group


def _default_margin(metric: str, b_runs: Sequence[Run], b_values: Sequence[tuple[Any, float]]) -> float | None:
    """:data:`DEFAULT_MARGIN` of ``|B's mean - the task's input-blind baseline|``, where B's runs share a task
    whose baseline covers ``metric`` (:func:`rnnbench.report.notes.task_baseline`); else None."""
    baselines = {task_baseline(run.task, metric) for run in b_runs}
    mean = summarize(v for _, v in b_values).mean
    if len(baselines) != 1 or None in baselines or mean is None or not math.isfinite(mean):
        return None
    margin = DEFAULT_MARGIN * abs(mean - baselines.pop())
    return margin if margin > 0 else None


@dataclass
class _Row:
    """One row of a comparison: the grouping values, the metric, each side's cell, and its test (at a
    confidence: its interval's); ``tested`` is the test at 95%, whose p-values join the family."""

    values: tuple
    metric: MetricName
    side_a: Cell
    side_b: Cell
    test: Callable[[float], Difference | OutcomeDifference]

    def __post_init__(self) -> None:
        self.tested = self.test(CONFIDENCE)

    def read(self, difference: HolmStep | None, equivalence: HolmStep | None) -> Difference | OutcomeDifference:
        """The row's result after Holm's steps: the adjusted p-values, the interval the verdict reads (at the
        level of the difference test's step, or of the equivalence test's where only equivalence is shown), and
        the power note where nothing is shown."""
        tested = self.tested
        if difference is None:
            return tested  # no test: undefined, and so inconclusive
        differs, equivalent = difference.rejects(), equivalence is not None and equivalence.rejects()
        if isinstance(tested, OutcomeDifference):
            detectable = None if differs else detectable_fraction_difference(
                tested.n_a, tested.n_b, tested.reached_b / tested.n_b, difference.level)
            return replace(tested, p_holm=difference.p_adjusted, detectable=detectable)
        only_equivalent = equivalent and not differs
        shown = self.test(1 - 2 * equivalence.level if only_equivalent else 1 - difference.level)
        detectable = None if differs or equivalent else \
            detectable_difference(shown.standard_error, shown.df, difference.level)
        return replace(shown, p_holm=difference.p_adjusted, detectable=detectable,
                       p_equivalence_holm=None if equivalence is None else equivalence.p_adjusted,
                       reads="equivalence" if only_equivalent else "difference")


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
                     seed: int = SEED, margins: Sequence[str] = (), success: Sequence[str] = ()) -> Table:
    """Per group of the remaining keys: a metric row per distinct metric (A, B as mean ± std (n), A - B, the
    interval the verdict reads, p, Holm's p, the margin ±δ and Holm's p of equivalence, the verdict) and an
    outcome row per ``success`` threshold and ``steps_to:`` metric (A, B as reached/n, the difference in fraction,
    Boschloo's p, Holm's p, the verdict); see the module docstring. ``KEY=*`` as side A compares every other value
    of KEY with B (a row per value, the first column), Holm's adjustment over all of them.

    ``interval``: ``auto`` (paired where both sides of a row hold the same seeds, else Welch), ``welch``,
    ``paired`` or ``bootstrap``; ``margins``: ``METRIC=δ`` texts (``--margin``); ``success``: ``METRIC<X`` texts
    (``--success``)."""
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
    thresholds = [parse_success(text) for text in dict.fromkeys(success)]
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
    # under a parameter or state budget the hidden size is what the budget chose for each side's cell: it differs
    # with the compared setting by design (the budget is what both sides share), so it confounds nothing
    budgeted = all(any(run.settings.get(f"model.{k}") is not None for k in BUDGETS) for run in both)
    confounding = [k for k in apart if not (k == "model.hidden_size" and budgeted)]
    if confounding and not is_choice and not by:
        raise ReportError(f"--compare {compare[0]} {compare[1]} is not allowed: the sides differ in more than {key}: "
                          + "; ".join(f"{k} ({distinct_values(a_runs, k)} against {distinct_values(b_runs, k)})"
                                      for k in confounding)
                          + ": compare runs that differ only in the compared setting")
    if by:
        keys = [k for k in dict.fromkeys(by) if k != key]
    else:  # a setting some records lack (it did not exist when they ran) is pooled, as the table pools it, not split
        keys = [k for k in varying_keys(both) if k != key and k not in apart and all(k in r.settings for r in both)]
    keys = split_keys(both, keys, excluded=[key, *apart])
    metrics = list(dict.fromkeys(metrics)) if metrics else default_metrics(both)
    check_metrics(both, metrics, thresholds)
    groups = _distinct_metrics(both, metrics)
    margin_of = _margins(margins, [m for group in groups for m in group])
    given_margin = _group_margins(groups, margin_of)
    a_name, b_name = (key if every else f"{key}={display(a)}"), f"{key}={display(b)}"
    columns = [*([key] if every else []), *keys, "metric", "A" if every else f"A: {a_name}", f"B: {b_name}", "A - B",
               "CI (Holm level)", "p", "p (Holm)", "±δ", "p equiv. (Holm)", "verdict"]
    rows: list[_Row] = []
    for a_value in a_values:
        for group in group_rows(a_sides[a_value] + b_runs, keys):
            members = group.runs
            values = (*((a_value,) if every else ()), *group.values)
            side_a = [run for run in members if id(run) not in b_ids]
            side_b = [run for run in members if id(run) in b_ids]
            if not side_a or not side_b:
                if every and not side_a:
                    continue  # this value of KEY has no run in this group
                raise ReportError(f"--compare {compare[0]} {compare[1]} is not allowed: the group "
                                  + ", ".join(f"{k}={display(v)}" for k, v in zip(keys, group.values))
                                  + f" has runs of only one side: the sides differ in more than {key}")
            outcomes = []
            for metric, *same in groups:
                va, vb = completed_values(side_a, metric), completed_values(side_b, metric)
                if not va and not vb and _of_another_task(metric, members):
                    continue  # perplexity on an adding row (a row whose runs all diverged stays)
                margin = given_margin.get(metric, _default_margin(metric, side_b, vb))
                rows.append(_Row(values, MetricName(metric, same), Stat(summarize(v for _, v in va), va),
                                 Stat(summarize(v for _, v in vb), vb),
                                 functools.partial(_difference, va, vb, interval, resamples, seed, margin)))
                if metric.startswith("steps_to:"):
                    outcomes.append(steps_to_reached(metric))
            for threshold in outcomes + [t for t in thresholds if not _of_another_task(t.metric, members)]:
                rows.append(_outcome_row(values, threshold, side_a, side_b))
    # One family: each row's test of a difference and (with a margin) of equivalence, which count once.
    steps = holm_steps([p for row in rows for p in (row.tested.p_value, row.tested.p_equivalence)],
                       [i for i in range(len(rows)) for _ in range(2)])
    results = [row.read(steps[2 * i], steps[2 * i + 1]) for i, row in enumerate(rows)]
    cells: list[list[Cell]] = []
    for row, result in zip(rows, results):
        cells.append([*(Key(v) for v in row.values), row.metric, row.side_a, row.side_b, Number(result.difference),
                      Interval(result), Number(result.p_value), Number(result.p_holm), Number(result.margin),
                      Number(result.p_equivalence_holm), Verdict(result)])
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
    notes += _comparison_notes(results, groups, list(margin_of), f"each other {key}" if every else a_name, b_name,
                               key if every else None, resamples, seed)
    return Table(columns, cells, warnings, notes)


def _outcome_row(values: tuple, threshold: Threshold, side_a: Sequence[Run], side_b: Sequence[Run]) -> _Row:
    """The row of how many of each side's runs reached ``threshold``, by Boschloo's exact test."""
    reached_a, reached_b = reached_values(side_a, threshold), reached_values(side_b, threshold)
    result = outcome_difference(sum(r for _, r in reached_a), len(reached_a), sum(r for _, r in reached_b),
                                len(reached_b))
    return _Row(values, MetricName(f"{threshold.text} (reached)"), Reached(reached_a), Reached(reached_b),
                lambda confidence: result)


def _comparison_notes(results: Sequence[Difference | OutcomeDifference], groups: Sequence[Sequence[str]],
                      given: Sequence[str], a_described: str, b_name: str, every_key: str | None, resamples: int,
                      seed: int) -> list[str]:
    """What the comparison's columns and verdicts mean: the tests, the family and its adjustment, the interval,
    the margins, the power note, the outcome rows, the metrics named once, and few seeds."""
    notes = []
    means = [r for r in results if isinstance(r, Difference)]
    outcomes = [r for r in results if isinstance(r, OutcomeDifference)]
    tested = sum(r.p_value is not None for r in results)
    described = {"welch": "Welch's t-test (independent seeds, unequal variances)",
                 "paired": "the paired t-test of per-seed differences (both sides ran the same seeds)",
                 "bootstrap": f"a percentile bootstrap ({resamples} resamples of each side's seeds, generator seed "
                              f"{seed}; its p is where its interval would touch 0; too narrow with few seeds)"}
    if means:
        methods = sorted({r.method for r in means if r.defined}) or ["welch"]
        notes.append(f"A - B = mean over seeds of {a_described} minus {b_name}, tested by "
                     + "; ".join(described[m] for m in methods))
    every = f" and value of {every_key}" if every_key else ""
    untested = f"; the {len(results) - tested} without a test are not in it" if tested < len(results) else ""
    notes.append(f"the family: this table's {tested} tested row(s), every metric and threshold of every group{every}"
                 f"{untested}; p (Holm): Holm's step-down adjustment over it, a row's tests of a difference and of "
                 "equivalence counting once (at most one of 'no difference' and 'a difference of at least δ' is true: "
                 f"Shaffer's refinement), so the chance of any wrong verdict in the table stays at {ALPHA:.2f}; a "
                 f"verdict reads p (Holm) < {ALPHA:.2f}")
    if means:
        notes.append(f"CI (Holm level): the interval the verdict reads, at 1 - {ALPHA:.2f}/j for the row's step of "
                     "Holm's procedure (j: the rows still in play at that step; for a row not shown to differ, the "
                     "step where the procedure stopped), so it excludes 0 exactly where the verdict is A > B or A < B; "
                     f"no wider than Bonferroni's simultaneous 1 - {ALPHA:.2f}/{tested} interval; on an 'equivalent' "
                     f"row, the 1 - 2·{ALPHA:.2f}/j interval of the two one-sided tests, inside ±δ")
        notes.append("±δ, p equiv. (Holm): equivalence within ±δ, by two one-sided tests (TOST, its p the larger "
                     "one-sided p) in the family above; δ: "
                     + (f"--margin for {', '.join(given)}; otherwise " if given else "")
                     + f"{DEFAULT_MARGIN:.0%} of |B's mean - the task's input-blind baseline| on the task's metric "
                     "and loss; a row without one makes no equivalence claim")
    if any(r.detectable is not None for r in results):
        notes.append(f"inconclusive ({POWER:.0%} power for |Δ| ≥ x): neither a difference nor equivalence shown; x "
                     f"is the smallest |A - B| the row's test, at its Holm level, detects with {POWER:.0%} power given "
                     "the observed spread (noncentral t); on a (reached) row, the smallest difference from B's "
                     "fraction that Boschloo's test detects so")
    if outcomes:
        notes.append(f"(reached) rows: {REACHED_NOTE}; compared by Boschloo's exact test (two-sided: twice the "
                     "smaller one-sided p), in the family; A > B: A reaches it more often; A - B: the difference in "
                     "fraction; no interval")
    for metric, *same in groups:
        if same:
            notes.append(f"{metric} (= {', '.join(same)}): equal on every run, one row")
    if any(r.few_seeds for r in means):
        notes.append(f"a side with fewer than {FEW_SEEDS} seeds: its interval rests on the seeds being roughly "
                     "normal, which so few cannot show; read the verdict as indicative")
    return notes
