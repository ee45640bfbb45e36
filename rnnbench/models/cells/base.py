"""The cell protocol: a recurrent cell is its one-step update, and that is all a user writes.

A cell is an ``nn.Module`` built as ``Cell(input_size, hidden_size, **options)`` that defines

- ``state_names``: the names of its state tensors, ``h`` first (``("h",)``; an LSTM has
  ``("h", "c")``). Every state is ``(B, hidden_size)`` and starts at zeros unless the cell overrides
  :meth:`Cell.initial_state`. ``h`` is what the layer outputs and the next layer reads.
- ``step(x_t, state) -> (new_state, gates)``: ``x_t`` is ``(B, input_size)``; ``state`` and
  ``new_state`` are tuples ordered as ``state_names``; ``gates`` maps a gate's name to its
  ``(B, hidden_size)`` activations in [0, 1] (``{}`` for an ungated cell).

The layer stack (:class:`rnnbench.models.stack.LayerStack`) runs any such cell over layers and
directions, and every diagnostic works from ``step`` alone, so a new cell is measured exactly.

Two optional speed hooks, which the built-in cells use:

- *Batched input projection*: a cell that defines :meth:`Cell.project_input` and
  :meth:`Cell.step_projected` (and leaves ``step`` alone) splits its step into the part that
  depends on ``x_t`` only, computed for the whole sequence in one product, and the recurrence.
  ``step`` is then ``step_projected(project_input(x_t), state)``, so both forms agree by construction.
- *A fused twin*: :meth:`Cell.fused_kind` names a PyTorch kernel (``lstm``, ``gru``, ``rnn_tanh``,
  ``rnn_relu``) that computes exactly this cell's equations from its ``weight_ih``, ``weight_hh``,
  ``bias_ih`` and ``bias_hh`` in PyTorch's layout. Only the built-in classes themselves return one:
  a subclass, which may change the equations, runs step by step. Tests prove each twin equal to the
  step loop (1e-6 in float64, every layer and direction).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

State = tuple[Tensor, ...]
Gates = dict[str, Tensor]


class Cell(nn.Module):
    """Base class of every recurrent cell; see the module docstring for the protocol.

    Args:
        input_size: I, features of ``x_t``.
        hidden_size: H, features of every state.

    Shapes: ``x_t`` (B, I); every state (B, H); every gate (B, H) in [0, 1].
    """

    state_names: ClassVar[tuple[str, ...]] = ("h",)

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size

    def initial_state(self, batch_size: int, device: torch.device | None = None,
                      dtype: torch.dtype | None = None) -> State:
        """The state before the first step: zeros, one (B, H) tensor per name in ``state_names``."""
        return tuple(torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)
                     for _ in self.state_names)

    def step(self, x_t: Tensor, state: State) -> tuple[State, Gates]:
        """One step: ``x_t`` (B, I) and ``state`` -> ``(new_state, gates)``. Cells override this, or
        the two speed hooks below."""
        if type(self).step_projected is Cell.step_projected:
            raise NotImplementedError(f"{type(self).__name__} defines neither step nor step_projected")
        return self.step_projected(self.project_input(x_t), state)

    def project_input(self, x: Tensor) -> Tensor:
        """Speed hook: the part of a step that depends on the input alone, ``(..., I) -> (..., P)``;
        applied to a whole sequence (B, T, I) at once."""
        raise NotImplementedError

    def step_projected(self, p_t: Tensor, state: State) -> tuple[State, Gates]:
        """Speed hook: the rest of a step, from ``p_t = project_input(x_t)`` (B, P)."""
        raise NotImplementedError

    @property
    def has_input_projection(self) -> bool:
        """Whether the stack may call ``project_input`` once per sequence and then ``step_projected``:
        true for a class that defines ``step_projected`` and keeps the base ``step``."""
        cls = type(self)
        return cls.step is Cell.step and cls.step_projected is not Cell.step_projected

    def weight_is_meta(self) -> bool:
        """Whether the cell was built on PyTorch's meta device (shapes only, as parameter budgets build it)."""
        return any(p.is_meta for p in self.parameters())

    def fused_kind(self) -> str | None:
        """The PyTorch kernel that computes this cell's equations exactly, or None (see the module docstring)."""
        return None


def pytorch_layout(cell: Cell, blocks: int, recurrent_bias: bool = True) -> None:
    """Give ``cell`` PyTorch's recurrent parameters for ``blocks`` stacked gate blocks and initialise
    them as PyTorch does (every entry uniform in ±1/sqrt(H)).

    ``weight_ih`` (blocks*H, I), ``weight_hh`` (blocks*H, H), ``bias_ih`` and ``bias_hh`` (blocks*H,),
    registered in this order, the order in which ``nn.LSTM`` and its kin draw them from the random
    generator: a stack of built-in cells starts from the very weights of the fused module of the same seed.
    """
    size, hidden = blocks * cell.hidden_size, cell.hidden_size
    cell.weight_ih = nn.Parameter(torch.empty(size, cell.input_size))
    cell.weight_hh = nn.Parameter(torch.empty(size, hidden))
    cell.bias_ih = nn.Parameter(torch.empty(size))
    cell.bias_hh = nn.Parameter(torch.empty(size)) if recurrent_bias else None
    uniform_init(cell)


@torch.no_grad()
def uniform_init(cell: Cell, *parameters: nn.Parameter) -> None:
    """PyTorch's recurrent initialisation, U(-1/sqrt(H), 1/sqrt(H)), of ``parameters`` (default: all the cell's)."""
    bound = cell.hidden_size ** -0.5
    for parameter in parameters or cell.parameters():
        parameter.uniform_(-bound, bound)


