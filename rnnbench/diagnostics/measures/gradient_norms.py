"""Weight-gradient norms, per parameter of every cell and in total, with a single device-to-host transfer.

Calling ``p.grad.norm().item()`` per parameter synchronises the device once
per parameter; here all norms are computed on the device, stacked, and read
back with one ``tolist()``.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from rnnbench.models.stack import DIRECTION_NAMES, LayerStack

__all__ = ["cell_parameter_groups", "grad_norms", "grad_norm_tensor"]


def cell_parameter_groups(stack: LayerStack) -> list[tuple[str, list[nn.Parameter]]]:
    """One group per parameter of every cell of the stack, named by the cell itself.

    Args:
        stack: the layer stack.

    Returns:
        ``[(name, [parameter])]`` ordered by layer, then direction, then the cell's own parameter
        order; names read ``"layer{l}/{forward|backward}/{parameter name}"``, e.g.
        ``layer0/forward/weight_hh`` or, for a peephole LSTM, ``layer1/backward/weight_ch``.
    """
    return [(f"layer{layer}/{DIRECTION_NAMES[direction]}/{name}", [parameter])
            for layer, direction, cell in stack.layer_cells() for name, parameter in cell.named_parameters()]


def grad_norms(
    named_groups: list[tuple[str, list[Tensor]]], total_params: Iterable[Tensor]
) -> dict[str, float]:
    """Global and per-group L2 norms of gradients, read back in one transfer.

    Parameters whose ``.grad`` is ``None`` are skipped; a group without any
    gradient has norm 0. Non-finite gradients propagate: a NaN anywhere in a
    group makes its norm NaN.

    Args:
        named_groups: ``[(name, parameters)]``, e.g. from
            :func:`cell_parameter_groups`. ``"total"`` is reserved.
        total_params: the parameters whose gradients make up ``"total"``,
            typically ``model.parameters()``.

    Returns:
        ``{"total": norm, name: norm, ...}`` as Python floats.
    """
    names, norms = grad_norm_tensor(named_groups, total_params)
    return dict(zip(names, norms.tolist()))


def grad_norm_tensor(
    named_groups: list[tuple[str, list[Tensor]]], total_params: Iterable[Tensor]
) -> tuple[list[str], Tensor]:
    """:func:`grad_norms` left on the device: (names, float64 norms (1 + len(named_groups),)).

    For callers that batch these norms with other device values into their one transfer.
    """
    total_params = list(total_params)
    groups = [("total", total_params)] + [(name, list(params)) for name, params in named_groups]
    if any(name == "total" for name, _ in named_groups):
        raise ValueError('"total" is reserved for the global norm')

    # Each distinct gradient is reduced once, even if it sits in several groups.
    gradients: dict[int, Tensor] = {}
    for _, params in groups:
        for param in params:
            if param.grad is not None:
                gradients.setdefault(id(param), param.grad)
    per_tensor = _norms_per_tensor(list(gradients.values()))
    norm_of = dict(zip(gradients, per_tensor))

    device = per_tensor[0].device if per_tensor else torch.device("cpu")
    zero = torch.zeros((), dtype=torch.float64, device=device)
    group_norms = []
    for _, params in groups:
        members = [norm_of[id(p)] for p in params if p.grad is not None]
        group_norms.append(torch.linalg.vector_norm(torch.stack(members)) if members else zero)
    return [name for name, _ in groups], torch.stack(group_norms)


def _norms_per_tensor(tensors: list[Tensor]) -> list[Tensor]:
    """0-d float64 L2 norms of ``tensors``, on the first tensor's device.

    Half-precision tensors are reduced in float32 so that norms above 65504 do not overflow.
    """
    if not tensors:
        return []
    device = tensors[0].device
    return [torch.linalg.vector_norm(tensor, 2, dtype=torch.promote_types(tensor.dtype, torch.float32))
            .to(device, torch.float64) for tensor in tensors]
