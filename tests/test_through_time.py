"""Exactness and behaviour of rnnbench.diagnostics.through_time."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnbench.diagnostics.through_time import (
    GradientThroughTime,
    _total_derivatives,
    gradient_through_time,
)

torch.set_num_threads(1)

BATCH, STEPS, HIDDEN, INPUT = 3, 7, 5, 4
KINDS = ("rnn_tanh", "rnn_relu", "lstm", "gru")


def make_rnn(kind: str, num_layers: int, bidirectional: bool, **kwargs) -> nn.RNNBase:
    torch.manual_seed(1234)
    if kind.startswith("rnn"):
        kwargs["nonlinearity"] = kind.split("_")[1]
    cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind.split("_")[0]]
    kwargs.setdefault("dtype", torch.float64)
    return cls(INPUT, HIDDEN, num_layers=num_layers, batch_first=True, bidirectional=bidirectional, **kwargs)


def make_readout(rnn: nn.RNNBase) -> Callable[[Tensor, Tensor], Tensor]:
    """A per-sample-summed loss that reads both output[:, -1] and the top h_n."""
    torch.manual_seed(99)
    directions = 2 if rnn.bidirectional else 1
    width = directions * rnn.hidden_size
    dtype = rnn.weight_hh_l0.dtype
    from_output = nn.Linear(width, 2, dtype=dtype)
    from_state = nn.Linear(width, 2, dtype=dtype)
    target = torch.randn(BATCH, 2, dtype=dtype)

    def readout(output: Tensor, h_n: Tensor) -> Tensor:
        top = h_n[-directions:].transpose(0, 1).reshape(output.shape[0], width)
        prediction = from_output(output[:, -1]) + torch.tanh(from_state(top))
        return ((prediction - target) ** 2).sum()

    return readout


def reference_derivatives(
    rnn: nn.RNNBase, inputs: Tensor, readout: Callable[[Tensor, Tensor], Tensor]
) -> list[tuple[Tensor, Tensor | None]]:
    """Step-by-step float64 reference: one nn.*Cell call per step, every state a graph node.

    Returns per layer-direction ``(dl/dh, dl/dc or None)``, ``(B, T, H)`` in
    processing order, ordered ``l * D + d`` like the module under test.
    """
    is_lstm = isinstance(rnn, nn.LSTM)
    cell_cls = {nn.RNN: nn.RNNCell, nn.LSTM: nn.LSTMCell, nn.GRU: nn.GRUCell}[type(rnn)]
    extra = {"nonlinearity": rnn.nonlinearity} if isinstance(rnn, nn.RNN) else {}
    directions = 2 if rnn.bidirectional else 1
    steps = inputs.shape[1]

    layer_input = inputs.to(torch.float64)
    hidden_states: list[list[Tensor]] = []
    cell_states: list[list[Tensor]] = []
    final: list[Tensor] = []
    for layer in range(rnn.num_layers):
        outputs = []
        for direction in range(directions):
            suffix = f"_l{layer}" + ("_reverse" if direction else "")
            cell = cell_cls(layer_input.shape[-1], rnn.hidden_size, bias=rnn.bias, dtype=torch.float64, **extra)
            with torch.no_grad():
                for name, parameter in cell.named_parameters():
                    parameter.copy_(getattr(rnn, name + suffix))
            h = layer_input.new_zeros(inputs.shape[0], rnn.hidden_size)
            c = torch.zeros_like(h)
            hs, cs = [], []
            positions = range(steps - 1, -1, -1) if direction else range(steps)
            for t in positions:
                if is_lstm:
                    h, c = cell(layer_input[:, t], (h, c))
                    c.retain_grad()
                    cs.append(c)
                else:
                    h = cell(layer_input[:, t], h)
                h.retain_grad()
                hs.append(h)
            hidden_states.append(hs)
            cell_states.append(cs)
            final.append(hs[-1])
            outputs.append(torch.stack(hs[::-1] if direction else hs, dim=1))
        layer_input = torch.cat(outputs, dim=-1)
    readout(layer_input, torch.stack(final)).backward()

    def grads(states: list[Tensor]) -> Tensor:
        return torch.stack([s.grad if s.grad is not None else torch.zeros_like(s) for s in states], dim=1)

    return [
        (grads(hs), grads(cs) if is_lstm else None) for hs, cs in zip(hidden_states, cell_states)
    ]


def relative_error(actual: Tensor, expected: Tensor) -> float:
    return ((actual - expected).norm() / expected.norm()).item()


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("kind", KINDS)
def test_matches_step_by_step_reference(kind: str, num_layers: int, bidirectional: bool) -> None:
    rnn = make_rnn(kind, num_layers, bidirectional)
    inputs = torch.randn(BATCH, STEPS, INPUT, dtype=torch.float64)
    readout = make_readout(rnn)

    expected = reference_derivatives(rnn, inputs, readout)
    actual = _total_derivatives(rnn, inputs, readout, torch.float64)
    assert len(actual) == len(expected) == num_layers * (2 if bidirectional else 1)
    for (hidden, cell), (hidden_ref, cell_ref) in zip(actual, expected):
        assert hidden.shape == (BATCH, STEPS, HIDDEN)
        assert relative_error(hidden, hidden_ref) <= 1e-6
        assert (cell is None) == (cell_ref is None)
        if cell is not None:
            assert relative_error(cell, cell_ref) <= 1e-6

    result = gradient_through_time(rnn, inputs, readout)
    shape = (num_layers, 2 if bidirectional else 1, STEPS)
    expected_hidden = torch.stack([h.norm(dim=-1).mean(0) for h, _ in expected]).reshape(shape)
    assert result.hidden.dtype == torch.float64
    torch.testing.assert_close(result.hidden, expected_hidden, rtol=1e-6, atol=0)
    if kind == "lstm":
        expected_cell = torch.stack([c.norm(dim=-1).mean(0) for _, c in expected]).reshape(shape)
        assert result.cell is not None
        torch.testing.assert_close(result.cell, expected_cell, rtol=1e-6, atol=0)
    else:
        assert result.cell is None and result.cell_vanishing_log10() is None


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh"])
def test_matches_reference_without_bias(kind: str) -> None:
    rnn = make_rnn(kind, 2, True, bias=False)
    inputs = torch.randn(BATCH, STEPS, INPUT, dtype=torch.float64)
    readout = make_readout(rnn)
    expected = reference_derivatives(rnn, inputs, readout)
    actual = _total_derivatives(rnn, inputs, readout, torch.float64)
    for (hidden, cell), (hidden_ref, cell_ref) in zip(actual, expected):
        assert relative_error(hidden, hidden_ref) <= 1e-6
        if cell_ref is not None:
            assert cell is not None and relative_error(cell, cell_ref) <= 1e-6


def test_leaves_module_grads_mode_and_rng_untouched() -> None:
    rnn = make_rnn("lstm", 2, True, dtype=torch.float32, dropout=0.3)
    rnn.train()
    inputs = torch.randn(BATCH, STEPS, INPUT)
    rnn(inputs)[0].sum().backward()
    rnn.bias_hh_l1_reverse.grad = None
    parameters = {name: p.detach().clone() for name, p in rnn.named_parameters()}
    grads = {name: None if p.grad is None else p.grad.clone() for name, p in rnn.named_parameters()}
    readout = make_readout(rnn)
    rng = torch.get_rng_state()

    gradient_through_time(rnn, inputs, readout)

    assert rnn.training
    assert torch.equal(rng, torch.get_rng_state())
    for name, p in rnn.named_parameters():
        assert torch.equal(p, parameters[name])
        if grads[name] is None:
            assert p.grad is None
        else:
            assert torch.equal(p.grad, grads[name])


def test_dropout_is_ignored() -> None:
    rnn = make_rnn("gru", 3, True, dropout=0.5)
    inputs = torch.randn(BATCH, STEPS, INPUT, dtype=torch.float64)
    readout = make_readout(rnn)
    rnn.train()
    in_training = gradient_through_time(rnn, inputs, readout)
    rnn.eval()
    in_eval = gradient_through_time(rnn, inputs, readout)
    assert torch.equal(in_training.hidden, in_eval.hidden)


def adding_problem_inputs(batch: int = 64, steps: int = 100) -> Tensor:
    """``(B, T, 2)``: U[0, 1] values and a 0/1 marker on two random positions."""
    generator = torch.Generator().manual_seed(0)
    values = torch.rand(batch, steps, generator=generator)
    markers = torch.zeros(batch, steps)
    for row in range(batch):
        markers[row, torch.randperm(steps, generator=generator)[:2]] = 1.0
    return torch.stack([values, markers], dim=-1)


def textbook_run(rnn: nn.RNNBase) -> GradientThroughTime:
    """Default-init float32 model, float32 head, MSE (sum) on h_n[-1] vs a random target."""
    inputs = adding_problem_inputs()
    head = nn.Linear(rnn.hidden_size, 1)
    target = torch.randn(inputs.shape[0], 1)
    return gradient_through_time(
        rnn, inputs, lambda output, h_n: F.mse_loss(head(h_n[-1]), target, reduction="sum")
    )


def test_textbook_vanishing_gradients() -> None:
    # Measured with these seeds (float64, T=100, hidden 128): vanishing_log10
    # -25.2 for the tanh RNN, -18.9 GRU, -19.5 LSTM (cell -18.8), -7.1 LSTM
    # with forget bias 1 (cell -6.3), -0.09 with forget bias 3 (cell +1.07).
    torch.manual_seed(1)
    tanh_rnn = textbook_run(nn.RNN(2, 128, batch_first=True))
    assert tanh_rnn.vanishing_log10().item() < -10
    assert math.isfinite(tanh_rnn.vanishing_log10().item())

    torch.manual_seed(1)
    lstm = nn.LSTM(2, 128, batch_first=True)
    with torch.no_grad():
        lstm.bias_ih_l0[128:256] = 3.0
        lstm.bias_hh_l0[128:256] = 0.0
    remembering = textbook_run(lstm)
    cell_vanishing = remembering.cell_vanishing_log10()
    assert cell_vanishing is not None and cell_vanishing.item() > -3
    assert remembering.vanishing_log10().item() > tanh_rnn.vanishing_log10().item() + 10


def test_reach_and_vanishing_on_known_norms() -> None:
    hidden = torch.tensor(
        [
            [
                [1e-200, 1.0, 1.0, 0.05, 0.5, 1.0],  # 0.05 < 1/10, two steps back; 0.5 is not
                [2.0, 2.0, 2.0, 2.0, 2.0, 2.0],  # never below: inf
            ],
            [
                [0.0, 0.0, 0.0, 0.0, 0.0, 1e200],  # one step back; first norm is 0
                [1.0, 1.0, 1.0, 1.0, 0.0999, 1.0],  # one step back
            ],
        ],
        dtype=torch.float64,
    )
    result = GradientThroughTime(hidden=hidden, cell=None)
    torch.testing.assert_close(
        result.reach(), torch.tensor([[2.0, math.inf], [1.0, 1.0]], dtype=torch.float64)
    )
    vanishing = result.vanishing_log10()
    # 1e-200 / 1.0 and 0 / 1e200: the second ratio's log is -inf, not NaN.
    torch.testing.assert_close(vanishing[0, 0], torch.tensor(-200.0, dtype=torch.float64))
    assert vanishing[0, 1] == 0.0
    assert vanishing[1, 0] == -math.inf
    assert vanishing[1, 1] == 0.0
    far_apart = GradientThroughTime(
        hidden=torch.tensor([[[1e-200, 1e200]]], dtype=torch.float64), cell=None
    )
    torch.testing.assert_close(far_apart.vanishing_log10(), torch.tensor([[-400.0]], dtype=torch.float64))
