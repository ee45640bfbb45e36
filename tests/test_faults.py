"""Faults with real signals and real subprocesses: interrupts, resume from a checkpoint, broken records, secrets."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import cli_env

RUN = ["data=adding", "data.seq_len=10", "model.hidden_size=8", "trainer.max_steps=1500",
       "trainer.val_check_interval=50", "logger=csv", "threads=1"]


def train(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rnnbench", "train", *args], cwd=tmp_path, capture_output=True,
                          text=True, env=env or cli_env(), timeout=600)


def interrupt_after_first_checkpoint(tmp_path: Path, run_dir: str, signum: int) -> subprocess.CompletedProcess:
    """Start the run, send ``signum`` once its first checkpoint exists, return the finished process."""
    process = subprocess.Popen([sys.executable, "-m", "rnnbench", "train", *RUN, f"hydra.run.dir={run_dir}"],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=cli_env())
    checkpoint = tmp_path / run_dir / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def record(path: Path) -> dict:
    return json.loads((path / "result.json").read_text())


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_run_resumes_to_the_metrics_of_an_uninterrupted_one(tmp_path, signum):
    whole = train(tmp_path, *RUN, "hydra.run.dir=whole")
    assert whole.returncode == 0, whole.stderr[-2000:]
    stopped = interrupt_after_first_checkpoint(tmp_path, "cut", signum)
    assert stopped.returncode == 128 + signum, stopped.stdout[-2000:] + stopped.stderr[-2000:]
    assert "Traceback" not in stopped.stdout + stopped.stderr
    cut = record(tmp_path / "cut")
    assert cut["status"] == "interrupted" and 50 <= cut["steps"] < 1500
    assert cut["error"] == f"interrupted by {signal.Signals(signum).name}"
    assert cut["metrics"]["best/val/mse_step"] % 50 == 0 and cut["metrics"]["val/mse"] > 0  # the last validation
    resumed = train(tmp_path, *RUN, "hydra.run.dir=cut", "resume=true")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    again, reference = record(tmp_path / "cut"), record(tmp_path / "whole")
    assert again["status"] == "completed" and again["steps"] == 1500
    assert again["resumed_from_step"] is not None and again["resumed_from_step"] % 50 == 0
    assert again["metrics"] == reference["metrics"]  # bit for bit: data order, RNGs and callback state restored
    assert again["gradients"]["max_norm"] == reference["gradients"]["max_norm"]
    assert again["gradients"]["steps_measured"] == reference["gradients"]["steps_measured"] == 1500
    assert not (tmp_path / "cut" / "checkpoints").exists()  # a finished run keeps no checkpoint


def test_a_corrupted_record_is_set_aside_and_its_job_runs_again(tmp_path):
    args = [*RUN[:3], "trainer.max_steps=20", "trainer.val_check_interval=10", "logger=none", "hydra.run.dir=job"]
    assert train(tmp_path, *args).returncode == 0
    (tmp_path / "job" / "result.json").write_text('{"status": "compl')
    again = train(tmp_path, *args, "resume=true")
    assert again.returncode == 0, again.stderr[-2000:]
    assert record(tmp_path / "job")["status"] == "completed"
    kept = list((tmp_path / "job").glob("result.json.unreadable-*"))
    assert len(kept) == 1 and kept[0].read_text() == '{"status": "compl'


def test_no_secret_from_the_environment_or_the_command_line_lands_anywhere(tmp_path):
    """Planted credentials: resolved from the environment into a setting whose key does not look secret, into one
    whose key does, and a literal under a secret-looking key; every byte written (records, Hydra's dumps, CSV,
    W&B's offline run files, logs) and every line printed is searched for them."""
    planted = {"WANDB_API_KEY": "wandbkey-0123456789abcdef", "MY_SERVICE_TOKEN": "tok-sekrit-456",
               "AWS_SECRET_ACCESS_KEY": "aws-sekrit-789"}
    literal = "sekrit-literal-000"
    env = cli_env(**planted, WANDB_MODE="offline")
    args = ["-m", "data=adding", "data.seq_len=8", "model.hidden_size=4", "trainer.max_steps=4",
            "trainer.val_check_interval=2", "seed=0,1", "+extra.note=${oc.env:MY_SERVICE_TOKEN}",
            "+extra.api_key=${oc.env:WANDB_API_KEY}", f"+extra.password={literal}"]
    result = train(tmp_path, *args, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    refused = train(tmp_path, "seed=${oc.env:AWS_SECRET_ACCESS_KEY}", env=env)
    assert refused.returncode == 2
    table = subprocess.run([sys.executable, "-m", "rnnbench", "table", "multirun"], cwd=tmp_path,
                           capture_output=True, text=True, env=env, timeout=300)
    assert table.returncode == 0, table.stderr
    secrets = [*planted.values(), literal]
    printed = result.stdout + result.stderr + refused.stdout + refused.stderr + table.stdout + table.stderr
    found = [(s, "printed") for s in secrets if s in printed]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".wandb" for p in files) and any(p.name == "multirun.yaml" for p in files)
    for path in files:
        data = path.read_bytes()
        found += [(s, str(path.relative_to(tmp_path))) for s in secrets if s.encode() in data]
    assert found == []
    notes = [record(p.parent)["config"]["extra"] for p in tmp_path.rglob("result.json")]
    assert notes and all(n == {"note": "<redacted>", "api_key": "<redacted>", "password": "<redacted>"}
                         for n in notes)
