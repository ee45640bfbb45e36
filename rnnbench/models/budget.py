"""Parameter and state budgets: the hidden size that gives a whole model (encoder, layer stack, head) a set number of
parameters, or its state a set number of floats per sequence, for any cell, found by counting the model's parameters (built on PyTorch's meta device, which
allocates nothing; :func:`rnnbench.models.sequence_model.parameter_estimate`) rather than by a formula per cell."""

from __future__ import annotations

from collections.abc import Callable

from rnnbench.errors import ConfigError, require_int

TOLERANCE = 0.05  # the chosen size's count is within 5% of the budget, or the budget is refused
LARGEST = 1 << 16


def hidden_size_for_budget(budget: int, count: Callable[[int], int], setting: str = "param_budget") -> tuple[int, int]:
    """``(hidden_size, count)`` whose count is nearest ``budget``; ``count(hidden_size)`` is what the budget
    counts at that size: the model's parameters (``param_budget``) or the floats its state carries per sequence
    (``state_budget``).

    The count grows with the hidden size, so a binary search over 1..65536 finds the first size at or above
    the budget; that size or the one below, whichever is nearer. Raises ConfigError on ``setting`` when
    neither is within 5%."""
    require_int(budget, setting, 1)
    low, high = 1, LARGEST
    if count(high) < budget:
        raise ConfigError(setting, budget, f"at most {count(high)} for this model (hidden_size={LARGEST})")
    while low < high:
        middle = (low + high) // 2
        if count(middle) >= budget:
            high = middle
        else:
            low = middle + 1
    candidates = [(abs(count(h) - budget), h) for h in (low - 1, low) if h >= 1]
    _, hidden = min(candidates)
    parameters = count(hidden)
    if abs(parameters - budget) > TOLERANCE * budget:
        nearest = ", ".join(f"hidden_size={h} gives {count(h)}" for _, h in sorted(candidates))
        raise ConfigError(setting, budget, f"a count some hidden size reaches within 5% ({nearest})")
    return hidden, parameters
