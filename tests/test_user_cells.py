"""A user's cell, in a file outside the package, as README.md writes it: refused when broken, trained in a
sweep beside the built-ins with every diagnostic when not."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from rnnbench.record.schema import find_records

from conftest import FAST
from cells_under_test import readme_example_source


def test_a_broken_user_cell_stops_the_sweep_before_any_job(rnnbench_cli, tmp_path):
    (tmp_path / "broken_cells.py").write_text(readme_example_source().replace(
        'return (h, c), {"input": i, "forget": f, "output": o}', 'return (h,), {"input": i}'))
    result = rnnbench_cli("train", "-m", "model.cell=lstm,broken_cells.PeepholeLSTM", "threads=1")
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [  # the check announced (it runs user code), then the refusal
        "rnnbench: checking the user cell broken_cells.PeepholeLSTM (import, constructor, one step; each stopped "
        "after 60 s)",
        "rnnbench: error: model.cell='broken_cells.PeepholeLSTM' is not allowed: a cell that keeps the Cell "
        "protocol: step's new_state must be a tuple of 2 tensors ordered as state_names ('h', 'c'), got 1"]
    assert not (tmp_path / "multirun").exists() and not (tmp_path / "outputs").exists()


@pytest.mark.slow
def test_readme_cell_trains_in_a_sweep_beside_the_built_ins(rnnbench_cli, tmp_path):
    (tmp_path / "my_cells.py").write_text(readme_example_source())  # "saved as my_cells.py", as README says
    result = rnnbench_cli("train", "-m", "model.cell=lstm,lstm_cifg,my_cells.PeepholeLSTM", "logger=csv",
                          "model.num_layers=2", "model.bidirectional=true", *FAST)
    assert result.returncode == 0, result.stderr[-3000:]
    records = {json.loads(p.read_text())["config"]["model"]["cell"]: (p.parent, json.loads(p.read_text()))
               for p in find_records(tmp_path / "multirun")}
    assert set(records) == {"lstm", "lstm_cifg", "my_cells.PeepholeLSTM"}
    for cell, (run_dir, record) in records.items():
        assert record["status"] == "completed" and record["steps"] == 40
        assert record["metrics"]["test/mse"] < 0.9 * record["task"]["baseline_loss"] * 3
        layers = record["gradients"]["layers"]
        assert [(e["layer"], e["direction"]) for e in layers] == [(0, "forward"), (0, "backward"), (1, "forward"),
                                                                 (1, "backward")]
        for entry in layers:
            assert math.isfinite(entry["vanishing_log10"]) and math.isfinite(entry["cell_vanishing_log10"])
        assert {"input_mean", "forget_mean", "h_saturated", "h_dead"} <= set(record["gates"][0])
        with open(run_dir / "csv" / "metrics.csv") as f:
            columns = next(csv.reader(f))
        own = {"lstm": "weight_hh", "lstm_cifg": "weight_ch", "my_cells.PeepholeLSTM": "peephole"}[cell]
        assert f"grad/layer1/backward/{own}" in columns
        assert "grad_flow/layer0/backward/vanishing_log10_min" in columns
        assert "Infinity" not in (run_dir / "result.json").read_text()
