"""Gate reconstruction in rnnbench.diagnostics.gates against a step-by-step reference."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from rnnbench.diagnostics.gates import gate_statistics, layer_inputs_and_states, reconstruct_gates

torch.set_num_threads(1)

BATCH, STEPS, HIDDEN, INPUT = 3, 7, 5, 4


def make_rnn(kind: str, num_layers: int, bidirectional: bool, **kwargs) -> nn.RNNBase:
    torch.manual_seed(4321)
    cls = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[kind]
    kwargs.setdefault("dtype", torch.float64)
    return cls(INPUT, HIDDEN, num_layers=num_layers, batch_first=True, bidirectional=bidirectional, **kwargs)


def reference(rnn: nn.RNNBase, inputs: Tensor) -> list[dict[str, Tensor]]:
    """Manual step loop computing every gate, checked against nn.LSTMCell / nn.GRUCell.

    Returns per layer-direction (ordered ``l * D + d``) a dict of ``(B, T, H)``
    tensors in processing order: the gates plus ``"layer_input"``, ``"hidden"``
    and, for the LSTM, ``"cell_state"``.
    """
    is_lstm = isinstance(rnn, nn.LSTM)
    cell_cls = nn.LSTMCell if is_lstm else nn.GRUCell
    directions = 2 if rnn.bidirectional else 1
    steps = inputs.shape[1]
    results = []
    layer_input = inputs
    with torch.no_grad():
        for layer in range(rnn.num_layers):
            outputs = []
            for direction in range(directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                cell = cell_cls(layer_input.shape[-1], rnn.hidden_size, dtype=torch.float64)
                for name, parameter in cell.named_parameters():
                    parameter.copy_(getattr(rnn, name + suffix))
                h = layer_input.new_zeros(inputs.shape[0], rnn.hidden_size)
                c = torch.zeros_like(h)
                record: dict[str, list[Tensor]] = {}
                positions = list(range(steps - 1, -1, -1) if direction else range(steps))
                for t in positions:
                    x = layer_input[:, t]
                    gi = x @ cell.weight_ih.T + cell.bias_ih
                    gh = h @ cell.weight_hh.T + cell.bias_hh
                    if is_lstm:
                        i, f, g, o = (gi + gh).chunk(4, -1)
                        gates = {
                            "input": torch.sigmoid(i),
                            "forget": torch.sigmoid(f),
                            "cell": torch.tanh(g),
                            "output": torch.sigmoid(o),
                        }
                        c_next = gates["forget"] * c + gates["input"] * gates["cell"]
                        h_next = gates["output"] * torch.tanh(c_next)
                        h_cell, c_cell = cell(x, (h, c))
                        torch.testing.assert_close(c_next, c_cell, rtol=1e-12, atol=1e-12)
                        c = c_next
                        gates["cell_state"] = c
                    else:
                        (ir, iz, in_), (hr, hz, hn) = gi.chunk(3, -1), gh.chunk(3, -1)
                        gates = {"reset": torch.sigmoid(ir + hr), "update": torch.sigmoid(iz + hz)}
                        gates["new"] = torch.tanh(in_ + gates["reset"] * hn)
                        h_next = (1 - gates["update"]) * gates["new"] + gates["update"] * h
                        h_cell = cell(x, h)
                    torch.testing.assert_close(h_next, h_cell, rtol=1e-12, atol=1e-12)
                    h = h_next
                    gates["hidden"] = h
                    gates["layer_input"] = x
                    for name, value in gates.items():
                        record.setdefault(name, []).append(value)
                sequences = {name: torch.stack(values, dim=1) for name, values in record.items()}
                results.append(sequences)
                outputs.append(sequences["hidden"].flip(1) if direction else sequences["hidden"])
            layer_input = torch.cat(outputs, dim=-1)
    return results


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_reconstruction_matches_reference(kind: str, num_layers: int, bidirectional: bool) -> None:
    rnn = make_rnn(kind, num_layers, bidirectional)
    inputs = torch.randn(BATCH, STEPS, INPUT, dtype=torch.float64)
    expected = reference(rnn, inputs)
    directions = 2 if bidirectional else 1
    names = ("input", "forget", "cell", "output") if kind == "lstm" else ("reset", "update", "new")

    gates = reconstruct_gates(rnn, inputs)
    assert sorted(gates) == [(l, d) for l in range(num_layers) for d in range(directions)]
    for (layer, direction), activations in gates.items():
        want = expected[layer * directions + direction]
        assert set(activations) == set(names)
        for name in names:
            assert activations[name].shape == (BATCH, STEPS, HIDDEN)
            torch.testing.assert_close(activations[name], want[name], rtol=1e-6, atol=1e-6)

    states = layer_inputs_and_states(rnn, inputs)
    assert len(states) == num_layers * directions
    for (layer_input, hidden, cell), want in zip(states, expected):
        torch.testing.assert_close(layer_input, want["layer_input"], rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(hidden, want["hidden"], rtol=1e-6, atol=1e-6)
        if kind == "lstm":
            assert cell is not None
            torch.testing.assert_close(cell, want["cell_state"], rtol=1e-6, atol=1e-6)
        else:
            assert cell is None

    # The re-run must reproduce the fused module's own output.
    with torch.no_grad():
        output = rnn(inputs)[0]
    top = [hidden for _, hidden, _ in states[-directions:]]
    torch.testing.assert_close(
        output, torch.cat([top[0]] + [seq.flip(1) for seq in top[1:]], dim=-1), rtol=1e-10, atol=1e-10
    )


def test_gate_statistics_values() -> None:
    rnn = make_rnn("lstm", 2, True)
    inputs = torch.randn(BATCH, STEPS, INPUT, dtype=torch.float64)
    expected = reference(rnn, inputs)
    rows = gate_statistics(rnn, inputs, saturation=0.3)
    assert [(row["layer"], row["direction"]) for row in rows] == [
        (0, "forward"),
        (0, "backward"),
        (1, "forward"),
        (1, "backward"),
    ]
    for row, want in zip(rows, expected):
        assert set(row) == {"layer", "direction"} | {
            f"{gate}_{stat}" for gate in ("input", "forget", "output") for stat in ("mean", "saturated")
        }
        for gate in ("input", "forget", "output"):
            values = want[gate]
            assert row[f"{gate}_mean"] == pytest.approx(values.mean().item(), rel=1e-9)
            saturated = ((values < 0.3) | (values > 0.7)).double().mean().item()
            assert row[f"{gate}_saturated"] == pytest.approx(saturated, abs=1e-12)


def test_gate_statistics_gru_and_float32_module() -> None:
    rnn = make_rnn("gru", 1, False, dtype=torch.float32, dropout=0.0)
    rows = gate_statistics(rnn, torch.randn(BATCH, STEPS, INPUT))
    assert len(rows) == 1
    assert {"reset_mean", "reset_saturated", "update_mean", "update_saturated"} <= set(rows[0])
    assert all(isinstance(rows[0][key], float) for key in rows[0] if key.endswith(("_mean", "_saturated")))
    assert 0.0 < rows[0]["update_mean"] < 1.0


def test_plain_rnn_has_no_gates() -> None:
    rnn = make_rnn("rnn", 2, True)
    inputs = torch.randn(BATCH, STEPS, INPUT, dtype=torch.float64)
    assert gate_statistics(rnn, inputs) == []
    assert reconstruct_gates(rnn, inputs) == {}
    states = layer_inputs_and_states(rnn, inputs)
    assert len(states) == 4 and all(cell is None for _, _, cell in states)


def test_dropout_ignored_and_no_graph() -> None:
    rnn = make_rnn("lstm", 2, False, dropout=0.5)
    rnn.train()
    inputs = torch.randn(BATCH, STEPS, INPUT, dtype=torch.float64)
    first = reconstruct_gates(rnn, inputs)
    second = reconstruct_gates(rnn, inputs)
    assert rnn.training
    for key in first:
        for name in first[key]:
            assert torch.equal(first[key][name], second[key][name])
            assert not first[key][name].requires_grad
