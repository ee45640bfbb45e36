"""``hydra/launcher=slurm`` on a real Slurm cluster (``tests/slurm_cluster.py``: munged, slurmctld and slurmd on this
machine, no accounting), and rnnbench's Slurm handling (``rnnbench.job.slurm``) with stand-in commands.

The slow tests run sweeps the way a cluster user types them: records, CSV and W&B runs per job, array_parallelism
as squeue sees it, threads = cpus_per_task, a failing and a diverging job beside a completed one, the line per
job and the summary; then preemption: a job requeued by ``scontrol requeue``, one stopped by
``scancel --signal=TERM`` and one that reaches ``timeout_min``, each ``interrupted`` with its checkpoint and
continued (by Slurm's requeue, or by ``resume=true``) to exactly the metrics of an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from rnnbench.record.schema import find_records

from conftest import FAST, PATIENCE, cli_env
from slurm_cluster import Cluster, missing, start_cluster


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory) -> Cluster:
    """A single-node Slurm cluster for the whole session (skipped, with the reason, where one cannot start)."""
    reason = missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the Slurm tests: {reason} (.ci/run installs slurm-wlm and munge)")
        pytest.skip(reason)
    cluster = start_cluster(tmp_path_factory.mktemp("slurm"))
    yield cluster
    cluster.stop()


def slurm_launcher(cluster: Cluster, **settings: object) -> list[str]:
    chosen = {"partition": cluster.partition, "cpus_per_task": 1, "mem_gb": 1, "timeout_min": 10, **settings}
    return ["hydra/launcher=slurm", *(f"hydra.launcher.{key}={value}" for key, value in chosen.items())]


def start(tmp_path: Path, cluster: Cluster, *args: str, log: str, **env: str) -> subprocess.Popen:
    """``rnnbench train ARGS`` in tmp_path against the cluster, its output into ``tmp_path/log``."""
    return subprocess.Popen([sys.executable, "-m", "rnnbench", "train", *args], cwd=tmp_path,
                            env=cli_env(SLURM_CONF=cluster.env["SLURM_CONF"], **env),
                            stdout=(tmp_path / log).open("w"), stderr=subprocess.STDOUT)


def finish(process: subprocess.Popen, tmp_path: Path, log: str, timeout: float = PATIENCE) -> tuple[int, str]:
    try:
        returncode = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the command did not end in {timeout:.0f} s: {(tmp_path / log).read_text()[-3000:]}")
    return returncode, (tmp_path / log).read_text()


def records(root: Path) -> dict[str, dict]:
    """The records below ``root`` by job dir name."""
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(find_records(root))}


def only_sweep_dir(parent: Path) -> Path:
    dirs = [d for d in parent.iterdir() if (d / "multirun.yaml").is_file()]
    assert len(dirs) == 1, dirs
    return dirs[0]


def wait_for(condition, what: str, process: subprocess.Popen | None = None, timeout: float = PATIENCE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process is None or process.poll() is None, f"the sweep ended while waiting for {what}"
        assert time.monotonic() < deadline, f"waited {timeout:.0f} s for {what}"
        time.sleep(0.2)


class RunningJobs(threading.Thread):
    """Polls squeue while a sweep runs: the most array tasks seen RUNNING at once, and the array's job id."""

    def __init__(self, cluster: Cluster):
        super().__init__(daemon=True)
        self.cluster, self.most, self.array, self.stop = cluster, 0, None, threading.Event()
        self.earlier = {array_id(j) for j in cluster.jobs()}  # arrays of earlier tests, still listed by squeue

    def run(self) -> None:
        while not self.stop.wait(0.2):
            jobs = [j for j in self.cluster.jobs() if j["name"] == "rnnbench" and array_id(j) not in self.earlier]
            if jobs and self.array is None:
                self.array = array_id(jobs[0])
            self.most = max(self.most, sum(j["state"] == "RUNNING" for j in jobs))


def array_id(job: dict[str, str]) -> str:
    return job["id"].split("_")[0]


