"""What W&B gets of a run: a config without Hydra's clutter and with filterable keys, run names and group names
from what varies in the sweep."""

from __future__ import annotations

import yaml
from hydra.types import RunMode
from omegaconf import OmegaConf

from rnnbench.job.loggers import run_naming, sweep_grid, sweep_group, sweep_run_name, wandb_config

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
    assert sweep_group(grid) == "model=rnn,rnn_orthogonal,gru,lstm_forget_bias0,lstm_forget_bias1 seed=0,1,2"


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
    assert sweep_group(grid).startswith("model.cell=rnn,gru trainer.gradient_clip_val=null,0.5 seed=0,1")
    assert len(sweep_group(["x=" + ",".join(map(str, range(100)))])) == 128
    # nothing varies: W&B names the run; no grid: no group
    assert sweep_run_name(["seed=0"], []) is None and sweep_group([]) is None
    assert sweep_grid(tmp_path / "missing") == []


def hydra_config(mode: RunMode, sweep_dir, task: list[str], experiment: str | None = None, params=None):
    """The parts of a job's HydraConfig that name its W&B run."""
    return OmegaConf.create({"mode": mode, "sweep": {"dir": str(sweep_dir)}, "overrides": {"task": task},
                             "runtime": {"choices": {"experiment": experiment, "hparams_search": None}},
                             "sweeper": {"params": params}})


def test_run_naming_for_sweeps_with_and_without_a_preset_and_single_runs(tmp_path):
    saved = {"hydra": {"overrides": {"task": ["model.cell=rnn,gru", "seed=0,1", "+extra.api_key=abcdef123"]},
                       "sweeper": {"params": None}}}
    (tmp_path / "multirun.yaml").write_text(yaml.safe_dump(saved))
    job = ["model.cell=gru", "seed=1", "+extra.api_key=abcdef123"]
    assert run_naming(hydra_config(RunMode.MULTIRUN, tmp_path, job)) == \
        ("model.cell=gru,seed=1", "model.cell=rnn,gru seed=0,1")
    preset = hydra_config(RunMode.MULTIRUN, REPO / "results" / "gradient_flow" / "runs",
                          ["model=gru", "seed=2", "experiment=gradient_flow", "logger=csv"], experiment="gradient_flow",
                          params={"model": "rnn,rnn_orthogonal,gru,lstm_forget_bias0,lstm_forget_bias1", "seed": "0,1,2"})
    assert run_naming(preset) == ("model=gru,seed=2", "gradient_flow")
    single = hydra_config(RunMode.RUN, tmp_path, ["model.cell=gru", "+extra.api_key=abcdef123"])
    assert run_naming(single, scrub=lambda o: o.replace("abcdef123", "<redacted>")) == \
        ("model.cell=gru,+extra.api_key=<redacted>", None)
