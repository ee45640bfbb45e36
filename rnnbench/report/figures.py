"""What each figure shows, as data: a :class:`Figure` of :class:`Panel` s of :class:`Series`, one series per row of
the shared grouping (:mod:`rnnbench.report.rows`). ``rnnbench plot`` draws them with matplotlib
(:mod:`rnnbench.report.plot`), ``rnnbench report`` embeds them in its page, whose script draws the same data.

Kinds:

- ``gradient-flow``: ``‖∂ℓ_T/∂h_t‖`` of one layer-direction against the distance from the loss (log scale), one
  panel at the first probe (initialisation) and one at the last (after training); line: geometric mean over the
  completed seeds, band: min–max; dashed: a cell state (LSTM), where one is drawn.
- ``curves`` / ``curves-time``: ``train/loss``, ``val/loss`` and the task metric ``val/<metric>`` against the
  optimizer step (or the wall time of training, step × the run's mean time per step: the CSV history has no
  clock), from each run's ``csv/metrics.csv``; line: mean over completed seeds, band: min–max; a diverged run is
  drawn on its own, dotted, up to its last finite value.
- ``clip-rate``: the fraction of steps clipped and the fraction of runs that diverged against
  ``trainer.gradient_clip_val`` ("null": no clipping); needs at least one run that clips.
- ``gates``: each gate's mean and fraction saturated (below 0.05 or above 0.95; ``h``: |h| ≥ 0.95) over training,
  from the histories' ``gates/...`` columns.
- ``test-length``: the test metric against the length tested at (the training length's ``test/<metric>`` and each
  ``test@<T>/<metric>`` of ``data.test_seq_len``), beside the gradient's reach at the training length (steps back
  until ``‖∂ℓ/∂h_t‖`` fell 10x, first layer, forward, at the last probe); needs runs tested at other lengths.

Each figure's ``notes`` say what its lines and bands are, what the rows pool, which runs are not drawn and why
(a run without the figure's layer or direction is not missing from it), and which lines coincide (they would hide
one another; each row also has its own colour of :data:`PALETTE` and its own marker).
"""

from __future__ import annotations

import csv
import math
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from rnnbench.record.schema import COMPLETED, DIVERGED, FINISHED
from rnnbench.report.records import (ReportError, Run, display, history_offset, history_path, layer_entry, read_history,
                                     sort_key)
from rnnbench.report.rows import Grouping, Row, grouping, pooled_keys

__all__ = ["Series", "Panel", "Figure", "NoData", "KINDS", "CLIP_KEY", "PALETTE", "build_figure", "layer_directions",
           "figure_views", "view_name", "run_history", "has_layer"]

KINDS = ("gradient-flow", "curves", "curves-time", "clip-rate", "gates", "test-length")
CLIP_KEY = "trainer.gradient_clip_val"
GRADIENT_LABEL = "‖∂ℓ_T/∂h_t‖ (log scale)"
DISTANCE_LABEL = "distance from the loss (time steps)"
STEP_LABEL = "optimizer step"
TIME_LABEL = "training wall time (s)"
COINCIDE = 0.01  # lines whose gap stays within this fraction of the panel's range coincide
NAMED_COINCIDING = 6  # more coinciding lines than this are counted, not named
# Row i's colour is PALETTE[i % 20] (matplotlib's tab10, then ten more that differ from it), its marker the i-th of
# 12: no two of the first 60 rows share both. The page draws with the same colours.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#393b79", "#b8860b", "#1b9e77", "#843c39", "#7b4173", "#e7298a", "#66a61e", "#6baed6",
           "#525252", "#f4a582")
_GATE_COLUMN = re.compile(r"gates/layer(\d+)/(\w+)/(\w+?)_(mean|saturated)$")


class NoData(ReportError):
    """The records hold nothing this kind of figure draws (reported as one line, exit 1)."""


