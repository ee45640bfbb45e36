"""Gate activations of LSTM and GRU layers, reconstructed exactly, and their statistics."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnbench.diagnostics.layers import DIRECTION_NAMES, cell_layout, gate_activations, run_layers

__all__ = ["layer_inputs_and_states", "reconstruct_gates", "gate_statistics"]


def layer_inputs_and_states(
    rnn: nn.RNNBase, inputs: Tensor, dtype: torch.dtype | None = None
) -> list[tuple[Tensor, Tensor, Tensor | None]]:
    """Per layer-direction inputs and states of ``rnn`` on ``inputs``, without dropout.

    Args:
        rnn: a batch-first ``nn.RNN``, ``nn.LSTM`` or ``nn.GRU``.
        inputs: ``(B, T, input_size)``.
        dtype: computation dtype; defaults to the dtype of ``rnn``'s weights.

    Returns:
        One ``(layer_input, hidden, cell)`` per layer-direction, ordered
        ``l * D + d``, all in that direction's processing order:
        ``layer_input`` ``(B, T, I_l)``, ``hidden`` ``(B, T, H)`` with ``h_k``,
        ``cell`` ``(B, T, H)`` with the LSTM ``c_k``, else ``None``.
    """
    layout = cell_layout(rnn)
    with torch.no_grad():
        runs, _, _ = run_layers(rnn, inputs, dtype)
        return [(run.inputs, run.hidden, gate_activations(layout, run)[1]) for run in runs]


def reconstruct_gates(
    rnn: nn.RNNBase, inputs: Tensor, dtype: torch.dtype | None = None
) -> dict[tuple[int, int], dict[str, Tensor]]:
    """Gate activations of every layer-direction of ``rnn`` on ``inputs``, without dropout.

    Args:
        rnn: a batch-first ``nn.RNN``, ``nn.LSTM`` or ``nn.GRU``.
        inputs: ``(B, T, input_size)``.
        dtype: computation dtype; defaults to the dtype of ``rnn``'s weights.

    Returns:
        ``{(layer, direction): {gate name: (B, T, H) activations}}``, with
        direction 0 forward and 1 backward, time in processing order.
        LSTM gates: ``input``, ``forget``, ``cell`` (the tanh candidate ``g``),
        ``output``; GRU gates: ``reset``, ``update``, ``new`` (the tanh
        candidate ``n``). A plain RNN has no gates and yields ``{}``.
    """
    layout = cell_layout(rnn)
    if not layout.gates:
        return {}
    with torch.no_grad():
        runs, _, _ = run_layers(rnn, inputs, dtype)
        return {(run.layer, run.direction): gate_activations(layout, run)[0] for run in runs}


def gate_statistics(
    rnn: nn.RNNBase, inputs: Tensor, saturation: float = 0.05
) -> list[dict[str, float | int | str]]:
    """Mean and saturation of the sigmoid gates, per layer-direction.

    Args:
        rnn: a batch-first ``nn.RNN``, ``nn.LSTM`` or ``nn.GRU``.
        inputs: ``(B, T, input_size)``.
        saturation: an activation counts as saturated when it is below
            ``saturation`` or above ``1 - saturation``.

    Returns:
        One dict per layer-direction, ordered ``l * D + d``:
        ``{"layer": l, "direction": "forward" | "backward",
        "<gate>_mean": float, "<gate>_saturated": float}`` for each sigmoid
        gate (LSTM ``input``, ``forget``, ``output``; GRU ``reset``,
        ``update``), the mean and saturated fraction taken over batch, time
        and units. ``[]`` for a plain RNN.
    """
    layout = cell_layout(rnn)
    gates = reconstruct_gates(rnn, inputs)
    keys = sorted(gates)
    if not keys:
        return []
    # All statistics go to the host in one transfer.
    values = torch.stack(
        [
            statistic
            for key in keys
            for name in layout.sigmoid_gates
            for statistic in (
                gates[key][name].double().mean(),
                ((gates[key][name] < saturation) | (gates[key][name] > 1 - saturation)).double().mean(),
            )
        ]
    ).tolist()
    rows: list[dict[str, float | int | str]] = []
    position = 0
    for layer, direction in keys:
        row: dict[str, float | int | str] = {"layer": layer, "direction": DIRECTION_NAMES[direction]}
        for name in layout.sigmoid_gates:
            row[f"{name}_mean"], row[f"{name}_saturated"] = values[position], values[position + 1]
            position += 2
        rows.append(row)
    return rows
