"""`rnnbench table` and `rnnbench plot` on the records of one tiny real sweep (and edited copies of them)."""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnnbench.cli import main
from rnnbench.report import plot as plot_module
from rnnbench.report.statistics import holm
from rnnbench.record.schema import find_records
from scipy import stats as scipy_stats


from conftest import PATIENCE, cli_env

SWEEP = ("train", "-m", "model.cell=rnn,gru", "seed=0,1", "threads=1", "logger=csv", "trainer.max_steps=30",
         "trainer.val_check_interval=15", "model.hidden_size=8", "data.num_train=256", "data.num_val=64",
         "data.num_test=64", "data.seq_len=10", "data.test_seq_len=[20]")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """One real 2 cells x 2 seeds sweep (adding problem, T = 10); its multirun/<timestamp> dir."""
    cwd = tmp_path_factory.mktemp("sweep")
    result = subprocess.run([sys.executable, "-m", "rnnbench", *SWEEP], cwd=cwd, env=cli_env(),
                            capture_output=True, text=True, timeout=PATIENCE)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep_dir,) = (cwd / "multirun").iterdir()
    assert len(list(find_records(sweep_dir))) == 4
    return sweep_dir


def load(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(find_records(root))]


def save(record: dict) -> None:
    path = Path(record["output_dir"]) / "result.json"
    path.write_text(json.dumps(record, indent=2))


def copy_sweep(sweep: Path, destination: Path) -> list[dict]:
    """A copy of the sweep whose records point at their new dirs (the tests edit these copies only)."""
    shutil.copytree(sweep, destination)
    records = []
    for path in sorted(find_records(destination)):
        record = json.loads(path.read_text())
        record["output_dir"] = str(path.parent)
        save(record)
        records.append(record)
    return records