def sweep_array(sweep: Path) -> str | None:
    """The Slurm job id of a sweep's array (of its one job, for a sweep of one): submitit's ``.submitit/<id>/``."""
    found = [d.name for d in (sweep / ".submitit").glob("*") if d.name.isdigit()] if (sweep / ".submitit").is_dir() \
        else []
    return found[0] if len(found) == 1 else None


# ------------------------------------------------------------------------------ fast: stand-ins for Slurm


def fake_commands(tmp_path: Path, monkeypatch, **scripts: str) -> Path:
    """Executables named after the keys (``sacct``, ``squeue``, ``scontrol``) with the given shell bodies."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in scripts.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


def test_slurm_watcher_falls_back_to_squeue_quietly_without_accounting(tmp_path, monkeypatch, capfd):
    from submitit.slurm.slurm import SlurmJob

    from rnnbench.job import slurm

    fake_commands(tmp_path, monkeypatch, sacct='echo "Slurm accounting storage is disabled" >&2; exit 1',
                  squeue='echo "$@" >> "$(dirname "$0")/squeue.calls"\n'
                         'printf "7_0|RUNNING|vm\\n7_1|COMPLETED|vm\\n7_2|PENDING|\\n7_3|CONFIGURING|vm\\n"')
    monkeypatch.setattr(SlurmJob, "watcher", SlurmJob.watcher)
    slurm.install_quiet_watcher()
    watcher = SlurmJob.watcher
    assert type(watcher).__name__ == "QuietSlurmWatcher"
    slurm.install_quiet_watcher()
    assert SlurmJob.watcher is watcher  # installed once
    for task in range(4):
        watcher.register_job(f"7_{task}")
    assert watcher.get_state("7_0", mode="force") == "RUNNING"
    assert watcher.accounting is False
    assert watcher.is_done("7_1", mode="cache") and not watcher.is_done("7_2", mode="cache")
    assert not watcher.is_done("7_3", mode="cache")  # configuring counts as running
    watcher.update()
    calls = (tmp_path / "bin" / "squeue.calls").read_text().splitlines()
    assert len(calls) == 2 and all("--jobs=7" in call for call in calls)  # sacct was asked once, then never again
    printed = capfd.readouterr()
    assert "sacct" not in printed.out + printed.err and "accounting" not in printed.out + printed.err


def test_a_slurm_job_continues_after_a_requeue_and_ends_after_a_cancel(tmp_path, monkeypatch):
    """What a Slurm job does after its run was interrupted: leave without a result while Slurm requeues it (the
    launcher waits for the run that continues it), requeue itself for a time-limit warning while max_num_timeout
    allows, and otherwise end, so that the sweep takes its interrupted record."""
    import signal

    from rnnbench.job import slurm

    restarts = tmp_path / "restarts"
    restarts.write_text("0")
    fake_commands(tmp_path, monkeypatch, scontrol=f'if [ "$1" = requeue ]; then echo "$2" >> {tmp_path}/requeued; '
                                                  f'else echo "JobId=5 JobState=RUNNING Restarts=$(cat {restarts})"; fi')
    assert not slurm.in_slurm_job() and not slurm.restarted() and slurm.stop_signals() == ()
    assert slurm.interrupted_job_ends_here(signal.SIGTERM, None) is False  # not on Slurm: the sweep stops
    monkeypatch.setenv("SUBMITIT_EXECUTOR", "slurm")
    monkeypatch.setenv("SLURM_JOB_ID", "5")
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "4")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    assert slurm.stop_signals() == (signal.SIGUSR2,) and not slurm.restarted()
    assert slurm.interrupted_job_ends_here(signal.SIGTERM, {"max_num_timeout": 2}) is True  # scancel --signal=TERM
    restarts.write_text("1")  # scontrol requeue: Slurm counts the restart while the job is still stopping
    assert slurm.interrupted_job_ends_here(signal.SIGTERM, {"max_num_timeout": 0}) is False
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")  # the run that continues it
    assert slurm.restarted()
    assert slurm.interrupted_job_ends_here(signal.SIGTERM, {"max_num_timeout": 0}) is True
    assert not (tmp_path / "requeued").exists()
    assert slurm.interrupted_job_ends_here(signal.SIGUSR2, {"max_num_timeout": 2}) is False  # 1 restart of 2
    assert (tmp_path / "requeued").read_text().split() == ["4_1"]
    assert slurm.interrupted_job_ends_here(signal.SIGUSR2, {"max_num_timeout": 1}) is True  # no restart left


def test_an_interrupted_job_gets_an_unnumbered_line_and_its_numbered_one_when_it_completes(tmp_path):
    """A Slurm job requeued mid-run: ``[-/2]`` when its run stops, ``[k/2]`` once its continuation completes."""
    from rnnbench.launch.sweep_lines import SweepLines
    from rnnbench.record.schema import new_record, now, write_json_atomic

    printed: list[str] = []
    lines = SweepLines(tmp_path, 2, ["seed"], out=lambda text, flush: printed.append(text))
    job = tmp_path / "0"
    record = new_record({"seed": 0}, ["seed=0", "threads=1"], {}, job)
    write_json_atomic(job / "result.json", record)
    lines.poll()
    assert printed == []  # running
    record.update(status="interrupted", steps=40, wall_seconds=12.0, finished_at=now())
    write_json_atomic(job / "result.json", record)
    lines.poll()
    lines.poll()
    assert printed == ["[-/2] seed=0: interrupted at step 40, 12 s"]
    record.update(status="completed", steps=200, metrics={}, wall_seconds=3.0, finished_at=now())
    write_json_atomic(job / "result.json", record)
    lines.poll()
    assert len(printed) == 2 and printed[1].startswith("[1/2] seed=0: completed, 3 s")


# ------------------------------------------------------------------------------ slow: a real cluster


@pytest.mark.slow
def test_slurm_sweep_gives_every_job_its_records_and_isolates_failures(slurm_cluster, tmp_path, failing_cell):
    """4 jobs, 2 at a time (array_parallelism=2 on a node with room for 4): completed, diverged (lr 1e12) and failed
    (a cell that raises) side by side, each its record, CSV history and W&B offline run; one line per job, the
    summary, exit 1 for the failures, and none of submitit's sacct warnings."""
    cluster = slurm_cluster
    cluster.wait_idle()
    fast = [o for o in FAST if not o.startswith("threads=")]  # cpus_per_task=1 gives threads=1
    watch = RunningJobs(cluster)
    watch.start()
    started = time.monotonic()
    process = start(tmp_path, cluster, "-m", *slurm_launcher(cluster, array_parallelism=2), "data.seq_len=10",
                    f"model.cell=rnn,{failing_cell}", "model.nonlinearity=relu", "optim=sgd", "optim.lr=0.01,1e12",
                    *fast, "diagnostics=none", log="sweep.log")
    wait_for(lambda: watch.array is not None, "the array in squeue", process)
    throttle = cluster.job(f"{watch.array}_0").get("ArrayTaskThrottle")
    returncode, output = finish(process, tmp_path, "sweep.log")
    watch.stop.set()
    watch.join()
    wall = time.monotonic() - started
    assert returncode == 1, output[-3000:]
    assert 1 <= watch.most <= 2 and throttle == "2", (watch.most, throttle)
    assert "Bypassing sacct" not in output and "accounting storage is disabled" not in output
    assert "4 run(s): 1 completed, 1 diverged, 2 failed" in output
    lines = re.findall(r"^\[(\d)/4\] (model\.cell=\S+ optim\.lr=\S+): (\w+)", output, re.M)
    assert sorted(n for n, _, _ in lines) == ["1", "2", "3", "4"], output[-3000:]
    assert "| model.cell |" in output  # the sweep's table
    sweep = only_sweep_dir(tmp_path / "multirun")
    found = {(r["config"]["optim"]["lr"], r["config"]["model"]["cell"]): r for r in records(sweep).values()}
    assert found[(0.01, "rnn")]["status"] == "completed" and found[(1e12, "rnn")]["status"] == "diverged"
    assert found[(0.01, failing_cell)]["status"] == found[(1e12, failing_cell)]["status"] == "failed"
    assert "injected fault" in found[(0.01, failing_cell)]["error"]
    from rnnbench.job.wandb_offline import read_offline_run

    run_ids = set()
    for record in found.values():
        job_dir = Path(record["output_dir"])
        assert record["threads"] == 1 and "threads=1" in record["overrides"]  # threads = cpus_per_task
        run = read_offline_run(next((job_dir / "wandb").glob("offline-run-*")))
        assert run["config"]["optim.lr"] == record["config"]["optim"]["lr"]
        # one group per configuration of this invocation: what varies, the seed aside
        cell, lr = record["config"]["model"]["cell"], record["config"]["optim"]["lr"]
        assert record["wandb"]["group"] == f"sweep@{Path(record['output_dir']).parent.name}/model.cell={cell}," \
                                           f"optim.lr={lr:g}" and record["wandb"]["job_type"] == "sweep"
        run_ids.add(record["wandb"]["run_id"])
        if record["status"] != "failed":
            history = (job_dir / "csv" / "metrics.csv").read_text().splitlines()
            assert history[0].startswith(("epoch", "step")) and len(history) > 1
    assert len(run_ids) == 4
    offline = sorted(map(str, sweep.glob("*/wandb/offline-run-*")))
    sync = subprocess.run([str(Path(sys.executable).parent / "wandb"), "sync", "--dry-run", "-n", "4", *offline],
                          cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=PATIENCE)
    assert sync.returncode == 0 and "Would sync 4 run(s)" in sync.stdout + sync.stderr, sync.stderr[-2000:]  # README
    completed = found[(0.01, "rnn")]
    assert completed["steps"] == 40 and completed["metrics"]["test/mse"] > 0
    assert len(list((sweep / ".submitit").glob(f"{watch.array}_*/{watch.array}_*_0_log.out"))) == 4  # 4 Slurm tasks
    print(f"slurm sweep of 4 jobs: {wall:.1f} s, at most {watch.most} running at once")