@dataclass
class Series:
    """One line named ``name`` over ``n`` runs: ``y`` (None: a gap) at ``x``, and its band ``low``–``high`` where it
    has one. ``row`` indexes the row (its colour and marker); ``style`` is ``solid``, ``dashed`` (a second state) or
    ``dotted`` (one run's own line, such as a diverged run's)."""

    name: str
    n: int | None
    x: list[float]
    y: list[float | None]
    low: list[float | None] | None = None
    high: list[float | None] | None = None
    row: int = 0
    style: str = "solid"
    marker: int | None = None  # the marker's index where it is not the row's (one row's several gates)

    @property
    def label(self) -> str:
        """The legend's words: ``gru (n=3)``; a single run's line just its name."""
        return self.name if self.n is None else f"{self.name} (n={self.n})"


@dataclass
class Panel:
    title: str
    xlabel: str
    ylabel: str
    series: list[Series] = field(default_factory=list)
    log_y: bool = False
    categories: list[str] | None = None  # a categorical x axis: series' x are indexes into it
    reference_lines: list[tuple[float, str]] = field(default_factory=list)  # horizontal: (y, label)
    y_range: tuple[float, float] | None = None
    empty: str | None = None  # what to say when the panel has no series


@dataclass
class Figure:
    kind: str
    title: str
    notes: list[str]
    panels: list[Panel]
    legend_title: str
    rows: list[str] = field(default_factory=list)  # the rows' labels, indexed by Series.row

    def as_data(self) -> dict[str, Any]:
        """The figure as JSON-ready data (each series with its ``label``): numbers at 6 significant digits,
        non-finite as null."""
        data = asdict(self)
        for panel, panel_data in zip(self.panels, data["panels"]):
            for series, series_data in zip(panel.series, panel_data["series"]):
                series_data["label"] = series.label
        return _rounded(data)


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.6g}") if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    return value


# --- shared pieces ----------------------------------------------------------------------------------------------

def _band(columns: Sequence[Sequence[float]]) -> tuple[list[float | None], list[float | None], list[float | None]]:
    """Mean, min and max of each column's finite values (None where a column has none)."""
    means, lows, highs = [], [], []
    for column in columns:
        finite = [v for v in column if v is not None and math.isfinite(v)]
        means.append(float(np.mean(finite)) if finite else None)
        lows.append(min(finite) if finite else None)
        highs.append(max(finite) if finite else None)
    return means, lows, highs


def _pooled_note(runs: Sequence[Run], rows: Grouping, excluded: Sequence[str] = ()) -> str | None:
    pooled = pooled_keys(runs, rows.keys, excluded)
    return f"each line pools runs that differ in {', '.join(pooled)} (choose the grouping to separate them)" \
        if pooled else None


def _left_out(rows: Sequence[Row], drawn: Mapping[int, int], why: str,
              applies: Callable[[Run], bool] | None = None) -> str | None:
    """``not drawn (...): rnn: 1 diverged; gru: 1 failed`` for the runs of each row that are not drawn; only runs
    for which ``applies`` holds count (a one-layer run is not missing from layer 1's figure)."""
    parts = []
    for index, row in enumerate(rows):
        if applies is not None:
            row = Row(row.keys, row.values, [run for run in row.runs if applies(run)])
        missing = len(row.runs) - drawn.get(index, 0)
        if missing <= 0:
            continue
        counts = row.not_completed()
        described = ", ".join(f"{n} {status}" for status, n in counts.items()) if counts else ""
        lacking = missing - sum(counts.values())
        if lacking > 0:
            described = ", ".join(x for x in (described, f"{lacking} with none recorded") if x)
        parts.append(f"{row.label}: {described}")
    return f"not drawn ({why}): " + "; ".join(parts) if parts else None