def table(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["table", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def by_cell(rows: list[dict]) -> dict[str, dict]:
    return {row["model.cell"]: row for row in rows}


def default_metrics(records: list[dict]) -> list[str]:
    """The default columns: the test metric (the loss too where it differs: not for MSE), plus the gradient
    summaries that the records carry (at initialisation and after training)."""
    gradients = [r.get("gradients") or {} for r in records]
    differs = any(r["metrics"].get("test/loss") != r["metrics"].get("test/mse") for r in records)
    layers = any(g.get("layers") for g in gradients)
    return ["test/mse"] + ["test/loss"] * differs + \
        ["gradients.vanishing_log10_first", "gradients.vanishing_log10"] * layers + \
        ["gradients.clip_rate"] * any(g.get("clip_rate") is not None for g in gradients)


def synthetic_gradients(record: dict, decay: float) -> dict:
    """A `gradients` section in the lead's schema, written into copies of real records (the training side may
    not write one yet): ||dl_T/dh_t|| falls by 10**decay per step of distance from the loss."""
    steps, length = record["steps"], record["config"]["data"]["seq_len"]
    clip = record["config"]["trainer"]["gradient_clip_val"]

    def curve(rate: float) -> list[float]:  # element k: k-th processed step; the last is nearest the loss
        return [10.0 ** (-rate * (length - 1 - k)) for k in range(length)]

    first, last = curve(decay), curve(decay / 2)
    cell = curve(decay / 4) if record["config"]["model"]["cell"] == "gru" else None  # exercises the dashed lines
    return {"final_norm": 0.5, "max_norm": 2.0, "clip_rate": None if clip is None else 0.2 + 0.1 * record["seed"],
            "clipped_steps": 0, "spikes": 0, "nonfinite": 0, "last_finite_norm": 0.5, "probe_steps": [0, steps],
            "layers": [{"layer": 0, "direction": "forward",
                        "vanishing_log10": math.log10(last[0] / last[-1]),
                        "vanishing_log10_first": math.log10(first[0] / first[-1]),
                        "reach": math.inf, "cell_vanishing_log10": None,
                        "curve_first": first, "curve_last": last, "cell_curve_first": cell, "cell_curve_last": cell}]}


@pytest.mark.slow  # its fixture trains a sweep in a subprocess
def test_table_groups_by_the_varying_keys_with_mean_std_n(sweep, capsys):
    records = load(sweep)
    code, out, err = table(capsys, sweep, "--format", "json")
    assert code == 0 and "warning" not in err
    rows = json.loads(out)
    # Only model.cell varies (seed is the sample, threads/logger/data.seed are bookkeeping): one row per cell.
    assert [row["model.cell"] for row in rows] == ["gru", "rnn"]
    assert list(rows[0]) == ["model.cell", *default_metrics(records), "completed", "diverged", "failed"]
    for cell, row in by_cell(rows).items():
        for metric in ("test/mse", *(m for m in default_metrics(records) if m == "test/loss")):
            values = [r["metrics"][metric] for r in records if r["config"]["model"]["cell"] == cell]
            assert row[metric]["n"] == 2
            assert row[metric]["mean"] == pytest.approx(statistics.mean(values), rel=1e-12)
            assert row[metric]["std"] == pytest.approx(statistics.stdev(values), rel=1e-12)
            # every seed's own value travels with the summary
            per_seed = {r["seed"]: r["metrics"][metric] for r in records if r["config"]["model"]["cell"] == cell}
            assert {v["seed"]: v["value"] for v in row[metric]["values"]} == per_seed
        assert row["completed"] == {"count": 2, "of": 2}
        assert row["diverged"] == row["failed"] == {"count": 0, "of": 2}

    code, out, _ = table(capsys, sweep, "--metric", "steps", "--metric", "throughput.samples_per_second",
                         "--metric", "best/val/loss", "--format", "json")
    row = by_cell(json.loads(out))["rnn"]
    assert {k: row["steps"][k] for k in ("mean", "std", "n")} == {"mean": 30, "std": 0.0, "n": 2}
    assert row["throughput.samples_per_second"]["n"] == 2 and row["best/val/loss"]["n"] == 2
    code, _, err = table(capsys, sweep, "--metric", "test/mes")  # a metric no record holds: refused by name
    assert code == 2 and err.startswith("rnnbench: error: --metric='test/mes' is not allowed: no record holds it")
    assert len(err.strip().splitlines()) == 1 and "test/mse" in err


@pytest.mark.slow  # its fixture trains a sweep in a subprocess
def test_steps_to_a_threshold_from_each_runs_learning_curve(sweep, capsys):
    """Validation after steps 15 and 30: each run's first validation under (over) the threshold, read
    back from its csv/metrics.csv here; a run that never gets there is censored (infinity): the column is the
    median over all runs and how many reached the threshold."""
    curves = {}
    for record in load(sweep):
        with open(Path(record["output_dir"]) / "csv" / "metrics.csv", newline="") as f:
            curve = [(int(row["step"]), float(row["val/mse"])) for row in csv.DictReader(f) if row["val/mse"]]
        assert [step for step, _ in curve] == [15, 30]  # optimizer steps done (the record's history_steps)
        assert record["history_steps"] == "completed"
        curves.setdefault(record["config"]["model"]["cell"], []).append(curve)
    values = sorted(v for runs in curves.values() for curve in runs for _, v in curve)
    thresholds = [values[0] / 2, *((a + b) / 2 for a, b in zip(values, values[1:])), values[-1] * 2]
    metrics = [f"steps_to:val/mse{op}{t!r}" for t in thresholds for op in "<>"]
    code, out, _ = table(capsys, sweep, *[a for m in metrics for a in ("--metric", m)], "--format", "json")
    assert code == 0
    rows = by_cell(json.loads(out))
    for cell, runs in curves.items():
        for t in thresholds:
            for op in "<>":
                steps = [next((step for step, v in curve if (v < t if op == "<" else v > t)), math.inf)
                         for curve in runs]
                cell_value = rows[cell][f"steps_to:val/mse{op}{t!r}"]
                assert cell_value["n"] == len(runs) == 2
                assert cell_value["reached"] == sum(math.isfinite(x) for x in steps)
                median = statistics.median(steps)
                assert cell_value["median"] == (median if math.isfinite(median) else None)
                assert [v["value"] for v in cell_value["values"]] == [x if math.isfinite(x) else None for x in steps]
    assert {k: v for k, v in rows["gru"][f"steps_to:val/mse<{thresholds[-1]!r}"].items() if k != "values"} == \
        {"median": 15, "reached": 2, "n": 2}
    _, markdown, _ = table(capsys, sweep, "--metric", f"steps_to:val/mse<{thresholds[0]!r}")
    assert "| never (0/2 reached) |" in markdown
    code, out, err = table(capsys, sweep, "--metric", "steps_to:val/mse<small")
    assert code == 2 and "steps_to:val/mse<small is not allowed: the threshold must be a number" in err


@pytest.mark.slow  # its fixture trains a sweep in a subprocess
def test_every_format_parses(sweep, capsys, tmp_path):
    _, as_json, _ = table(capsys, sweep, "--format", "json")
    expected = by_cell(json.loads(as_json))
    columns = 1 + len(default_metrics(load(sweep))) + 3

    code, markdown, _ = table(capsys, sweep)
    assert code == 0
    table_lines = [line for line in markdown.splitlines() if line.startswith("|")]
    assert len(table_lines) == 2 + 2  # header, alignment, one row per cell
    assert all(line.count(" | ") == columns - 1 for line in table_lines)
    gru = next(line for line in table_lines if line.startswith("| gru |"))
    assert "± " in gru and "(2)" in gru
    assert "- Note: input-blind baseline (adding, mse: lower is better): test/mse 0.1667" in markdown

    _, text, _ = table(capsys, sweep, "--format", "csv")
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert len(parsed) == 2
    for row in parsed:
        summary = expected[row["model.cell"]]["test/mse"]
        assert float(row["test/mse mean"]) == summary["mean"] and float(row["test/mse std"]) == summary["std"]
        assert int(row["test/mse n"]) == 2 and int(row["diverged"]) == 0 and int(row["completed of"]) == 2
        assert len(row["test/mse values"].split(";")) == 2

    _, latex, _ = table(capsys, sweep, "--format", "latex")
    assert latex.startswith("\\begin{tabular}{l" + "r" * (columns - 1) + "}")
    assert latex.count(r"$\pm$") == 2 * (columns - 4)
    assert "model.cell & test/mse & gradients.vanishing\\_log10\\_first & " in latex
    assert "completed & diverged & failed \\\\" in latex

    output = tmp_path / "table.md"
    code, out, _ = table(capsys, sweep, "--output", output)
    assert code == 0 and out.strip() == f"rnnbench: wrote {output}" and output.read_text() == markdown


@pytest.mark.slow  # its fixture trains a sweep in a subprocess
def test_diverged_failed_and_pooled_differences_are_reported(sweep, capsys, tmp_path):
    # Edited copies of the real records: rnn seed 0 diverged, gru seed 1 failed before its task was known,
    # rnn seed 1 from other code (torch version, commit) and with a longer sequence.
    records = copy_sweep(sweep, tmp_path / "edited")
    pick = {(r["config"]["model"]["cell"], r["seed"]): r for r in records}
    pick["rnn", 0].update(status="diverged", metrics={"train/loss": math.nan}, diverged_at_step=12)
    pick["gru", 1].update(status="failed", metrics={}, task=None, error="RuntimeError: boom")
    pick["rnn", 1]["versions"]["torch"] = "2.12.0"
    pick["rnn", 1]["git"] = {"commit": "0" * 40, "dirty": False}
    pick["rnn", 1]["config"]["data"]["seq_len"] = 20
    for record in records:
        save(record)

    code, out, err = table(capsys, tmp_path / "edited", "--by", "model.cell", "--format", "json")
    rows = {(row["data.seq_len"], row["model.cell"]): row for row in json.loads(out)}
    assert code == 0
    # data.seq_len differs: never pooled, even with --by model.cell: the rnn's two runs land in two rows
    assert list(rows) == [(10, "gru"), (10, "rnn"), (20, "rnn")]
    assert rows[10, "rnn"]["diverged"] == {"count": 1, "of": 1} and rows[10, "rnn"]["test/mse"]["n"] == 0
    assert rows[20, "rnn"]["completed"] == {"count": 1, "of": 1}
    assert rows[20, "rnn"]["test/mse"]["mean"] == pick["rnn", 1]["metrics"]["test/mse"]
    assert rows[20, "rnn"]["test/mse"]["std"] is None  # n = 1: no std
    assert rows[10, "gru"]["failed"] == {"count": 1, "of": 2} and rows[10, "gru"]["test/mse"]["n"] == 1
    warnings = [line for line in err.splitlines() if line.startswith("rnnbench: warning:")]
    assert any("git commit" in w and "0000000000 (1 run)" in w for w in warnings)
    assert any("torch version" in w and "2.12.0 (1 run)" in w for w in warnings)
    assert not any("data settings not used for grouping" in w for w in warnings)

    code, markdown, _ = table(capsys, tmp_path / "edited", "--by", "model.cell")
    assert "- **Warning:** runs differ in torch version" in markdown
    assert "| 10 | gru | " in markdown and " (1) | 1/2 | 0/2 | 1/2 |" in markdown
    assert "split by data.seq_len: runs of different tasks, lengths or layouts are never pooled" in markdown

    # Without --by, the grouping is every varying key: data.seq_len and model.cell, numbers in numeric order.
    _, out, err = table(capsys, tmp_path / "edited", "--format", "json")
    assert [(row["data.seq_len"], row["model.cell"]) for row in json.loads(out)] == \
        [(10, "gru"), (10, "rnn"), (20, "rnn")]
    assert "data settings not used for grouping" not in err


def constructed_sweep(sweep: Path, destination: Path, values: dict[str, list[float]]) -> None:
    """Copies of one real record, one per (cell, seed), whose test/mse is set to the given values."""
    (template,) = [r for r in load(sweep) if r["config"]["model"]["cell"] == "gru" and r["seed"] == 0]
    for cell, cell_values in values.items():
        for seed, value in enumerate(cell_values):
            record = json.loads(json.dumps(template))
            record["config"]["model"]["cell"], record["seed"], record["config"]["seed"] = cell, seed, seed
            record["config_hash"] = f"{cell}-{seed}"
            record["metrics"]["test/mse"] = value
            record["output_dir"] = str(destination / f"{cell}-{seed}")
            Path(record["output_dir"]).mkdir(parents=True)
            save(record)


def choose_per_cell(destination: Path, choice: str, rates: dict[str, float]) -> None:
    """Make each constructed record's cell a config-group choice (``choices[choice]``) that also sets its
    learning rate, as ``d2l=lstm`` or ``lstm_variant=v`` do."""
    for path in find_records(destination):
        record = json.loads(path.read_text())
        cell = record["config"]["model"]["cell"]
        record["config"]["optim"]["lr"] = rates[cell]
        record["choices"][choice] = cell
        path.write_text(json.dumps(record))


def summary_of(cell: dict) -> dict:
    return {k: cell[k] for k in ("mean", "std", "n")}


@pytest.mark.slow  # its fixture trains a sweep in a subprocess
def test_compare_gives_calibrated_intervals_p_values_and_holm(sweep, capsys, tmp_path):
    lstm = [1.0, 1.1, 0.9, 1.05, 0.95, 1.0, 1.02, 0.98]
    gru = [0.5, 0.62, 0.41, 0.55, 0.44, 0.5, 0.53, 0.48]  # paired differences that vary (not 0.5 up to rounding)
    constructed_sweep(sweep, tmp_path / "constructed", {"lstm": lstm, "gru": gru, "rnn": [3.0]})
    args = (tmp_path / "constructed", "--compare", "model.cell=lstm", "model.cell=gru", "--metric", "test/mse")

    # Both sides ran seeds 0-7: the default pairs them by seed (a paired t-interval), as scipy computes it.
    code, out, _ = table(capsys, *args, "--format", "json")
    assert code == 0
    (row,) = json.loads(out)
    assert row["metric"] == "test/mse" and row["A: model.cell=lstm"]["n"] == 8 and row["B: model.cell=gru"]["n"] == 8
    paired = scipy_stats.ttest_rel(lstm, gru)
    interval = paired.confidence_interval(0.95)
    assert row["A - B"] == pytest.approx(statistics.mean(lstm) - statistics.mean(gru))
    # one row: its tests of a difference and of equivalence count once, so the interval is the plain 95% one
    assert row["CI (Holm level)"]["method"] == "paired" and row["CI (Holm level)"]["confidence"] == 0.95
    assert (row["CI (Holm level)"]["low"], row["CI (Holm level)"]["high"]) == \
        pytest.approx((interval.low, interval.high), rel=1e-12)
    assert row["p"] == pytest.approx(paired.pvalue, rel=1e-12) and row["p (Holm)"] == pytest.approx(paired.pvalue)
    assert row["verdict"] == "A > B"

    code, out, _ = table(capsys, *args, "--interval", "welch", "--format", "json")
    (row,) = json.loads(out)
    welch = scipy_stats.ttest_ind(lstm, gru, equal_var=False)
    interval = welch.confidence_interval(0.95)
    assert row["CI (Holm level)"]["method"] == "welch" and row["p"] == pytest.approx(welch.pvalue, rel=1e-12)
    assert (row["CI (Holm level)"]["low"], row["CI (Holm level)"]["high"]) == \
        pytest.approx((interval.low, interval.high), rel=1e-12)

    code, markdown, _ = table(capsys, *args, "--interval", "bootstrap")
    assert code == 0 and "10000 resamples" in markdown and " *" not in markdown and "| A > B |" in markdown
    assert table(capsys, *args, "--interval", "bootstrap")[1] == markdown  # fixed generator seed: reproducible

    # rnn has one seed: undefined; the verdict says so rather than a star.
    code, out, _ = table(capsys, tmp_path / "constructed", "--compare", "model.cell=rnn", "model.cell=gru",
                         "--metric", "test/mse", "--format", "json")
    (row,) = json.loads(out)
    assert row["A - B"] == pytest.approx(3.0 - statistics.mean(gru))
    assert row["CI (Holm level)"]["low"] is None and row["verdict"] == "inconclusive (undefined: n < 2 on a side)"

    # Holm over the rows of one comparison: two metrics, the larger p adjusted by 1, the smaller by 2.
    code, out, _ = table(capsys, *args[:-2], "--metric", "test/mse", "--metric", "test/loss", "--format", "json")
    rows = json.loads(out)
    p_values = [r["p"] for r in rows]
    order = sorted(range(2), key=lambda i: p_values[i])
    assert rows[order[0]]["p (Holm)"] == pytest.approx(min(1, 2 * p_values[order[0]]))
    assert rows[order[1]]["p (Holm)"] == pytest.approx(max(min(1, 2 * p_values[order[0]]), p_values[order[1]]))

    # Few seeds: the verdict says it is indicative.
    constructed_sweep(sweep, tmp_path / "few", {"lstm": lstm[:3], "gru": gru[:3]})
    _, out, _ = table(capsys, tmp_path / "few", "--compare", "model.cell=lstm", "model.cell=gru", "--metric",
                      "test/mse", "--format", "json")
    assert json.loads(out)[0]["verdict"].endswith("n < 5 on a side: indicative only)")

    # Sides that differ in more than the compared setting: refused by name; through a choice that sets
    # them (d2l=lstm sets model.cell and optim.lr), compared and noted.
    choose_per_cell(tmp_path / "constructed", "d2l", {"lstm": 4.0, "gru": 2.0, "rnn": 1.0})
    code, _, err = table(capsys, *args)
    assert code == 2 and err.strip() == ("rnnbench: error: --compare model.cell=lstm model.cell=gru is not allowed: "
                                         "the sides differ in more than model.cell: d2l (lstm against gru); optim.lr "
                                         "(4.0 against 2.0): compare runs that differ only in the compared setting")
    code, markdown, _ = table(capsys, tmp_path / "constructed", "--compare", "d2l=lstm", "d2l=gru", "--metric",
                              "test/mse")
    assert code == 0 and "the sides also differ in what d2l sets: " in markdown and "optim.lr (4.0 against 2.0)" in markdown

    code, _, err = table(capsys, tmp_path / "constructed", "--compare", "model.cell=lstm", "model.cell=tcn")
    assert code == 2 and err.strip() == ("rnnbench: error: --compare model.cell=tcn: no run has it "
                                         "(model.cell is one of gru, lstm, rnn)")
    code, _, err = table(capsys, tmp_path / "few", "--compare", "model.cell=lstm", "model.cell=gru", "--metric",
                         "test/accuracy")
    assert code == 2 and "--metric='test/accuracy' is not allowed: no record holds it" in err


@pytest.mark.slow  # its fixture trains a sweep in a subprocess
def test_compare_every_value_against_one_with_holm_over_all(sweep, capsys, tmp_path):
    """--compare KEY=* KEY=B: each other value against B (a row each), Holm's adjustment over all of them."""
    values = {"lstm": [1.0, 1.1, 0.9, 1.05, 0.95], "gru": [0.52, 0.6, 0.41, 0.55, 0.44],
              "rnn": [1.01, 1.12, 0.88, 1.07, 0.94]}
    constructed_sweep(sweep, tmp_path / "c", values)
    code, out, _ = table(capsys, tmp_path / "c", "--compare", "model.cell=*", "model.cell=lstm", "--metric",
                         "test/mse", "--format", "json")
    assert code == 0
    rows = json.loads(out)
    assert [row["model.cell"] for row in rows] == ["gru", "rnn"]
    tests = {cell: scipy_stats.ttest_rel(values[cell], values["lstm"]) for cell in ("gru", "rnn")}
    for row in rows:
        assert row["p"] == pytest.approx(tests[row["model.cell"]].pvalue, rel=1e-12)
        assert row["A"]["n"] == 5 and row["B: model.cell=lstm"]["n"] == 5
    # Holm over both rows' tests of a difference and of equivalence (within 10% of lstm's distance from the
    # input-blind baseline), a row's two counting once
    margin = 0.1 * abs(statistics.mean(values["lstm"]) - load(tmp_path / "c")[0]["task"]["baseline_metric"])
    equivalence = {cell: max(scipy_stats.ttest_rel(values[cell], [v - margin for v in values["lstm"]],
                                                   alternative="greater").pvalue,
                             scipy_stats.ttest_rel(values[cell], [v + margin for v in values["lstm"]],
                                                   alternative="less").pvalue) for cell in ("gru", "rnn")}
    adjusted = holm([tests["gru"].pvalue, equivalence["gru"], tests["rnn"].pvalue, equivalence["rnn"]],
                    exclusive=[0, 0, 1, 1])
    assert {row["model.cell"]: row["p (Holm)"] for row in rows} == pytest.approx({"gru": adjusted[0],
                                                                                   "rnn": adjusted[2]})
    assert [row["p equiv. (Holm)"] for row in rows] == pytest.approx([adjusted[1], adjusted[3]])
    assert [row["verdict"] for row in rows] == ["A < B", f"equivalent within ±{margin:.4g}"]

    # Through a choice that sets its own learning rate (lstm_variant=X sets the cell and the rate its search chose),
    # each value of A is its own comparison: gru's rate (1.0) is B's, rnn's (2.0) is not; neither splits the rows.
    constructed_sweep(sweep, tmp_path / "v", values)
    choose_per_cell(tmp_path / "v", "variant", {"lstm": 1.0, "gru": 1.0, "rnn": 2.0})
    code, out, _ = table(capsys, tmp_path / "v", "--compare", "variant=*", "variant=lstm", "--metric", "test/mse",
                         "--format", "json")
    assert code == 0 and [(row["variant"], row["p"]) for row in json.loads(out)] == \
        [("gru", pytest.approx(tests["gru"].pvalue, rel=1e-12)), ("rnn", pytest.approx(tests["rnn"].pvalue, rel=1e-12))]
    constructed_sweep(sweep, tmp_path / "older", {"gru": [9.0, 9.5]})  # records without the choice: not a value of it
    code, with_older, _ = table(capsys, tmp_path / "v", tmp_path / "older", "--compare", "variant=*", "variant=lstm",
                                "--metric", "test/mse", "--format", "json")
    assert code == 0 and json.loads(with_older) == json.loads(out)
    code, _, err = table(capsys, tmp_path / "v", "--compare", "model.cell=*", "model.cell=lstm", "--metric", "test/mse")
    assert code == 2 and "the sides differ in more than model.cell: variant" in err and "optim.lr" in err

    # The same choices on a second task (another sequence length, its own metric) where every value runs at one
    # rate: the rate is still what the choice sets on the first task, and each task's rows hold its own metric.
    constructed_sweep(sweep, tmp_path / "task2", {cell: [v + 1 for v in vs] for cell, vs in values.items()})
    choose_per_cell(tmp_path / "task2", "variant", {"lstm": 3.0, "gru": 3.0, "rnn": 3.0})
    for path in find_records(tmp_path / "task2"):
        record = json.loads(path.read_text())
        record["config"]["data"]["seq_len"] = 99
        record["metrics"]["test/accuracy"] = record["metrics"].pop("test/mse") / 10
        path.write_text(json.dumps(record))
    code, out, err = table(capsys, tmp_path / "v", tmp_path / "task2", "--compare", "variant=*", "variant=lstm",
                           "--metric", "test/mse", "--metric", "test/accuracy", "--format", "json")
    assert code == 0, err
    rows = [(row["variant"], row["data.seq_len"], row["metric"], row["p"]) for row in json.loads(out)]
    second = {cell: scipy_stats.ttest_rel([v + 1 for v in values[cell]], [v + 1 for v in values["lstm"]])
              for cell in ("gru", "rnn")}
    assert rows == [("gru", 10, "test/mse", pytest.approx(tests["gru"].pvalue, rel=1e-12)),
                    ("gru", 99, "test/accuracy", pytest.approx(second["gru"].pvalue, rel=1e-9)),
                    ("rnn", 10, "test/mse", pytest.approx(tests["rnn"].pvalue, rel=1e-12)),
                    ("rnn", 99, "test/accuracy", pytest.approx(second["rnn"].pvalue, rel=1e-9))]
    # steps_to of the first task's curve metric: the second task's curves do not log it, so it has no rows there.
    for path in find_records(tmp_path / "v"):
        (path.parent / "csv").mkdir()
        (path.parent / "csv" / "metrics.csv").write_text("step,val/mse\n9,0.9\n19,0.4\n")
    for path in find_records(tmp_path / "task2"):
        (path.parent / "csv").mkdir()
        (path.parent / "csv" / "metrics.csv").write_text("step,val/accuracy\n9,0.5\n19,0.6\n")
    code, with_steps, err = table(capsys, tmp_path / "v", tmp_path / "task2", "--compare", "variant=*",
                                  "variant=lstm", "--metric", "steps_to:val/mse<0.5", "--format", "json")
    assert code == 0, err
    assert [(row["variant"], row["data.seq_len"], row["metric"]) for row in json.loads(with_steps)] == [
        (cell, 10, metric) for cell in ("gru", "rnn")
        for metric in ("steps_to:val/mse<0.5", "steps_to:val/mse<0.5 (reached)")]

    # A published column, joined on the table's own columns; a row of the file that matches nothing is refused.
    published = tmp_path / "published.csv"
    published.write_text('model.cell,metric,published\ngru,test/mse,"worse (Author 2020, Table 1)"\n')
    code, out, _ = table(capsys, tmp_path / "c", "--compare", "model.cell=*", "model.cell=lstm", "--metric",
                         "test/mse", "--published", str(published), "--format", "json")
    assert code == 0 and [row["published"] for row in json.loads(out)] == ["worse (Author 2020, Table 1)", ""]
    published.write_text("model.cell,published\ntcn,1\n")
    code, _, err = table(capsys, tmp_path / "c", "--metric", "test/mse", "--published", str(published))
    assert code == 2 and err.strip() == (f"rnnbench: error: --published {published}: row 2 (model.cell=tcn) "
                                         "matches no row of the table")
    published.write_text("cell,published\nlstm,1\n")
    code, _, err = table(capsys, tmp_path / "c", "--metric", "test/mse", "--published", str(published))
    assert code == 2 and err.strip().startswith(f"rnnbench: error: --published {published}: column 'cell' is not "
                                                "a column of the table (allowed: model.cell, test/mse, completed")


def assert_figures(paths: list[Path], kind: str) -> None:
    width, height = (round(v * plot_module.DPI) for v in plot_module.FIGSIZE)
    assert [p.name for p in paths] == [f"{kind}.png", f"{kind}.svg"]
    import matplotlib.image

    image = matplotlib.image.imread(paths[0])
    assert image.shape[:2] == (height, width) and image.std() > 0.01  # drawn, not blank
    svg = paths[1].read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and len(svg) > 10_000


def plot_cli(capsys, *args) -> tuple[int, list[Path], str]:
    code = main(["plot", *map(str, args)])
    captured = capsys.readouterr()
    return code, [Path(line) for line in captured.out.split()], captured.err


@pytest.mark.slow  # its fixture trains a sweep in a subprocess
def test_every_plot_kind_writes_png_and_svg(sweep, capsys, tmp_path):
    # Edited copies: a synthetic gradients section (lead's schema) and clipping at 1.0 for seed 1.
    records = copy_sweep(sweep, tmp_path / "with_gradients")
    for record in records:
        if record["seed"] == 1:
            record["config"]["trainer"]["gradient_clip_val"] = 1.0
        record["gradients"] = synthetic_gradients(record, decay=0.3 if record["config"]["model"]["cell"] == "rnn"
                                                  else 0.1)
        save(record)
    kinds = [kind for kind in plot_module.KINDS if kind != "all"]
    for kind in kinds:
        code, paths, err = plot_cli(capsys, tmp_path / "with_gradients", "--kind", kind, "--output",
                                    tmp_path / "figures")
        assert code == 0, err
        assert_figures(paths, kind)
    code, paths, err = plot_cli(capsys, tmp_path / "with_gradients", "--kind", "all", "--output", tmp_path / "all")
    assert code == 0 and [p.name for p in paths] == [f"{kind}.{ext}" for kind in kinds for ext in ("png", "svg")]

    _, out, _ = table(capsys, tmp_path / "with_gradients", "--by", "model.cell", "--format", "json")
    rnn = by_cell(json.loads(out))["rnn"]
    assert summary_of(rnn["gradients.vanishing_log10"]) == {"mean": pytest.approx(-0.15 * 9), "std": 0.0, "n": 2}
    assert summary_of(rnn["gradients.clip_rate"]) == {"mean": pytest.approx(0.3), "std": None, "n": 1}  # null: no clip

    # Element k of a curve is the k-th processed step: the plot indexes by distance from the loss.
    np.testing.assert_allclose(plot_module._curve({"curve_first": [1.0, 10.0, 100.0]}, "curve_first"), [2, 1, 0])


@pytest.mark.slow  # its fixture trains a sweep in a subprocess
def test_gate_summaries_are_table_metrics_by_layer_and_direction(sweep, capsys, tmp_path):
    for record in copy_sweep(sweep, tmp_path / "gated"):
        level = 0.9 if record["config"]["model"]["cell"] == "rnn" else 0.1
        record["gates"] = [{"layer": 0, "direction": "forward", "forget_saturated": level, "input_mean": 0.5},
                           {"layer": 1, "direction": "backward", "forget_saturated": level / 2, "input_mean": 0.25}]
        save(record)
    code, out, err = table(capsys, tmp_path / "gated", "--by", "model.cell", "--metric", "gates.forget_saturated",
                      "--metric", "gates.layer1.backward.forget_saturated", "--format", "json")
    assert code == 0, err
    rnn, other = by_cell(json.loads(out))["rnn"], by_cell(json.loads(out))["gru"]
    assert summary_of(rnn["gates.forget_saturated"])["mean"] == pytest.approx(0.9)  # layer 0, forward
    assert summary_of(other["gates.forget_saturated"])["mean"] == pytest.approx(0.1)
    assert summary_of(rnn["gates.layer1.backward.forget_saturated"])["mean"] == pytest.approx(0.45)
    code, _, err = table(capsys, tmp_path / "gated", "--metric", "gates.layer1.forward.input_mean")
    assert code == 2 and "--metric='gates.layer1.forward.input_mean' is not allowed: no record holds it" in err


@pytest.mark.slow  # its fixture trains a sweep in a subprocess
def test_plot_kinds_without_their_data_say_so(sweep, capsys, tmp_path):
    # Edited copies: records without a gradients section (as before diagnostics ran), and no CSV history.
    for record in copy_sweep(sweep, tmp_path / "no_gradients"):
        record.pop("gradients", None)
        save(record)
    for kind in ("gradient-flow", "clip-rate"):
        code, paths, err = plot_cli(capsys, tmp_path / "no_gradients", "--kind", kind, "--output", tmp_path)
        assert code == 1 and paths == [] and len(err.strip().splitlines()) == 1
        assert err.startswith("rnnbench: error: no ") and "nothing to draw" in err
    copy_sweep(sweep, tmp_path / "no_history")
    for history in (tmp_path / "no_history").rglob("metrics.csv"):
        history.unlink()
    code, paths, err = plot_cli(capsys, tmp_path / "no_history", "--kind", "curves", "--output", tmp_path)
    assert code == 1 and paths == [] and "learning-curve history" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow  # its fixture trains a sweep in a subprocess
def test_real_gradients_section(sweep, capsys, tmp_path):
    """Once training writes the gradients section: the default table shows it and gradient-flow draws it."""
    if "gradients" not in load(sweep)[0]:
        pytest.skip("training does not write a gradients section yet")
    code, out, _ = table(capsys, sweep, "--format", "json")
    assert code == 0 and "gradients.vanishing_log10" in json.loads(out)[0]
    code, paths, err = plot_cli(capsys, sweep, "--kind", "gradient-flow", "--output", tmp_path)
    assert code == 0, err
    assert_figures(paths, "gradient-flow")


def test_cli_errors_are_one_line_without_traceback(tmp_path):
    (tmp_path / "empty").mkdir()
    for command, message in ((("table", "empty"), "no result.json below empty"),
                             (("plot", "empty", "--kind", "curves"), "no result.json below empty"),
                             (("table", "missing", "--format", "csv"), "missing: no such file or directory")):
        result = subprocess.run([sys.executable, "-m", "rnnbench", *command], cwd=tmp_path, env=cli_env(),
                                capture_output=True, text=True, timeout=PATIENCE)
        assert result.returncode == 2 and result.stdout == ""
        assert result.stderr == f"rnnbench: error: {message}\n"


@pytest.mark.slow  # its fixture trains a sweep in a subprocess
def test_a_reference_model_the_records_carry_is_a_note(sweep, capsys, tmp_path):
    for record in copy_sweep(sweep, tmp_path / "referenced"):
        record["task"]["reference"] = {"name": "logistic regression (test)", "val/mse": 0.125, "test/mse": 0.25}
        save(record)
    code, markdown, _ = table(capsys, tmp_path / "referenced")
    assert code == 0
    assert "- Note: reference on the same splits: logistic regression (test): val/mse 0.125, test/mse 0.25" in markdown
