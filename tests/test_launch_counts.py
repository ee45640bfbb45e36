"""What one ``rnnbench train`` does, counted in a real in-process sweep: the launcher composes once per distinct
set of config-group choices and validates once, the job trusts it (no validation) and builds each object once;
``rnnbench status`` reads the launcher's job count instead of re-deriving it."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter

import pytest
from conftest import FAST
from hydra._internal.config_loader_impl import ConfigLoaderImpl

import rnnbench.config
import rnnbench.job.run
import rnnbench.launch.validate
from rnnbench.launch.train import train
from rnnbench.record.plan import PLAN_NAME, read_plan
from rnnbench.report.status import describe

CELLS = ("rnn", "gru")  # two values of one key: one group-choice set, two jobs that differ in the model part


def counting(monkeypatch, module, name: str, counter: Counter, key=lambda *a, **k: "calls"):
    real = getattr(module, name)

    def wrapper(*args, **kwargs):
        counter[key(*args, **kwargs)] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)


@pytest.fixture
def counted(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    counts = {name: Counter() for name in ("compose", "launch_validate", "job_validate", "job_build", "job_instantiate",
                                           "hydra_compose")}
    counting(monkeypatch, ConfigLoaderImpl, "load_configuration", counts["hydra_compose"])
    counting(monkeypatch, rnnbench.launch.validate, "compose", counts["compose"])
    counting(monkeypatch, rnnbench.launch.validate, "validate", counts["launch_validate"])
    counting(monkeypatch, rnnbench.job.run, "validate", counts["job_validate"])
    counting(monkeypatch, rnnbench.job.run, "build", counts["job_build"], key=lambda node, prefix, **k: prefix)
    counting(monkeypatch, rnnbench.job.run, "instantiate", counts["job_instantiate"],
             key=lambda node, *a, **k: str(node.get("_target_")).rsplit(".", 1)[-1])
    return counts


def test_a_sweep_composes_and_validates_once_in_the_launcher_and_each_job_builds_each_object_once(counted, tmp_path):
    status = train(["-m", f"model.cell={','.join(CELLS)}", "seed=0,1", *FAST, "trainer.max_steps=2",
                    "trainer.val_check_interval=2", "logger=csv", "diagnostics=none"])
    assert status == 0
    jobs = 2 * len(CELLS)
    assert sum(counted["compose"].values()) == 1  # one set of group choices
    # every composition in the process: rnnbench's one, two of @hydra.main's own (the mode, the sweep's config),
    # and one per job as Hydra's launcher starts it; Hydra's sweeper no longer composes each job twice
    assert sum(counted["hydra_compose"].values()) == 1 + 2 + jobs
    assert sum(counted["launch_validate"].values()) == len(CELLS)  # the seeds are checked by their rule alone
    assert sum(counted["job_validate"].values()) == 0  # the jobs trust the launcher
    assert counted["job_build"] == {"data": jobs, "model": jobs}
    assert counted["job_instantiate"]["Trainer"] == jobs
    sweep = next(p.parent for p in tmp_path.rglob(PLAN_NAME))
    plan = read_plan(sweep)
    assert (plan.multirun, plan.jobs, plan.varying) == (True, jobs, ["model.cell", "seed"])
    assert not any("rnn" in digest for digest in json.loads((sweep / PLAN_NAME).read_text())["validated"])
    assert describe(sweep)[0] == f"{sweep}: {jobs} job(s): {jobs} completed"


def test_a_job_the_launcher_did_not_validate_validates_itself(counted, tmp_path, monkeypatch):
    """A run launched by ``rnnbench train`` trusts its plan; the same job run by Hydra directly (no plan, as for
    ``wandb agent`` or a value an Optuna sampler drew) validates its own config, once."""
    from rnnbench.job import app

    arguments = [*FAST, "trainer.max_steps=2", "trainer.val_check_interval=2", "logger=csv", "diagnostics=none"]
    assert train([*arguments, "hydra.run.dir=launched"]) == 0
    assert sum(counted["job_validate"].values()) == 0
    plan = read_plan(tmp_path / "launched")
    assert plan.covers(["threads=1", "trainer.max_steps=2"]) and not plan.covers(["trainer.max_steps=3"])
    monkeypatch.setattr("sys.argv", ["rnnbench train", *arguments, "hydra.run.dir=direct"])
    app.train()
    assert sum(counted["job_validate"].values()) == 1
    assert json.loads((tmp_path / "direct" / "result.json").read_text())["status"] == "completed"


def test_status_counts_jobs_not_started_from_the_launch_plan(tmp_path):
    from rnnbench.record.plan import LaunchPlan

    LaunchPlan.of(True, 5, ["seed"], []).write(tmp_path)
    assert describe(tmp_path)[0] == f"{tmp_path}: 5 job(s): 5 not started"
    (tmp_path / PLAN_NAME).write_text("{not json")
    assert describe(tmp_path)[0] == f"{tmp_path}: 0 job(s): no records yet"


def test_a_100000_job_seed_sweep_starts_its_first_job_without_composing_the_others(counted, tmp_path, monkeypatch):
    """Hydra's basic sweeper would compose all 100,000 jobs before the first starts (hours, silently); the launch
    plan covers them, so the first job starts after rnnbench's one composition and Hydra's own."""
    def first_job(self):  # Ctrl-C as the first job starts: the sweep stops there
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(60)  # the handler raises Interrupted in this thread long before

    monkeypatch.setattr(rnnbench.job.run.Job, "run", first_job)
    assert train(["-m", "seed=range(0,100000)", "logger=none", "hydra.sweep.dir=big"]) == 128 + signal.SIGINT
    assert sum(counted["compose"].values()) == 1
    assert sum(counted["hydra_compose"].values()) == 1 + 2 + 1  # rnnbench's, @hydra.main's two, the first job's
    assert read_plan(tmp_path / "big").jobs == 100_000