CHECK_BATCHES = (2, 3)  # the two steps' batch sizes: a cell that hard-codes either one fails the other step
LARGE_INPUT_SCALE = 30.0  # the second step's inputs, standard normal times this: every gate reaches its tails
GATE_TOLERANCE = 1e-6  # how far outside [0, 1] a finite gate value may round on the second step


def protocol_problem(cell: Cell) -> str | None:
    """What is wrong with ``cell`` as a :class:`Cell`, found by two tiny steps on fixed random inputs (the
    global random generator is left untouched), or None when it keeps the protocol.

    The first step starts from ``initial_state`` on a batch of 2 with inputs in [0, 1); the second runs on a
    batch of 3 with large inputs (``LARGE_INPUT_SCALE`` times standard normal) and states in [-1, 1], so that
    pre-activations reach the tails of a sigmoid: a gate that leaves [0, 1] only there (``1.3 * sigmoid``)
    is refused, as is a cell whose shapes are right at one batch size only. Non-finite gate values of the
    second step (an overflow on purpose-large inputs) are not range-checked."""
    names = getattr(cell, "state_names", None)
    if not (isinstance(names, tuple) and names and all(isinstance(n, str) for n in names) and names[0] == "h"
            and len(set(names)) == len(names)):
        return f"state_names must be a tuple of distinct names with 'h' first, got {names!r}"
    parameter = next(iter(cell.parameters()), None)
    if parameter is None:
        return "it has no parameters: a cell learns its weights (register them as nn.Parameter in __init__)"
    device = parameter.device
    dtype = parameter.dtype if parameter.is_floating_point() else torch.get_default_dtype()
    generator = torch.Generator(device="cpu").manual_seed(0)
    small, large = CHECK_BATCHES
    x_small = torch.rand(small, cell.input_size, generator=generator).to(device=device, dtype=dtype)
    problem = _step_problem(cell, names, x_small, None)
    if problem:
        return problem
    x_large = (torch.randn(large, cell.input_size, generator=generator) * LARGE_INPUT_SCALE).to(device=device,
                                                                                               dtype=dtype)
    states = [torch.rand(large, cell.hidden_size, generator=generator) * 2 - 1 for _ in names]
    return _step_problem(cell, names, x_large, states)


def _step_problem(cell: Cell, names: tuple[str, ...], x_t: Tensor, values: list[Tensor] | None) -> str | None:
    """One step of ``cell`` on ``x_t`` (B, I), checked: shapes, and gates in [0, 1]. ``values`` None: from
    ``initial_state``, every gate value in [0, 1]; else (the large step) from ``values`` cast as
    ``initial_state``'s tensors, every finite gate value in [0, 1] up to ``GATE_TOLERANCE``, and every message
    says which step it was."""
    batch, hidden = x_t.shape[0], cell.hidden_size
    where = "" if values is None else \
        f" (on a batch of {batch}, inputs {LARGE_INPUT_SCALE:g} * N(0, 1) and states in [-1, 1])"
    try:
        with torch.no_grad():
            state = tuple(cell.initial_state(batch, x_t.device, x_t.dtype))
            problem = _states_problem("initial_state()", state, names, batch, hidden)
            if problem:
                return problem + where
            if values is not None:
                state = tuple(v.to(device=s.device, dtype=s.dtype) for v, s in zip(values, state))
            result = cell.step(x_t, state)
    except Exception as error:  # a user's cell: any failure is what we report
        lines = str(error).strip().splitlines()
        return f"step raised {type(error).__name__}: {lines[0] if lines else ''}{where or f' (on a batch of {batch})'}"
    if not (isinstance(result, tuple) and len(result) == 2):
        return f"step must return (new_state, gates){where}"
    new_state, gates = result
    problem = _states_problem("step's new_state", new_state, names, batch, hidden)
    if problem:
        return problem + where
    if not isinstance(gates, dict):
        return f"step's gates must be a dict of gate name -> (B, H) tensor, got {type(gates).__name__}{where}"
    for name, gate in gates.items():
        if not (isinstance(gate, Tensor) and tuple(gate.shape) == (batch, hidden)):
            return f"gate {name!r} must be a (B, hidden_size) = ({batch}, {hidden}) tensor, got " \
                   f"{tuple(gate.shape) if isinstance(gate, Tensor) else type(gate).__name__}{where}"
        if values is None:
            if not bool(((gate >= 0) & (gate <= 1)).all()):
                return f"gate {name!r} has values outside [0, 1] (min {gate.min().item():.3g}, " \
                       f"max {gate.max().item():.3g})"
            continue
        finite = gate[torch.isfinite(gate)].double()
        if finite.numel() and not bool(((finite >= -GATE_TOLERANCE) & (finite <= 1 + GATE_TOLERANCE)).all()):
            return f"gate {name!r} has values outside [0, 1] (min {finite.min().item():.3g}, " \
                   f"max {finite.max().item():.3g}){where}"
    return None


def _states_problem(what: str, state: object, names: tuple[str, ...], batch: int, hidden: int) -> str | None:
    if not (isinstance(state, (tuple, list)) and len(state) == len(names)):
        length = len(state) if isinstance(state, (tuple, list)) else type(state).__name__
        return f"{what} must be a tuple of {len(names)} tensors ordered as state_names {names}, got {length}"
    for name, tensor in zip(names, state):
        if not (isinstance(tensor, Tensor) and tuple(tensor.shape) == (batch, hidden)):
            shape = tuple(tensor.shape) if isinstance(tensor, Tensor) else type(tensor).__name__
            return f"{what}: state {name!r} must be (B, hidden_size) = ({batch}, {hidden}), got {shape}"
        if not tensor.is_floating_point():  # gradients flow only through floating-point states
            return f"{what}: state {name!r} must be a floating-point tensor, got {tensor.dtype}"
    return None
