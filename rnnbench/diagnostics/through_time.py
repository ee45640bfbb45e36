"""Exact gradient of a loss with respect to every hidden (and cell) state of a fused RNN.

``retain_grad()`` on the output of a fused multi-layer module only yields the
direct path from the layer above; the recurrent path is inside the kernel.
Here the network is re-run step by step, one layer-direction at a time, on a
copy of its weights in the probe's dtype, with every state ``h_k`` (and LSTM
``c_k``) a node of one autograd graph; one ``torch.autograd.grad`` call then
returns the total derivative ``dl/dh_k`` for every step, layer and direction,
the recurrent path included. The input projection ``W_ih x_k + b_ih`` of a
whole sequence is one batched product; only the recurrence runs per step.

An earlier version kept the fused kernels and fed them pre-projected inputs
through an identity input weight to obtain the gate pre-activation gradients
in one backward pass; that identity is a ``(G*H) x (G*H)`` product per step,
four times the recurrence's own work for an LSTM, and the step-by-step run
was five times faster (LSTM, hidden 256, T = 35, batch 32, float64, CPU).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnbench.diagnostics.layers import cell_layout, layer_weights

__all__ = ["GradientThroughTime", "gradient_through_time"]


def _log10_norm(values: Tensor) -> Tensor:
    """``log10`` of a norm tensor, ``-inf`` for exact zeros."""
    return torch.log10(values.to(torch.float64))


@dataclass
class GradientThroughTime:
    """Norms of the total gradient of a loss with respect to recurrent states.

    Attributes:
        hidden: ``(L, D, T)`` float64. ``hidden[l, d, k]`` is the mean over
            the batch of the per-sample norm ``||dl/dh_k||`` of layer ``l``,
            direction ``d`` (0 forward, 1 backward), counting every path from
            ``h_k`` to the loss, the recurrent one included.
        cell: ``(L, D, T)`` float64, the same for the LSTM cell state
            ``c_k``; ``None`` for other cells.

    ``k`` indexes the steps in each direction's processing order: position
    ``t = k`` for the forward direction, ``t = T - 1 - k`` for the backward
    direction. ``k = T - 1`` is thus the step processed last, the one whose
    state is reported in ``h_n``. Both tensors live on the device of the
    inputs they were computed from.
    """

    hidden: Tensor
    cell: Tensor | None

    @staticmethod
    def _vanishing(norms: Tensor) -> Tensor:
        # A ratio of two tiny norms would underflow to 0 before the log.
        return _log10_norm(norms[..., 0]) - _log10_norm(norms[..., -1])

    @staticmethod
    def _reach(norms: Tensor) -> Tensor:
        below = norms < norms[..., -1:] / 10
        # Counting from the last processed step backwards, the first index
        # that is below the threshold is the distance.
        from_last = below.flip(-1)
        distance = from_last.to(torch.int64).argmax(dim=-1).to(torch.float64)
        return torch.where(from_last.any(dim=-1), distance, torch.inf)

    def vanishing_log10(self) -> Tensor:
        """``(L, D)`` float64: ``log10(hidden[..., 0] / hidden[..., -1])``.

        Computed as a difference of logarithms, so it stays finite for norms
        whose ratio is outside float64's range; ``-inf`` only where
        ``hidden[..., 0]`` is exactly 0.
        """
        return self._vanishing(self.hidden)

    def cell_vanishing_log10(self) -> Tensor | None:
        """``(L, D)`` float64: :meth:`vanishing_log10` of ``cell``; ``None`` if no cell."""
        return None if self.cell is None else self._vanishing(self.cell)

    def reach(self) -> Tensor:
        """``(L, D)`` float64: how far back the hidden-state gradient reaches.

        The distance in steps from the last processed step ``k = T - 1``
        (distance 0) back to the first step whose norm is below
        ``hidden[..., -1] / 10``; ``inf`` where no step falls that low.
        """
        return self._reach(self.hidden)


def _per_sample_norm(gradient: Tensor) -> Tensor:
    """``(B, T, H) -> (B, T)`` Euclidean norm over units, scaled against underflow."""
    # Squaring a 1e-170 gradient would underflow even in float64.
    scale = gradient.abs().amax(dim=-1, keepdim=True)
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    return (gradient / safe).norm(dim=-1) * scale.squeeze(-1)


State = tuple[Tensor, Tensor | None]  # (h, c); c is None for cells without a cell state
# One recurrence step: (x'_k = W_ih x_k + b_ih, state, W_hh, b_hh) -> next state, PyTorch's equations.
Step = Callable[[Tensor, State, Tensor, Tensor | None], State]


def _rnn_step(activation: Callable[[Tensor], Tensor]) -> Step:
    def step(projected: Tensor, state: State, weight_hh: Tensor, bias_hh: Tensor | None) -> State:
        return activation(projected + F.linear(state[0], weight_hh, bias_hh)), None
    return step


def _lstm_step(projected: Tensor, state: State, weight_hh: Tensor, bias_hh: Tensor | None) -> State:
    h, c = state
    i, f, g, o = (projected + F.linear(h, weight_hh, bias_hh)).chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def _gru_step(projected: Tensor, state: State, weight_hh: Tensor, bias_hh: Tensor | None) -> State:
    h = state[0]
    x_r, x_z, x_n = projected.chunk(3, dim=-1)
    h_r, h_z, h_n = F.linear(h, weight_hh, bias_hh).chunk(3, dim=-1)
    r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return (1 - z) * n + z * h, None


STEPS: dict[str, Step] = {"RNN_TANH": _rnn_step(torch.tanh), "RNN_RELU": _rnn_step(torch.relu),
                          "LSTM": _lstm_step, "GRU": _gru_step}


def _unrolled(rnn: nn.RNNBase, inputs: Tensor, dtype: torch.dtype
              ) -> tuple[list[tuple[list[Tensor], list[Tensor] | None]], Tensor, Tensor]:
    """Run ``rnn`` step by step without dropout, every state a node of one autograd graph.

    Returns ``(states, output, h_n)``: ``states`` holds per layer-direction (ordered ``l * D + d``)
    the ``T`` hidden states ``(B, H)`` in processing order and, for the LSTM, the ``T`` cell states;
    ``output`` ``(B, T, D*H)`` and ``h_n`` ``(L*D, B, H)`` as ``rnn`` returns them.
    """
    cell_layout(rnn)  # rejects what the steps below do not cover
    step = STEPS[rnn.mode]
    num_directions = 2 if rnn.bidirectional else 1
    batch, length = inputs.shape[:2]
    states: list[tuple[list[Tensor], list[Tensor] | None]] = []
    layer_input = inputs.detach().to(dtype)
    for layer in range(rnn.num_layers):
        outputs_in_time_order = []
        for direction in range(num_directions):
            weight_ih, weight_hh, bias_ih, bias_hh = layer_weights(rnn, layer, direction, inputs.device, dtype)
            projected = F.linear(layer_input.flip(1) if direction else layer_input, weight_ih, bias_ih)
            # the zero initial state is the graph's leaf: every later state then records its history
            h = torch.zeros(batch, rnn.hidden_size, dtype=dtype, device=inputs.device, requires_grad=True)
            state: State = (h, torch.zeros_like(h) if rnn.mode == "LSTM" else None)
            hidden, cell = [], []
            for k in range(length):
                state = step(projected[:, k], state, weight_hh, bias_hh)
                hidden.append(state[0])
                if state[1] is not None:
                    cell.append(state[1])
            states.append((hidden, cell or None))
            sequence = torch.stack(hidden, dim=1)
            outputs_in_time_order.append(sequence.flip(1) if direction else sequence)
        layer_input = torch.cat(outputs_in_time_order, dim=-1)
    h_n = torch.stack([hidden[-1] for hidden, _ in states])
    return states, layer_input, h_n


def _total_derivatives(
    rnn: nn.RNNBase,
    inputs: Tensor,
    readout_loss: Callable[[Tensor, Tensor], Tensor],
    dtype: torch.dtype,
) -> list[tuple[Tensor, Tensor | None]]:
    """Per layer-direction ``(dl/dh, dl/dc)``, each ``(B, T, H)`` in processing order.

    ``dl/dc`` is ``None`` for cells without a cell state. Ordered ``l * D + d``.
    """
    readout_dtype = rnn.weight_hh_l0.dtype
    with torch.enable_grad():
        states, output, h_n = _unrolled(rnn, inputs, dtype)
        # The readout is the caller's head, usually built in the model's
        # dtype; only the recurrence needs the extended range of `dtype`.
        loss = readout_loss(output.to(readout_dtype), h_n.to(readout_dtype))
        states_in_order = [state for hidden, cell in states for state in hidden + (cell or [])]
        # autograd.grad, unlike backward(), leaves every .grad untouched,
        # including those of the caller's readout parameters.
        gradients = iter(torch.autograd.grad(loss, states_in_order, allow_unused=True, materialize_grads=True))

    def stacked(sequence: list[Tensor]) -> Tensor:
        return torch.stack([next(gradients) for _ in sequence], dim=1)

    results: list[tuple[Tensor, Tensor | None]] = []
    for hidden, cell in states:
        hidden_grad = stacked(hidden)  # before the cell's: the order of states_in_order
        results.append((hidden_grad, stacked(cell) if cell else None))
    return results


def gradient_through_time(
    rnn: nn.RNNBase,
    inputs: Tensor,
    readout_loss: Callable[[Tensor, Tensor], Tensor],
    dtype: torch.dtype = torch.float64,
) -> GradientThroughTime:
    """Exact total gradient norms of a loss w.r.t. every state of a fused RNN.

    The network is evaluated without dropout on a copy of its weights in
    ``dtype``; ``rnn``'s parameters, their ``.grad`` and its training mode are
    left unchanged, as are the ``.grad`` of anything ``readout_loss`` uses.
    The initial states are zero, as when ``rnn`` is called without ``hx``.

    Args:
        rnn: a batch-first ``nn.RNN`` (tanh or relu), ``nn.LSTM`` or
            ``nn.GRU``, any number of layers, uni- or bidirectional.
        inputs: ``(B, T, input_size)``, what the model feeds ``rnn``; its
            device is used throughout.
        readout_loss: ``readout_loss(output, h_n)`` with ``output``
            ``(B, T, D*H)`` and ``h_n`` ``(L*D, B, H)`` as ``rnn`` returns them
            (for an LSTM, ``h_n`` only), cast to ``rnn``'s own dtype, returning
            a scalar that is the sum over the batch of per-sample losses.
        dtype: dtype of the recurrence and its gradients; float64 keeps
            gradients of 1e-30 and below representable.

    Returns:
        A :class:`GradientThroughTime` with ``(L, D, T)`` norms.
    """
    derivatives = _total_derivatives(rnn, inputs, readout_loss, dtype)
    num_directions = 2 if rnn.bidirectional else 1

    def norms(gradients: list[Tensor]) -> Tensor:
        per_step = torch.stack([_per_sample_norm(g).mean(dim=0) for g in gradients])
        return per_step.reshape(rnn.num_layers, num_directions, -1).to(torch.float64)

    hidden = norms([hidden_grad for hidden_grad, _ in derivatives])
    cell_grads = [cell_grad for _, cell_grad in derivatives if cell_grad is not None]
    cell = norms(cell_grads) if cell_grads else None
    return GradientThroughTime(hidden=hidden, cell=cell)
