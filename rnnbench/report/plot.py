"""``rnnbench plot``: figures (PNG and SVG) from result records, drawn with matplotlib's Agg backend.

Kinds:

- ``gradient-flow``: ``‖∂ℓ_T/∂h_t‖`` of the first layer's forward direction against the distance from the
  loss, one line per group (geometric mean over seeds, band: min–max), one panel for the first probe
  (initialisation) and one for the last (after training); dashed: the LSTM cell state.
- ``curves``: ``train/loss`` and ``val/loss`` against the optimizer step from each run's
  ``csv/metrics.csv``, one line per group (mean over seeds, band: min–max).
- ``clip-rate``: the fraction of steps whose gradient was clipped, and the fraction of runs that
  diverged, against ``trainer.gradient_clip_val`` (null shown as "none"), one line per group.

matplotlib is imported only when a figure is drawn.
"""

from __future__ import annotations

import csv
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnnbench.report.records import (ReportError, Run, RunSet, all_keys, display, history_path, layer_entry,
                                     read_history, sort_key, varying_keys)
from rnnbench.tracking.record import COMPLETED, DIVERGED, FINISHED

__all__ = ["KINDS", "DPI", "FIGSIZE", "NoData", "plot"]

KINDS = ("gradient-flow", "curves", "clip-rate")
DPI = 100
FIGSIZE = (12.0, 4.8)  # inches: every figure is FIGSIZE * DPI pixels
DEFAULT_BY = ("model.cell",)
CLIP_KEY = "trainer.gradient_clip_val"
GRADIENT_LABEL = r"$\Vert\partial\ell_T/\partial h_t\Vert$ (log scale)"
DISTANCE_LABEL = "distance from the loss (time steps)"
STEP_LABEL = "optimizer step"


class NoData(ReportError):
    """The records hold nothing this kind of figure draws (reported as one line, exit 1)."""


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


# --- grouping --------------------------------------------------------------------------------------------------

def _grouped(runs: Sequence[Run], keys: Sequence[str]) -> list[tuple[str, list[Run]]]:
    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        groups.setdefault(tuple(run.settings.get(k) for k in keys), []).append(run)
    ordered = sorted(groups.items(), key=lambda item: tuple(sort_key(v) for v in item[0]))
    return [(", ".join(display(v) for v in values), members) for values, members in ordered]


def _legend_title(keys: Sequence[str]) -> str:
    return ", ".join(keys)


def _pooled_note(runs: Sequence[Run], keys: Sequence[str], excluded: Sequence[str] = ()) -> str | None:
    pooled = [k for k in varying_keys(runs) if k not in keys and k not in excluded]
    return f"pooled over {', '.join(pooled)} (use --by to separate)" if pooled else None


