"""Exact gradient of a loss with respect to every hidden (and cell) state of a fused RNN.

``retain_grad()`` on the output of a fused multi-layer module only yields the
direct path from the layer above; the recurrent path is inside the kernel.
Here each layer-direction is re-run as its own fused single-layer module on
pre-projected inputs ``x'_k = W_ih x_k + b_ih`` with an identity input weight
(see :func:`rnnbench.diagnostics.gates.run_layers`), so that one backward
pass yields, per layer-direction,

* ``g_k = dl/dh_k`` along the direct path (the layer above, the readout), and
* ``delta_k = dl/dx'_k``, the gradient of the gate pre-activations,

from which the total derivatives follow with batched matrix products and,
for GRU and the LSTM cell state, one elementwise linear scan over time:

* RNN, LSTM: ``dl/dh_k = g_k + W_hh^T delta_{k+1}``;
* GRU: ``dl/dh_k = g_k + W_hr^T delta_r,k+1 + W_hz^T delta_z,k+1
  + W_hn^T (r_{k+1} * delta_n,k+1) + z_{k+1} * dl/dh_{k+1}``;
* LSTM cell: ``dl/dc_k = dl/dh_k * o_k * (1 - tanh(c_k)^2) + f_{k+1} * dl/dc_{k+1}``,

with ``delta_T = 0`` and ``k`` the step in processing order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from rnnbench.diagnostics.layers import cell_layout, gate_activations, linear_scan, run_layers

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


def _total_derivatives(
    rnn: nn.RNNBase,
    inputs: Tensor,
    readout_loss: Callable[[Tensor, Tensor], Tensor],
    dtype: torch.dtype,
) -> list[tuple[Tensor, Tensor | None]]:
    """Per layer-direction ``(dl/dh, dl/dc)``, each ``(B, T, H)`` in processing order.

    ``dl/dc`` is ``None`` for cells without a cell state. Ordered ``l * D + d``.
    """
    layout = cell_layout(rnn)
    readout_dtype = rnn.weight_hh_l0.dtype
    with torch.enable_grad():
        runs, output, h_n = run_layers(rnn, inputs, dtype, track_gradients=True)
        # The readout is the caller's head, usually built in the model's
        # dtype; only the recurrence needs the extended range of `dtype`.
        loss = readout_loss(output.to(readout_dtype), h_n.to(readout_dtype))
        # autograd.grad, unlike backward(), leaves every .grad untouched,
        # including those of the caller's readout parameters.
        gradients = torch.autograd.grad(
            loss,
            [run.projected for run in runs] + [run.hidden for run in runs],
            allow_unused=True,
            materialize_grads=True,
        )
    deltas, directs = gradients[: len(runs)], gradients[len(runs) :]

    results: list[tuple[Tensor, Tensor | None]] = []
    with torch.no_grad():
        for run, delta, direct in zip(runs, deltas, directs):
            gates, cell = gate_activations(layout, run)
            if layout.reset_scaled is not None:
                # The GRU candidate sees W_hn h only through r * (W_hn h + b_hn).
                scaled, scale = layout.reset_scaled
                delta = torch.cat(
                    [
                        chunk * gates[scale] if name == scaled else chunk
                        for name, chunk in zip(layout.chunks, delta.chunk(layout.num_chunks, -1))
                    ],
                    dim=-1,
                )
            hidden_grad = direct.clone()
            hidden_grad[:, :-1] += delta[:, 1:] @ run.weight_hh
            if layout.carry is not None:
                hidden_grad = linear_scan(hidden_grad, gates[layout.carry], reverse=True)

            cell_grad = None
            if cell is not None:
                assert layout.cell_output is not None and layout.cell_forget is not None
                through_output = hidden_grad * gates[layout.cell_output] * (1 - torch.tanh(cell) ** 2)
                cell_grad = linear_scan(through_output, gates[layout.cell_forget], reverse=True)
            results.append((hidden_grad, cell_grad))
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
