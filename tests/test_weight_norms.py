"""Parameter grouping and single-transfer gradient norms in rnnbench.diagnostics.weight_norms."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from rnnbench.diagnostics.weight_norms import grad_norms, recurrent_parameter_groups

torch.set_num_threads(1)


def test_groups_of_bidirectional_lstm() -> None:
    lstm = nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True)
    groups = recurrent_parameter_groups(lstm)
    names = [name for name, _ in groups]
    assert names == [
        f"layer{layer}/{direction}/{role}"
        for layer in range(2)
        for direction in ("forward", "backward")
        for role in ("weight_ih", "weight_hh", "bias")
    ]
    by_name = dict(groups)
    assert by_name["layer1/backward/weight_hh"] == [lstm.weight_hh_l1_reverse]
    assert by_name["layer0/forward/bias"] == [lstm.bias_ih_l0, lstm.bias_hh_l0]
    grouped = [id(p) for _, params in groups for p in params]
    assert sorted(grouped) == sorted(id(p) for p in lstm.parameters())


def test_groups_without_bias_and_with_projection() -> None:
    gru = nn.GRU(3, 4, bias=False)
    assert [name for name, _ in recurrent_parameter_groups(gru)] == [
        "layer0/forward/weight_ih",
        "layer0/forward/weight_hh",
    ]
    projected = nn.LSTM(3, 4, proj_size=2)
    assert "layer0/forward/weight_hr" in dict(recurrent_parameter_groups(projected))


def manual_norm(tensors: list[torch.Tensor]) -> float:
    return math.sqrt(sum(float((t.double() ** 2).sum()) for t in tensors))


@pytest.fixture
def model() -> nn.Module:
    torch.manual_seed(7)
    net = nn.ModuleDict({"rnn": nn.GRU(3, 5, num_layers=2, batch_first=True), "head": nn.Linear(5, 1)})
    output, _ = net["rnn"](torch.randn(2, 6, 3))
    net["head"](output[:, -1]).sum().backward()
    return net


def test_values_match_manual_float64(model: nn.Module) -> None:
    groups = recurrent_parameter_groups(model["rnn"])
    norms = grad_norms(groups, model.parameters())
    assert list(norms) == ["total"] + [name for name, _ in groups]
    assert norms["total"] == pytest.approx(manual_norm([p.grad for p in model.parameters()]), rel=1e-6)
    for name, params in groups:
        assert isinstance(norms[name], float)
        assert norms[name] == pytest.approx(manual_norm([p.grad for p in params]), rel=1e-6)


def test_none_grads_are_skipped(model: nn.Module) -> None:
    rnn = model["rnn"]
    rnn.bias_hh_l1.grad = None
    rnn.weight_ih_l0.grad = None
    groups = recurrent_parameter_groups(rnn)
    norms = grad_norms(groups, model.parameters())
    present = [p.grad for p in model.parameters() if p.grad is not None]
    assert norms["total"] == pytest.approx(manual_norm(present), rel=1e-6)
    assert norms["layer1/forward/bias"] == pytest.approx(manual_norm([rnn.bias_ih_l1.grad]), rel=1e-6)
    assert norms["layer0/forward/weight_ih"] == 0.0


def test_nan_and_inf_propagate(model: nn.Module) -> None:
    rnn = model["rnn"]
    rnn.weight_hh_l1.grad[0, 0] = float("nan")
    rnn.bias_ih_l0.grad[1] = float("inf")
    norms = grad_norms(recurrent_parameter_groups(rnn), model.parameters())
    assert math.isnan(norms["total"])
    assert math.isnan(norms["layer1/forward/weight_hh"])
    assert norms["layer0/forward/bias"] == math.inf
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

    groups = recurrent_parameter_groups(model["rnn"])
    parameters = list(model.parameters())
    for call in range(1, 4):
        grad_norms(groups, parameters)
        assert transfers == ["tolist"] * call
