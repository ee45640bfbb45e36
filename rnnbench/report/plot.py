"""``rnnbench plot``: the figures of :mod:`rnnbench.report.figures` drawn as PNG and SVG with matplotlib's Agg backend.

Each row of the grouping has its colour (of :data:`rnnbench.report.figures.PALETTE`) and its marker (lines that
coincide stay visible), a dashed line is a second state (the LSTM cell state), a dotted one a single run's (a
diverged run, up to its last finite value). The figure's notes, wrapped to its width, run below the panels: what
the lines and bands are, what a line pools, which runs are not drawn and why, which lines coincide. A log axis
spanning many decades is labelled at round powers of ten (1e-20, 1e-40, ...). ``--kind all`` draws every kind the
records have data for. ``rnnbench plot`` writes beside the records (inside the first dir) unless ``--output`` says
where.

matplotlib is imported only when a figure is drawn.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnnbench.report.figures import KINDS as FIGURE_KINDS
from rnnbench.report.figures import (PALETTE, Figure, NoData, Panel, build_figure, figure_views, gradient_curve,
                                      view_name)
from rnnbench.report.records import ReportError, RunSet

__all__ = ["KINDS", "DPI", "FIGSIZE", "NoData", "plot", "draw", "DEFAULT_BY", "decade_ticks"]

KINDS = (*FIGURE_KINDS, "all")
DPI = 100
FIGSIZE = (12.0, 4.8)  # inches: every figure is FIGSIZE * DPI pixels
DEFAULT_BY = ("model.cell",)
MARKERS = "osD^vP*Xph<>"
LINESTYLES = {"solid": "-", "dashed": "--", "dotted": ":"}
NOTE_CHARACTERS = 190  # characters of an 8-point note line across the figure's width
LEGEND_ROWS = 24  # legend entries per column: more than fit the height at 7 points start another column
DECADE_STEPS = (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500)  # decades between two labelled ticks of a log axis
MOST_TICKS = 7  # labelled ticks on a log axis at most
_curve = gradient_curve  # the record's curve indexed by distance from the loss (kept for callers of the old name)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    matplotlib.rcParams["svg.hashsalt"] = "rnnbench"  # the SVG's ids: the same figure gives the same bytes
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, output: Path, kind: str) -> list[Path]:
    output.mkdir(parents=True, exist_ok=True)
    paths = [output / f"{kind}.png", output / f"{kind}.svg"]
    for path in paths:
        fig.savefig(path, dpi=DPI, metadata={"Date": None} if path.suffix == ".svg" else {"Software": None})
    _pyplot().close(fig)
    return paths


def _values(values: Sequence[float | None] | None) -> np.ndarray | None:
    return None if values is None else np.asarray([np.nan if v is None else v for v in values], dtype=float)


def _markevery(points: int, row: int) -> Any:
    """Markers spread along a long line, shifted per row so that coinciding lines show both."""
    if points <= 12:
        return None
    step = max(1, points // 8)
    return (row * max(1, step // 5) % step, step)


def decade_ticks(low: float, high: float, most: int = MOST_TICKS) -> list[int]:
    """The exponents to label on a log axis from 10**low to 10**high: every k-th decade for the smallest k of
    :data:`DECADE_STEPS` that gives at most ``most`` ticks, at multiples of k (1e-20, 1e-40, ..., never 1e-31)."""
    first, last = math.ceil(low), math.floor(high)
    for step in DECADE_STEPS:
        ticks = list(range(math.ceil(first / step) * step, last + 1, step))
        if len(ticks) <= most:
            return ticks
    return ticks


def _log_ticks(ax: Any) -> None:
    """Round powers of ten on the y axis of a log panel that spans more decades than :data:`MOST_TICKS`."""
    from matplotlib.ticker import FixedLocator, NullLocator

    bottom, top = sorted(ax.get_ylim())
    if bottom <= 0 or math.log10(top) - math.log10(bottom) <= MOST_TICKS:
        return  # matplotlib's own decades, with their minor ticks
    exponents = decade_ticks(math.log10(bottom), math.log10(top))
    ax.yaxis.set_major_locator(FixedLocator([10.0 ** e for e in exponents if 10.0 ** e > 0]))
    ax.yaxis.set_minor_locator(NullLocator())


def _draw_panel(ax: Any, panel: Panel) -> None:
    from matplotlib.ticker import MaxNLocator

    rows = sorted({series.row for series in panel.series})
    # On a categorical axis the rows' points stand side by side around each category (else they would hide).
    dodge = {row: (i - (len(rows) - 1) / 2) * min(0.08, 0.6 / max(1, len(rows))) for i, row in enumerate(rows)}

    for series in panel.series:
        color = PALETTE[series.row % len(PALETTE)]
        marker = MARKERS[(series.row if series.marker is None else series.marker) % len(MARKERS)]
        hollow = {"markerfacecolor": "white"} if series.row % 2 else {}
        x, y = np.asarray(series.x, dtype=float), _values(series.y)
        low, high = _values(series.low), _values(series.high)
        style = LINESTYLES[series.style]
        if panel.categories is not None:
            errors = None if low is None else np.nan_to_num(np.vstack([y - low, high - y]))
            ax.errorbar(x + dodge[series.row], y, yerr=errors, fmt=style, marker=marker, color=color, capsize=3,
                        label=series.label, **hollow)
            continue
        width = 1.0 if series.style == "dotted" else 1.6
        ax.plot(x, y, style, color=color, linewidth=width, marker=marker if series.style != "dotted" else "x",
                markevery=_markevery(len(x), series.row) if series.style != "dotted" else [len(x) - 1],
                markersize=4, label=series.label, **hollow)
        if low is not None and high is not None:
            ax.fill_between(x, low, high, color=color, alpha=0.12, linewidth=0)
    for y, label in panel.reference_lines:
        ax.axhline(y, color="0.4", linestyle=":", linewidth=1)
        ax.annotate(label, (1.0, y), xycoords=("axes fraction", "data"), ha="right", va="bottom", fontsize=7,
                    color="0.3")
    if panel.log_y:
        ax.set_yscale("log")
    if panel.y_range:
        ax.set_ylim(*panel.y_range)
    if panel.log_y and panel.series:
        _log_ticks(ax)
    if panel.categories is not None:
        ax.set_xticks(range(len(panel.categories)), panel.categories)
        ax.set_xlim(-0.5, len(panel.categories) - 0.5)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if not panel.series and panel.empty:
        ax.text(0.5, 0.5, panel.empty, ha="center", va="center", transform=ax.transAxes)
    ax.set_title(panel.title, fontsize=10)
    ax.set_xlabel(panel.xlabel, fontsize=9)
    ax.set_ylabel(panel.ylabel, fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(True, which="major", alpha=0.3)


def draw(figure: Figure) -> Any:
    """A matplotlib figure of ``figure``: its panels side by side, one legend at the right, the notes below."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(figure.panels), figsize=FIGSIZE, dpi=DPI, layout="constrained", squeeze=False)
    for ax, panel in zip(axes[0], figure.panels):
        _draw_panel(ax, panel)
    fig.suptitle(figure.title, fontsize=11)
    handles: dict[str, Any] = {}
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="outside right upper", fontsize=7,
                   title=figure.legend_title, title_fontsize=7, ncols=math.ceil(len(handles) / LEGEND_ROWS))
    if figure.notes:
        lines = [wrapped for note in figure.notes for wrapped in textwrap.wrap(note, NOTE_CHARACTERS)]
        fig.supxlabel("\n".join(lines), fontsize=8, x=0.01, ha="left", color="0.25")
    return fig


