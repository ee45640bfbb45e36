"""Bad input is refused up front, in one line naming the setting, the value and what is allowed."""

from __future__ import annotations

import pytest

from rnnbench.errors import RnnbenchError
from rnnbench.preflight import preflight


@pytest.mark.parametrize("overrides,message", [
    (["model.cell=transformer"], "model.cell='transformer' is not allowed: a registered cell (rnn, lstm, gru, "
                                 "lstm_peephole, lstm_nig, lstm_nfg, lstm_nog, lstm_niaf, lstm_noaf, lstm_cifg, "
                                 "lstm_fgr, mgu, mingru, minlstm, indrnn) or the dotted path"),
    (["model.cell=torch.nn.LSTM"], "model.cell='torch.nn.LSTM' is not allowed: a registered cell"),
    (["model.cell=lstm", "+model.cell_options.peepholes=true"],
     "model.cell_options.peepholes=True is not allowed: no option: LSTM takes none"),
    (["model.cell=rnn", "model.nonlinearity=gelu"], "model.nonlinearity='gelu' is not allowed: one of tanh, relu"),
    (["model.cell=gru", "model.nonlinearity=relu"], "model.nonlinearity='relu' is not allowed: null for cell gru"),
    (["model.cell=mingru", "model.recurrent_init=orthogonal"],
     "model.recurrent_init='orthogonal' is not allowed: default for cell mingru"),
    (["data=imagenet"], "data='imagenet' is not allowed: one of adding, copy, digits, timemachine"),
    (["optim=lbfgs"], "optim='lbfgs' is not allowed: one of adam, sgd"),
    (["logger=tensorboard"], "logger='tensorboard' is not allowed: one of csv, none, wandb"),
    (["model.num_layers=0"], "model.num_layers=0 is not allowed: an integer >= 1"),
    (["model.hidden_size=0"], "model.hidden_size=0 is not allowed: an integer >= 1"),
    (["model.dropout=1.0"], "model.dropout=1.0 is not allowed: a number in [0, 1)"),
    (["model.dropout=-0.5"], "model.dropout=-0.5 is not allowed: a number in [0, 1)"),
    (["trainer.gradient_clip_val=0"], "trainer.gradient_clip_val=0 is not allowed: null (no clipping) or a number > 0"),
    (["trainer.gradient_clip_val=-1.0"], "trainer.gradient_clip_val=-1.0 is not allowed"),
    (["trainer.gradient_clip_algorithm=max"], "trainer.gradient_clip_algorithm='max' is not allowed: one of norm, value"),
    (["data.seq_len=0"], "data.seq_len=0 is not allowed: an integer >= 2"),
    (["data=copy", "data.seq_len=0"], "data.seq_len=0 is not allowed: an integer >= 1"),
    (["data=timemachine", "model.bidirectional=true"],
     "model.bidirectional=True is not allowed: false for the causal task 'timemachine'"),
    (["data=timemachine", "data.path=/no/such/file.txt"],
     "data.path='/no/such/file.txt' is not allowed: an existing text file"),
    (["optim.lr=0"], "optim.lr=0 is not allowed: a number > 0"),
    (["seed=-1"], "seed=-1 is not allowed: an integer >= 0"),
    (["model.cell=gru", "model.forget_bias=1.0"], "model.forget_bias=1.0 is not allowed: null for cell gru"),
    (["model.cell=lstm_cifg", "model.forget_bias=1.0"], "model.forget_bias=1.0 is not allowed: null for LSTMCoupledGates"),
    (["model.nosuchkey=1"], "model.nosuchkey=1 is not allowed: model has no key 'nosuchkey' "
                            "(to add one: +model.nosuchkey=...)"),
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
    assert preflight(["-m", "experiment=quickstart"]) == 6


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
