"""The sequence model: shapes for every cell, depth and direction; initialisation options."""

from __future__ import annotations

import pytest
import torch

from rnnbench.data import AddingProblem, CopyMemory, Digits, TimeMachine
from rnnbench.errors import ConfigError
from rnnbench.models import SequenceModel

from cells_under_test import all_cells

TASKS = {"adding": AddingProblem(seq_len=9).task, "copy": CopyMemory(seq_len=3).task,
         "digits": Digits().task, "timemachine": TimeMachine(seq_len=9).task}


def inputs_for(task, batch=4):
    if task.input_kind == "tokens":
        return torch.randint(0, task.input_size, (batch, task.seq_len))
    return torch.rand(batch, task.seq_len, task.input_size)


@pytest.mark.parametrize("cell", list(all_cells()))
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_core_shapes_match_pytorch_documentation(cell, num_layers, bidirectional):
    task = TASKS["adding"]
    model = SequenceModel(task, cell=cell, hidden_size=6, num_layers=num_layers, bidirectional=bidirectional)
    x = model.encode(inputs_for(task, batch=5))
    output, state = model.stack(x)
    h_n = state[0]
    directions = 2 if bidirectional else 1
    assert output.shape == (5, 9, directions * 6)  # (B, T, D*H), batch_first
    assert h_n.shape == (num_layers * directions, 5, 6)  # (L*D, B, H)
    # The head's final state is the forward direction's last step and the backward direction's first.
    assert torch.allclose(h_n[-directions], output[:, -1, :6])
    if bidirectional:
        assert torch.allclose(h_n[-1], output[:, 0, 6:])
    assert model(inputs_for(task, batch=5)).shape == (5,)


@pytest.mark.parametrize("name,expected", [("adding", (4,)), ("digits", (4, 10)), ("copy", (4, 23, 9)),
                                           ("timemachine", (4, 9, 28))])
def test_heads_follow_the_task(name, expected):
    task = TASKS[name]
    for embedding_size in (None, 5):
        model = SequenceModel(task, cell="gru", hidden_size=7, embedding_size=embedding_size)
        assert model(inputs_for(task)).shape == expected


def test_forget_bias_sets_the_total_forget_gate_bias():
    model = SequenceModel(TASKS["adding"], cell="lstm", hidden_size=8, num_layers=2, bidirectional=True,
                          forget_bias=2.5)
    for cell in model.stack.cells:
        total = cell.bias_ih + cell.bias_hh
        assert torch.allclose(total.chunk(4)[1], torch.full((8,), 2.5))
        assert not torch.allclose(total.chunk(4)[0], torch.full((8,), 2.5))


@pytest.mark.parametrize("kwargs,setting", [
    ({"cell": "transformer"}, "cell"), ({"num_layers": 0}, "num_layers"), ({"hidden_size": 0}, "hidden_size"),
    ({"dropout": 1.0}, "dropout"), ({"dropout": -0.1}, "dropout"), ({"nonlinearity": "gelu"}, "nonlinearity"),
    ({"cell": "gru", "forget_bias": 1.0}, "forget_bias"), ({"recurrent_init": "xavier"}, "recurrent_init"),
    ({"cell": "lstm", "nonlinearity": "relu"}, "nonlinearity"), ({"cell": "rnn", "nonlinearity": "gelu"}, "nonlinearity"),
    ({"cell": "gru", "cell_options": {"peepholes": True}}, "cell_options.peepholes"),
    ({"cell": "rnn", "cell_options": {"nonlinearity": "gelu"}}, "cell_options.nonlinearity"),
    ({"cell": "torch.nn.LSTM"}, "cell"), ({"cell": "no_such_module.Cell"}, "cell"), ({"cell": "rnnbench.models.Nope"}, "cell"),
])
def test_bad_model_settings_are_refused_by_name(kwargs, setting):
    with pytest.raises(ConfigError) as error:
        SequenceModel(TASKS["adding"], **kwargs)
    assert error.value.setting == setting


def test_bidirectional_language_model_is_refused():
    with pytest.raises(ConfigError, match="bidirectional=True .* causal task 'timemachine'"):
        SequenceModel(TASKS["timemachine"], bidirectional=True)


@pytest.mark.parametrize("cell", list(all_cells()))
@pytest.mark.parametrize("budget,layers,bidirectional", [(70_000, 1, False), (20_000, 2, True)])
def test_a_parameter_budget_sizes_every_cell_within_five_percent(cell, budget, layers, bidirectional):
    task = TASKS["digits"]
    model = SequenceModel(task, cell=cell, param_budget=budget, num_layers=layers, bidirectional=bidirectional)
    counted = sum(p.numel() for p in model.parameters())  # a real build, not the search's meta one
    assert model.parameters_count == counted and abs(counted - budget) <= 0.05 * budget
    neighbours = [SequenceModel(task, cell=cell, hidden_size=model.hidden_size + d, num_layers=layers,
                                bidirectional=bidirectional) for d in (-1, 1) if model.hidden_size + d >= 1]
    assert all(abs(sum(p.numel() for p in m.parameters()) - budget) >= abs(counted - budget) for m in neighbours)
    assert model(inputs_for(task)).shape == (4, 10)


def test_a_budget_no_hidden_size_meets_is_refused():
    with pytest.raises(ConfigError) as error:
        SequenceModel(TASKS["adding"], cell="lstm", param_budget=10)
    assert error.value.setting == "param_budget" and "hidden_size=1 gives" in error.value.allowed


@pytest.mark.parametrize("cell", list(all_cells()))
@pytest.mark.parametrize("budget,layers,bidirectional", [(256, 1, False), (480, 2, True)])
def test_a_state_budget_sizes_every_cell_by_the_floats_its_state_carries(cell, budget, layers, bidirectional):
    model = SequenceModel(TASKS["digits"], cell=cell, state_budget=budget, num_layers=layers,
                          bidirectional=bidirectional)
    per_unit = len(model.stack.state_names) * layers * (2 if bidirectional else 1)
    initial = model.stack.cells[0].initial_state(3, torch.device("cpu"), torch.float32)  # one (B, H) per state name
    assert all(state.shape == (3, model.hidden_size) for state in initial)
    assert model.state_size == per_unit * model.hidden_size
    assert abs(model.state_size - budget) <= 0.05 * budget
    assert all(abs(per_unit * h - budget) >= abs(model.state_size - budget) for h in (model.hidden_size - 1,
                                                                                      model.hidden_size + 1))


def test_equal_state_gives_an_lstm_half_the_units_of_a_gru():
    sizes = {cell: SequenceModel(TASKS["adding"], cell=cell, state_budget=256).hidden_size for cell in ("gru", "lstm")}
    assert sizes == {"gru": 256, "lstm": 128}


@pytest.mark.parametrize("settings, setting, allowed", [
    ({"cell": "lstm", "state_budget": 1}, "state_budget", "a count some hidden size reaches within 5% "
                                                          "(hidden_size=1 gives 2)"),
    ({"state_budget": 0}, "state_budget", "an integer >= 1"),
    ({"state_budget": 64, "param_budget": 5000}, "state_budget", "null beside param_budget=5000"),
])
def test_a_state_budget_no_size_meets_or_beside_a_parameter_budget_is_refused(settings, setting, allowed):
    with pytest.raises(ConfigError) as error:
        SequenceModel(TASKS["adding"], **settings)
    assert error.value.setting == setting and error.value.allowed.startswith(allowed)