def plot(runset: RunSet, kind: str, by: Sequence[str] | None = None, output: str | Path = ".",
         skipped: Callable[[str], None] | None = None) -> list[Path]:
    """Draw one kind of figure (``all``: every kind the records have data for, telling ``skipped`` why each other
    kind was left out); gradient flow and gates once per layer-direction (``gradient-flow.png`` is layer 0,
    forward; ``gradient-flow-layer1-backward.png`` another). Returns the PNG and SVG paths written. Raises
    NoData, ReportError."""
    if kind not in KINDS:
        raise ReportError(f"--kind={kind!r} is not allowed: one of {', '.join(KINDS)}")
    by = list(dict.fromkeys(by or DEFAULT_BY))
    paths: list[Path] = []
    reasons = []
    for each, layer, direction in figure_views(runset.runs, FIGURE_KINDS if kind == "all" else [kind]):
        try:
            figure = build_figure(runset.runs, each, by, layer, direction)
        except NoData as error:
            reasons.append(str(error))
            if skipped and kind == "all":
                skipped(f"--kind {view_name(each, layer, direction)}: {error}")
            continue
        paths += _save(draw(figure), Path(output), view_name(each, layer, direction))
    if not paths and kind != "all":
        raise NoData(reasons[0])
    if not paths:
        raise NoData("nothing to draw for --kind all: " + "; ".join(reasons))
    return paths