def _log_stats(rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, min and max over runs of ``log10`` values (finite ones; rows NaN-padded to one length)."""
    width = max(len(r) for r in rows)
    stack = np.full((len(rows), width), np.nan)
    for i, row in enumerate(rows):
        stack[i, :len(row)] = np.where(np.isfinite(row), row, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a distance no run reaches: NaN, drawn as a gap
        return np.nanmean(stack, axis=0), np.nanmin(stack, axis=0), np.nanmax(stack, axis=0)


def _save(fig: Any, output: Path, kind: str) -> list[Path]:
    output.mkdir(parents=True, exist_ok=True)
    paths = [output / f"{kind}.png", output / f"{kind}.svg"]
    for path in paths:
        fig.savefig(path, dpi=DPI)
    _pyplot().close(fig)
    return paths


def _figure(title: str, subtitle: str | None):
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=FIGSIZE, dpi=DPI)
    fig.suptitle(title + (f"\n{subtitle}" if subtitle else ""), fontsize=11)
    return fig, axes


def _finish(fig: Any, axes: Sequence[Any], legend_title: str | None, integer_x: bool = True) -> None:
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        if integer_x:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, which="major", alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        if handles:
            ax.legend(title=legend_title, fontsize=8, title_fontsize=8)
    fig.tight_layout()


# --- gradient flow ----------------------------------------------------------------------------------------------

def _floats(values: Any) -> np.ndarray | None:
    if not isinstance(values, Sequence) or isinstance(values, str) or not values:
        return None
    try:
        return np.asarray([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        return None


def _curve(entry: Mapping[str, Any] | None, name: str) -> np.ndarray | None:
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


def _probe_step(runs: Sequence[Run], index: int) -> str:
    steps = set()
    for run in runs:
        probes = (run.gradients or {}).get("probe_steps")
        if isinstance(probes, Sequence) and probes:
            steps.add(probes[index])
    return f"step {steps.pop()}" if len(steps) == 1 else "steps vary between runs"


def plot_gradient_flow(runset: RunSet, by: Sequence[str], output: Path) -> list[Path]:
    runs = [run for run in runset.runs if run.status == COMPLETED
            and (_curve(layer_entry(run.gradients), "curve_first") is not None
                 or _curve(layer_entry(run.gradients), "curve_last") is not None)]
    if not runs:
        raise NoData("no completed run's record has gradient curves (gradients.layers[].curve_first/curve_last): "
                     "nothing to draw for --kind gradient-flow")
    note = _pooled_note(runs, by)
    fig, axes = _figure("Gradient flow through time: layer 0, forward direction",
                        "line: geometric mean over seeds; band: min–max; dashed: LSTM cell state"
                        + (f" — {note}" if note else ""))
    panels = (("first", f"first probe: initialisation ({_probe_step(runs, 0)})"),
              ("last", f"last probe: after training ({_probe_step(runs, -1)})"))
    groups = _grouped(runs, by)
    for ax, (which, title) in zip(axes, panels):
        for index, (label, members) in enumerate(groups):
            color = f"C{index % 10}"
            for field, style, suffix in ((f"curve_{which}", "-", ""), (f"cell_curve_{which}", "--", " (cell state)")):
                rows = [c for c in (_curve(layer_entry(run.gradients), field) for run in members) if c is not None]
                if not rows:
                    continue
                mean, low, high = _log_stats(rows)
                distance = np.arange(len(mean))
                ax.plot(distance, 10.0 ** mean, style, color=color, label=f"{label}{suffix} (n={len(rows)})")
                ax.fill_between(distance, 10.0 ** low, 10.0 ** high, color=color, alpha=0.15, linewidth=0)
        ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(DISTANCE_LABEL)
        ax.set_ylabel(GRADIENT_LABEL)
    _finish(fig, axes, _legend_title(by))
    return _save(fig, output, "gradient-flow")


# --- learning curves --------------------------------------------------------------------------------------------

def plot_curves(runset: RunSet, by: Sequence[str], output: Path) -> list[Path]:
    columns = ("train/loss", "val/loss")
    histories: list[tuple[Run, dict[str, list[tuple[int, float]]]]] = []
    for run in runset.runs:
        path = history_path(run) if run.status == COMPLETED else None
        if path is not None:
            try:
                history = read_history(path, columns)
            except (OSError, csv.Error, UnicodeDecodeError):
                continue
            if any(history.values()):
                histories.append((run, history))
    if not histories:
        raise NoData("no completed run has a learning-curve history (csv/metrics.csv, written by the CSV logger: "
                     "train with logger=csv or logger=wandb): nothing to draw for --kind curves")
    runs = [run for run, _ in histories]
    note = _pooled_note(runs, by)
    fig, axes = _figure("Learning curves", "line: mean over seeds; band: min–max" + (f" — {note}" if note else ""))
    by_run = {id(run): history for run, history in histories}
    groups = _grouped(runs, by)
    baselines = {run.task.get("baseline_loss") for run in runs}
    for ax, column, title in zip(axes, columns, ("training loss (train/loss)", "validation loss (val/loss)")):
        extremes: list[float] = []
        for index, (label, members) in enumerate(groups):
            points: dict[int, list[float]] = {}
            for run in members:
                for step, value in by_run[id(run)][column]:
                    points.setdefault(step, []).append(value)
            steps = sorted(s for s, vs in points.items() if any(math.isfinite(v) for v in vs))
            if not steps:
                continue
            values = [np.asarray([v for v in points[s] if math.isfinite(v)]) for s in steps]
            mean = np.asarray([v.mean() for v in values])
            low, high = np.asarray([v.min() for v in values]), np.asarray([v.max() for v in values])
            extremes += [float(low.min()), float(high.max())]
            color = f"C{index % 10}"
            ax.plot(steps, mean, "-", marker="." if len(steps) < 30 else None, color=color,
                    label=f"{label} (n={len(members)})")
            ax.fill_between(steps, low, high, color=color, alpha=0.15, linewidth=0)
        if len(baselines) == 1 and isinstance(next(iter(baselines)), (int, float)):
            ax.axhline(next(iter(baselines)), color="0.4", linestyle=":", linewidth=1, label="input-blind baseline")
        if extremes and min(extremes) > 0 and max(extremes) / min(extremes) > 20:  # log where it spans decades
            ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(STEP_LABEL)
        ax.set_ylabel("loss" + (" (log scale)" if ax.get_yscale() == "log" else ""))
        if not any(line.get_label() != "input-blind baseline" for line in ax.lines):
            ax.text(0.5, 0.5, f"no {column} in the histories", ha="center", va="center", transform=ax.transAxes)
    _finish(fig, axes, _legend_title(by))
    return _save(fig, output, "curves")


# --- clip rate ---------------------------------------------------------------------------------------------------

def _clip_rate(run: Run) -> float | None:
    gradients = run.gradients or {}
    rate = gradients.get("clip_rate")
    if rate is None and "clip_rate" in gradients and run.settings.get(CLIP_KEY) is None:
        return 0.0  # no clipping configured: clipping never fires
    return float(rate) if isinstance(rate, (int, float)) and not isinstance(rate, bool) else None


def plot_clip_rate(runset: RunSet, by: Sequence[str], output: Path) -> list[Path]:
    if not any(run.gradients is not None and "clip_rate" in run.gradients for run in runset.runs):
        raise NoData("no run's record has gradients.clip_rate (the gradients section): "
                     "nothing to draw for --kind clip-rate")
    runs = [run for run in runset.runs if run.status in FINISHED]
    if not runs:
        raise NoData("no run completed or diverged: nothing to draw for --kind clip-rate")
    clip_values = sorted({run.settings.get(CLIP_KEY) for run in runs}, key=sort_key)
    position = {value: i for i, value in enumerate(clip_values)}
    note = _pooled_note(runs, by, excluded=[CLIP_KEY])
    fig, axes = _figure("Gradient clipping: how often it fires, and divergence",
                        "points: mean over seeds; bars: min–max" + (f" — {note}" if note else ""))
    groups = _grouped(runs, [k for k in by if k != CLIP_KEY] or by)
    for index, (label, members) in enumerate(groups):
        color = f"C{index % 10}"
        xs, means, lows, highs, fractions = [], [], [], [], []
        for value in clip_values:
            at = [run for run in members if run.settings.get(CLIP_KEY) == value]
            if not at:
                continue
            rates = [r for r in (_clip_rate(run) for run in at) if r is not None and math.isfinite(r)]
            xs.append(position[value])
            fractions.append(sum(run.status == DIVERGED for run in at) / len(at))
            means.append(float(np.mean(rates)) if rates else np.nan)
            lows.append(min(rates) if rates else np.nan)
            highs.append(max(rates) if rates else np.nan)
        xs_a, means_a = np.asarray(xs, dtype=float), np.asarray(means)
        errors = np.vstack([means_a - np.asarray(lows), np.asarray(highs) - means_a])
        axes[0].errorbar(xs_a, means_a, yerr=np.nan_to_num(errors), fmt="-o", color=color, capsize=3, label=label)
        axes[1].plot(xs_a, fractions, "-o", color=color, label=label)
    labels = [display(v) for v in clip_values]
    for ax in axes:
        ax.set_xticks(range(len(clip_values)), labels)
        ax.set_xlim(-0.5, len(clip_values) - 0.5)
        ax.set_xlabel(f"{CLIP_KEY} (max gradient norm; none: no clipping)")
        ax.set_ylim(-0.05, 1.05)
    axes[0].set_title("clip rate", fontsize=10)
    axes[0].set_ylabel("clip rate (fraction of optimizer steps clipped)")
    axes[1].set_title("divergence", fontsize=10)
    axes[1].set_ylabel("diverged runs (fraction of finished runs)")
    _finish(fig, axes, _legend_title([k for k in by if k != CLIP_KEY] or by), integer_x=False)
    return _save(fig, output, "clip-rate")


def plot(runset: RunSet, kind: str, by: Sequence[str] | None = None, output: str | Path = ".") -> list[Path]:
    """Draw one kind of figure; returns the PNG and SVG paths written. Raises NoData, ReportError."""
    if kind not in KINDS:
        raise ReportError(f"--kind {kind!r}: choose one of {', '.join(KINDS)}")
    by = list(dict.fromkeys(by or DEFAULT_BY))
    known = all_keys(runset.runs)
    for key in by:
        if key not in known:
            raise ReportError(f"--by {key}: no run has this setting "
                              f"(settings that vary: {', '.join(varying_keys(runset.runs)) or 'none'})")
    from rnnbench.report.table import TASK_KEYS

    varying = varying_keys(runset.runs)
    mixed = [k for k in TASK_KEYS if k in varying and k not in by]
    if mixed:  # one line would average what means different things: refuse rather than pool
        raise ReportError(f"--kind {kind}: the runs differ in {', '.join(mixed)} ("
                          + "; ".join(f"{k}: {', '.join(sorted({str(r.settings.get(k)) for r in runset.runs}))}"
                                      for k in mixed)
                          + "), which one figure would pool: give the dirs of one, or add --by "
                          + " --by ".join(mixed))
    drawer = {"gradient-flow": plot_gradient_flow, "curves": plot_curves, "clip-rate": plot_clip_rate}[kind]
    return drawer(runset, by, Path(output))
