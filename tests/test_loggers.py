"""What W&B gets of a run: a config without Hydra's clutter and with filterable keys, run names and group names
from what varies in the sweep."""

from __future__ import annotations

import yaml
from hydra.types import RunMode
from omegaconf import OmegaConf

from rnnbench.job.loggers import WandbIdentity, run_summary, sweep_grid, sweep_run_name, wandb_config, wandb_identity

from conftest import REPO


def test_wandb_config_drops_instantiation_keys_and_adds_filterable_ones():
    flat = {"optim._target_": "torch.optim.Adam", "optim._partial_": True, "optim.lr": 0.002,
            "model._target_": "rnnbench.models.SequenceModel", "model.cell": "lstm", "seed": 0}
    config = wandb_config(flat, choices={"model": "lstm_forget_bias1", "experiment": "gradient_flow",
                                         "hydra/launcher": "joblib", "debug": None},
                          config_hash="abc123", overrides=["model=lstm_forget_bias1", "seed=0"])
    assert config == {"optim.lr": 0.002, "model.cell": "lstm", "seed": 0, "model": "lstm_forget_bias1",
                      "experiment": "gradient_flow", "debug": None, "config_hash": "abc123",
                      "overrides": "model=lstm_forget_bias1 seed=0"}
    assert wandb_config(flat) == {"optim.lr": 0.002, "model.cell": "lstm", "seed": 0}


def test_the_grid_of_a_committed_preset_sweep():
    """results/gradient_flow ran `experiment=gradient_flow logger=csv threads=1`: the preset's grid varies."""
    grid = sweep_grid(REPO / "results" / "gradient_flow" / "runs")
    assert grid == ["model=rnn,rnn_orthogonal,gru,lstm_forget_bias0,lstm_forget_bias1", "seed=0,1,2"]
    overrides = ["model=gru", "seed=2", "experiment=gradient_flow", "logger=csv", "threads=1"]
    assert sweep_run_name(overrides, grid) == "model=gru,seed=2"


def test_a_command_line_sweep_without_a_preset(tmp_path):
    saved = {"hydra": {"overrides": {"task": ["model.cell=rnn,gru", "trainer.gradient_clip_val=null,0.5",
                                              "seed=0,1", "threads=1", "logger=csv", "+optim.lr=interval(0.1,1)"]},
                       "sweeper": {"params": None}}}
    (tmp_path / "multirun.yaml").write_text(yaml.safe_dump(saved))
    grid = sweep_grid(tmp_path)
    assert grid == ["model.cell=rnn,gru", "trainer.gradient_clip_val=null,0.5", "seed=0,1",
                    "+optim.lr=interval(0.1,1)"]
    job = ["model.cell=gru", "trainer.gradient_clip_val=null", "seed=1", "threads=1", "logger=csv",
           "+optim.lr=0.25"]
    assert sweep_run_name(job, grid) == "model.cell=gru,trainer.gradient_clip_val=null,seed=1,+optim.lr=0.25"
    # an Optuna draw is named to 4 significant digits
    assert sweep_run_name([*job[:-1], "+optim.lr=0.0012948479610631662"], grid).endswith("+optim.lr=0.001295")
    # nothing varies: W&B names the run
    assert sweep_run_name(["seed=0"], []) is None
    assert sweep_grid(tmp_path / "missing") == []


def hydra_config(mode: RunMode, sweep_dir, task: list[str], experiment: str | None = None, params=None,
                 hparams_search: str | None = None, debug: str | None = None, sweeper: str = "basic"):
    """The parts of a job's HydraConfig that name its W&B run."""
    return OmegaConf.create({"mode": mode, "sweep": {"dir": str(sweep_dir)}, "overrides": {"task": task},
                             "runtime": {"choices": {"experiment": experiment, "hparams_search": hparams_search,
                                                     "debug": debug}},
                             "sweeper": {"params": params, "_target_": sweeper}})


