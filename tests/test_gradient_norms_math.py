"""Parameter grouping and single-transfer gradient norms in rnnbench.diagnostics.measures.gradient_norms."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from rnnbench.diagnostics.measures.gradient_norms import cell_parameter_groups, grad_norms
from rnnbench.models import LayerStack

from cells_under_test import all_cells

torch.set_num_threads(1)
ALL = all_cells()


@pytest.mark.parametrize("name", list(ALL))
def test_groups_are_each_cells_own_parameters_by_layer_and_direction(name) -> None:
    stack = LayerStack(ALL[name], 3, 4, num_layers=2, bidirectional=True)
    groups = cell_parameter_groups(stack)
    own = [n for n, _ in stack.cells[0].named_parameters()]
    assert [n for n, _ in groups] == [f"layer{layer}/{direction}/{parameter}" for layer in range(2)
                                      for direction in ("forward", "backward") for parameter in own]
    assert [id(p) for _, params in groups for p in params] == [id(p) for p in stack.parameters()]
    by_name = dict(groups)
    assert by_name[f"layer1/backward/{own[0]}"] == [dict(stack.cells[3].named_parameters())[own[0]]]


def test_a_peephole_lstm_reports_its_peepholes() -> None:
    names = [n for n, _ in cell_parameter_groups(LayerStack(ALL["lstm_peephole"], 3, 4))]
    assert names == [f"layer0/forward/{p}" for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_ch")]


def manual_norm(tensors: list[torch.Tensor]) -> float:
    return math.sqrt(sum(float((t.double() ** 2).sum()) for t in tensors))


@pytest.fixture
def model() -> nn.Module:
    torch.manual_seed(7)
    net = nn.ModuleDict({"rnn": LayerStack(ALL["gru"], 3, 5, num_layers=2), "head": nn.Linear(5, 1)})
    output, _ = net["rnn"](torch.randn(2, 6, 3))
    net["head"](output[:, -1]).sum().backward()
    return net


def test_values_match_manual_float64(model: nn.Module) -> None:
    groups = cell_parameter_groups(model["rnn"])
    norms = grad_norms(groups, model.parameters())
    assert list(norms) == ["total"] + [name for name, _ in groups]
    assert norms["total"] == pytest.approx(manual_norm([p.grad for p in model.parameters()]), rel=1e-6)
    for name, params in groups:
        assert isinstance(norms[name], float)
        assert norms[name] == pytest.approx(manual_norm([p.grad for p in params]), rel=1e-6)


def test_none_grads_are_skipped(model: nn.Module) -> None:
    rnn = model["rnn"]
    rnn.cells[1].bias_hh.grad = None
    rnn.cells[0].weight_ih.grad = None
    groups = cell_parameter_groups(rnn)
    norms = grad_norms(groups, model.parameters())
    present = [p.grad for p in model.parameters() if p.grad is not None]
    assert norms["total"] == pytest.approx(manual_norm(present), rel=1e-6)
    assert norms["layer1/forward/bias_hh"] == 0.0
    assert norms["layer1/forward/bias_ih"] == pytest.approx(manual_norm([rnn.cells[1].bias_ih.grad]), rel=1e-6)
    assert norms["layer0/forward/weight_ih"] == 0.0


def test_nan_and_inf_propagate(model: nn.Module) -> None:
    rnn = model["rnn"]
    rnn.cells[1].weight_hh.grad[0, 0] = float("nan")
    rnn.cells[0].bias_ih.grad[1] = float("inf")
    norms = grad_norms(cell_parameter_groups(rnn), model.parameters())
    assert math.isnan(norms["total"])
    assert math.isnan(norms["layer1/forward/weight_hh"])
    assert norms["layer0/forward/bias_ih"] == math.inf
    assert math.isfinite(norms["layer0/forward/weight_ih"])


def test_half_precision_grads_do_not_overflow() -> None:
    big = nn.Parameter(torch.zeros(4, dtype=torch.float16))
    big.grad = torch.full((4,), 60000.0, dtype=torch.float16)
    norms = grad_norms([("big", [big])], [big])
    assert norms["big"] == pytest.approx(120000.0, rel=1e-3)


def test_one_device_to_host_transfer_per_call(model: nn.Module, monkeypatch: pytest.MonkeyPatch) -> None:
    transfers: list[str] = []
    for method in ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__"):
        original = getattr(torch.Tensor, method)

        def counted(self: torch.Tensor, *args, _original=original, _method=method, **kwargs):
            transfers.append(_method)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, method, counted)
    original_to = torch.Tensor.to

    def counted_to(self: torch.Tensor, *args, **kwargs):
        # Only a move to the host counts; dtype casts and device moves do not.
        result = original_to(self, *args, **kwargs)
        if result.device.type == "cpu" and self.device.type != "cpu":
            transfers.append("to")
        return result

    monkeypatch.setattr(torch.Tensor, "to", counted_to)

    groups = cell_parameter_groups(model["rnn"])
    parameters = list(model.parameters())
    for call in range(1, 4):
        grad_norms(groups, parameters)
        assert transfers == ["tolist"] * call
