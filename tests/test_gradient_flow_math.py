"""Exactness of the gradient-through-time probe (rnnbench.diagnostics.measures.gradient_flow) for every cell.

The reference is autograd through the network's own forward: a plain loop over each cell's ``step`` (the
protocol's form), ``retain_grad()`` on every state of every step, ``backward()``. Generated over the registry
and README's example cell, 1-3 layers, both directions, a once-per-sequence and a per-step readout, float64."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnbench.models import LayerStack
from rnnbench.diagnostics.measures.gradient_flow import GradientThroughTime, gradient_through_time, state_derivatives

from cells_under_test import all_cells

torch.set_num_threads(1)
ALL = all_cells()
B, T, I, H = 3, 6, 4, 5


def make_stack(name: str, layers: int, bidirectional: bool, dtype=torch.float64) -> LayerStack:
    torch.manual_seed(1234)
    return LayerStack(ALL[name], I, H, layers, bidirectional).to(dtype)


def make_readout(stack: LayerStack, per_step: bool):
    """A loss summed over the batch that reads both ``output`` and the top ``h_n``; per step: one per position."""
    torch.manual_seed(99)
    width = stack.num_directions * H
    dtype = next(stack.parameters()).dtype
    from_output, from_state = nn.Linear(width, 2, dtype=dtype), nn.Linear(width, 2, dtype=dtype)
    target = torch.randn(B, T, 2, dtype=dtype)

    def readout(output: Tensor, h_n: Tensor) -> Tensor:
        top = h_n[-stack.num_directions:].transpose(0, 1).reshape(B, width)
        prediction = from_output(output) + torch.tanh(from_state(top)).unsqueeze(1)  # (B, T, 2)
        per_position = ((prediction - target) ** 2).sum(dim=(0, 2))
        return per_position if per_step else per_position[-1] + per_position[0]

    return readout


def reference_derivatives(stack: LayerStack, inputs: Tensor, readout, per_step: bool) -> list[dict[str, Tensor]]:
    """Per layer-direction: state name -> (B, T, H) ``dl/ds`` in processing order, by retain_grad + backward."""
    D, names = stack.num_directions, stack.state_names
    layer_input, kept, finals = inputs, [], []
    for layer in range(stack.num_layers):
        outputs = []
        for direction in range(D):
            cell = stack.cells[layer * D + direction]
            state, per_step_states, hidden = cell.initial_state(B, dtype=inputs.dtype), [], []
            for t in (range(T - 1, -1, -1) if direction else range(T)):
                state, _ = cell.step(layer_input[:, t], state)
                for s in state:
                    s.retain_grad()
                per_step_states.append(state)
                hidden.append(state[0])
            kept.append(per_step_states)
            finals.append(state[0])
            outputs.append(torch.stack(hidden[::-1] if direction else hidden, dim=1))
        layer_input = torch.cat(outputs, dim=-1)
    loss = readout(layer_input, torch.stack(finals))
    # each direction against the loss at the position it reaches last (per step), else the one loss
    targets = [(loss[-1], 0), (loss[0], 1)][:D] if per_step else [(loss, None)]
    result: list[dict[str, Tensor]] = [{} for _ in kept]
    for number, (target, direction) in enumerate(targets):
        for states in kept:
            for state in states:
                for s in state:
                    s.grad = None
        target.backward(retain_graph=number < len(targets) - 1)
        for i, states in enumerate(kept):
            if direction is None or i % D == direction:
                result[i] = {n: torch.stack([s[j].grad if s[j].grad is not None else torch.zeros_like(s[j])
                                             for s in states], dim=1) for j, n in enumerate(names)}
    return result


def relative_error(actual: Tensor, expected: Tensor) -> float:
    scale = expected.norm()
    return ((actual - expected).norm() / scale).item() if scale > 0 else actual.norm().item()


@pytest.mark.parametrize("per_step", [False, True], ids=["sequence", "per_step"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("name", list(ALL))
def test_probe_equals_autograd_through_the_networks_own_steps(name, layers, bidirectional, per_step):
    stack = make_stack(name, layers, bidirectional)
    inputs = torch.randn(B, T, I, dtype=torch.float64)
    readout = make_readout(stack, per_step)
    expected = reference_derivatives(stack, inputs, readout, per_step)
    actual = state_derivatives(stack, inputs, readout)
    assert len(actual) == len(expected) == layers * (2 if bidirectional else 1)
    for ours, theirs in zip(actual, expected):
        assert set(ours) == set(theirs) == set(stack.state_names)
        for state in stack.state_names:
            assert ours[state].shape == (B, T, H)
            assert theirs[state].norm() > 0 or state != "h"
            assert relative_error(ours[state], theirs[state]) <= 1e-6, state
    flow = gradient_through_time(stack, inputs, readout)
    for state in stack.state_names:
        norms = torch.stack([d[state].norm(dim=-1).mean(0) for d in expected]).reshape(layers, -1, T)
        torch.testing.assert_close(flow.states[state], norms, rtol=1e-6, atol=1e-300)
    assert (flow.cell is None) == ("c" not in stack.state_names)


@pytest.mark.parametrize("name", ["lstm", "gru", "rnn", "lstm_cifg"])
def test_a_per_step_head_reaches_every_step_of_the_backward_direction(name):
    """The audit's bug: the loss at position T reads a backward direction only through its first processed step.
    Against the loss at position 1 (the one it reaches last) every step of its curve is non-zero and finite."""
    stack = make_stack(name, 2, True)
    flow = gradient_through_time(stack, torch.randn(B, T, I, dtype=torch.float64), make_readout(stack, per_step=True))
    assert (flow.hidden > 0).all()
    assert torch.isfinite(flow.vanishing_log10()).all() and torch.isfinite(flow.vanishing_log10_min()).all()
    assert (flow.vanishing_log10_min() <= flow.vanishing_log10() + 1e-12).all()
    assert (flow.vanishing_log10_min() <= 0).all()


def test_leaves_the_stack_its_grads_mode_and_rng_untouched():
    stack = make_stack("lstm_peephole", 2, True, dtype=torch.float32)
    stack.dropout = 0.3
    stack.train()
    inputs = torch.randn(B, T, I)
    stack(inputs)[0].sum().backward()
    stack.cells[3].bias_hh.grad = None
    parameters = {n: p.detach().clone() for n, p in stack.named_parameters()}
    grads = {n: None if p.grad is None else p.grad.clone() for n, p in stack.named_parameters()}
    readout = make_readout(stack, per_step=False)
    rng = torch.get_rng_state()
    in_training = gradient_through_time(stack, inputs, readout)
    assert stack.training and torch.equal(rng, torch.get_rng_state())
    for n, p in stack.named_parameters():
        assert torch.equal(p, parameters[n])
        assert (p.grad is None) if grads[n] is None else torch.equal(p.grad, grads[n])
    stack.eval()
    assert torch.equal(gradient_through_time(stack, inputs, readout).hidden, in_training.hidden)  # no dropout


def adding_problem_inputs(batch: int = 64, steps: int = 100) -> Tensor:
    generator = torch.Generator().manual_seed(0)
    values = torch.rand(batch, steps, generator=generator)
    markers = torch.zeros(batch, steps)
    for row in range(batch):
        markers[row, torch.randperm(steps, generator=generator)[:2]] = 1.0
    return torch.stack([values, markers], dim=-1)


def textbook_run(stack: LayerStack) -> GradientThroughTime:
    inputs = adding_problem_inputs()
    head, target = nn.Linear(stack.hidden_size, 1), torch.randn(inputs.shape[0], 1)
    return gradient_through_time(stack, inputs, lambda output, h_n: F.mse_loss(head(h_n[-1]), target, reduction="sum"))


def test_textbook_vanishing_gradients():
    # Float64, T=100, hidden 128, PyTorch's default init (seeds as before the cells: same weights).
    torch.manual_seed(1)
    tanh_rnn = textbook_run(LayerStack(ALL["rnn"], 2, 128))
    assert -40 < tanh_rnn.vanishing_log10().item() < -10
    torch.manual_seed(1)
    lstm = LayerStack(ALL["lstm"], 2, 128)
    lstm.cells[0].set_forget_bias(3.0)
    remembering = textbook_run(lstm)
    assert remembering.cell_vanishing_log10().item() > -3
    assert remembering.vanishing_log10().item() > tanh_rnn.vanishing_log10().item() + 10


def test_reach_vanishing_and_dip_on_known_norms():
    hidden = torch.tensor([[[1e-200, 1.0, 1.0, 0.05, 0.5, 1.0],   # 0.05 < 1/10 two steps back; 0.5 is not
                            [2.0, 2.0, 2.0, 2.0, 2.0, 2.0]],      # never below: all 6 steps in reach
                           [[0.0, 0.0, 0.0, 0.0, 0.0, 1e200],     # one step back; first norm is 0
                            [1.0, 1.0, 1.0, 1.0, 0.0999, 1.0]]], dtype=torch.float64)
    result = GradientThroughTime(states={"h": hidden})
    torch.testing.assert_close(result.reach(), torch.tensor([[2.0, 6.0], [1.0, 1.0]], dtype=torch.float64))
    vanishing, dip = result.vanishing_log10(), result.vanishing_log10_min()
    torch.testing.assert_close(vanishing[0, 0], torch.tensor(-200.0, dtype=torch.float64))
    assert vanishing[0, 1] == 0.0 and vanishing[1, 0] == -math.inf and vanishing[1, 1] == 0.0
    assert dip[0, 0] == vanishing[0, 0] and dip[0, 1] == 0.0
    torch.testing.assert_close(dip[1, 1], torch.log10(torch.tensor(0.0999, dtype=torch.float64)))
    far_apart = GradientThroughTime(states={"h": torch.tensor([[[1e-200, 1e200]]], dtype=torch.float64)})
    torch.testing.assert_close(far_apart.vanishing_log10(), torch.tensor([[-400.0]], dtype=torch.float64))