SLOW_CELL = "slow_cells.SlowOnFirstRun"
STEP_SECONDS = "RNNBENCH_TEST_STEP_SECONDS"


@pytest.fixture
def slow_cell(tmp_path: Path) -> str:
    """An Elman RNN (saved in tmp_path, the runs' working directory) that sleeps $RNNBENCH_TEST_STEP_SECONDS per
    training batch, but only on a Slurm job's first run: a job slow enough to be interrupted midway, whose
    continuation is quick. Sleeping changes no number."""
    (tmp_path / "slow_cells.py").write_text(
        "import os\nimport time\n\nimport torch\n\nfrom rnnbench.models.cells.simple import ElmanRNN\n\n\n"
        "class SlowOnFirstRun(ElmanRNN):\n"
        "    def project_input(self, x):\n"
        f"        pause = float(os.environ.get('{STEP_SECONDS}') or 0)\n"
        "        first_run = int(os.environ.get('SLURM_RESTART_COUNT') or 0) == 0\n"
        "        if pause and first_run and self.training and torch.is_grad_enabled():\n"
        "            time.sleep(pause)\n"
        "        return super().project_input(x)\n")
    return SLOW_CELL


@pytest.mark.slow
def test_requeued_cancelled_and_timed_out_jobs_continue_to_the_metrics_of_uninterrupted_runs(
        slurm_cluster, tmp_path, slow_cell):
    """Three jobs of one array, slowed to 0.6 s a step on their first run (200 steps, a checkpoint every 20):
    seed 0 is requeued (``scontrol requeue``) after its first checkpoint, seed 1 gets ``scancel --signal=TERM``,
    seed 2 runs into timeout_min=1. Each ends ``interrupted`` with its checkpoint; Slurm's requeue continues seed
    0 in the same sweep, ``resume=true`` the others; all three end with exactly the metrics of the same runs done
    without a stop. ``rnnbench status`` reads the sweep while it runs. At the same time a fourth job, in its own
    sweep, gets submitit's time-limit warning and requeues itself (max_num_timeout=1)."""
    cluster = slurm_cluster
    cluster.wait_idle()
    run = ["data=adding", "data.seq_len=10", "model.hidden_size=8", f"model.cell={slow_cell}",
           "trainer.max_steps=200", "trainer.val_check_interval=20", "logger=csv", "diagnostics=none", "seed=0,1,2"]
    launcher = slurm_launcher(cluster, timeout_min=1, signal_delay_s=0, array_parallelism=3)
    started = time.monotonic()
    reference = start(tmp_path, cluster, "-m", *run[:-1], "seed=0,1,2,3", "threads=1", "hydra.sweep.dir=reference",
                      log="reference.log")
    process = start(tmp_path, cluster, "-m", *launcher, *run, log="sweep.log", **{STEP_SECONDS: "0.6"})
    # beside it, a one-job sweep with submitit's time-limit warning (SIGUSR2, signal_delay_s=30 s before
    # timeout_min=2, which Slurm may send up to a minute early: after 30 to 60 s) and one requeue allowed
    # (max_num_timeout=1): the job requeues itself and continues from its checkpoint
    warned = start(tmp_path, cluster, "-m", *slurm_launcher(cluster, timeout_min=2, signal_delay_s=30,
                                                              max_num_timeout=1),
                   *run[:-1], "seed=3", "hydra.sweep.dir=warned", log="warned.log", **{STEP_SECONDS: "0.6"})
    wait_for(lambda: (tmp_path / "multirun").is_dir() and any((tmp_path / "multirun").glob("*/multirun.yaml")),
             "the sweep dir", process)
    sweep = only_sweep_dir(tmp_path / "multirun")

    def checkpointed(job: str) -> bool:
        return (sweep / job / "checkpoints" / "last.ckpt").is_file()

    wait_for(lambda: checkpointed("0") and checkpointed("1"), "the first checkpoints", process)
    array = sweep_array(sweep)
    assert array is not None
    cluster.run("scontrol", "requeue", f"{array}_0")
    cluster.run("scancel", "--signal=TERM", f"{array}_1")
    wait_for(lambda: records(sweep).get("1", {}).get("status") == "interrupted", "seed 1 to stop", process)
    status = subprocess.run([sys.executable, "-m", "rnnbench", "status", str(sweep)], cwd=tmp_path, env=cli_env(),
                            capture_output=True, text=True, timeout=PATIENCE)
    returncode, output = finish(process, tmp_path, "sweep.log")
    sweep_seconds = time.monotonic() - started
    assert status.returncode == 0, status.stderr
    assert f"{sweep}: 3 job(s):" in status.stdout and "interrupted seed=1: at step" in status.stdout
    assert re.search(r"running +seed=2: ", status.stdout), status.stdout  # the one still training, with its speed

    assert returncode == 1, output[-3000:]  # interrupted jobs are not done
    assert "3 run(s): 1 completed, 2 interrupted" in output, output[-3000:]
    assert re.search(r"^\[-/3\] seed=1: interrupted at step \d+", output, re.M), output[-3000:]
    assert re.search(r"^\[-/3\] seed=2: interrupted at step \d+", output, re.M), output[-3000:]
    assert re.search(r"^\[1/3\] seed=0: completed, test/mse ", output, re.M), output[-3000:]
    assert "Bypassing sacct" not in output
    cut = records(sweep)
    requeued, cancelled, timed_out = cut["0"], cut["1"], cut["2"]
    assert requeued["status"] == "completed" and requeued["steps"] == 200
    assert requeued["resumed_from_step"] >= 20 and requeued["resumed_from_step"] % 20 == 0
    assert cluster.job(f"{array}_0").get("Restarts") == "1"
    assert cancelled["status"] == "interrupted" and cancelled["error"] == "interrupted by SIGTERM"
    assert timed_out["status"] == "interrupted" and timed_out["error"] in ("interrupted by SIGTERM",
                                                                           "interrupted by SIGUSR2")
    # the launcher has the job's result once it is written; Slurm says TIMEOUT once the job's processes are gone
    wait_for(lambda: cluster.job(f"{array}_2").get("JobState") != "COMPLETING", "seed 2's job to end")
    assert cluster.job(f"{array}_2").get("JobState") == "TIMEOUT", cluster.job(f"{array}_2")
    stopped_at = {}
    for job, record in (("1", cancelled), ("2", timed_out)):
        assert 20 <= record["steps"] < 200 and checkpointed(job)
        assert record["metrics"]["best/val/mse_step"] % 20 == 0  # its last validation's numbers are kept
        stopped_at[job] = record["steps"]

    resumed = start(tmp_path, cluster, "-m", *launcher, *run, "resume=true", log="resume.log")
    returncode, again_output = finish(resumed, tmp_path, "resume.log")
    assert returncode == 0, again_output[-3000:]
    assert f"resume: continuing the sweep in {sweep.relative_to(tmp_path)}" in again_output
    assert "3 run(s): 3 completed" in again_output
    assert "seed=0: completed" in again_output and "(done before this sweep started)" in again_output
    ref_code, ref_output = finish(reference, tmp_path, "reference.log")
    assert ref_code == 0, ref_output[-3000:]
    warned_code, warned_output = finish(warned, tmp_path, "warned.log")
    assert warned_code == 0 and "1 run(s): 1 completed" in warned_output, warned_output[-3000:]
    assert cluster.job(sweep_array(tmp_path / "warned")).get("Restarts") == "1"  # requeued once, by the job itself
    total = time.monotonic() - started
    after = records(sweep)
    uninterrupted = {r["seed"]: r for r in records(tmp_path / "reference").values()}
    assert after["0"]["started_at"] == requeued["started_at"] and after["0"]["finished_at"] == requeued["finished_at"]
    for job in ("1", "2"):
        assert after[job]["status"] == "completed" and after[job]["steps"] == 200
        assert after[job]["resumed_from_step"] % 20 == 0 and after[job]["resumed_from_step"] <= stopped_at[job]
        assert not (sweep / job / "checkpoints").exists()
    warned_record = records(tmp_path / "warned")["0"]
    assert warned_record["status"] == "completed" and warned_record["steps"] == 200
    # Slurm sends the warning at a time of its choosing, up to 60 s early: past the first checkpoint the run
    # continues from its last one; before it, from step 0; while the job still starts up (no run to stop yet),
    # submitit's own handler requeues it
    warned_at = re.findall(r"^\[-/1\] .*seed=3: interrupted at step (\d+)", warned_output, re.M)
    expected_resume = (int(warned_at[0]) // 20 * 20 or None) if warned_at else None
    allowed = {expected_resume}
    if warned_at and int(warned_at[0]) % 20 == 0:  # stopped while writing the checkpoint of that very step
        allowed.add(int(warned_at[0]) - 20 or None)
    assert warned_record["resumed_from_step"] in allowed, (warned_at, warned_record["resumed_from_step"])
    for job, record in [*after.items(), ("warned", warned_record)]:
        assert record["metrics"] == uninterrupted[record["seed"]]["metrics"], job  # bit for bit
    print(f"preemption: sweep {sweep_seconds:.0f} s, whole test {total:.0f} s; requeued seed 0 resumed from step "
          f"{requeued['resumed_from_step']}; cancelled at {stopped_at['1']}, timed out at {stopped_at['2']}; resumed "
          f"from {after['1']['resumed_from_step']} and {after['2']['resumed_from_step']}; the time-limit warning: "
          f"stopped at step {warned_at or 'none (during start-up)'}, resumed from step {expected_resume}")
