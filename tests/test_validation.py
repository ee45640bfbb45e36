"""Bad input is refused up front, in one line naming the setting, the value and what is allowed."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from rnnbench.config import config_dir
from rnnbench.errors import RnnbenchError
from rnnbench.launch.validate import preflight
from rnnbench.models.cells.registry import CELLS

from conftest import SHARED_TEXT, choice_names, choices

# the data configs that take data.test_seq_len, from conf/ (test_test_lengths checks they are the generators)
LENGTH_GENERATORS = [c for c in choice_names("data")
                     if "test_seq_len" in OmegaConf.load(config_dir() / "data" / f"{c}.yaml")]


@pytest.mark.parametrize("overrides,message", [
    (["model.cell=transformer"], f"model.cell='transformer' is not allowed: a registered cell ({', '.join(CELLS)}) "
                                 "or the dotted path"),
    (["model.cell=torch.nn.LSTM"], "model.cell='torch.nn.LSTM' is not allowed: a registered cell"),
    (["model.cell=lstm", "+model.cell_options.peepholes=true"],
     "model.cell_options.peepholes=True is not allowed: no option: LSTM takes none"),
    (["model.cell=rnn", "model.nonlinearity=gelu"], "model.nonlinearity='gelu' is not allowed: one of tanh, relu"),
    (["model.cell=gru", "model.nonlinearity=relu"], "model.nonlinearity='relu' is not allowed: null for cell gru"),
    (["model.cell=mingru", "model.recurrent_init=orthogonal"],
     "model.recurrent_init='orthogonal' is not allowed: default for cell mingru"),
    (["data=imagenet"], f"data='imagenet' is not allowed: one of {choices('data')}"),
    (["optim=lbfgs"], f"optim='lbfgs' is not allowed: one of {choices('optim')}"),
    (["logger=tensorboard"], f"logger='tensorboard' is not allowed: one of {choices('logger')}"),
    (["model.num_layers=0"], "model.num_layers=0 is not allowed: an integer >= 1"),
    (["model.hidden_size=0"], "model.hidden_size=0 is not allowed: an integer >= 1"),
    (["model.dropout=1.0"], "model.dropout=1.0 is not allowed: a number in [0, 1)"),
    (["model.dropout=-0.5"], "model.dropout=-0.5 is not allowed: a number in [0, 1)"),
    (["trainer.gradient_clip_val=0"], "trainer.gradient_clip_val=0 is not allowed: null (no clipping) or a number > 0"),
    (["trainer.gradient_clip_val=-1.0"], "trainer.gradient_clip_val=-1.0 is not allowed"),
    (["trainer.gradient_clip_algorithm=max"], "trainer.gradient_clip_algorithm='max' is not allowed: one of norm, value"),
    (["data.seq_len=0"], "data.seq_len=0 is not allowed: an integer >= 2"),
    (["data=copy", "data.seq_len=0"], "data.seq_len=0 is not allowed: an integer >= 1"),
    (["data=timemachine", f"data.path={SHARED_TEXT}", "model.bidirectional=true"],
     "model.bidirectional=True is not allowed: false for the causal task 'timemachine'"),
    (["data=timemachine", "data.path=/no/such/file.txt"],
     "data.path='/no/such/file.txt' is not allowed: an existing text file"),
    (["optim.lr=0"], "optim.lr=0 is not allowed: a number > 0"),
    (["seed=-1"], "seed=-1 is not allowed: an integer >= 0"),
    (["model.cell=gru", "model.forget_bias=1.0"], "model.forget_bias=1.0 is not allowed: null for cell gru"),
    (["model.cell=lstm_cifg", "model.forget_bias=1.0"], "model.forget_bias=1.0 is not allowed: null for LSTMCoupledGates"),
    (["model.nosuchkey=1"], "model.nosuchkey=1 is not allowed: model has no key 'nosuchkey' "
                            "(to add one: +model.nosuchkey=...)"),
    (["data=digits", "data.test_seq_len=[100]"], "data.test_seq_len=[100] is not allowed: data has no key "
     f"'test_seq_len' (a setting of {' and '.join(f'data={c}' for c in LENGTH_GENERATORS)} only)"),
    (["data.test_seq_len=[100]", "model.readout=all"], "data.test_seq_len=[100] is not allowed: null with "
                                                       "model.readout=all (its head reads exactly"),
    (["data=copy", "data.test_seq_len=[0]"], "data.test_seq_len=[0] is not allowed: a non-empty list of distinct "
                                             "integers >= 1"),
    (["model.readout=first"], "model.readout='first' is not allowed: one of last, all, mean"),
    (["data=copy", "model.readout=mean"], "model.readout='mean' is not allowed: last for the per-step task 'copy'"),
    (["model.state_budget=64", "model.hidden_size=32"],
     "model.hidden_size='32' is not allowed: left unset beside model.state_budget=64"),
    (["model.cell=lstm", "model.state_budget=1"], "model.state_budget=1 is not allowed: a count some hidden size "
                                                  "reaches within 5%"),
])
def test_bad_input_is_refused_in_one_line(overrides, message):
    with pytest.raises(RnnbenchError) as error:
        preflight(overrides)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_sweep_is_checked_job_by_job_before_any_runs():
    assert preflight(["-m", "model.cell=rnn,lstm,gru", "seed=0,1"]) == 6
    with pytest.raises(RnnbenchError, match="model.num_layers=0 is not allowed"):
        preflight(["-m", "model.cell=rnn,lstm", "model.num_layers=1,0"])


def test_experiment_sweeper_params_are_expanded():
    """The preset's grid, counted from its file: every cell times every seed."""
    import yaml

    from rnnbench.config import config_dir

    grid = yaml.safe_load((config_dir() / "experiment" / "quickstart.yaml").read_text())["hydra"]["sweeper"]["params"]
    cells, seeds = (len(str(grid[key]).split(",")) for key in ("model.cell", "seed"))
    assert preflight(["-m", "experiment=quickstart"]) == cells * seeds > 1


