"""`rnnbench train` end to end, as a user runs it: real subprocesses, real W&B offline runs, real records."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from rnnbench.models.cells.registry import CELLS
from rnnbench.record.schema import Record, find_records

from rnnbench.job.wandb_offline import read_offline_run

from conftest import FAST, choices, cli_env

RECORD_KEYS = {field.name for field in dataclasses.fields(Record)}  # the schema, as the code defines it


def records(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(find_records(root))]


def test_help_lists_every_config_group(rnnbench_cli):
    result = rnnbench_cli("train", "--help")
    assert result.returncode == 0
    for group in ("data", "logger", "optim", "diagnostics", "model", "experiment"):  # every choice conf/ ships
        assert re.search(rf"^{group}: {re.escape(choices(group))}$", result.stdout, re.M), group


def test_cfg_job_prints_the_composed_config(rnnbench_cli, tmp_path):
    result = rnnbench_cli("train", "--cfg", "job", "model.cell=gru", "seed=3")
    assert result.returncode == 0 and "cell: gru" in result.stdout and "seed: 3" in result.stdout
    assert not (tmp_path / "outputs").exists()


def test_bad_input_exits_before_any_work_with_one_line(rnnbench_cli, tmp_path):
    result = rnnbench_cli("train", "-m", "model.cell=rnn,transformer")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("rnnbench: error: model.cell='transformer' is not allowed: "
                                            f"a registered cell ({', '.join(CELLS)}) ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / "multirun").exists() and not (tmp_path / "outputs").exists()


@pytest.mark.slow
def test_multirun_makes_separate_wandb_runs_and_records(rnnbench_cli, tmp_path):
    """Two identical jobs (seed 0 twice): separate W&B offline runs read back from disk, identical
    metrics (determinism), and no credential from the environment anywhere in what they wrote."""
    secret = "sk-rnnbench-test-not-a-real-key-0123456789"
    result = rnnbench_cli("train", "-m", "data=adding", "data.seq_len=10", "model.cell=gru", "seed=0,0", *FAST,
                          env=cli_env(WANDB_API_KEY=secret))
    assert result.returncode == 0, result.stderr[-3000:]
    sweep_dirs = list((tmp_path / "multirun").iterdir())
    assert len(sweep_dirs) == 1
    found = records(sweep_dirs[0])
    assert len(found) == 2 and "2 run(s): 2 completed" in result.stdout
    run_ids = set()
    for record in found:
        assert set(record) == RECORD_KEYS and record["status"] == "completed" and record["seed"] == 0
        assert record["steps"] == 40 and record["config"]["model"]["cell"] == "gru"
        assert record["metrics"]["test/mse"] < 1 / 6 * 3 and "best/val/mse" in record["metrics"]
        assert record["throughput"]["samples_per_second"] > 0 and record["parameters"] > 0
        assert record["throughput"]["steps_timed"] == 39  # steady state: every step after the first
        assert record["throughput"]["tokens_per_second"] == pytest.approx(
            record["throughput"]["samples_per_second"] * 10)
        assert record["versions"]["torch"] and record["versions"]["wandb"]
        # only the seed varies (seed=0,0: one configuration): the sweep invocation is the group
        assert record["wandb"]["mode"] == "offline" and record["wandb"]["group"] == f"sweep@{sweep_dirs[0].name}"
        assert record["wandb"]["job_type"] == "sweep"
        output_dir = Path(record["output_dir"])
        assert output_dir.parent == sweep_dirs[0]
        run = read_offline_run(next((output_dir / "wandb").glob("offline-run-*")))
        losses = [row["train/loss"] for row in run["history"] if "train/loss" in row]
        assert len(losses) == 4 and losses[-1] < losses[0]  # logged every 10 of 40 steps
        assert run["config"]["model.cell"] == "gru" and run["summary"]["model/parameters"] == record["parameters"]
        assert run["summary"]["test/mse"] == pytest.approx(record["metrics"]["test/mse"])
        assert run["summary"]["grad_flow/table/_type"] == "table-file"  # the chart's panel keeps its table
        # the gradient-through-time table goes to W&B once, at the end, with every probe (steps 0 and 40)
        assert len([row for row in run["history"] if "grad_flow/table/_type" in row]) == 1
        table_file = next((output_dir / "wandb").glob("offline-run-*/files/media/table/grad_flow/table_*.table.json"))
        table = json.loads(table_file.read_text())
        assert record["gradients"]["probe_steps"] == [0, 40]
        assert sorted({row[0] for row in table["data"]}) == [0, 40] and len(table["data"]) == 2 * 10
        assert sorted(row[3] for row in table["data"] if row[0] == 40) == list(range(10))
        run_ids.add(record["wandb"]["run_id"])
        assert (output_dir / "csv" / "metrics.csv").is_file()
    assert len(run_ids) == 2
    assert found[0]["metrics"] == found[1]["metrics"] and found[0]["config_hash"] == found[1]["config_hash"]
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


@pytest.mark.slow
def test_divergence_and_failure_do_not_stop_a_sweep(rnnbench_cli, tmp_path, failing_cell):
    """lr 1e12 diverges (a result: status diverged); a cell that raises in training fails (an error);
    every job still runs, and the exit status is non-zero only because of the failure."""
    result = rnnbench_cli("train", "-m", "data.seq_len=10", f"model.cell=rnn,{failing_cell}", "model.nonlinearity=relu",
                          "optim=sgd", "optim.lr=0.01,1e12", *FAST)
    assert result.returncode == 1
    found = {(r["config"]["optim"]["lr"], r["config"]["model"]["cell"]): r for r in records(tmp_path / "multirun")}
    assert len(found) == 4
    assert found[(0.01, "rnn")]["status"] == "completed"
    diverged = found[(1e12, "rnn")]
    assert diverged["status"] == "diverged" and 1 <= diverged["diverged_at_step"] <= 40
    assert diverged["steps"] == diverged["diverged_at_step"] and "test/mse" not in diverged["metrics"]
    for lr in (0.01, 1e12):
        failed = found[(lr, failing_cell)]
        assert failed["status"] == "failed" and "injected fault" in failed["error"] and "Traceback" in failed["traceback"]
    assert "4 run(s): 1 completed, 1 diverged, 2 failed" in result.stdout


DATASETS = ("adding", "copy", "digits", "timemachine")  # the music sets need their files: tests/test_polyphonic.py


@pytest.mark.slow
def test_single_run_of_every_dataset_as_a_user_types_it(rnnbench_cli, tmp_path, timemachine_text):
    for data in DATASETS:
        extra = [f"data.path={timemachine_text}"] if data == "timemachine" else []
        fast = [o for o in FAST if not (data == "digits" and o.startswith("data.num_"))]
        result = rnnbench_cli("train", f"data={data}", "logger=csv", *fast, *extra)
        assert result.returncode == 0, result.stderr[-3000:]
    found = {r["task"]["name"]: r for r in records(tmp_path / "outputs")}
    assert set(found) == set(DATASETS)
    assert all(r["status"] == "completed" and r["wandb"] is None for r in found.values())
    assert 1 < found["timemachine"]["metrics"]["test/perplexity"] < 28
