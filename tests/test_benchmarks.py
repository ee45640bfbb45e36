"""The benchmark scripts run end to end at tiny sizes (no timing assertions: benchmarks are not tests; what they
measure is printed by ``python -m benchmarks.throughput`` and ``python -m benchmarks.validation_rate``)."""

from __future__ import annotations

import pytest
from rnnbench.record.schema import find_records

from benchmarks.throughput import Case, compare, startup, sweep_speed, write_table


@pytest.mark.slow
def test_throughput_comparison_runs_and_writes_tables(tmp_path):
    case = Case(data="adding", cell="gru", batch=8, hidden=8, seq_len=10, steps=3)
    rows = compare([case], ["plain", "lightning", "default"], repeats=1, log=lambda row: None,
                   pairs=(("default", "lightning"),))
    row = rows[0]
    assert row["plain tokens/s"] > 0 and row["lightning tokens/s"] > 0 and row["default tokens/s"] > 0
    assert row["default / plain"] == pytest.approx(row["default tokens/s"] / row["plain tokens/s"], rel=0.01)
    assert row["default / lightning"] > 0 and row["lightning / plain (CPU time)"] > 0
    write_table(rows, tmp_path / "table", "title", "note")
    assert "| data | cell |" in (tmp_path / "table.md").read_text()
    assert (tmp_path / "table.csv").read_text().startswith("data,cell,")


@pytest.mark.slow
def test_sweep_speed_times_both_launchers_and_keeps_their_records(tmp_path):
    logged = []
    rows = sweep_speed(["data=adding", "data.seq_len=10", "model.cell=rnn,gru", "trainer.max_steps=5",
                        "logger=none", "diagnostics=none"], repeats=1, log=logged.append, keep=tmp_path / "kept")
    assert [entry["launcher"] for entry in logged[:2]] == ["basic", "joblib"]
    assert rows[0]["jobs"] == 2 and rows[0]["speed-up"] > 0
    assert rows[0]["speed-up"] == pytest.approx(rows[0]["basic launcher s"] / rows[0]["joblib launcher s"], rel=0.05)
    for launcher in ("basic", "joblib"):
        assert len(list(find_records(tmp_path / "kept" / launcher))) == 2


@pytest.mark.slow
def test_startup_times_imports_and_a_one_step_run():
    rows = startup(1, log=lambda row: None)
    seconds = {row["what"]: row["seconds"] for row in rows}
    assert len(rows) == 7 and all(value > 0 for value in seconds.values())


def test_probe_cost_covers_the_fused_and_the_plain_form_cell():
    from benchmarks.throughput import probe_cost

    rows = probe_cost(1, log=lambda row: None, quick=True)
    assert [(row["cell"], row["T"]) for row in rows] == [("lstm (fused)", 35), ("lstm (fused)", 70),
                                                          ("PlainLSTM (plain form)", 35), ("PlainLSTM (plain form)", 70)]
    assert all(row["probe / training step"] > 0 for row in rows)


@pytest.mark.slow
def test_cell_speed_runs_a_plain_form_cell_inside_rnnbench():
    from benchmarks.throughput import TEXT, cell_speed

    if not TEXT.is_file():
        pytest.skip(f"the shared text is not at {TEXT}")
    rows = cell_speed(1, log=lambda row: None, quick=True)
    assert [row["cell"] for row in rows] == ["lstm (fused twin)", "plain-form cell"]
    assert rows[0]["/ fused"] == 1.0 and rows[1]["/ fused"] > 0


@pytest.mark.slow
def test_music_throughput_compares_a_packed_plain_loop_and_counts_padding(tmp_path):
    from benchmarks.throughput import MUSIC, MUSIC_FILES, padding_overhead

    if not all((MUSIC / file).is_file() for file in MUSIC_FILES.values()):
        pytest.skip(f"the shared music files are not in {MUSIC}")
    case = Case(data="jsb_chorales", cell="gru", batch=8, param_budget=5000, optimizer="rmsprop", steps=4)
    row = compare([case], ["plain", "default"], repeats=1, log=lambda row: None)[0]
    assert row["plain tokens/s"] > 0 and row["default tokens/s"] > 0
    assert row["default / plain"] == pytest.approx(row["default tokens/s"] / row["plain tokens/s"], rel=0.01)
    rows = padding_overhead(16, log=lambda row: None)
    assert [r["set"] for r in rows] == list(MUSIC_FILES)
    assert all(1 <= r["rnnbench processed / useful"] < r["naive processed / useful"] for r in rows)


def test_validation_rate_times_the_validation_of_each_grid_and_writes_a_table(tmp_path):
    from benchmarks.validation_rate import validation_rate

    logged = []
    rows = validation_rate({"2 seeds x 2 cells": ["-m", "seed=0,1", "model.cell=rnn,gru"]}, 1, logged.append)
    assert logged == rows and [(row["grid"], row["jobs"]) for row in rows] == [("2 seeds x 2 cells", 4)]
    assert set(rows[0]) == {"grid", "command", "jobs", "seconds", "jobs/s"} and rows[0]["seconds"] > 0
    write_table(rows, tmp_path / "table", "title", "note")
    assert (tmp_path / "table.csv").read_text().startswith("grid,command,jobs,seconds,jobs/s")
