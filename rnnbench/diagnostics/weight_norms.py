"""Gradient norms of recurrent parameter groups with a single device-to-host transfer.

Calling ``p.grad.norm().item()`` per parameter synchronises the device once
per parameter; here all norms are computed on the device, stacked, and read
back with one ``tolist()``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import torch
from torch import Tensor, nn

from rnnbench.diagnostics.layers import DIRECTION_NAMES

__all__ = ["recurrent_parameter_groups", "grad_norms", "grad_norm_tensor"]

_PARAMETER_NAME = re.compile(r"^(weight|bias)_(ih|hh|hr)_l(\d+)(_reverse)?$")


def recurrent_parameter_groups(rnn: nn.RNNBase) -> list[tuple[str, list[nn.Parameter]]]:
    """Group the parameters of a fused recurrent module by layer, direction and role.

    Args:
        rnn: an ``nn.RNN``, ``nn.LSTM`` or ``nn.GRU``.

    Returns:
        ``[(name, parameters)]`` ordered by layer, then direction, then
        ``weight_ih``, ``weight_hh``, ``weight_hr`` (LSTM with ``proj_size``),
        ``bias``. Names read ``"layer{l}/{forward|backward}/{role}"``; the
        ``bias`` group holds ``bias_ih`` and ``bias_hh`` together and is absent
        for ``bias=False``. Backward groups hold the ``*_reverse`` parameters.
    """
    roles = ("weight_ih", "weight_hh", "weight_hr", "bias")
    groups: dict[tuple[int, int, int], list[nn.Parameter]] = {}
    for name, parameter in rnn.named_parameters():
        match = _PARAMETER_NAME.match(name)
        if match is None:
            continue
        kind, matrix, layer, reverse = match.groups()
        role = "bias" if kind == "bias" else f"weight_{matrix}"
        key = (int(layer), int(reverse is not None), roles.index(role))
        groups.setdefault(key, []).append(parameter)
    return [
        (f"layer{layer}/{DIRECTION_NAMES[direction]}/{roles[role]}", groups[layer, direction, role])
        for layer, direction, role in sorted(groups)
    ]


def grad_norms(
    named_groups: list[tuple[str, list[Tensor]]], total_params: Iterable[Tensor]
) -> dict[str, float]:
    """Global and per-group L2 norms of gradients, read back in one transfer.

    Parameters whose ``.grad`` is ``None`` are skipped; a group without any
    gradient has norm 0. Non-finite gradients propagate: a NaN anywhere in a
    group makes its norm NaN.

    Args:
        named_groups: ``[(name, parameters)]``, e.g. from
            :func:`recurrent_parameter_groups`. ``"total"`` is reserved.
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

    One ``_foreach_norm`` launch per (dtype, device); half-precision tensors
    are reduced in float32 so that norms above 65504 do not overflow.
    """
    if not tensors:
        return []
    device = tensors[0].device
    buckets: dict[tuple[torch.dtype, torch.device], list[int]] = {}
    for index, tensor in enumerate(tensors):
        buckets.setdefault((tensor.dtype, tensor.device), []).append(index)
    norms: list[Tensor] = [tensors[0]] * len(tensors)
    for (dtype, _), indices in buckets.items():
        result_dtype = torch.promote_types(dtype, torch.float32)
        bucket_norms = torch._foreach_norm([tensors[i] for i in indices], 2, dtype=result_dtype)
        for index, norm in zip(indices, bucket_norms):
            norms[index] = norm.to(device, torch.float64)
    return norms
