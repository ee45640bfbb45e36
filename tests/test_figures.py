"""The figures' data and drawing, on the committed records of results/: the notes say what is true, lines that
coincide are named, runs not drawn are named, and every word stays inside the canvas."""

from __future__ import annotations

import json
import math
import statistics

import numpy as np
import pytest

from rnnbench.cli import main
from rnnbench.report import plot as plot_module
from rnnbench.report.figures import NoData, build_figure
from rnnbench.report.records import load_runs
from rnnbench.record.schema import find_records

from conftest import REPO

RESULTS = REPO / "results"


@pytest.fixture(scope="module")
def gradient_flow():
    return load_runs([RESULTS / "gradient_flow" / "runs"])


@pytest.fixture(scope="module")
def clipping():
    return load_runs([RESULTS / "clipping" / "runs"])


def test_gradient_flow_lines_are_geometric_means_and_the_notes_are_true(gradient_flow):
    figure = build_figure(gradient_flow.runs, "gradient-flow", ["model"])
    # --by model determines model.cell, model.forget_bias, ...: nothing is pooled, and no note says so
    # the only pooled settings are those the older seeds' records hold differently (results/gradient_flow/README.md)
    assert [note for note in figure.notes if "pool" in note] == [
        "each line pools runs that differ in model.nonlinearity, model.cell_options, model.compile (choose the "
        "grouping to separate them)"]
    assert figure.rows == ["gru", "lstm_forget_bias0", "lstm_forget_bias1", "rnn", "rnn_orthogonal"]
    first = {s.label: s for s in figure.panels[0].series}
    assert set(first) == {"gru (n=5)", "lstm_forget_bias0 (n=5)", "lstm_forget_bias0, cell state (n=5)",
                          "lstm_forget_bias1 (n=5)", "lstm_forget_bias1, cell state (n=5)", "rnn (n=5)",
                          "rnn_orthogonal (n=5)"}
    records = [json.loads(p.read_text()) for p in sorted(find_records(RESULTS / "gradient_flow" / "runs"))]
    rnn = [r["gradients"]["layers"][0]["log10_curve_first"] for r in records if r["choices"]["model"] == "rnn"]
    series = first["rnn (n=5)"]
    for distance in (0, 10, 99):  # the curve runs from the first processed step: distance 0 is its last element
        logs = [curve[-1 - distance] for curve in rnn]
        assert series.y[distance] == pytest.approx(10 ** statistics.mean(logs), rel=1e-9)
        assert (series.low[distance], series.high[distance]) == pytest.approx((10 ** min(logs), 10 ** max(logs)),
                                                                              rel=1e-9)
    assert first["lstm_forget_bias1, cell state (n=5)"].style == "dashed"


def test_coinciding_lines_are_named(gradient_flow):
    figure = build_figure(gradient_flow.runs, "curves", ["model"])
    assert [panel.title for panel in figure.panels] == ["training loss (train/loss)", "validation loss (val/loss)",
                                                        "validation mse (val/mse)"]  # the task metric too
    assert "validation loss (val/loss): rnn and rnn_orthogonal coincide (one line lies on the other; the markers " \
           "tell them apart)" in figure.notes
    assert not any(note.startswith("validation loss (val/loss): gru") for note in figure.notes)


def test_diverged_runs_are_drawn_or_named(clipping):
    curves = build_figure(clipping.runs, "curves", ["model.cell", "trainer.gradient_clip_val"])
    dotted = [s for s in curves.panels[0].series if s.style == "dotted"]
    diverged = [r for r in clipping.runs if r.status == "diverged"]
    assert len(dotted) == len(diverged) == 15  # every unclipped run: 3 cells x 5 seeds
    for run in diverged:  # each dotted line is one diverged run's history up to its last finite loss
        label = f"{run.settings['model.cell']}, null: seed {run.seed} diverged at step {run.record['diverged_at_step']}"
        (line,) = [s for s in dotted if s.label == label]
        assert all(math.isfinite(v) for v in line.y) and max(line.x) <= run.record["diverged_at_step"] + 1
    flow = build_figure(clipping.runs, "gradient-flow", ["model.cell", "trainer.gradient_clip_val"])
    assert "not drawn (only completed runs' curves are drawn): gru, null: 5 diverged; lstm, null: 5 diverged; " \
           "rnn, null: 5 diverged" in flow.notes
    rate = build_figure(clipping.runs, "clip-rate", ["model.cell"])
    assert rate.panels[0].categories == ["null", "0.1", "1", "10"]  # as a Hydra override takes it back
    lstm = rate.panels[1].series[1]
    assert lstm.label == "lstm" and lstm.y == [1.0, 0.0, 0.0, 0.0]  # divergence fraction by threshold


