"""A resumed run keeps its history: killed at any step after a checkpoint and resumed, a run writes the same
``csv/metrics.csv``, the same ``steps_to:`` and the same curves as the uninterrupted run, and its record the same
metrics (also when killed after its last checkpoint, with nothing left to fit)."""

from __future__ import annotations

import csv
import json
import os
import signal
from pathlib import Path

import pytest
import pytorch_lightning as pl

import rnnbench.job.run
from rnnbench.launch.train import train
from rnnbench.report.records import load_runs

RUN = ["data=adding", "data.seq_len=10", "model.hidden_size=8", "trainer.max_steps=120",
       "trainer.val_check_interval=30", "logger=csv", "threads=1", "data.num_train=512", "data.num_val=128",
       "data.num_test=128", "data.batch_size=32", "trainer.log_every_n_steps=5"]


class StopAt(pl.Callback):
    """SIGINT to this process after optimizer step ``step``: the job stops as Ctrl-C stops it."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGINT)


@pytest.fixture
def stop_at(monkeypatch):
    """stop_at(step): the next run launched in this process is interrupted after that step."""
    real = rnnbench.job.run.build_diagnostics

    def arm(step: int) -> None:
        monkeypatch.setattr(rnnbench.job.run, "build_diagnostics", lambda node: [*real(node), StopAt(step)])

    def disarm() -> None:
        monkeypatch.setattr(rnnbench.job.run, "build_diagnostics", real)

    arm.disarm = disarm
    return arm


def record(directory: Path) -> dict:
    return json.loads((directory / "result.json").read_text())


def steps_to(directory: Path, threshold: float) -> object:
    run, = load_runs([directory]).runs
    return run.value(f"steps_to:val/mse<{threshold}")


@pytest.mark.parametrize("stop_step", [31, 59, 95])  # just after a checkpoint, just before one, late
def test_a_run_killed_and_resumed_keeps_the_whole_history_of_the_uninterrupted_run(tmp_path, monkeypatch, stop_at,
                                                                                    stop_step):
    monkeypatch.chdir(tmp_path)
    assert train([*RUN, "hydra.run.dir=whole"]) == 0
    stop_at(stop_step)
    assert train([*RUN, "hydra.run.dir=cut"]) == 128 + signal.SIGINT
    assert record(tmp_path / "cut")["status"] == "interrupted"
    stop_at.disarm()
    assert train([*RUN, "hydra.run.dir=cut", "resume=true"]) == 0
    whole, cut = record(tmp_path / "whole"), record(tmp_path / "cut")
    assert cut["resumed_from_step"] == stop_step // 30 * 30
    assert cut["metrics"] == whole["metrics"]
    history = (tmp_path / "whole" / "csv" / "metrics.csv").read_text()
    assert (tmp_path / "cut" / "csv" / "metrics.csv").read_text() == history
    assert len(history.splitlines()) > 40
    for threshold in (0.2, 0.1, 0.05):
        assert steps_to(tmp_path / "cut", threshold) == steps_to(tmp_path / "whole", threshold)


def test_a_run_killed_after_its_last_checkpoint_resumes_to_the_same_record(tmp_path, monkeypatch):
    """Killed in its test phase (the checkpoint at the last step written, the record still running): the resumed
    run has nothing left to fit, yet its record holds the train, validation and test metrics of the whole run."""
    monkeypatch.chdir(tmp_path)
    assert train([*RUN, "hydra.run.dir=whole", "checkpoint=keep"]) == 0
    whole = record(tmp_path / "whole")
    history = (tmp_path / "whole" / "csv" / "metrics.csv").read_text()
    # what a kill in the test phase leaves: the last checkpoint, a running record, no test rows in the history
    (tmp_path / "whole" / "result.json").write_text(json.dumps({**whole, "status": "running", "metrics": {}}))
    assert train([*RUN, "hydra.run.dir=whole", "checkpoint=keep", "resume=true"]) == 0
    again = record(tmp_path / "whole")
    assert again["resumed_from_step"] == 120 and again["status"] == "completed"
    assert {k: v for k, v in again["metrics"].items()} == whole["metrics"]
    assert {"train/loss", "val/loss", "val/mse", "test/mse"} <= set(again["metrics"])
    assert again["gradients"] == whole["gradients"] and again["gates"] == whole["gates"]
    # the same rows, the test's at the step of the weights it measured (120) in both
    rows = (tmp_path / "whole" / "csv" / "metrics.csv").read_text().splitlines()
    expected = history.splitlines()
    assert rows[:-1] == expected[:-1] and len(rows) == len(expected) > 40
    last, last_expected = (next(csv.DictReader([text[0], text[-1]])) for text in (rows, expected))
    assert {k: v for k, v in last.items() if k != "epoch"} == {k: v for k, v in last_expected.items() if k != "epoch"}
    assert last["test/mse"] != "" and last["step"] == "120"


def test_a_resumed_offline_wandb_run_is_one_run_with_the_whole_history(tmp_path, monkeypatch, stop_at):
    """wandb cannot resume an offline run (a second segment restarts at _step 0, and syncing it replaces the first):
    the resumed job's segment starts with the earlier one's history up to the checkpoint, and the earlier segment
    is kept under wandb/superseded/, out of `wandb sync <job>/wandb/offline-run-*`."""
    from rnnbench.job.wandb_offline import read_offline_run, segment_run_id

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")
    run = [*RUN[:5], "logger=wandb", *RUN[6:]]
    assert train([*run, "hydra.run.dir=whole"]) == 0
    stop_at(59)
    assert train([*run, "hydra.run.dir=cut"]) == 128 + signal.SIGINT
    stop_at.disarm()
    assert train([*run, "hydra.run.dir=cut", "resume=true"]) == 0
    (whole,), (cut,) = (list((tmp_path / d / "wandb").glob("offline-run-*")) for d in ("whole", "cut"))
    (earlier,) = (tmp_path / "cut" / "wandb" / "superseded").glob("offline-run-*")
    assert segment_run_id(earlier) == segment_run_id(cut) == record(tmp_path / "cut")["wandb"]["run_id"]
    histories = [read_offline_run(segment)["history"] for segment in (whole, cut)]
    for key in ("train/loss", "val/mse", "test/mse", "grad_flow/layer0/forward/vanishing_log10"):
        expected, resumed = ([(row["trainer/global_step"], row[key]) for row in h if key in row] for h in histories)
        assert resumed == expected and expected, key
    assert [row["_step"] for row in histories[1]] == list(range(len(histories[1])))  # one run, steps increasing


def test_gradient_accumulation_logs_each_steps_loss_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert train([*RUN, "+trainer.accumulate_grad_batches=2", "trainer.max_steps=30", "hydra.run.dir=acc"]) == 0
    with open(tmp_path / "acc" / "csv" / "metrics.csv", newline="") as file:
        steps = [int(row["step"]) for row in csv.DictReader(file) if row["train/loss"]]
    assert steps == [5, 10, 15, 20, 25, 30]  # every log_every_n_steps optimizer steps, once each