def test_binary_data_path_is_refused(tmp_path):
    binary = tmp_path / "model.pt"
    binary.write_bytes(b"\x80\x02\x00\x00binary\x00" * 100)
    with pytest.raises(RnnbenchError, match="is not allowed: a non-empty UTF-8 text file"):
        preflight(["data=timemachine", f"data.path={binary}"])


BAD_CELLS = {
    "not a Cell: an nn.LSTM subclass": ("""
import torch
class Peephole(torch.nn.LSTM):
    pass
""", "is not a Cell (cellmod_{n}.Peephole, torch.nn.modules.rnn.LSTM)"),
    "does not import": ("raise RuntimeError('broken on purpose')\nclass Peephole: pass\n",
                        "importing cellmod_{n} failed with RuntimeError: broken on purpose"),
    "wrong shape": ("""
import torch
from rnnbench.models.cells import Cell
class Peephole(Cell):
    def __init__(self, input_size, hidden_size):
        super().__init__(input_size, hidden_size)
        self.linear = torch.nn.Linear(input_size, hidden_size + 1)
    def step(self, x_t, state):
        return (torch.tanh(self.linear(x_t)),), {}
""", "state 'h' must be (B, hidden_size) = (2, 64), got (2, 65)"),
    "wrong number of states": ("""
import torch
from rnnbench.models.cells import Cell
class Peephole(Cell):
    state_names = ("h", "c")
    def __init__(self, input_size, hidden_size):
        super().__init__(input_size, hidden_size)
        self.linear = torch.nn.Linear(input_size, hidden_size)
    def step(self, x_t, state):
        return (torch.tanh(self.linear(x_t)),), {}
""", "step's new_state must be a tuple of 2 tensors ordered as state_names ('h', 'c'), got 1"),
    "gates outside [0, 1]": ("""
import torch
from rnnbench.models.cells import Cell
class Peephole(Cell):
    def __init__(self, input_size, hidden_size):
        super().__init__(input_size, hidden_size)
        self.linear = torch.nn.Linear(input_size, hidden_size)
    def step(self, x_t, state):
        h = torch.tanh(self.linear(x_t) - 5)
        return (h,), {"candidate": h}
""", "gate 'candidate' has values outside [0, 1]"),
    "state names without h first": ("""
from rnnbench.models.cells import Cell
class Peephole(Cell):
    state_names = ("c", "h")
    def step(self, x_t, state):
        return state, {}
""", "state_names must be a tuple of distinct names with 'h' first"),
    "a constructor that fails": ("""
from rnnbench.models.cells import Cell
class Peephole(Cell):
    def __init__(self, input_size, hidden_size, width=3):
        raise ValueError("no such width")
""", "a cell that builds as Cell(input_size, hidden_size, **cell_options): ValueError: no such width"),
}