def _coinciding(panel: Panel) -> list[str]:
    """The lines of a panel that stay within :data:`COINCIDE` of the panel's range of one another wherever both are
    drawn (one hides the other), in groups: named where they are few, counted where most lines coincide."""
    def values(series: Series) -> dict[float, float]:
        out = {}
        for x, y in zip(series.x, series.y):
            if y is not None and math.isfinite(y) and (not panel.log_y or y > 0):
                out[x] = math.log10(y) if panel.log_y else y
        return out

    drawn = [(s, values(s)) for s in panel.series if s.style != "dotted"]
    everything = [v for _, points in drawn for v in points.values()]
    if len(drawn) < 2 or not everything:
        return []
    span = (max(everything) - min(everything)) or 1.0
    group = list(range(len(drawn)))  # union-find: each line's group

    def find(i: int) -> int:
        while group[i] != i:
            group[i] = group[group[i]]
            i = group[i]
        return i

    for i, (_, va) in enumerate(drawn):
        for j in range(i + 1, len(drawn)):
            vb = drawn[j][1]
            shared = set(va) & set(vb)
            if len(shared) >= 2 and max(abs(va[x] - vb[x]) for x in shared) <= COINCIDE * span:
                group[find(j)] = find(i)
    members: dict[int, list[str]] = {}
    for i, (series, _) in enumerate(drawn):
        members.setdefault(find(i), []).append(series.name)
    groups = [names for names in members.values() if len(names) > 1]
    if not groups:
        return []
    together = sum(len(names) for names in groups)
    how = "drawn side by side at each value" if panel.categories else \
        "one line lies on the other; the markers tell them apart"
    if together > NAMED_COINCIDING or (together == len(drawn) and together > 2):
        named = (f"all {together} lines" if together == len(drawn) else f"{together} of the {len(drawn)} lines") \
            + " coincide" + (f", in {len(groups)} groups" if len(groups) > 1 else "")
    else:
        named = ", as do ".join(_and(names) for names in groups)
        named = named.replace(", as do ", " coincide, as do ", 1) if len(groups) > 1 else f"{named} coincide"
    return [f"{panel.title}: {named} ({how})"]


def _and(names: Sequence[str]) -> str:
    """``a and b``, ``a, b and c``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _figure(kind: str, title: str, notes: Sequence[str | None], panels: list[Panel], rows: Grouping) -> Figure:
    coinciding = [line for panel in panels for line in _coinciding(panel)]
    return Figure(kind, title, [n for n in notes if n] + coinciding, panels, ", ".join(rows.keys) or "all runs",
                  [row.label for row in rows.rows])


# --- histories --------------------------------------------------------------------------------------------------

@lru_cache(maxsize=4096)
def _read_whole_history(path: Path, modified: float) -> dict[str, list[tuple[int, float]]]:
    with open(path, newline="") as f:
        header = next(csv.reader(f), [])
    return read_history(path, [c for c in header if c not in ("step", "epoch")])


def run_history(run: Run) -> dict[str, list[tuple[int, float]]]:
    """Every column of the run's CSV history as ``column -> [(step, value), ...]``; empty where it has none."""
    path = history_path(run)
    if path is None:
        return {}
    try:
        return _read_whole_history(path, path.stat().st_mtime)
    except (OSError, csv.Error, UnicodeDecodeError):
        return {}


def _step_seconds(run: Run) -> float | None:
    seconds, steps = run.record.get("train_seconds"), run.record.get("steps")
    if isinstance(seconds, (int, float)) and isinstance(steps, int) and steps > 0 and seconds > 0:
        return float(seconds) / steps
    return None


