"""What a user sees: progress, one line per job, the numbers at the end, typos caught, `rnnbench status`,
`--version` (real subprocesses where the screen is the point)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rnnbench.errors import RnnbenchError
from rnnbench.launch.validate import preflight
from rnnbench.job.progress import Heartbeat, StepProgressBar
from rnnbench.record.lines import status_line
from rnnbench.report.status import describe
from rnnbench.record.schema import find_records

from conftest import FAST, PATIENCE, choices, cli_env, wait_until

LINE_BUDGET = 25


@pytest.mark.slow
def test_a_single_run_without_a_terminal_prints_a_few_lines_ending_with_its_numbers(rnnbench_cli, tmp_path):
    result = rnnbench_cli("train", "data.seq_len=10", *FAST)  # the default logger: W&B offline + CSV
    assert result.returncode == 0, result.stderr[-2000:]
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert len(lines) <= LINE_BUDGET, lines
    record = json.loads(find_records(tmp_path / "outputs")[0].read_text())
    mse = record["metrics"]["test/mse"]
    assert re.fullmatch(rf"rnnbench: completed, 40 steps in \d+ s, val/mse [0-9.e-]+ \(best [0-9.e-]+ at step \d+\), "
                        rf"test/mse {mse:.4g} \(input-blind baseline 0\.1667\); record: .*result\.json", lines[-1]), \
        lines[-1]
    assert "wandb:" not in result.stdout + result.stderr and "GPU available" not in result.stdout
    log_file = Path(record["output_dir"]) / "rnnbench.log"
    assert "GPU available" in log_file.read_text()  # kept in the job's log, not lost


@pytest.mark.slow
def test_verbose_shows_what_the_libraries_say(rnnbench_cli):
    result = rnnbench_cli("train", "data.seq_len=10", "logger=csv", "verbose=true", *FAST)
    assert result.returncode == 0 and "GPU available" in result.stdout + result.stderr


@pytest.mark.slow
def test_a_sweep_prints_one_line_per_job_in_order_of_completion_and_its_table(rnnbench_cli):
    result = rnnbench_cli("train", "-m", "data.seq_len=10", "model.cell=rnn,gru", "seed=0,1", *FAST)
    assert result.returncode == 0, result.stderr[-2000:]
    output = (result.stdout + result.stderr).strip().splitlines()
    job_lines = [line for line in output if re.match(r"\[\d+/4\] ", line)]
    assert [int(re.match(r"\[(\d+)/4\]", line)[1]) for line in job_lines] == [1, 2, 3, 4]
    assert all(re.search(r"model\.cell=(rnn|gru) seed=[01]: completed, test/mse [0-9.e-]+, \d+ s", line)
               for line in job_lines), job_lines
    assert "ETA" in job_lines[0] and "ETA" not in job_lines[-1]
    assert any(line.startswith("| model.cell |") for line in output)
    assert any("rnnbench table" in line for line in output)
    assert len(output) <= LINE_BUDGET + 4, output


@pytest.mark.slow
def test_a_joblib_sweep_prints_the_same_lines(rnnbench_cli):
    result = rnnbench_cli("train", "-m", "data.seq_len=10", "model.cell=rnn,gru,lstm", "hydra/launcher=joblib",
                          "logger=csv", *FAST)
    assert result.returncode == 0, result.stderr[-2000:]
    numbers = [int(m[1]) for m in re.finditer(r"^\[(\d+)/3\] model\.cell=\w+: completed", result.stdout, re.M)]
    assert numbers == [1, 2, 3]


@pytest.mark.slow
def test_a_terminal_gets_a_progress_bar_over_the_steps(tmp_path):
    command = " ".join([sys.executable, "-m", "rnnbench", "train", "data.seq_len=10", "logger=none", *FAST])
    done = subprocess.run(["script", "-qec", f"stty cols 150 rows 40; {command}", "/dev/null"], cwd=tmp_path,
                          env=cli_env(), capture_output=True, text=True, timeout=PATIENCE, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout[-2000:]
    screen = done.stdout.replace("\r", "\n")
    assert re.search(r"Training: 100%\|.*\| 40/40 \[.*step/s, train/loss=[0-9.e-]+, val/mse=[0-9.e-]+\]", screen), \
        screen[-1500:]
    assert "Epoch" not in screen


def test_without_a_terminal_the_status_line_comes_at_most_every_interval(monkeypatch, caplog):
    clock = [0.0]  # the bar's clock, moved by hand: a busy machine pausing between two steps changes nothing
    monkeypatch.setattr(time, "perf_counter", lambda: clock[0])
    bar = StepProgressBar("mse", interval=0.05, terminal=False)

    class Trainer:
        global_step, estimated_stepping_batches, callback_metrics = 0, 100, {"train/loss": 0.5, "val/mse": 0.25}

    trainer = Trainer()
    with caplog.at_level(logging.INFO, logger="rnnbench.progress"):
        bar.on_train_start(trainer, None)
        for step in range(1, 6):
            trainer.global_step = step
            clock[0] += 0.001
            bar.on_train_batch_end(trainer, None, None, None, step)
        clock[0] += 0.06
        trainer.global_step = 6
        bar.on_train_batch_end(trainer, None, None, None, 6)
    assert len(caplog.records) == 1
    assert re.fullmatch(r"step 6/100 \(6%\), [0-9.]+ steps/s, ETA \d+ s, train/loss 0\.5, val/mse 0\.25",
                        caplog.records[0].getMessage())
    assert status_line(50, 100, 10.0, {}) == "step 50/100 (50%), 10 steps/s, ETA 5 s"


def test_the_heartbeat_reports_progress_and_warns_once_when_training_slows(monkeypatch, caplog):
    beats, clock = [], [0.0]
    monkeypatch.setattr(time, "perf_counter", lambda: clock[0])
    heartbeat = Heartbeat(lambda *a: beats.append(a), interval=10.0, threads=2)

    class Trainer:
        global_step, estimated_stepping_batches = 0, 10_000

    trainer = Trainer()
    with caplog.at_level(logging.WARNING, logger="rnnbench.progress"):
        for seconds, step in [(0, 1), (10, 1001), (20, 2001), (30, 2051), (40, 2101)]:  # 100/s, 100/s, 5/s, 5/s
            clock[0], trainer.global_step = seconds, step
            heartbeat.on_train_batch_end(trainer, None, None, None, 0)
    assert [b[0] for b in beats] == [1001, 2001, 2051, 2101] and beats[0][2] == pytest.approx(100.0)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "slowed to 5% of its early speed" in warnings[0] and "threads=1" in warnings[0]


@pytest.mark.parametrize("overrides,message", [
    (["-m", "experiment=quikstart"], f"experiment='quikstart' is not allowed: one of {choices('experiment')}; "
                                     f"did you mean quickstart?"),
    (["debug=smok"], f"debug='smok' is not allowed: one of {choices('debug')}; did you mean smoke?"),
    (["-m", "hparams_search=adding_lr"], f"hparams_search='adding_lr' is not allowed: one of "
                                         f"{choices('hparams_search')}; did you mean adding_lr_hidden?"),
    (["-m", "experiment=quickstart,quikstart"], "experiment='quikstart' is not allowed"),
    (["model.cel=gru"], "model.cel='gru' is not allowed: model has no key 'cel'; did you mean model.cell?"),
    (["-m", "model.hiden_size=8,16"], "model.hiden_size='8,16' is not allowed: model has no key 'hiden_size'; "
                                      "did you mean model.hidden_size?"),
    (["data=timemachine", "data.seq_lenn=8"], "data.seq_lenn=8 is not allowed: data has no key 'seq_lenn'; "
                                              "did you mean data.seq_len?"),
    (["+trainer.max_step=5"], "trainer.max_step=5 is not allowed: an argument of pytorch_lightning.Trainer; "
                              "did you mean max_steps?"),
    (["optim=sgd", "+optim.momentun=0.9"], "optim.momentun=0.9 is not allowed: an argument of torch.optim.SGD; "
                                           "did you mean momentum?"),
    (["model=lstmm"], f"model='lstmm' is not allowed: one of {choices('model')}; did you mean lstm?"),
    (["model.cell=lsmt"], "; did you mean lstm?"),
])
def test_typos_are_refused_with_a_suggestion(overrides, message):
    with pytest.raises(RnnbenchError) as error:
        preflight(overrides)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_version_names_rnnbench_and_its_packages(rnnbench_cli):
    for command in (["--version"], ["train", "--version"]):
        result = rnnbench_cli(*command)
        assert result.returncode == 0
        assert re.fullmatch(r"rnnbench \S+ \(python 3\.\d+\.\d+, torch [^,]+, pytorch_lightning [^,]+, "
                            r"hydra_core [^,]+, wandb [^,]+, torchmetrics [^,]+, numpy [^)]+\)\n", result.stdout)


@pytest.mark.slow
def test_status_of_a_sweep_killed_mid_way(tmp_path):
    """A 3-job sweep killed (SIGKILL, whole process group) while its second job trains: status reads the records
    alone and says 1 completed, 1 running (then killed, once its heartbeat is stale), 1 not started."""
    command = [sys.executable, "-m", "rnnbench", "train", "-m", "trainer.max_steps=100,40000,300", "logger=none",
               "data.seq_len=10", "threads=1", "trainer.val_check_interval=100", "model.hidden_size=8",
               "data.num_train=256", "data.batch_size=32"]
    process = subprocess.Popen(command, cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True, text=True)

    def second_job_trains() -> bool:
        records = [json.loads(p.read_text()) for p in find_records(tmp_path) if p.stat().st_size]
        statuses = sorted(r["status"] for r in records)
        return statuses == ["completed", "running"] and any((r.get("progress") or {}).get("updated_at")
                                                             for r in records)

    try:
        wait_until(second_job_trains, "the sweep's second job to train", process=process, interval=0.5)
        sweep = next(tmp_path.glob("multirun/*"))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    lines = describe(sweep)
    assert re.match(rf"{re.escape(str(sweep))}: 3 job\(s\): 1 completed, 1 running, 1 not started; ETA ", lines[0]), lines
    assert re.match(r"  running   trainer\.max_steps=40000: step \d+/40000 \(\d+%\), [0-9.]+ steps/s, ETA ", lines[1]), lines
    later = describe(sweep, now=time.time() + 600)
    assert later[0] == f"{sweep}: 3 job(s): 1 completed, 1 killed, 1 not started", later
    assert "killed    trainer.max_steps=40000: no heartbeat for" in later[1] and "resume=true" in later[1]


def test_a_jobs_label_shows_a_drawn_float_to_four_digits():
    from rnnbench.record.lines import job_label

    record = {"overrides": ["optim.lr=0.0012948479610631662", "model.hidden_size=64", "seed=3", "threads=1",
                            "model.cell=gru", "optim.weight_decay=1e-05"]}
    assert job_label(record, []) == "optim.lr=0.001295 model.hidden_size=64 seed=3 model.cell=gru " \
                                    "optim.weight_decay=1e-05"
    assert job_label(record, ["optim.lr", "seed"]) == "optim.lr=0.001295 seed=3"
