"""Sweeps: presets, launchers (joblib, submitit, Slurm), Optuna search, failure isolation, resume, W&B sweeps.

The fast tests compose configs and call the sweep helpers in-process; the slow ones run real sweeps as
subprocesses, the way a user types them, with threads=1 (or the launcher's share of 2 cores) and tiny sizes.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import rnnbench.hydra_setup  # noqa: F401  (the resolvers conf/hydra/rnnbench.yaml uses)
from rnnbench.config import config_dir
from rnnbench.launch.validate import preflight
from rnnbench.launch.resume import command_signature
from rnnbench.job.threads import available_cores, threads_per_job
from wandb_sweep import agent_command, example_values, load_sweep_config
from rnnbench.launch import summary

from rnnbench.job.wandb_offline import read_offline_run
from rnnbench.job.checkpoints import checkpoint_step
from rnnbench.record.schema import find_records

from conftest import FAST, PATIENCE, choice_names, cli_env, wait_until


def grid_size(preset: str) -> int:
    """The number of jobs in a preset's grid, counted from its file: the product of the numbers of values of its
    swept keys (``hydra.sweeper.params``, comma-separated lists)."""
    params = yaml.safe_load((config_dir() / "experiment" / f"{preset}.yaml").read_text())["hydra"]["sweeper"]["params"]
    return math.prod(len(str(values).split(",")) for values in params.values())


# what a preset needs on an offline machine: its data file (the shared copy CI has)
MUSIC_FILE = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "polyphonic" / "JSB_Chorales.mat"
PRESET_ARGUMENTS = {"chung_polyphonic": (f"data.path={MUSIC_FILE}",)}
QUIET = ("diagnostics=none",)  # the slow tests below are about sweeps, not about the diagnostics' cost


def records(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(find_records(root))]


def compose_all(*overrides: str):
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


def sweep_dir_of(tmp_path: Path, name: str | None = None) -> Path:
    parent = tmp_path / "multirun" / name if name else tmp_path / "multirun"
    dirs = [d for d in parent.iterdir() if (d / "multirun.yaml").is_file() or any(d.glob("*/result.json"))]
    assert len(dirs) == 1, dirs
    return dirs[0]


def kill_while_the_second_job_trains(tmp_path: Path, command: list[str]) -> dict[str, dict]:
    """Start the sweep ``command`` in tmp_path, SIGKILL its process group once job 0 completed and job 1 runs;
    return the records then, by job dir name."""
    process = subprocess.Popen(command, cwd=tmp_path, env=cli_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    found: dict[str, dict] = {}

    def second_job_trains() -> bool:
        found.clear()
        found.update({p.parent.name: json.loads(p.read_text()) for p in find_records(tmp_path / "multirun")})
        return found.get("0", {}).get("status") == "completed" and found.get("1", {}).get("status") == "running"

    try:
        wait_until(second_job_trains, "the first job to complete and the second to train", process=process)
        return found
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


# ---------------------------------------------------------------------------------------- fast tests


@pytest.mark.parametrize("name", choice_names("experiment"))  # every preset conf/ ships
def test_every_preset_composes_and_validates_each_job(name):
    if name in PRESET_ARGUMENTS and not MUSIC_FILE.is_file():
        pytest.skip(f"the shared copy of the music data is not at {MUSIC_FILE}")
    assert preflight(["-m", f"experiment={name}", *PRESET_ARGUMENTS.get(name, ())]) == grid_size(name)


def test_long_adding_and_lstm_variants_say_what_the_papers_compare():
    irnn = compose_all("experiment=long_adding", "model=irnn")
    assert (irnn.model.cell, irnn.model.nonlinearity, irnn.model.recurrent_init) == ("rnn", "relu", "identity")
    assert irnn.data.seq_len == 150 and irnn.hydra.sweeper.params["model"] == "irnn,rnn,lstm"
    grid = compose_all("experiment=lstm_variants").hydra.sweeper.params["lstm_variant"].split(",")
    assert sorted(grid) == sorted(p.stem for p in (config_dir() / "lstm_variant").glob("*.yaml"))
    cells = {name: compose_all("experiment=lstm_variants", f"lstm_variant={name}") for name in grid}
    assert cells["v"].model.cell == "lstm_peephole" and cells["np"].model.cell == "lstm"
    assert len({cfg.model.cell for cfg in cells.values()}) == 9  # nine different cells, each at its searched rate
    assert all(cfg.optim.lr in (0.003, 0.01, 0.03, 0.1) for cfg in cells.values())
    search = compose_all("experiment=lstm_variants", "lstm_variant=nog", "optim.lr=0.003")
    assert (search.model.cell, search.optim.lr) == ("lstm_nog", 0.003)  # the search's rate beats the variant's
    text = compose_all("experiment=lstm_variants_timemachine", "lstm_variant=nfg")
    assert text.hydra.sweeper.params["lstm_variant"].split(",") == grid  # the same nine, on the second task
    assert (text.model.cell, text.model.hidden_size, text.data.batch_size, text.data.seq_len) == \
        ("lstm_nfg", 32, 1024, 32)
    assert (text.optim._target_, text.optim.lr, text.trainer.gradient_clip_val) == ("torch.optim.SGD", 4.0, 1.0)


def test_preset_grids_say_only_their_differences():
    cells = compose_all("experiment=cells_vs_length")
    assert dict(cells.hydra.sweeper.params) == {"model.cell": "rnn,lstm,gru", "data.seq_len": "25,50,100",
                                               "seed": "0,1,2"}
    assert cells.data._target_.endswith("AddingProblem") and cells.optim.lr == 0.01
    depth = compose_all("experiment=depth_direction")
    assert depth.data._target_.endswith("Digits")
    assert set(depth.hydra.sweeper.params) == {"model.cell", "model.num_layers", "model.bidirectional", "seed"}
    clipping = compose_all("experiment=clipping")
    assert clipping.optim._target_ == "torch.optim.SGD" and clipping.optim.lr == 1.0
    assert clipping.hydra.sweeper.params["trainer.gradient_clip_val"] == "null,0.1,1,10"


@pytest.mark.parametrize("variant,cell,layers,lr", [("rnn", "rnn", 1, 1.0), ("lstm", "lstm", 1, 4.0),
                                                    ("gru", "gru", 1, 4.0), ("gru_2layer", "gru", 2, 2.0)])
def test_d2l_timemachine_gives_each_model_d2ls_learning_rate(variant, cell, layers, lr):
    cfg = compose_all("experiment=d2l_timemachine", f"d2l={variant}")
    assert (cfg.model.cell, cfg.model.num_layers, cfg.optim.lr) == (cell, layers, lr)
    assert cfg.optim._target_ == "torch.optim.SGD" and cfg.trainer.gradient_clip_val == 1.0
    # d2l's epochs per model (d2l.Trainer(max_epochs=...)): 50 for the LSTM and the GRU, 100 otherwise; ~10 batches each
    steps = {"lstm": 500, "gru": 500}.get(variant, 1000)
    assert (cfg.data.batch_size, cfg.data.seq_len, cfg.model.hidden_size, cfg.trainer.max_steps) == (1024, 32, 32, steps)
    assert cfg.hydra.sweeper.params["d2l"] == "rnn,lstm,gru,gru_2layer"


def test_named_sweeps_get_a_stable_parent_dir():
    named = compose_all("experiment=clipping").hydra.sweep.dir
    assert named.startswith("multirun/clipping/") and len(Path(named).name) == len("2025-01-01_00-00-00_000000")
    assert compose_all("hparams_search=adding_lr_hidden").hydra.sweep.dir.startswith("multirun/adding_lr_hidden/")
    plain = compose_all().hydra.sweep.dir
    assert Path(plain).parent == Path("multirun")


def test_launcher_presets_divide_the_cores():
    joblib = compose_all("hydra/launcher=joblib").hydra.launcher
    assert joblib._target_.endswith("JoblibLauncher") and joblib.n_jobs == 2
    assert threads_per_job(joblib, cores=2) == 1 and threads_per_job(joblib, cores=16) == 8
    assert threads_per_job({**OmegaConf.to_container(joblib), "n_jobs": -1}, cores=8) == 1
    assert threads_per_job({**OmegaConf.to_container(joblib), "n_jobs": 3}, cores=2) == 1
    local = compose_all("hydra/launcher=submitit_local").hydra.launcher
    assert local._target_.endswith("submitit_launcher.LocalLauncher") and threads_per_job(local, cores=2) == 1
    slurm = compose_all("hydra/launcher=slurm", "hydra.launcher.cpus_per_task=6").hydra.launcher
    assert threads_per_job(slurm, cores=2) == 6
    assert threads_per_job(compose_all().hydra.launcher, cores=2) is None  # basic: one job at a time


def test_slurm_preset_becomes_these_sbatch_options(tmp_path, monkeypatch):
    """The real hydra-submitit-launcher code path up to sbatch, with a stand-in for Slurm's `srun`."""
    import submitit
    from hydra.core.utils import JobReturn, JobStatus
    from hydra.utils import instantiate

    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "srun").write_text("#!/bin/sh\nexit 0\n")
    (fake_bin / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    cfg = compose_all("hydra/launcher=slurm", f"hydra.sweep.dir={tmp_path / 'sweep'}", "hydra.launcher.partition=cpu",
                      "hydra.launcher.timeout_min=30", "hydra.launcher.cpus_per_task=4",
                      "hydra.launcher.gpus_per_node=1",
                      "hydra.launcher.array_parallelism=3")
    submitted = {}

    def map_array(executor, launcher, *job_params):
        submitted["script"] = executor._executor._make_submission_file_text("python -u -m submitit.core._submit", "0")
        submitted["parameters"] = dict(executor._executor.parameters)
        submitted["jobs"] = list(zip(*job_params))

        class Done:
            def results(self):
                ret = JobReturn()
                ret.status, ret._return_value = JobStatus.COMPLETED, None
                return [ret]

        return [Done() for _ in submitted["jobs"]]

    monkeypatch.setattr(submitit.AutoExecutor, "map_array", map_array)
    launcher = instantiate(cfg.hydra.launcher)
    launcher.setup(hydra_context=None, task_function=None, config=cfg)
    assert len(launcher.launch([["seed=0"], ["seed=1"]], initial_job_idx=0)) == 2
    script = submitted["script"]
    for option in ("--partition=cpu", "--time=30", "--cpus-per-task=4", "--gpus-per-node=1", "--mem=8GB",
                   "--job-name=rnnbench"):
        assert f"#SBATCH {option}\n" in script, script
    assert submitted["parameters"]["array_parallelism"] == 3
    assert [job[0] for job in submitted["jobs"]] == [["seed=0"], ["seed=1"]]
    assert f"{tmp_path / 'sweep'}/.submitit/" in script


def test_resume_compares_commands_without_bookkeeping():
    first = command_signature(["experiment=quickstart", "seed=0", "threads=1"], ["hydra.mode=MULTIRUN"])
    again = command_signature(["seed=0", "experiment=quickstart", "resume=true"],
                              ["hydra.sweep.dir=multirun/x", "hydra/launcher=joblib", "hydra.launcher.n_jobs=4"])
    assert first == again
    assert command_signature(["experiment=quickstart", "seed=1"], []) != first
    assert command_signature(["experiment=quickstart", "seed=0"], ["hydra.sweeper.params.seed=0,1"]) != first


def test_summary_counts_killed_jobs_and_jobs_that_never_ran(tmp_path, capsys):
    found = [{"status": "completed"}, {"status": "diverged"},
             {"status": "running", "output_dir": "multirun/x/2"}]
    assert summary._report(tmp_path, found[:2], expected=2) == 0
    assert summary._report(tmp_path, found, expected=5) == 1
    out = capsys.readouterr().out
    assert "3 run(s): 1 completed, 1 diverged, 1 killed, 2 without a record (never ran)" in out
    assert "killed  multirun/x/2" in out and "resume=true" in out


def test_optuna_records_an_infinite_objective_as_the_worst_completed_trial():
    """run() returns +inf (-inf when maximising) for diverged and failed jobs: optuna 2.10 takes it."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for direction, worst in (("minimize", math.inf), ("maximize", -math.inf)):
        study = optuna.create_study(direction=direction, sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=2))
        for value in (worst, 0.5, worst, 0.25, worst):
            trial = study.ask()
            trial.suggest_float("lr", 1e-4, 1.0, log=True)
            study.tell(trial, value)
        assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
        assert study.best_value == (0.25 if direction == "minimize" else 0.5)


def test_hparams_search_presets_match_optuna_to_the_objective():
    for name, objective, direction in (("adding_lr_hidden", "best/val/loss", "minimize"),
                                       ("digits_lr_depth", "best/val/accuracy", "maximize")):
        cfg = compose_all(f"hparams_search={name}", "model.cell=gru")
        assert cfg.hydra.sweeper._target_.endswith("OptunaSweeper")
        assert (cfg.objective, cfg.objective_direction) == (objective, direction)
        assert cfg.hydra.sweeper.direction == direction
        assert cfg.hydra.sweeper.study_name == f"{name}_gru"
        assert "interval" in cfg.hydra.sweeper.params["optim.lr"]


def test_wandb_sweep_config_drives_rnnbench_train():
    sweep = load_sweep_config()
    assert sweep["metric"] == {"name": "best/val/loss", "goal": "minimize"} and sweep["program"] == "rnnbench"
    values = example_values(sweep)
    argv = agent_command(sweep, values)
    assert argv[:4] == ["/usr/bin/env", "rnnbench", "train", "logger.wandb.offline=false"]
    assert argv[4:] == [f"{k}={v}" for k, v in values.items()]
    assert preflight(argv[3:]) == 1  # every parameter is a valid override of the train config


# ---------------------------------------------------------------------------------------- slow tests


@pytest.mark.slow
def test_joblib_sweep_isolates_failures_and_gives_each_job_its_own_wandb_run(rnnbench_cli, tmp_path, failing_cell):
    """4 jobs on 2 workers: completed, diverged (lr 1e12) and failed (a cell that raises) side by side; each job a
    W&B offline run of its own, the summary over all four, exit 1 only for the failures."""
    fast = [o for o in FAST if not o.startswith("threads=")]  # the launcher gives each job its share
    result = rnnbench_cli("train", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "data.seq_len=10",
                          f"model.cell=rnn,{failing_cell}", "model.nonlinearity=relu", "optim=sgd",
                          "optim.lr=0.01,1e12", *fast, *QUIET)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "4 run(s): 1 completed, 1 diverged, 2 failed" in result.stdout
    sweep = sweep_dir_of(tmp_path)
    found = {(r["config"]["optim"]["lr"], r["config"]["model"]["cell"]): r for r in records(sweep)}
    assert found[(0.01, "rnn")]["status"] == "completed" and found[(1e12, "rnn")]["status"] == "diverged"
    assert found[(0.01, failing_cell)]["status"] == found[(1e12, failing_cell)]["status"] == "failed"
    share = max(1, available_cores() // 2)
    run_ids = set()
    for record in found.values():
        assert record["config"]["threads"] == share and f"threads={share}" in record["overrides"]
        run = read_offline_run(next((Path(record["output_dir"]) / "wandb").glob("offline-run-*")))
        assert run["config"]["optim.lr"] == record["config"]["optim"]["lr"]
        # one group per configuration of this invocation: what varies, the seed aside
        cell, lr = record["config"]["model"]["cell"], record["config"]["optim"]["lr"]
        assert record["wandb"]["group"] == f"sweep@{Path(record['output_dir']).parent.name}/model.cell={cell}," \
                                           f"optim.lr={lr:g}" and record["wandb"]["job_type"] == "sweep"
        run_ids.add(record["wandb"]["run_id"])
    assert len(run_ids) == 4
    history = read_offline_run(next((Path(found[(0.01, "rnn")]["output_dir"]) / "wandb").glob("offline-run-*")))
    assert len([row for row in history["history"] if "train/loss" in row]) == 4
    spans = sorted((r["started_at"], r["finished_at"]) for r in found.values())
    assert any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:])), "no two jobs ran at once"


@pytest.mark.slow
def test_submitit_local_sweep_runs_each_job_in_its_own_process(rnnbench_cli, tmp_path):
    fast = [o for o in FAST if not o.startswith("threads=")]  # cpus_per_task=1 gives threads=1
    literal = "sekrit-literal-submitit-0"  # submitit pickles each job's overrides: the credential must not be there
    result = rnnbench_cli("train", "-m", "hydra/launcher=submitit_local", "data.seq_len=10", "model.cell=gru",
                          "seed=0,1", "logger=csv", f"+extra.api_key={literal}", *fast, *QUIET)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 run(s): 2 completed" in result.stdout
    sweep = sweep_dir_of(tmp_path)
    found = records(sweep)
    assert sorted(r["seed"] for r in found) == [0, 1]
    assert all(r["status"] == "completed" and r["threads"] == 1 and "threads=1" in r["overrides"] for r in found)
    logs = list((sweep / ".submitit").glob("*/*_0_log.out"))
    assert len(logs) == 2  # one submitit job (its own process) per Hydra job
    assert all(r["config"]["extra"] == {"api_key": "<redacted>"} for r in found)
    assert [p for p in tmp_path.rglob("*") if p.is_file() and literal.encode() in p.read_bytes()] == []


SEKRIT = "sekrit-literal-optuna-0"


@pytest.mark.slow
def test_optuna_study_of_three_trials_scores_diverged_trials_worst(rnnbench_cli, tmp_path):
    """A plain-SGD ReLU RNN over a learning-rate range so wide that the seeded sampler draws both
    trials that diverge (lr > 1) and trials that learn: the study finishes, diverged trials count as
    +inf, and the best trial is the best completed one."""
    result = rnnbench_cli("train", "-m", "hparams_search=adding_lr_hidden", "hydra.sweeper.n_trials=3",
                          "optim=sgd", "model.cell=rnn", "model.nonlinearity=relu", "data.seq_len=10",
                          "optim.lr=tag(log, interval(1e-12, 1e6))", "logger=none", f"+extra.token={SEKRIT}",
                          *FAST, *QUIET)
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = sweep_dir_of(tmp_path, "adding_lr_hidden")
    # Optuna keeps each trial's fixed overrides as trial attributes: the credential's value is not among them
    assert SEKRIT.encode() not in (sweep / "optuna.db").read_bytes()
    assert all(SEKRIT.encode() not in p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    found = records(sweep)
    assert len(found) == 3 and "3 run(s):" in result.stdout
    statuses = sorted(r["status"] for r in found)
    assert "diverged" in statuses and "completed" in statuses, statuses
    assert all(1e-12 <= r["config"]["optim"]["lr"] <= 1e6 and r["config"]["model"]["hidden_size"] in (16, 32, 64)
               for r in found)
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    completed = [r["metrics"]["best/val/loss"] for r in found if r["status"] == "completed"]
    assert best["best_value"] == pytest.approx(min(completed))
    assert "optuna: best value" in result.stdout


@pytest.mark.slow
def test_killed_sweep_resumes_into_the_same_dir_without_rerunning_completed_jobs(tmp_path):
    command = [sys.executable, "-m", "rnnbench", "train", "-m", "experiment=quickstart", "seed=0", "logger=none",
               "debug=smoke", "trainer.max_steps=150", "trainer.val_check_interval=50"]
    kill_while_the_second_job_trains(tmp_path, command)
    sweep = sweep_dir_of(tmp_path, "quickstart")
    before = {r["output_dir"]: r for r in records(sweep)}
    assert sorted(r["status"] for r in before.values()) == ["completed", "running"]
    checkpointed = {d: checkpoint_step(Path(d) / "checkpoints" / "last.ckpt") for d in before}

    result = subprocess.run([*command, "resume=true"], cwd=tmp_path, env=cli_env(), capture_output=True, text=True,
                            timeout=PATIENCE)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"resume: continuing the sweep in {sweep.relative_to(tmp_path)}" in result.stdout
    assert "3 run(s): 3 completed" in result.stdout
    assert sweep_dir_of(tmp_path, "quickstart") == sweep  # no second sweep dir
    after = {r["output_dir"]: r for r in records(sweep)}
    assert len(after) == 3 and all(r["status"] == "completed" for r in after.values())
    for output_dir, record in before.items():
        if record["status"] == "completed":
            assert after[output_dir]["started_at"] == record["started_at"]  # skipped, not re-run
        else:  # the killed job ran on, from its last checkpoint when it had one (else from step 0)
            assert after[output_dir]["resumed_from_step"] == checkpointed[output_dir]
            assert after[output_dir]["steps"] == 150 and after[output_dir]["finished_at"] is not None


@pytest.mark.slow
def test_every_shipped_preset_runs_end_to_end_in_smoke_size(tmp_path, timemachine_text):
    """debug=smoke: each preset's grid with seed 0 only (quickstart's smoke size runs in the resume
    test); two presets at a time, one thread per job, as separate `rnnbench train -m` processes."""
    smoke_jobs = {"depth_direction": 18, "clipping": 12, "cells_vs_length": 9, "d2l_timemachine": 4,
                  "chung_polyphonic": 1}
    waiting, running, results = list(smoke_jobs), {}, {}
    while waiting or running:
        while waiting and len(running) < 2:
            name = waiting.pop(0)
            extra = [f"data.path={timemachine_text}"] if name == "d2l_timemachine" else list(PRESET_ARGUMENTS.get(name, ()))
            running[name] = subprocess.Popen(
                [sys.executable, "-m", "rnnbench", "train", "-m", f"experiment={name}", "debug=smoke", "logger=csv",
                 *extra], cwd=tmp_path, env=cli_env(), stdout=(tmp_path / f"{name}.log").open("w"),
                stderr=subprocess.STDOUT)
        time.sleep(0.5)
        for name in [n for n, process in running.items() if process.poll() is not None]:
            results[name] = running.pop(name).returncode
    for name, jobs in smoke_jobs.items():
        output, returncode = (tmp_path / f"{name}.log").read_text(), results[name]
        assert returncode == 0, (name, output[-3000:])
        found = records(sweep_dir_of(tmp_path, name))
        assert len(found) == jobs and f"{jobs} run(s):" in output
        assert all(r["status"] in ("completed", "diverged") and r["threads"] == 1 for r in found), name
        assert all(r["steps"] <= 6 and r["seed"] == 0 for r in found)
    d2l = records(sweep_dir_of(tmp_path, "d2l_timemachine"))
    assert sorted((r["config"]["model"]["cell"], r["config"]["optim"]["lr"]) for r in d2l) == [
        ("gru", 2.0), ("gru", 4.0), ("lstm", 4.0), ("rnn", 1.0)]


@pytest.mark.slow
def test_wandb_agent_command_trains_offline_and_simultaneous_runs_never_share_a_dir(tmp_path):
    """The argv `wandb agent` would build from conf/wandb_sweep.yaml (tiny sizes added as fixed sweep
    parameters), run twice at the same moment, as two agents would: two runs, two dirs, two W&B runs."""
    sweep = load_sweep_config()
    for override in (*FAST, *QUIET):
        key, value = override.split("=", 1)
        sweep["parameters"][key] = {"value": yaml.safe_load(value)}
    sweep["parameters"]["data.seq_len"] = {"value": 10}
    argv = agent_command(sweep, example_values(sweep))
    assert argv[1:3] == ["rnnbench", "train"]
    env = cli_env(WANDB_MODE="offline", PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    processes = [subprocess.Popen(argv, cwd=tmp_path, env={**env, "WANDB_RUN_ID": run_id}, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True) for run_id in ("agentrun1", "agentrun2")]
    outputs = [process.communicate(timeout=PATIENCE)[0] for process in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    found = records(tmp_path / "outputs")
    assert len(found) == 2 and len({r["output_dir"] for r in found}) == 2
    assert {r["wandb"]["run_id"] for r in found} == {"agentrun1", "agentrun2"}
    for record in found:
        assert record["status"] == "completed" and record["config"]["model"]["cell"] == "gru"
        assert record["wandb"]["mode"] == "offline"
        run = read_offline_run(next((Path(record["output_dir"]) / "wandb").glob("offline-run-*")))
        assert run["config"]["model.cell"] == "gru" and "best/val/loss" in run["summary"]


@pytest.mark.slow
def test_resume_on_a_grown_grid_runs_only_the_new_jobs(tmp_path):
    """seed=0 first, then seed=0,1 with resume=true: a new sweep dir whose seed-0 jobs copy the earlier records
    (found by config_hash) and whose seed-1 jobs train; a table over both dirs counts each run once."""
    from rnnbench.report.records import load_runs

    base = [sys.executable, "-m", "rnnbench", "train", "-m", "experiment=quickstart", "logger=csv", "debug=smoke",
            "trainer.max_steps=30"]
    first = subprocess.run([*base, "seed=0"], cwd=tmp_path, env=cli_env(), capture_output=True, text=True,
                           timeout=PATIENCE)
    assert first.returncode == 0, first.stderr[-2000:]
    earlier = {r["config_hash"]: r for r in records(tmp_path / "multirun")}
    grown = subprocess.run([*base, "seed=0,1", "resume=true"], cwd=tmp_path, env=cli_env(), capture_output=True,
                           text=True, timeout=PATIENCE)
    assert grown.returncode == 0, grown.stderr[-2000:]
    assert "3 finished job(s) of earlier sweeps" in grown.stdout and "6 run(s): 6 completed" in grown.stdout
    sweeps = sorted(d for d in (tmp_path / "multirun" / "quickstart").iterdir() if d.is_dir())
    assert len(sweeps) == 2
    after = records(sweeps[1])
    reused = [r for r in after if r["reused_from"]]
    assert sorted(r["seed"] for r in reused) == [0, 0, 0] and all(r["seed"] == 1 for r in after if r not in reused)
    for record in reused:  # the very same run, not a rerun
        original = earlier[record["config_hash"]]
        assert record["started_at"] == original["started_at"] and record["metrics"] == original["metrics"]
        assert Path(record["reused_from"]) == Path(original["output_dir"]) / "result.json"
    # the history travels with the record: what is read from the new sweep dir alone is the earlier run's
    for job in sweeps[1].iterdir():
        record = json.loads((job / "result.json").read_text()) if (job / "result.json").is_file() else None
        if record and record["reused_from"]:
            earlier_dir = Path(record["reused_from"]).parent
            assert (job / "csv" / "metrics.csv").read_text() == (earlier_dir / "csv" / "metrics.csv").read_text()
    new_only = load_runs([sweeps[1]]).runs
    assert len(new_only) == 6 and all(run.value("steps_to:val/mse<10") is not None for run in new_only)
    assert len(load_runs([sweeps[0], sweeps[1]]).runs) == 6  # each run once across the two dirs


@pytest.mark.slow
def test_a_killed_optuna_search_resumes_its_study_from_the_sweep_dir(tmp_path):
    """4 trials, one at a time; kill -9 while the second trains; resume=true loads <sweep>/optuna.db: the first
    trial counts, the killed one is asked again with its parameters, and the study ends with 4 finished trials."""
    import optuna

    command = [sys.executable, "-m", "rnnbench", "train", "-m", "hparams_search=adding_lr_hidden", "logger=none",
               "hydra.sweeper.n_trials=4", "hydra.sweeper.n_jobs=1", "data.seq_len=10", "threads=1",
               "trainer.max_steps=150", "trainer.val_check_interval=50", "data.num_train=512", "data.num_val=128",
               "data.num_test=128"]
    found = kill_while_the_second_job_trains(tmp_path, command)
    sweep = sweep_dir_of(tmp_path, "adding_lr_hidden")
    killed_params = found["1"]["config"]["optim"]["lr"], found["1"]["config"]["model"]["hidden_size"]
    first_started = found["0"]["started_at"]

    result = subprocess.run([*command, "resume=true"], cwd=tmp_path, env=cli_env(), capture_output=True, text=True,
                            timeout=PATIENCE)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"resume: continuing the sweep in {sweep.relative_to(tmp_path)}" in result.stdout
    study = optuna.load_study(study_name="adding_lr_hidden_lstm", storage=f"sqlite:///{sweep / 'optuna.db'}")
    states = [t.state.name for t in study.trials]
    assert states.count("COMPLETE") == 4 and states[1] == "FAIL" and len(states) == 5
    after = {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/result.json")}
    assert sorted(after) == ["0", "2", "3", "4"] and all(r["status"] in ("completed", "diverged") for r in after.values())
    assert after["0"]["started_at"] == first_started  # the finished trial was not run again
    assert (after["2"]["config"]["optim"]["lr"], after["2"]["config"]["model"]["hidden_size"]) == killed_params
    assert len(list((sweep / "1").glob("result.json.superseded-*"))) == 1
    assert (sweep / "optimization_results.yaml").is_file()
    # the same trials as the same search never interrupted: the sampler went on, not back to its seed
    whole = tmp_path / "whole"
    whole.mkdir()
    assert subprocess.run(command, cwd=whole, env=cli_env(), capture_output=True, timeout=PATIENCE).returncode == 0
    reference = optuna.load_study(study_name="adding_lr_hidden_lstm",
                                  storage=f"sqlite:///{sweep_dir_of(whole, 'adding_lr_hidden') / 'optuna.db'}")

    def asked(trials) -> list[tuple]:
        return sorted((t.params["optim.lr"], t.params["model.hidden_size"]) for t in trials if t.state.name == "COMPLETE")

    assert asked(study.trials) == asked(reference.trials) and len(set(asked(study.trials))) == 4