def _history_series(rows: Sequence[Row], column: str, against: str,
                    label: Callable[[Row], str] | None = None) -> tuple[list[Series], dict[int, int]]:
    """Per row: the mean and min–max over its completed runs of ``column`` at each logged step, against the step
    (optimizer steps done: :func:`rnnbench.report.records.history_offset`) or the training time; each diverged run
    on its own.
    Returns the series and how many runs of each row were drawn."""
    series, drawn = [], {}
    for index, row in enumerate(rows):
        points: dict[int, list[float]] = {}
        seconds = []
        used = 0
        for run in row.completed:
            history = run_history(run).get(column)
            if not history:
                continue
            used += 1
            seconds.append(_step_seconds(run))
            for step, value in history:
                points.setdefault(step + history_offset(run.record), []).append(value)
        name = row.label if label is None else label(row)
        if points:
            steps = sorted(points)
            mean, low, high = _band([points[s] for s in steps])
            scale = _mean_scale(seconds) if against == "time" else 1.0
            if scale is not None:
                series.append(Series(name, used, [s * scale for s in steps], mean, low, high, index))
                drawn[index] = used
        for run in row.with_status(DIVERGED):
            history = run_history(run).get(column)
            scale = _step_seconds(run) if against == "time" else 1.0
            if history and scale is not None:
                finite = [(s + history_offset(run.record), v) for s, v in history if math.isfinite(v)]
                if finite:
                    series.append(Series(f"{name}: seed {display(run.seed)} diverged at step "
                                         f"{run.record.get('diverged_at_step')}", None, [s * scale for s, _ in finite],
                                         [v for _, v in finite], row=index, style="dotted"))
                    drawn[index] = drawn.get(index, 0) + 1
    return series, drawn


def _mean_scale(seconds: Sequence[float | None]) -> float | None:
    known = [s for s in seconds if s is not None]
    return float(np.mean(known)) if known else None


# --- gradient flow ----------------------------------------------------------------------------------------------

