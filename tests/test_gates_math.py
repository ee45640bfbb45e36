"""Gate statistics (rnnbench.diagnostics.measures.gates) for any cell, against hand-computed references."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rnnbench.diagnostics.measures.gates import gate_activations, gate_statistics
from rnnbench.models import LayerStack

from cells_under_test import all_cells

torch.set_num_threads(1)
ALL = all_cells()
B, T, I, H = 3, 7, 4, 5


def stack_of(name, layers=1, bidirectional=False, **options):
    torch.manual_seed(4321)
    return LayerStack(ALL[name], I, H, layers, bidirectional, **options).double()


@pytest.mark.parametrize("name,module", [("lstm", nn.LSTMCell), ("gru", nn.GRUCell)])
def test_gates_match_pytorchs_equations_every_layer_and_direction(name, module):
    stack = stack_of(name, 2, True)
    inputs = torch.randn(B, T, I, dtype=torch.float64)
    measured = gate_activations(stack, inputs)
    layer_input = inputs
    for layer in range(2):
        outputs = []
        for direction in range(2):
            cell = stack.cells[2 * layer + direction]
            reference = module(layer_input.shape[-1], H, dtype=torch.float64)
            with torch.no_grad():
                for n, p in reference.named_parameters():
                    p.copy_(getattr(cell, n))
            h = torch.zeros(B, H, dtype=torch.float64)
            c = torch.zeros_like(h)
            expected, hidden = {}, []
            for t in (range(T - 1, -1, -1) if direction else range(T)):
                pre_x = layer_input[:, t] @ reference.weight_ih.T + reference.bias_ih
                pre_h = h @ reference.weight_hh.T + reference.bias_hh
                if name == "lstm":
                    i, f, _, o = (pre_x + pre_h).sigmoid().chunk(4, -1)
                    gates = {"input": i, "forget": f, "output": o}
                    h, c = reference(layer_input[:, t], (h, c))
                else:
                    r, z = (pre_x + pre_h)[:, :2 * H].sigmoid().chunk(2, -1)
                    gates = {"reset": r, "update": z}
                    h = reference(layer_input[:, t], h)
                for key, value in gates.items():
                    expected.setdefault(key, []).append(value)
                hidden.append(h)
            gates, sequence = measured[2 * layer + direction]
            assert set(gates) == set(expected)
            for key in expected:
                torch.testing.assert_close(gates[key], torch.stack(expected[key], dim=1).detach())
            torch.testing.assert_close(sequence, torch.stack(hidden, dim=1).detach())
            outputs.append(torch.stack(hidden[::-1] if direction else hidden, dim=1).detach())
        layer_input = torch.cat(outputs, dim=-1)


@pytest.mark.parametrize("name", list(ALL))
def test_statistics_for_every_cell_are_fractions_of_its_own_gates(name):
    stack = stack_of(name, 2, True)
    rows = gate_statistics(stack, torch.randn(B, T, I, dtype=torch.float64) * 2)
    assert [(r["layer"], r["direction"]) for r in rows] == [(0, "forward"), (0, "backward"), (1, "forward"),
                                                           (1, "backward")]
    _, gates = stack.cells[0].step(torch.zeros(1, I, dtype=torch.float64), stack.cells[0].initial_state(1, dtype=torch.float64))
    expected = {f"{g}_{s}" for g in gates for s in ("mean", "saturated")} | {"h_saturated", "h_dead"}
    for row in rows:
        assert set(row) - {"layer", "direction"} == expected
        assert all(0 <= v <= 1 for k, v in row.items() if k not in ("layer", "direction"))


def test_saturation_values_by_hand():
    stack = stack_of("lstm")
    inputs = torch.randn(B, T, I, dtype=torch.float64)
    gates, hidden = gate_activations(stack, inputs)[0]
    row = gate_statistics(stack, inputs, saturation=0.2)[0]
    forget = gates["forget"]
    assert row["forget_mean"] == pytest.approx(forget.mean().item())
    assert row["forget_saturated"] == pytest.approx(((forget < 0.2) | (forget > 0.8)).double().mean().item())
    assert row["h_saturated"] == pytest.approx((hidden.abs() >= 0.8).double().mean().item())


def test_ungated_cells_report_saturated_tanh_and_dead_relu_units():
    tanh = stack_of("rnn")
    with torch.no_grad():
        tanh.cells[0].weight_ih.mul_(100.0)  # huge pre-activations: tanh pinned at +-1
    row = gate_statistics(tanh, torch.randn(B, T, I, dtype=torch.float64))[0]
    assert row["h_saturated"] > 0.9 and row["h_dead"] == 0.0
    relu = stack_of("rnn", nonlinearity="relu")
    with torch.no_grad():  # two of five units can never fire: dead; the other three always do
        relu.cells[0].bias_ih[:2] = -1e3
        relu.cells[0].bias_ih[2:] = 10.0
    row = gate_statistics(relu, torch.rand(B, T, I, dtype=torch.float64))[0]
    assert row["h_dead"] == pytest.approx(2 / 5)
    assert set(row) == {"layer", "direction", "h_saturated", "h_dead"}


def test_no_dropout_no_graph_and_modes_restored():
    stack = stack_of("gru", 3, True)
    stack.dropout = 0.5
    stack.train()
    inputs = torch.randn(B, T, I, dtype=torch.float64)
    first = gate_activations(stack, inputs)
    second = gate_activations(stack, inputs)
    assert stack.training and all(c.training for c in stack.cells)
    for (g1, h1), (g2, h2) in zip(first, second):
        assert torch.equal(h1, h2) and all(torch.equal(g1[k], g2[k]) for k in g1)
        assert not h1.requires_grad