@pytest.mark.parametrize("case", list(BAD_CELLS))
def test_a_bad_user_cell_is_refused_naming_model_cell(case, tmp_path, monkeypatch):
    source, message = BAD_CELLS[case]
    n = list(BAD_CELLS).index(case)
    (tmp_path / f"cellmod_{n}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(RnnbenchError) as error:
        preflight(["-m", f"model.cell=lstm,cellmod_{n}.Peephole"])
    text = str(error.value)
    assert text.startswith(f"model.cell='cellmod_{n}.Peephole' is not allowed: ") and "\n" not in text
    assert message.format(n=n) in text


@pytest.mark.parametrize("overrides", [
    ["model.hidden_size=48", "optim.lr=0.003"],  # plain values
    ["model.cell=rnn", "+model.cell_options.nonlinearity=relu"],  # an added key
    ["++trainer.max_steps=7", "++trainer.new_flag=true"],  # forced: replace one, add one
    ["~trainer.max_steps"],  # a deleted key
    ["data.seq_len='12'", "seed=3"],  # a quoted value
])
def test_value_overrides_on_a_composed_config_equal_hydras_compose(overrides):
    """rnnbench.launch.value_overrides wraps the one private Hydra call rnnbench makes; this pins it to Hydra's own
    result: composing the config-group choices, then setting the values, equals composing everything at once."""
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    from rnnbench.config import config_dir
    from rnnbench.launch.value_overrides import with_value_overrides

    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        whole = compose("train", overrides=["model=lstm", *overrides])
        groups = compose("train", overrides=["model=lstm"])
    applied = with_value_overrides(groups, OverridesParser.create().parse_overrides(overrides))
    assert OmegaConf.to_container(applied) == OmegaConf.to_container(whole)
    assert OmegaConf.to_container(groups) != OmegaConf.to_container(whole)  # a copy: the composed config is kept


@pytest.mark.parametrize("arguments,composes", [
    (["-m", "model.cell=rnn,lstm,gru", "seed=0,1,2", "resume=true"], 1),  # values only: one compose for 9 jobs
    (["-m", "model=rnn,lstm", "seed=0,1,2"], 3),  # one per group choice, plus the command's own (Hydra's settings)
    (["model=gru", "seed=4"], 1),  # the command's own composition serves its job
])
def test_the_launch_path_composes_once_per_distinct_set_of_group_choices(arguments, composes, monkeypatch):
    import rnnbench.launch.validate as preflight_module
    from rnnbench.launch.train import plan

    calls = []
    real = preflight_module.compose
    monkeypatch.setattr(preflight_module, "compose", lambda *a, **k: calls.append(k["overrides"]) or real(*a, **k))
    launch = plan(arguments)
    assert len(calls) == composes, calls
    pinned = [a for a in launch.arguments if a.startswith(("hydra.sweep.dir=", "hydra.run.dir="))]
    assert pinned[0].startswith("hydra.sweep.dir='multirun/" if "-m" in arguments else "hydra.run.dir='")
    assert ("hydra/sweeper=validated" in launch.arguments) == ("-m" in arguments)  # Hydra's grid, trusting this
    assert launch.expected_jobs == (9 if "seed=0,1,2" in arguments and "model.cell=rnn,lstm,gru" in arguments else
                                    6 if "model=rnn,lstm" in arguments else 1)


def test_a_large_grid_is_validated_and_says_so(capsys):
    """60,000 jobs (20,000 seeds x 3 cells): one full validation per cell, each seed by its rule. How fast:
    ``python -m benchmarks.validation_rate`` (a measurement, not a test)."""
    assert preflight(["-m", "seed=range(0,20000)", "model.cell=rnn,lstm,gru"]) == 60_000
    assert "rnnbench: validating 60,000 jobs before any starts" in capsys.readouterr().out
    with pytest.raises(RnnbenchError, match=r"^seed=-1 is not allowed: an integer"):
        preflight(["-m", "seed=range(-1,20000)", "model.cell=rnn,lstm,gru"])


def test_a_grid_of_values_is_validated_once_per_new_part_and_still_catches_a_bad_pair(monkeypatch):
    """100 x 100 jobs of optim.lr x model.hidden_size: a job whose optimizer and model were each validated in earlier
    jobs needs no validation of its own, so about 200 validations check all 10,000 (over 1,000 jobs/s here when the
    machine is idle); a bad pair inside one part (a GRU with relu) is still found."""
    import rnnbench.launch.validate as preflight_module

    calls = []
    real = preflight_module.validate
    monkeypatch.setattr(preflight_module, "validate", lambda cfg, *a, **k: calls.append(1) or real(cfg, *a, **k))
    assert preflight(["-m", "optim=sgd", "optim.lr=range(1,101)", "model.hidden_size=range(8,108)"]) == 10_000
    assert len(calls) == 199  # 100 hidden sizes at the first lr, then each other lr once
    with pytest.raises(RnnbenchError, match=r"model.nonlinearity='relu' is not allowed: null for cell gru"):
        preflight(["-m", "optim.lr=0.1,0.2", "model.cell=rnn,gru", "model.nonlinearity=null,relu"])