def _floats(values: Any) -> np.ndarray | None:
    if not isinstance(values, Sequence) or isinstance(values, str) or not values:
        return None
    try:
        return np.asarray([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        return None


def gradient_curve(entry: Mapping[str, Any] | None, name: str) -> np.ndarray | None:
    """``log10`` of the curve ``name`` (``curve_first``, ``cell_curve_last``, ...) indexed by distance from
    the loss; from its ``log10_`` twin where the record has one (exact where a norm underflows to 0)."""
    if not entry:
        return None
    logs = next((_floats(entry.get(twin)) for twin in (f"log10_{name}", name.replace("curve", "log10_curve"))
                 if _floats(entry.get(twin)) is not None), None)
    if logs is None:
        norms = _floats(entry.get(name))
        if norms is None:
            return None
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.where(norms > 0, np.log10(np.where(norms > 0, norms, 1.0)), -np.inf)
    # Element k is the k-th processed step; the last is nearest the loss: reverse to index by distance.
    return logs[::-1]


def layer_directions(runs: Sequence[Run]) -> list[tuple[int, str]]:
    """Every (layer, direction) some run's gradient curves cover, layer by layer, forward first."""
    found = set()
    for run in runs:
        for entry in (run.gradients or {}).get("layers") or []:
            if isinstance(entry, Mapping) and isinstance(entry.get("layer"), int) and entry.get("direction"):
                found.add((entry["layer"], str(entry["direction"])))
    return sorted(found, key=lambda item: (item[0], item[1] != "forward", item[1]))


def figure_views(runs: Sequence[Run], kinds: Sequence[str]) -> list[tuple[str, int, str]]:
    """``(kind, layer, direction)`` for each figure of ``kinds`` to draw: gradient flow and gates once per
    layer-direction the records cover (layer 0, forward, where none does), every other kind once."""
    directions = layer_directions(runs) or [(0, "forward")]
    return [(kind, layer, direction) for kind in kinds
            for layer, direction in (directions if kind in ("gradient-flow", "gates") else [(0, "forward")])]


def view_name(kind: str, layer: int, direction: str) -> str:
    """The file stem of a view: ``kind`` for layer 0 forward, ``kind-layer1-backward`` for the others."""
    return kind if (layer, direction) == (0, "forward") else f"{kind}-layer{layer}-{direction}"


def has_layer(run: Run, layer: int, direction: str) -> bool:
    """Whether the run's network has this layer and direction: as its gradient records list them, else as its
    config says (``model.num_layers``, ``model.bidirectional``); a run that says neither may have it."""
    recorded = {(entry.get("layer"), entry.get("direction"))
                for entry in (run.gradients or {}).get("layers") or [] if isinstance(entry, Mapping)}
    if recorded:
        return (layer, direction) in recorded
    layers, bidirectional = run.settings.get("model.num_layers"), run.settings.get("model.bidirectional")
    if isinstance(layers, int) and not isinstance(layers, bool) and layer >= layers:
        return False
    return direction == "forward" or bidirectional is not False


def _has_curves(run: Run, layer: int, direction: str) -> bool:
    entry = layer_entry(run.gradients, layer, direction)
    return gradient_curve(entry, "curve_first") is not None or gradient_curve(entry, "curve_last") is not None


def _probe_step(runs: Sequence[Run], index: int) -> str:
    steps = set()
    for run in runs:
        probes = (run.gradients or {}).get("probe_steps")
        if isinstance(probes, Sequence) and probes:
            steps.add(probes[index])
    return f"step {steps.pop()}" if len(steps) == 1 else "steps vary between runs"


def gradient_flow_figure(runs: Sequence[Run], by: Sequence[str] | None, layer: int = 0,
                         direction: str = "forward") -> Figure:
    drawable = [run for run in runs if run.status == COMPLETED and _has_curves(run, layer, direction)]
    if not drawable:
        raise NoData("no completed run's record has gradient curves (gradients.layers[].curve_first/curve_last) "
                     f"for layer {layer}, {direction}: nothing to draw for --kind gradient-flow")
    rows = grouping(runs, by)
    panels = []
    drawn: dict[int, int] = {}
    for which, title in (("first", f"first probe: initialisation ({_probe_step(drawable, 0)})"),
                         ("last", f"last probe: after training ({_probe_step(drawable, -1)})")):
        panel = Panel(title, DISTANCE_LABEL, GRADIENT_LABEL, log_y=True)
        for index, row in enumerate(rows.rows):
            for name, style, suffix in ((f"curve_{which}", "solid", ""), (f"cell_curve_{which}", "dashed", ", cell state")):
                curves = [c for c in (gradient_curve(layer_entry(run.gradients, layer, direction), name)
                                      for run in row.completed) if c is not None]
                if not curves:
                    continue
                width = max(len(c) for c in curves)
                stacked = [[c[d] if d < len(c) else math.nan for c in curves] for d in range(width)]
                mean, low, high = _band(stacked)
                panel.series.append(Series(f"{row.label}{suffix}", len(curves), list(range(width)),
                                           _powers(mean), _powers(low), _powers(high), index, style))
                if style == "solid":
                    drawn[index] = max(drawn.get(index, 0), len(curves))
        panels.append(panel)
    dashed = any(series.style == "dashed" for panel in panels for series in panel.series)
    notes = ["line: geometric mean over seeds; band: min–max" + ("; dashed: the cell state (LSTM)" if dashed else ""),
             _pooled_note(runs, rows),
             _left_out(rows.rows, drawn, "only completed runs' curves are drawn",
                       lambda run: has_layer(run, layer, direction))]
    return _figure("gradient-flow", f"Gradient flow through time: layer {layer}, {direction} direction", notes,
                   panels, rows)


def _powers(logs: Sequence[float | None]) -> list[float | None]:
    """10 ** each value; None where it is unknown or underflows (a norm of 0 has no place on a log axis)."""
    out = []
    for v in logs:
        power = None if v is None else 10.0 ** v
        out.append(power if power else None)
    return out


def _log_scale_where_it_spans_decades(panel: Panel) -> None:
    """A log y axis for a panel whose positive values (lines and bands) span more than a factor 20."""
    values = [v for line in panel.series for v in (line.low or line.y) + (line.high or line.y)
              if v is not None and math.isfinite(v)]
    if values and min(values) > 0 and max(values) / min(values) > 20:
        panel.log_y = True
        panel.ylabel += " (log scale)"


# --- learning curves --------------------------------------------------------------------------------------------

def task_metric(runs: Sequence[Run]) -> str | None:
    """The task metric (``mse``, ``accuracy``, ``perplexity``) when all runs that know their task share one."""
    metrics = {run.task.get("metric") for run in runs if run.task.get("metric")}
    return metrics.pop() if len(metrics) == 1 else None


def _shared_reference(runs: Sequence[Run], column: str) -> tuple[float, str] | None:
    """``(value, "reference: NAME")`` where every run carries the same reference model's score for ``column``
    (the same splits); None where they differ or lack one."""
    scores = set()
    for run in runs:
        reference = run.task.get("reference")
        value = reference.get(column) if isinstance(reference, Mapping) else None
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return None
        scores.add((float(value), str(reference.get("name"))))
    if len(scores) != 1:
        return None
    value, name = scores.pop()
    return value, f"reference: {name.split(' (')[0]}"


def curves_figure(runs: Sequence[Run], by: Sequence[str] | None, against: str = "step") -> Figure:
    rows = grouping(runs, by)
    metric = task_metric(runs)
    columns = [("train/loss", "training loss (train/loss)"), ("val/loss", "validation loss (val/loss)")]
    if metric:
        columns.append((f"val/{metric}", f"validation {metric} (val/{metric})"))
    baselines = {run.task.get("baseline_loss") for run in runs}
    metric_baselines = {run.task.get("baseline_metric") for run in runs}
    panels, drawn_any = [], {}
    for column, title in columns:
        series, drawn = _history_series(rows.rows, column, against)
        for index, n in drawn.items():
            drawn_any[index] = max(drawn_any.get(index, 0), n)
        panel = Panel(title, STEP_LABEL if against == "step" else TIME_LABEL,
                      "loss" if column.endswith("loss") else metric or "", series, empty=f"no {column} in the histories")
        baseline = baselines if column.endswith("loss") else metric_baselines
        if len(baseline) == 1 and isinstance(next(iter(baseline)), (int, float)) and \
                math.isfinite(next(iter(baseline))):
            panel.reference_lines.append((float(next(iter(baseline))), "input-blind baseline"))
        reference = _shared_reference(runs, column)
        if reference:
            panel.reference_lines.append(reference)
        _log_scale_where_it_spans_decades(panel)
        panels.append(panel)
    if not any(panel.series for panel in panels):
        raise NoData("no completed or diverged run has a learning-curve history (csv/metrics.csv, written by the CSV "
                     "logger: train with logger=csv or logger=wandb): nothing to draw for --kind curves")
    dotted = any(s.style == "dotted" for panel in panels for s in panel.series)
    notes = ["line: mean over completed seeds; band: min–max"
             + ("; dotted: a diverged run on its own, up to its last finite value (×)" if dotted else ""),
             "wall time: step × the run's mean training time per step (the history has no clock)"
             if against == "time" else None,
             _pooled_note(runs, rows), _left_out(rows.rows, drawn_any, "no history")]
    title = "Learning curves" + (" against training wall time" if against == "time" else "")
    return _figure("curves-time" if against == "time" else "curves", title, notes, panels, rows)


# --- clip rate ----------------------------------------------------------------------------------------------------

def _clip_rate(run: Run) -> float | None:
    gradients = run.gradients or {}
    rate = gradients.get("clip_rate")
    if rate is None and "clip_rate" in gradients and run.settings.get(CLIP_KEY) is None:
        return 0.0  # no clipping configured: clipping never fires
    return float(rate) if isinstance(rate, (int, float)) and not isinstance(rate, bool) else None


def clip_rate_figure(runs: Sequence[Run], by: Sequence[str] | None) -> Figure:
    if not any(run.gradients is not None and "clip_rate" in run.gradients for run in runs):
        raise NoData("no run's record has gradients.clip_rate (the gradients section): "
                     "nothing to draw for --kind clip-rate")
    finished = [run for run in runs if run.status in FINISHED]
    if not finished:
        raise NoData("no run completed or diverged: nothing to draw for --kind clip-rate")
    if all(run.settings.get(CLIP_KEY) is None for run in finished):
        raise NoData(f"no run clips its gradients ({CLIP_KEY} is null in every run): nothing to draw for "
                     "--kind clip-rate")
    clip_values = sorted({run.settings.get(CLIP_KEY) for run in finished}, key=sort_key)
    categories = [display(v) for v in clip_values]
    rows = grouping(finished, [k for k in by if k != CLIP_KEY] if by else None, excluded=[CLIP_KEY])
    xlabel = f"{CLIP_KEY} (max gradient norm; {display(None)}: no clipping)"
    rate_panel = Panel("clip rate", xlabel, "fraction of optimizer steps clipped", categories=categories,
                       y_range=(-0.05, 1.05))
    diverged_panel = Panel("divergence", xlabel, "diverged runs (fraction of finished runs)",
                           categories=categories, y_range=(-0.05, 1.05))
    for index, row in enumerate(rows.rows):
        xs, means, lows, highs, fractions = [], [], [], [], []
        for position, value in enumerate(clip_values):
            at = [run for run in row.runs if run.settings.get(CLIP_KEY) == value]
            if not at:
                continue
            rates = [r for r in (_clip_rate(run) for run in at if run.status == COMPLETED)
                     if r is not None and math.isfinite(r)]
            xs.append(position)
            fractions.append(sum(run.status == DIVERGED for run in at) / len(at))
            means.append(float(np.mean(rates)) if rates else None)
            lows.append(min(rates) if rates else None)
            highs.append(max(rates) if rates else None)
        rate_panel.series.append(Series(row.label, None, xs, means, lows, highs, index))
        diverged_panel.series.append(Series(row.label, None, xs, fractions, row=index))
    notes = ["clip rate: mean over the completed seeds, bars min–max (a diverged run has no clip rate); "
             "divergence: the fraction of finished runs that diverged", _pooled_note(finished, rows, [CLIP_KEY])]
    return _figure("clip-rate", "Gradient clipping: how often it fires, and divergence", notes,
                   [rate_panel, diverged_panel], rows)


# --- gates --------------------------------------------------------------------------------------------------------

def gates_figure(runs: Sequence[Run], by: Sequence[str] | None, layer: int = 0, direction: str = "forward") -> Figure:
    rows = grouping(runs, by)
    gates: dict[str, None] = {}
    for run in runs:
        for column in run_history(run):
            match = _GATE_COLUMN.match(column)
            if match and int(match[1]) == layer and match[2] == direction:
                gates[match[3]] = None
    if not gates:
        raise NoData(f"no run's history has gate statistics (gates/layer{layer}/{direction}/...): nothing to draw "
                     "for --kind gates")
    panels, drawn_any = [], {}
    for statistic, title, ylabel in (("mean", "gate means", "mean activation"),
                                     ("saturated", "saturation", "fraction saturated (<0.05 or >0.95; h: |h|≥0.95)")):
        panel = Panel(title, STEP_LABEL, ylabel, y_range=(-0.05, 1.05))
        for number, gate in enumerate(gates):
            series, drawn = _history_series(rows.rows, f"gates/layer{layer}/{direction}/{gate}_{statistic}", "step",
                                            label=lambda row, gate=gate: f"{row.label}: {gate}")
            for line in series:
                line.marker = number
            panel.series += series
            for index, n in drawn.items():
                drawn_any[index] = max(drawn_any.get(index, 0), n)
        panel.series.sort(key=lambda s: s.row)
        panels.append(panel)
    notes = [f"layer {layer}, {direction}: one line per row (colour) and gate (marker), mean over completed seeds, "
             "band: min–max "
             "(gates as the cell's step reports them; h_saturated: tanh units in their saturating regime)",
             _pooled_note(runs, rows),
             _left_out(rows.rows, drawn_any, "no gate history", lambda run: has_layer(run, layer, direction))]
    return _figure("gates", f"Gates over training: layer {layer}, {direction} direction", notes, panels, rows)


# --- length generalisation -------------------------------------------------------------------------------------

_TEST_AT = re.compile(r"test@(\d+)/(.+)$")


def _tested_lengths(run: Run, metric: str) -> dict[int, float]:
    """Length tested at -> the run's ``metric`` there: its training length (``task.seq_len``, ``test/<metric>``)
    and every ``test@<T>/<metric>``; the lengths as ``data.seq_len`` counts them (copy: the delay)."""
    metrics = run.record.get("metrics")
    values: dict[int, float] = {}
    if not isinstance(metrics, Mapping):
        return values
    trained = run.settings.get("data.seq_len")
    if isinstance(trained, int) and isinstance(metrics.get(f"test/{metric}"), (int, float)):
        values[trained] = float(metrics[f"test/{metric}"])
    for name, value in metrics.items():
        match = _TEST_AT.match(str(name))
        if match and match[2] == metric and isinstance(value, (int, float)):
            values[int(match[1])] = float(value)
    return values


def test_length_figure(runs: Sequence[Run], by: Sequence[str] | None) -> Figure:
    metric = task_metric(runs)
    completed = [run for run in runs if run.status == COMPLETED]
    tested = {id(run): _tested_lengths(run, metric) for run in completed} if metric else {}
    if not any(len(values) > 1 for values in tested.values()):
        raise NoData("no completed run was tested at other lengths (data.test_seq_len, on data=adding or copy): "
                     "nothing to draw for --kind test-length")
    rows = grouping(completed, by)
    lengths = sorted({length for values in tested.values() for length in values})
    metric_panel = Panel(f"test {metric} against the length tested at", "data.seq_len tested at", metric)
    reach_panel = Panel("gradient reach at the training length", "row", "steps back until ‖∂ℓ/∂h_t‖ fell 10×",
                        categories=[row.label for row in rows.rows])
    baselines = {run.task.get("baseline_metric") for run in completed}
    if metric == "mse" and len(baselines) == 1 and isinstance(next(iter(baselines)), (int, float)):
        metric_panel.reference_lines.append((float(next(iter(baselines))), "input-blind baseline"))
    for index, row in enumerate(rows.rows):
        xs, means, lows, highs = [], [], [], []
        for length in lengths:
            values = [tested[id(run)][length] for run in row.runs if length in tested[id(run)]]
            values = [v for v in values if math.isfinite(v)]
            if values:
                xs.append(float(length))
                means.append(float(np.mean(values)))
                lows.append(min(values))
                highs.append(max(values))
        metric_panel.series.append(Series(row.label, len(row.runs), xs, means, lows, highs, index))
        reaches = [r for r in (run.value("gradients.reach") for run in row.runs) if r is not None and math.isfinite(r)]
        if reaches:
            reach_panel.series.append(Series(row.label, len(reaches), [float(index)], [float(np.mean(reaches))],
                                             [min(reaches)], [max(reaches)], index))
    _log_scale_where_it_spans_decades(metric_panel)
    trained = sorted({run.settings.get("data.seq_len") for run in completed}, key=sort_key)
    notes = [f"left: test {metric} (mean over completed seeds, band: min–max) at the training length "
             f"(data.seq_len={', '.join(map(display, trained))}) and at each data.test_seq_len; lengths counted as "
             "data.seq_len counts them (copy: the delay)",
             "right: the gradient's reach at the last probe (training length, first layer, forward): how many steps "
             "back the gradient from the loss stays within 10× of its value there; mean, bars min–max",
             _pooled_note(completed, rows)]
    return _figure("test-length", "Length generalisation: tested at other lengths", notes,
                   [metric_panel, reach_panel], rows)


def build_figure(runs: Sequence[Run], kind: str, by: Sequence[str] | None = None, layer: int = 0,
                 direction: str = "forward") -> Figure:
    """The figure ``kind`` (one of :data:`KINDS`) of ``runs`` grouped by ``by``; NoData where the records lack what
    it draws."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if kind == "gradient-flow":
            return gradient_flow_figure(runs, by, layer, direction)
        if kind in ("curves", "curves-time"):
            return curves_figure(runs, by, "time" if kind == "curves-time" else "step")
        if kind == "clip-rate":
            return clip_rate_figure(runs, by)
        if kind == "gates":
            return gates_figure(runs, by, layer, direction)
        if kind == "test-length":
            return test_length_figure(runs, by)
    raise ReportError(f"--kind={kind!r} is not allowed: one of {', '.join(KINDS)}")