def test_wandb_groups_a_sweeps_seeds_per_configuration_and_marks_searches_and_smoke_runs(tmp_path):
    saved = {"hydra": {"overrides": {"task": ["model.cell=rnn,gru", "seed=0,1", "+extra.api_key=abcdef123"]},
                       "sweeper": {"params": None}}}
    (tmp_path / "multirun.yaml").write_text(yaml.safe_dump(saved))
    job = ["model.cell=gru", "seed=1", "+extra.api_key=abcdef123"]
    sweep = f"sweep@{tmp_path.name}"
    assert wandb_identity(hydra_config(RunMode.MULTIRUN, tmp_path, job)) == \
        WandbIdentity("model.cell=gru,seed=1", f"{sweep}/model.cell=gru", "sweep")
    preset = hydra_config(RunMode.MULTIRUN, REPO / "results" / "gradient_flow" / "runs",
                          ["model=gru", "seed=2", "experiment=gradient_flow", "logger=csv"], experiment="gradient_flow",
                          params={"model": "rnn,rnn_orthogonal,gru,lstm_forget_bias0,lstm_forget_bias1", "seed": "0,1,2"})
    assert wandb_identity(preset) == WandbIdentity("model=gru,seed=2", "gradient_flow@runs/model=gru", "sweep")
    only_seeds = hydra_config(RunMode.MULTIRUN, REPO / "results" / "gradient_flow" / "runs", ["seed=2"],
                              experiment="gradient_flow", params={"seed": "0,1,2"})
    assert wandb_identity(only_seeds).group == "gradient_flow@runs"
    smoke = hydra_config(RunMode.MULTIRUN, tmp_path, job, debug="smoke")
    assert wandb_identity(smoke).job_type == "smoke" and wandb_identity(smoke).tags == ("smoke",)
    trial = hydra_config(RunMode.MULTIRUN, tmp_path, ["optim.lr=0.0012948479610631662", "seed=0"],
                         hparams_search="adding_lr_hidden", params={"optim.lr": "tag(log, interval(1e-4, 1e-1))"},
                         sweeper="hydra_plugins.rnnbench_optuna_sweeper.resumable.ResumableOptunaSweeper")
    assert wandb_identity(trial) == WandbIdentity("optim.lr=0.001295,seed=0", f"adding_lr_hidden@{tmp_path.name}",
                                                  "search", ("search",))
    single = hydra_config(RunMode.RUN, tmp_path, ["model.cell=gru", "+extra.api_key=abcdef123", "threads=1",
                                                  "trainer.max_steps=20"])
    assert wandb_identity(single, scrub=lambda o: o.replace("abcdef123", "<redacted>")) == \
        WandbIdentity("model.cell=gru,trainer.max_steps=20", None, "run")  # no run setting, no redacted line


def test_the_summary_holds_the_headline_once_under_namespaced_keys():
    record = {"status": "completed", "steps": 300, "parameters": 4417,
              "model_size": {"hidden_size": 64, "state_size": 128},
              "task": {"metric": "mse", "baseline_metric": 1 / 6, "reference": {"name": "mean", "test/mse": 0.16}},
              "metrics": {"train/loss": 0.2, "val/loss": 0.1, "val/mse": 0.1, "test/loss": 0.12, "test/mse": 0.12,
                          "test@100/mse": 0.3, "best/val/mse": 0.09, "best/val/mse_step": 200},
              "gradients": {"final_norm": 1.5, "clip_rate": None, "layers": [
                  {"layer": 0, "direction": "forward", "vanishing_log10_first": -12.8, "vanishing_log10": -3.1,
                   "reach_first": 4.0, "reach": 30.0}]},
              "throughput": {"samples_per_second": 100.0}}
    assert run_summary(record) == {
        "run/status": "completed", "run/steps": 300, "model/parameters": 4417, "model/hidden_size": 64,
        "model/state_size": 128, "val/loss": 0.1, "val/mse": 0.1, "test/mse": 0.12, "test@100/mse": 0.3,
        "best/val/mse": 0.09, "best/val/mse_step": 200,
        "gradients/vanishing_log10_first": -12.8, "gradients/vanishing_log10": -3.1, "gradients/reach_first": 4.0,
        "gradients/reach": 30.0, "gradients/final_norm": 1.5, "baseline/mse": 1 / 6, "reference/test/mse": 0.16,
        "throughput/samples_per_second": 100.0}