def test_clip_rate_of_runs_that_never_clip_is_exit_1(gradient_flow, capsys, tmp_path):
    with pytest.raises(NoData, match="no run clips its gradients"):
        build_figure(gradient_flow.runs, "clip-rate", ["model"])
    code = main(["plot", str(RESULTS / "gradient_flow" / "runs"), "--kind", "clip-rate", "--output", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and err.splitlines()[-1] + "\n" == ("rnnbench: error: no run clips its gradients (trainer.gradient_clip_val is null in "
                                 "every run): nothing to draw for --kind clip-rate\n")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("folder,kind,by", [("gradient_flow", "gradient-flow", ["model"]),
                                            ("clipping", "curves", ["model.cell", "trainer.gradient_clip_val"]),
                                            ("clipping", "clip-rate", ["model.cell"])])
def test_every_word_stays_inside_the_canvas(folder, kind, by):
    figure = build_figure(load_runs([RESULTS / folder / "runs"]).runs, kind, by)
    fig = plot_module.draw(figure)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    width, height = fig.canvas.get_width_height()
    texts = [*fig.texts, *(t for legend in fig.legends for t in [legend.get_title(), *legend.get_texts()])]
    for ax in fig.axes:
        texts += [ax.title, ax.xaxis.label, ax.yaxis.label, *ax.texts]
        for labels, locations, (low, high) in ((ax.get_xticklabels(), ax.get_xticks(), sorted(ax.get_xlim())),
                                               (ax.get_yticklabels(), ax.get_yticks(), sorted(ax.get_ylim()))):
            texts += [label for label, at in zip(labels, locations) if low <= at <= high]  # the ticks drawn
    texts = [t for t in texts if t.get_visible() and t.get_text()]
    assert any("line: geometric mean" in t.get_text() or "line: mean" in t.get_text() or "clip rate:" in t.get_text()
               for t in texts)
    for text in texts:
        box = text.get_window_extent(renderer)
        assert box.x0 >= -1 and box.y0 >= -1 and box.x1 <= width + 1 and box.y1 <= height + 1, text.get_text()[:60]
    plot_module._pyplot().close(fig)


def test_gates_over_training(gradient_flow):
    figure = build_figure(gradient_flow.runs, "gates", ["model"])
    labels = [s.label for s in figure.panels[0].series]
    assert "lstm_forget_bias1: forget (n=5)" in labels and "gru: update (n=5)" in labels
    assert "not drawn (no gate history): rnn: 3 with none recorded; rnn_orthogonal: 3 with none recorded" in figure.notes
    forget = next(s for s in figure.panels[0].series if s.label == "lstm_forget_bias1: forget (n=5)")
    assert all(0 <= v <= 1 for v in forget.y) and np.all(np.diff(forget.x) > 0)


def test_the_reference_model_is_a_line_where_the_runs_share_one():
    runs = load_runs([RESULTS / "depth_direction" / "runs"]).runs
    by = ["model.cell"]
    metric_panel = build_figure(runs, "curves", by).panels[2]
    assert metric_panel.title == "validation accuracy (val/accuracy)"
    assert [label for _, label in metric_panel.reference_lines] == ["input-blind baseline"]  # 5 splits: no one line
    seed0 = [run for run in runs if run.seed == 0]  # one split: its logistic regression's validation accuracy
    lines = dict((label, y) for y, label in build_figure(seed0, "curves", by).panels[2].reference_lines)
    assert lines["reference: logistic regression"] == seed0[0].record["task"]["reference"]["val/accuracy"]
    assert lines["input-blind baseline"] == pytest.approx(0.1)


def test_plot_draws_every_layer_and_direction(tmp_path, capsys):
    """depth_direction's records cover layers 0-2, forward and backward: one gradient-flow figure each, layer 0
    forward under the kind's own name, each figure's title naming its layer and direction."""
    assert main(["plot", str(RESULTS / "depth_direction" / "runs"), "--kind", "gradient-flow",
                 "--output", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.glob("*.png"))
    assert names == sorted(["gradient-flow.png"] + [f"gradient-flow-layer{layer}-{direction}.png"
                                                    for layer in range(3) for direction in ("forward", "backward")
                                                    if (layer, direction) != (0, "forward")])
    runs = load_runs([RESULTS / "depth_direction" / "runs"]).runs
    figure = build_figure(runs, "gradient-flow", None, 2, "backward")
    assert figure.title == "Gradient flow through time: layer 2, backward direction"
    # only bidirectional 3-layer runs have layer 2's backward direction: every line's n counts those alone
    expected = sum(1 for run in runs if run.status == "completed" and run.settings.get("model.num_layers") == 3
                   and run.settings.get("model.bidirectional") is True)
    assert sum(int(s.label.rsplit("n=", 1)[1].rstrip(")")) for s in figure.panels[0].series
               if "cell state" not in s.label) == expected


@pytest.mark.parametrize("lines,columns", [(24, 1), (25, 2), (36, 2), (49, 3)])
def test_a_long_legend_wraps_into_columns_that_stay_on_the_canvas(lines, columns):
    from rnnbench.report.figures import Figure, Panel, Series

    series = [Series(f"variant {i}: gate", 5, [0.0, 1.0], [0.1, 0.2], row=i) for i in range(lines)]
    fig = plot_module.draw(Figure("curves", "many lines", [], [Panel("p", "x", "y", series)], "lstm_variant"))
    (legend,) = fig.legends
    fig.canvas.draw()
    box = legend.get_window_extent()
    assert legend._ncols == columns and len(legend.get_texts()) == lines
    assert box.y0 >= 0 and box.y1 <= fig.bbox.height + 1  # every entry on the canvas, none cut at the bottom
    plot_module._pyplot().close(fig)


# --- where the figures go ------------------------------------------------------------------------------------------

def test_plot_writes_beside_the_records_unless_told(tmp_path, monkeypatch, capsys):
    """Without --output the figures go inside the first dir, as rnnbench report puts its page there: a second
    plot of other records from the same shell does not overwrite the first; the paths are printed."""
    import shutil

    records = tmp_path / "records"
    shutil.copytree(RESULTS / "d2l_timemachine" / "runs", records)
    elsewhere = tmp_path / "shell"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["plot", str(records), "--kind", "curves"]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(records / "curves.png"), str(records / "curves.svg")]
    assert all(records.joinpath(name).stat().st_size > 10_000 for name in ("curves.png", "curves.svg"))
    assert list(elsewhere.iterdir()) == []  # nothing in the current dir
    # --output keeps its meaning: that dir, made if need be
    assert main(["plot", str(records), "--kind", "curves", "--output", "figures"]) == 0
    assert capsys.readouterr().out.split() == ["figures/curves.png", "figures/curves.svg"]
    assert sorted(p.name for p in (elsewhere / "figures").iterdir()) == ["curves.png", "curves.svg"]


def test_the_readme_plot_lines_write_where_they_say():
    """Every `rnnbench plot` line of results/*/README.md names its --output, a folder of that results dir, and the
    figure it draws is committed there (the default moving into the records' dir does not move them)."""
    import re
    import shlex

    lines = [line for readme in sorted(RESULTS.glob("*/README.md"))
             for line in re.findall(r"^rnnbench plot .*$", readme.read_text(), flags=re.MULTILINE)]
    assert len(lines) >= 20
    for line in lines:
        arguments = shlex.split(line)
        assert "--output" in arguments, line
        output = REPO / arguments[arguments.index("--output") + 1]
        kind = arguments[arguments.index("--kind") + 1]
        assert output.is_relative_to(RESULTS) and "runs" not in output.relative_to(RESULTS).parts, line
        assert (output / f"{kind}.png").is_file() and (output / f"{kind}.svg").is_file(), line


# --- what the figures say --------------------------------------------------------------------------------------------

def test_a_log_axis_is_labelled_at_round_decades():
    """1e-20, 1e-40, ... (every k-th decade at multiples of k), never 1e-31, 1e-80, 1e-129."""
    assert plot_module.decade_ticks(-129.3, 14.2) == [-120, -100, -80, -60, -40, -20, 0]
    assert plot_module.decade_ticks(-3.5, 1.2) == [-3, -2, -1, 0, 1]
    assert plot_module.decade_ticks(-302.0, 13.0) == [-300, -250, -200, -150, -100, -50, 0]
    runs = load_runs([RESULTS / "polyphonic" / "runs" / "nottingham" / "seeds-1-5"]).runs
    fig = plot_module.draw(build_figure(runs, "gradient-flow", ["model.cell"]))
    fig.canvas.draw()
    for ax in fig.axes:
        low, high = sorted(ax.get_ylim())
        exponents = [round(math.log10(t)) for t in ax.get_yticks() if low <= t <= high]
        assert 3 <= len(exponents) <= plot_module.MOST_TICKS
        step = exponents[1] - exponents[0]
        assert step in plot_module.DECADE_STEPS and all(e % step == 0 for e in exponents), exponents
    plot_module._pyplot().close(fig)


def test_every_row_has_its_own_colour():
    """12 rows (lstm_variants' variants) in 12 colours; up to 60 rows, no two share both colour and marker."""
    from rnnbench.report.figures import PALETTE, Figure, Panel, Series

    series = [Series(f"variant {i}", 5, [0.0, 1.0], [0.1, 0.2 + i], row=i) for i in range(12)]
    fig = plot_module.draw(Figure("curves", "twelve rows", [], [Panel("p", "x", "y", series)], "lstm_variant"))
    colours = [line.get_color() for line in fig.axes[0].get_lines()]
    assert len(colours) == 12 and len(set(colours)) == 12
    plot_module._pyplot().close(fig)
    assert len(set(PALETTE)) == len(PALETTE) >= 20
    looks = {(PALETTE[row % len(PALETTE)], plot_module.MARKERS[row % len(plot_module.MARKERS)]) for row in range(60)}
    assert len(looks) == 60


def test_the_cell_state_is_named_only_where_one_is_drawn(gradient_flow):
    plain = [run for run in gradient_flow.runs if run.settings.get("model.cell") != "lstm"]
    notes = build_figure(plain, "gradient-flow", ["model"]).notes
    assert notes[0] == "line: geometric mean over seeds; band: min–max"  # RNN and GRU only: no dashed line
    with_lstm = build_figure(gradient_flow.runs, "gradient-flow", ["model"])
    assert any(s.style == "dashed" for s in with_lstm.panels[0].series)
    assert with_lstm.notes[0] == "line: geometric mean over seeds; band: min–max; dashed: the cell state (LSTM)"


def test_runs_without_the_layer_are_not_missing_from_it():
    """Layer 2's backward direction exists in bidirectional 3-layer runs only: the others are not 'not drawn'."""
    runs = load_runs([RESULTS / "depth_direction" / "runs"]).runs
    by = ["model.cell", "model.num_layers", "model.bidirectional"]
    deep = build_figure(runs, "gradient-flow", by, 2, "backward")
    assert not any(note.startswith("not drawn") for note in deep.notes)
    assert {s.name for s in deep.panels[0].series if "cell state" not in s.name} == {"gru, 3, true", "lstm, 3, true",
                                                                                   "rnn, 3, true"}
    # a run that has the layer and lacks its curves is still named: here a one-layer record stripped of them
    from dataclasses import replace

    stripped = [replace(run, record={**run.record, "gradients": None}) if run.settings.get("model.num_layers") == 1
                and run.settings.get("model.cell") == "gru" and run.settings.get("model.bidirectional") is False
                else run for run in runs]
    first = build_figure(stripped, "gradient-flow", by, 0, "forward")
    assert "not drawn (only completed runs' curves are drawn): gru, 1, false: 5 with none recorded" in first.notes


def test_coinciding_lines_are_told_briefly(gradient_flow, clipping):
    """Many coinciding lines are counted in one short note, not listed pair by pair ('and 88 more pair(s)')."""
    gates = build_figure(gradient_flow.runs, "gates", ["model"])
    (saturation,) = [note for note in gates.notes if note.startswith("saturation:")]
    assert saturation == "saturation: 11 of the 13 lines coincide, in 2 groups (one line lies on the other; the " \
                         "markers tell them apart)"
    flow = build_figure(clipping.runs, "gradient-flow", ["model.cell", "trainer.gradient_clip_val"])
    assert "first probe: initialisation (step 0): all 12 lines coincide, in 4 groups (one line lies on the other; " \
           "the markers tell them apart)" in flow.notes
    curves = build_figure(clipping.runs, "curves", ["model.cell", "trainer.gradient_clip_val"])
    assert "validation loss (val/loss): gru, 0.1, lstm, 0.1 and rnn, 0.1 coincide (one line lies on the other; the " \
           "markers tell them apart)" in curves.notes
    for figure in (gates, flow, curves):
        assert not any("pair(s)" in note for note in figure.notes)


def test_the_test_length_figure_is_each_cells_mean_at_each_length_beside_its_reach():
    runs = load_runs([RESULTS / "length_generalization" / "runs" / "adding"]).runs
    figure = build_figure(runs, "test-length", ["model.cell"])
    metric_panel, reach_panel = figure.panels
    records = [json.loads(p.read_text())
               for p in sorted(find_records(RESULTS / "length_generalization" / "runs" / "adding"))]
    for series in metric_panel.series:
        cell = series.name
        mine = [r for r in records if r["config"]["model"]["cell"] == cell and r["status"] == "completed"]
        trained = mine[0]["config"]["data"]["seq_len"]
        assert series.x == sorted(float(length) for length in (trained, *mine[0]["config"]["data"]["test_seq_len"]))
        for x, y in zip(series.x, series.y):
            key = "test/mse" if x == trained else f"test@{int(x)}/mse"
            assert y == pytest.approx(statistics.mean(r["metrics"][key] for r in mine), rel=1e-12)
        reach = next(s for s in reach_panel.series if s.name == cell)
        assert reach.y == [pytest.approx(statistics.mean(r["gradients"]["layers"][0]["reach"] for r in mine))]
    assert reach_panel.categories == [row for row in figure.rows]
