"""Parameter budgets: the hidden size that gives a whole model (encoder, layer stack, head) a set number of
parameters, for any cell, found by building the model (on PyTorch's meta device, which allocates nothing)
rather than by a formula per cell."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from rnnbench.errors import ConfigError, require_int

TOLERANCE = 0.05  # the chosen size's count is within 5% of the budget, or the budget is refused
LARGEST = 1 << 16


def parameter_count(build: Callable[[int], nn.Module], hidden_size: int) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in build(hidden_size).parameters())


def hidden_size_for_budget(budget: int, build: Callable[[int], nn.Module]) -> tuple[int, int]:
    """``(hidden_size, parameters)`` whose count is nearest ``budget``; ``build(hidden_size)`` makes the model.

    The count grows with the hidden size, so a binary search over 1..65536 finds the first size at or above
    the budget; that size or the one below, whichever is nearer. Raises ConfigError on ``param_budget`` when
    neither is within 5%."""
    require_int(budget, "param_budget", 1)
    low, high = 1, LARGEST
    if parameter_count(build, high) < budget:
        raise ConfigError("param_budget", budget, f"at most {parameter_count(build, high)} for this model "
                                                  f"(hidden_size={LARGEST})")
    while low < high:
        middle = (low + high) // 2
        if parameter_count(build, middle) >= budget:
            high = middle
        else:
            low = middle + 1
    candidates = [(abs(parameter_count(build, h) - budget), h) for h in (low - 1, low) if h >= 1]
    _, hidden = min(candidates)
    count = parameter_count(build, hidden)
    if abs(count - budget) > TOLERANCE * budget:
        nearest = ", ".join(f"hidden_size={h} gives {parameter_count(build, h)}" for _, h in sorted(candidates))
        raise ConfigError("param_budget", budget, f"a count some hidden size reaches within 5% ({nearest})")
    return hidden, count
