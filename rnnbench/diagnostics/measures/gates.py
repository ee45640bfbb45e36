"""Gate activations of any cell, read from its own step, and saturation of its hidden units."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from rnnbench.data.task import valid_steps
from rnnbench.models.stack import DIRECTION_NAMES, LayerStack

__all__ = ["gate_activations", "gate_statistics"]


@contextmanager
def evaluation_mode(module: nn.Module) -> Iterator[None]:
    """``module`` in eval mode (no dropout) for the block, every submodule's own mode restored after."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for submodule, training in modes:
            submodule.training = training


def gate_activations(stack: LayerStack, inputs: Tensor,
                     lengths: Tensor | None = None) -> list[tuple[dict[str, Tensor], Tensor]]:
    """Per layer-direction (ordered ``l * D + d``): ``(gates, hidden)``, each gate ``(B, T, H)`` as the cell's
    ``step`` reports it and ``hidden`` the ``h`` sequence ``(B, T, H)``, in processing order, without dropout
    and without autograd. With ``lengths``, steps ``k >= lengths[b]`` of sequence ``b`` are padding."""
    with torch.no_grad(), evaluation_mode(stack):
        run = stack.unroll(inputs, lengths)
    results = []
    for states, gates in zip(run.states, run.gates):
        names = gates[0].keys() if gates else ()
        results.append(({name: torch.stack([g[name] for g in gates], dim=1) for name in names},
                        torch.stack([s[0] for s in states], dim=1)))
    return results


def gate_statistics(stack: LayerStack, inputs: Tensor, saturation: float = 0.05,
                    lengths: Tensor | None = None) -> list[dict[str, float | int | str]]:
    """Mean and saturation of every gate, and saturation of the hidden units, per layer-direction.

    Args:
        stack: the layer stack.
        inputs: ``(B, T, I)``.
        saturation: a gate activation is saturated below ``saturation`` or above ``1 - saturation``; a hidden
            unit's value when ``|h| >= 1 - saturation`` (a tanh unit at its bounds).
        lengths: None, or (B,) each sequence's own number of steps: padded steps are left out of every fraction.

    Returns:
        One dict per layer-direction, ordered ``l * D + d``: ``layer``, ``direction``, and for each gate the
        cell reports ``<gate>_mean`` and ``<gate>_saturated`` (fraction over batch, time and units), then
        ``h_saturated`` (fraction of ``|h|`` values >= 1 - ``saturation``: the saturating regime of tanh
        units) and ``h_dead`` (fraction of units that are exactly 0 at every step of every sample: dead
        ReLU units), for every cell, gated or not.
    """
    measured = gate_activations(stack, inputs, lengths)
    valid = valid_steps(lengths, inputs.shape[1], inputs.device)
    names: list[list[str]] = []
    statistics: list[Tensor] = []
    for gates, hidden in measured:
        if valid is not None:  # (N, 1, H): every real step of every sequence, as one sequence of one step
            gates = {name: values[valid].unsqueeze(1) for name, values in gates.items()}
            hidden = hidden[valid].unsqueeze(1)
        names.append([])
        for name, values in gates.items():
            values = values.double()
            names[-1] += [f"{name}_mean", f"{name}_saturated"]
            statistics += [values.mean(), ((values < saturation) | (values > 1 - saturation)).double().mean()]
        names[-1] += ["h_saturated", "h_dead"]
        statistics += [(hidden.abs() >= 1 - saturation).double().mean(),
                       (hidden == 0).all(dim=1).all(dim=0).double().mean()]
    values = iter(torch.stack(statistics).tolist())  # one transfer
    return [{"layer": layer, "direction": DIRECTION_NAMES[direction], **{key: next(values) for key in keys}}
            for (layer, direction, _), keys in zip(stack.layer_cells(), names)]
