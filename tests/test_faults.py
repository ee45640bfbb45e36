"""Faults with real signals and real subprocesses: interrupts, resume from a checkpoint, broken records, secrets."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rnnbench.record.schema import find_records

from conftest import PATIENCE, cli_env, wait_until

RUN = ["data=adding", "data.seq_len=10", "model.hidden_size=8", "trainer.max_steps=1500",
       "trainer.val_check_interval=50", "logger=csv", "threads=1"]


def train(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rnnbench", "train", *args], cwd=tmp_path, capture_output=True,
                          text=True, env=env or cli_env(), timeout=PATIENCE)


def interrupt_after_first_checkpoint(tmp_path: Path, run_dir: str, signum: int,
                                     run: tuple[str, ...] | list[str] = RUN) -> subprocess.CompletedProcess:
    """Start the run (``run``'s arguments), send ``signum`` once its first checkpoint exists, return the finished
    process."""
    process = subprocess.Popen([sys.executable, "-m", "rnnbench", "train", *run, f"hydra.run.dir={run_dir}"],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=cli_env())
    checkpoint = tmp_path / run_dir / "checkpoints" / "last.ckpt"
    wait_until(checkpoint.exists, "the run's first checkpoint", process=process)
    time.sleep(0.5)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=PATIENCE)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def record(path: Path) -> dict:
    return json.loads((path / "result.json").read_text())


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_corrupted_record_is_set_aside_and_its_job_runs_again(tmp_path):
    args = [*RUN[:3], "trainer.max_steps=20", "trainer.val_check_interval=10", "logger=none", "hydra.run.dir=job"]
    assert train(tmp_path, *args).returncode == 0
    (tmp_path / "job" / "result.json").write_text('{"status": "compl')
    again = train(tmp_path, *args, "resume=true")
    assert again.returncode == 0, again.stderr[-2000:]
    assert record(tmp_path / "job")["status"] == "completed"
    kept = list((tmp_path / "job").glob("result.json.unreadable-*"))
    assert len(kept) == 1 and kept[0].read_text() == '{"status": "compl'


@pytest.mark.slow
def test_no_secret_from_the_environment_or_the_command_line_lands_anywhere(tmp_path):
    """Planted credentials: resolved from the environment into a setting whose key does not look secret, into one
    whose key does, and a literal under a secret-looking key; every byte written (records, Hydra's dumps, CSV,
    W&B's offline run files, logs) and every line printed is searched for them."""
    planted = {"WANDB_API_KEY": "wandbkey-0123456789abcdef", "MY_SERVICE_TOKEN": "tok-sekrit-456",
               "AWS_SECRET_ACCESS_KEY": "aws-sekrit-789", "GITHUB_TOKEN": "ghp-sekrit-0123", "HF_TOKEN": "hf-sekrit-4567"}
    literal = "sekrit-literal-000"
    env = cli_env(**planted, WANDB_MODE="offline")
    args = ["-m", "data=adding", "data.seq_len=8", "model.hidden_size=4", "trainer.max_steps=4",
            "trainer.val_check_interval=2", "seed=0,1", "+extra.note=${oc.env:MY_SERVICE_TOKEN}",
            "+extra.api_key=${oc.env:WANDB_API_KEY}", f"+extra.password={literal}",
            # W&B's init arguments go into its binary .wandb file, which no later scrubbing can rewrite
            "+logger.wandb.notes=${oc.env:GITHUB_TOKEN}", "+logger.wandb.tags=[${oc.env:HF_TOKEN}]",
            # a setting named after a credential: its name is logged as W&B's config key
            f"+extra.{planted['HF_TOKEN']}=1"]
    result = train(tmp_path, *args, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    refused = train(tmp_path, "seed=${oc.env:AWS_SECRET_ACCESS_KEY}", env=env)
    assert refused.returncode == 2
    table = subprocess.run([sys.executable, "-m", "rnnbench", "table", "multirun"], cwd=tmp_path,
                           capture_output=True, text=True, env=env, timeout=PATIENCE)
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
    notes = [record(p.parent)["config"]["extra"] for p in find_records(tmp_path)]
    assert notes and all(n == {"note": "<redacted>", "api_key": "<redacted>", "password": "<redacted>", "<redacted>": 1}
                         for n in notes)


# ------------------------------------------------------------------ sweeps: workers, parents, locks

SWEEP = ["-m", "data=adding", "data.seq_len=10", "model.hidden_size=8", "trainer.max_steps=1500",
         "trainer.val_check_interval=50", "logger=csv", "seed=0,1", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
         "hydra.sweep.dir=sweep"]


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc: no psutil needed)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, stack = set(), [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.add(child)
            stack.append(child)
    return {p for p in found if alive(p)}


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def start_sweep(tmp_path: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rnnbench", "train", *SWEEP, *extra], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())


def wait_for_checkpoints(tmp_path: Path, process: subprocess.Popen, jobs: int = 2) -> None:
    wait_until(lambda: len(list((tmp_path / "sweep").glob("*/checkpoints/last.ckpt"))) >= jobs,
               "the sweep's jobs to checkpoint", process=process)


def wait_for_the_end_of(workers: set[int]) -> None:
    """Until none of ``workers`` is alive (the callers then check that their records say they were stopped, not
    that they ran to their end)."""
    wait_until(lambda: not any(alive(p) for p in workers), "the sweep's workers to end", interval=0.2)


def statuses(tmp_path: Path) -> list[str]:
    return sorted(json.loads(p.read_text())["status"] for p in (tmp_path / "sweep").glob("*/result.json"))


@pytest.mark.slow
def test_ctrl_c_stops_a_joblib_sweep_and_its_workers_and_every_record_says_interrupted(tmp_path):
    process = start_sweep(tmp_path)
    wait_for_checkpoints(tmp_path, process)
    workers = descendants(process.pid)
    assert workers, "joblib started no worker process"
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=PATIENCE)
    assert process.returncode == 130, stdout[-2000:] + stderr[-2000:]
    assert "Traceback" not in stdout + stderr
    assert "rnnbench: the sweep was interrupted" in stdout and "2 run(s): 2 interrupted" in stdout
    assert statuses(tmp_path) == ["interrupted", "interrupted"]
    wait_for_the_end_of(workers)
    assert not [p for p in workers if alive(p)], "orphaned workers"


@pytest.mark.slow
def test_kill_9_of_a_joblib_parent_stops_its_workers_and_an_immediate_resume_finishes_the_sweep(tmp_path):
    process = start_sweep(tmp_path)
    wait_for_checkpoints(tmp_path, process)
    workers = descendants(process.pid)
    process.kill()  # the parent only: its workers are left without it
    process.communicate(timeout=PATIENCE)
    wait_for_the_end_of(workers)
    assert not [p for p in workers if alive(p)], "the workers outlived their parent"
    assert statuses(tmp_path) == ["interrupted", "interrupted"]  # each worker's ParentWatch stopped its job cleanly
    resumed = train(tmp_path, *SWEEP, "resume=true")
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert "2 run(s): 2 completed" in resumed.stdout
    for path in (tmp_path / "sweep").glob("*/result.json"):
        done = json.loads(path.read_text())
        assert done["steps"] == 1500 and done["resumed_from_step"] % 50 == 0 and done["resumed_from_step"] > 0


@pytest.mark.slow
def test_a_second_sweep_into_a_dir_in_use_is_refused_and_a_killed_ones_lock_is_not_stale(tmp_path):
    first = start_sweep(tmp_path, "trainer.max_steps=100000")
    wait_for_checkpoints(tmp_path, first)
    second = train(tmp_path, *SWEEP)
    assert first.poll() is None, "the first sweep ended before the second one tried"
    assert second.returncode == 2 and "Traceback" not in second.stderr
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"rnnbench: error: sweep is in use by pid {first.pid}"), lines
    assert "cannot start until it ends" in lines[0]
    assert len(list((tmp_path / "sweep").glob("*/csv/metrics.csv"))) == 2  # nothing beside the first's jobs
    workers = descendants(first.pid)
    first.kill()  # its lock file stays behind, but the kernel released the lock with the process
    first.communicate(timeout=PATIENCE)
    wait_for_the_end_of(workers)
    again = train(tmp_path, *SWEEP, "trainer.max_steps=100")  # another config into the same dir
    assert again.returncode == 0, again.stderr[-2000:]
    assert "2 run(s): 2 completed" in again.stdout
    assert len(list((tmp_path / "sweep").glob("*/result.json.replaced-*"))) == 2  # the first's records kept aside


# ------------------------------------------------------------------ full and read-only disks

@pytest.fixture
def small_disk(tmp_path):
    """A 16 MiB tmpfs at tmp_path/disk (needs root and mount: skipped with the reason otherwise), unmounted after."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or 'mount failed'}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def fill(disk: Path) -> None:
    """Take every free byte of ``disk``."""
    with contextlib.suppress(OSError), open(disk / "filler", "wb") as f:
        while True:
            f.write(b"\0" * 4096)
            f.flush()


DISK_RUN = ["data=adding", "data.seq_len=10", "model.hidden_size=8", "trainer.val_check_interval=50", "logger=csv",
            "threads=1"]


@pytest.mark.slow
def test_a_disk_that_fills_up_mid_sweep_fails_that_job_in_one_line_and_keeps_the_finished_record(tmp_path, small_disk):
    command = [sys.executable, "-m", "rnnbench", "train", "-m", *DISK_RUN, "trainer.max_steps=100000", "seed=0,1",
               f"hydra.sweep.dir={small_disk}/sweep", "+trainer.max_time=00:00:00:04"]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=cli_env())
    first = small_disk / "sweep" / "0" / "result.json"
    wait_until(lambda: first.exists() and json.loads(first.read_text())["status"] == "completed",
               "the first job's record", process=process, interval=0.05)
    fill(small_disk)  # the second job starts on a full disk
    stdout, stderr = process.communicate(timeout=PATIENCE)
    assert process.returncode == 1, stdout[-2000:] + stderr[-2000:]
    assert "Traceback" not in stdout + stderr
    finished = json.loads(first.read_text())
    assert finished["status"] == "completed" and finished["steps"] > 0 and "test/mse" in finished["metrics"]
    # Hydra could not save the second job's config: one line, and the summary counts that job as never run
    assert stderr.strip().splitlines()[-1] == ("rnnbench: error: OSError: [Errno 28] No space left on device "
                                               f"(writing under {small_disk}/sweep)")
    assert "1 run(s): 1 completed, 1 without a record (never ran)" in stdout and "resume=true" in stdout


@pytest.mark.slow
def test_a_full_disk_before_the_start_is_one_line(tmp_path, small_disk):
    fill(small_disk)
    result = train(tmp_path, *DISK_RUN, "trainer.max_steps=20", f"hydra.run.dir={small_disk}/run")
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        f"rnnbench: error: cannot write in {small_disk}/run: No space left on device; this command cannot start there"]


@pytest.mark.slow
def test_resume_on_a_read_only_disk_is_one_line_and_leaves_the_records_alone(tmp_path, small_disk):
    done = train(tmp_path, *DISK_RUN, "trainer.max_steps=20", f"hydra.run.dir={small_disk}/run")
    assert done.returncode == 0, done.stderr[-2000:]
    before = (small_disk / "run" / "result.json").read_bytes()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    result = train(tmp_path, *DISK_RUN, "trainer.max_steps=20", f"hydra.run.dir={small_disk}/run", "resume=true")
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        f"rnnbench: error: cannot write in {small_disk}/run: Read-only file system; this command cannot start there"]
    assert (small_disk / "run" / "result.json").read_bytes() == before


@pytest.mark.slow
def test_a_disk_that_fills_up_while_a_job_trains_still_gets_its_failed_record(tmp_path, small_disk):
    process = subprocess.Popen([sys.executable, "-m", "rnnbench", "train", *DISK_RUN, "trainer.max_steps=100000",
                                "+trainer.max_time=00:00:01:00", f"hydra.run.dir={small_disk}/run"], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
    checkpoint = small_disk / "run" / "checkpoints" / "last.ckpt"
    wait_until(checkpoint.exists, "the run's first checkpoint", process=process, interval=0.05)
    fill(small_disk)
    stdout, stderr = process.communicate(timeout=PATIENCE)
    assert process.returncode == 1 and "Traceback" not in stdout + stderr, stdout[-2000:] + stderr[-2000:]
    record = json.loads((small_disk / "run" / "result.json").read_text())
    assert record["status"] == "failed" and "No space left on device" in record["error"]
    assert record["steps"] >= 50  # the steps done before the disk filled are counted
    assert f"rnnbench: failed, {record['steps']} steps" in stdout
