"""Divergence is this tool's subject: a run or a sweep that diverged is summarised, tabulated and reported like any
other, in the same words."""

from __future__ import annotations

from rnnbench.cli import main

DIVERGES = ["optim=sgd", "optim.lr=1", "model.cell=rnn", "model.hidden_size=32", "trainer.max_steps=100",
            "logger=csv", "threads=1", "data.num_train=512", "data.num_val=128", "data.num_test=128"]


def test_a_diverged_run_is_summarised_tabulated_and_reported(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", *DIVERGES, "hydra.run.dir=run"]) == 0
    out = capsys.readouterr().out
    assert "rnnbench: diverged, " in out and "val/mse not finite" in out and "Traceback" not in out
    assert main(["table", "run"]) == 0  # no metric asked for: the table of fates, the test columns blank
    table = capsys.readouterr().out
    assert "| 0/1 | 1/1 | 0/1 |" in table and "in no completed run's record (blank column)" in table
    assert main(["report", "run", "-o", "page.html"]) == 0 and (tmp_path / "page.html").stat().st_size > 0
    assert main(["table", "run", "--metric", "test/mse"]) == 2  # asked for by name, it must exist
    assert "--metric='test/mse' is not allowed: no record holds it" in capsys.readouterr().err
