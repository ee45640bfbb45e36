"""The benchmark script runs end to end at tiny sizes (no timing assertions: benchmarks are not tests)."""

from __future__ import annotations

from benchmarks.throughput import Case, compare, write_table


def test_throughput_comparison_runs_and_writes_tables(tmp_path):
    case = Case(data="adding", cell="gru", batch=8, hidden=8, seq_len=10, steps=3)
    rows = compare([case], ["plain", "default"], repeats=1, log=lambda row: None)
    assert rows[0]["plain tokens/s"] > 0 and rows[0]["default tokens/s"] > 0
    assert rows[0]["default / plain"] > 0
    write_table(rows, tmp_path / "table", "title", "note")
    assert "| data | cell |" in (tmp_path / "table.md").read_text()
    assert (tmp_path / "table.csv").read_text().startswith("data,cell,")
