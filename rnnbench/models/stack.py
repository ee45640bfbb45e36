"""The one recurrent core every model uses: any :class:`~rnnbench.models.cells.Cell`, stacked in layers
and directions, run by its fused twin where it has one and step by step otherwise."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnbench.data.task import valid_steps
from rnnbench.errors import ConfigError, require, require_int
from rnnbench.models.cells.base import Cell, Gates, State, protocol_problem
from rnnbench.models.cells.fused import fused_forward
from rnnbench.models.cells.registry import is_user_cell, user_cell_time_limit

DIRECTION_NAMES: tuple[str, str] = ("forward", "backward")


def reverse_within_lengths(sequence: Tensor, lengths: Tensor | None) -> Tensor:
    """Each sequence of ``sequence`` (B, T, ...) reversed over its own ``lengths[b]`` steps, its padding left
    where it is (``flip(1)`` when ``lengths`` is None). Its own inverse: a backward direction reads
    ``reverse_within_lengths(x)`` from its first step and its output is mapped back the same way, as
    ``pack_padded_sequence`` does for the fused kernels."""
    if lengths is None:
        return sequence.flip(1)
    steps = sequence.shape[1]
    position = torch.arange(steps, device=sequence.device).expand(sequence.shape[0], steps)
    lengths = lengths.to(sequence.device)[:, None]
    index = torch.where(position < lengths, lengths - 1 - position, position)
    return sequence.gather(1, index.reshape(*index.shape, *(1,) * (sequence.dim() - 2)).expand_as(sequence))


@dataclass
class Unrolled:
    """A stack run step by step with every intermediate kept (what the diagnostics read).

    Attributes:
        output: (B, T, D*H), the top layer's ``h`` of every direction, in natural time order (zeros at padding).
        final: one (L*D, B, H) tensor per state name, each layer-direction's state after its last step (of
            each sequence's own length).
        states: per layer-direction (ordered ``l * D + d``), per step ``k`` in that direction's processing
            order (position ``t = k`` forward, ``t = T - 1 - k`` backward; with ``lengths``, ``t = len - 1 - k``
            backward), the state after step ``k`` as the cell computed it (at a padded step, ``k >= len``, from
            the held state and padding: meaningless, and left out by every diagnostic).
        gates: the same indexing, the gates dict each step returned (meaningless at padded steps). Step ``k`` of
            sequence ``b`` is real where ``valid_steps(lengths, T)[b, k]``, in every direction's processing order.
    """

    output: Tensor
    final: tuple[Tensor, ...]
    states: list[list[State]]
    gates: list[list[Gates]]


class LayerStack(nn.Module):
    """``num_layers`` layers of ``num_directions`` cells: layer ``l`` reads layer ``l - 1``'s ``h`` of every
    direction, concatenated; a backward direction reads its input sequence from the last step to the first.

    Args:
        cell: the :class:`Cell` class; each layer-direction gets its own instance
            ``cell(input_size or D*H, hidden_size, **cell_options)``.
        input_size: I, features of the input sequence.
        hidden_size: H, features of every state.
        num_layers: L.
        bidirectional: D = 2 (a time-reversed second direction in every layer) instead of 1.
        dropout: applied to each layer's output but the last's, in training (as ``nn.LSTM`` does).
        name: how the user named the cell (``model.cell``), for error messages.

    Shapes: input (B, T, I); output (B, T, D*H); final states (L*D, B, H) each, ordered ``l * D + d``,
    as ``nn.LSTM`` returns ``h_n``. States start at each cell's ``initial_state`` (zeros by default).

    Variable length: with ``lengths`` (B,) int64, sequence ``b`` is its first ``lengths[b]`` steps and the
    rest is padding. The result is exactly that of running each sequence alone: the fused kernels read a
    ``pack_padded_sequence``; step by step, each state is held where its sequence has ended (so any cell,
    a user's included, needs no change) and a backward direction starts at each sequence's own last step.
    ``output`` is zero at padded steps; ``final`` is each sequence's state after its own last step.

    ``forward`` runs the stack in one fused PyTorch kernel when every cell names the same fused twin
    (the built-in ``rnn``, ``lstm`` and ``gru``) and step by step otherwise; both compute the same
    function (``tests/test_cells.py``). :meth:`unroll` always runs step by step and keeps every state and gate.
    """

    def __init__(self, cell: type[Cell], input_size: int, hidden_size: int, num_layers: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0, name: str | None = None, **cell_options):
        super().__init__()
        require_int(hidden_size, "hidden_size", 1)
        require_int(num_layers, "num_layers", 1)
        require(isinstance(bidirectional, bool), "bidirectional", bidirectional, "true or false")
        require(isinstance(dropout, (int, float)) and not isinstance(dropout, bool) and 0 <= dropout < 1,
                "dropout", dropout, "a number in [0, 1)")
        self.cell_name = name or f"{cell.__module__}.{cell.__qualname__}"
        self.hidden_size, self.num_layers = hidden_size, num_layers
        self.num_directions = 2 if bidirectional else 1
        self.bidirectional = bidirectional
        self.dropout = float(dropout) if num_layers > 1 else 0.0
        self.cells = nn.ModuleList()
        # a user's constructor and step run here, in the launcher before any job: bounded in time
        limit = user_cell_time_limit(self.cell_name, "its constructor and one-step check") if is_user_cell(cell) \
            else nullcontext()
        with limit:
            for layer in range(num_layers):
                for _ in range(self.num_directions):
                    size = input_size if layer == 0 else self.num_directions * hidden_size
                    self.cells.append(self._build(cell, size, hidden_size, cell_options))
            # tiny steps check the protocol (not while a parameter budget sizes the model on the meta device)
            problem = None if self.cells[0].weight_is_meta() else protocol_problem(self.cells[0])
        if problem:
            raise ConfigError("cell", self.cell_name, f"a cell that keeps the Cell protocol: {problem}")
        self.state_names: tuple[str, ...] = self.cells[0].state_names
        kinds = {c.fused_kind() for c in self.cells}
        self.fused_kind: str | None = kinds.pop() if len(kinds) == 1 else None

    def _build(self, cell: type[Cell], input_size: int, hidden_size: int, options: dict) -> Cell:
        try:
            return cell(input_size, hidden_size, **options)
        except ConfigError:
            raise
        except Exception as error:  # a user's constructor, or a size no tensor can hold
            if isinstance(error, RuntimeError) and "overflow" in str(error):
                raise ConfigError("hidden_size", hidden_size, "a smaller size: a weight of the cell would have "
                                                              "more entries than a tensor can hold") from None
            first = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise ConfigError("cell", self.cell_name, f"a cell that builds as Cell(input_size, hidden_size, "
                                                      f"**cell_options): {type(error).__name__}: {first}") from None

    def layer_cells(self) -> list[tuple[int, int, Cell]]:
        """``(layer, direction, cell)`` for every layer-direction, ordered ``l * D + d``."""
        return [(i // self.num_directions, i % self.num_directions, c) for i, c in enumerate(self.cells)]

    def forward(self, inputs: Tensor, lengths: Tensor | None = None,
                step_by_step: bool = False) -> tuple[Tensor, tuple[Tensor, ...]]:
        """``inputs`` (B, T, I), ``lengths`` (B,) or None -> ``(output (B, T, D*H), final states)``;
        ``step_by_step`` bypasses the fused twin."""
        if self.fused_kind is not None and not step_by_step:
            weights = [p for c in self.cells for p in (c.weight_ih, c.weight_hh, c.bias_ih, c.bias_hh)]
            return fused_forward(self.fused_kind, inputs, weights, self.num_layers, self.bidirectional,
                                 self.dropout, self.training, lengths)
        unrolled = self._run(inputs, keep=False, lengths=lengths)
        return unrolled.output, unrolled.final

    def unroll(self, inputs: Tensor, lengths: Tensor | None = None) -> Unrolled:
        """Run step by step and keep every state and gate (no fused twin, whatever the cell)."""
        return self._run(inputs, keep=True, lengths=lengths)

    def _run(self, inputs: Tensor, keep: bool, lengths: Tensor | None = None) -> Unrolled:
        batch = inputs.shape[0]
        valid = valid_steps(lengths, inputs.shape[1], inputs.device)
        held = None if valid is None else valid.unsqueeze(-1).unbind(1)  # per step, (B, 1): advance or hold
        layer_input = inputs
        finals: list[State] = []
        states: list[list[State]] = []
        gates: list[list[Gates]] = []
        for layer in range(self.num_layers):
            if layer and self.dropout and self.training:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
            outputs = []
            for direction in range(self.num_directions):
                cell = self.cells[layer * self.num_directions + direction]
                sequence = reverse_within_lengths(layer_input, lengths) if direction else layer_input
                if cell.has_input_projection:  # one product for the whole sequence, then the recurrence
                    step, steps = cell.step_projected, cell.project_input(sequence).unbind(1)
                else:
                    step, steps = cell.step, sequence.unbind(1)
                state = tuple(cell.initial_state(batch, inputs.device, inputs.dtype))
                hidden, kept_states, kept_gates = [], [], []
                for k, x_t in enumerate(steps):
                    new_state, step_gates = step(x_t, state)
                    new_state = tuple(new_state)
                    hidden.append(new_state[0])
                    if keep:  # the cell's own states: h_k depends on c_k through them, as in an unpadded run
                        kept_states.append(new_state)
                        kept_gates.append(step_gates)
                    # a sequence that has ended holds its state (what the next step reads, and its final state)
                    state = new_state if held is None else \
                        tuple(torch.where(held[k], new, old) for new, old in zip(new_state, state))
                finals.append(state)
                states.append(kept_states)
                gates.append(kept_gates)
                sequence_out = torch.stack(hidden, dim=1)
                if valid is not None:  # padding outputs zeros, as pad_packed_sequence gives the fused kernels
                    sequence_out = sequence_out * valid.unsqueeze(-1).to(sequence_out.dtype)
                outputs.append(reverse_within_lengths(sequence_out, lengths) if direction else sequence_out)
            layer_input = torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]
        final = tuple(torch.stack([state[i] for state in finals]) for i in range(len(self.state_names)))
        return Unrolled(layer_input, final, states, gates)
