"""Exact gradient of a loss with respect to every state of every step, layer and direction, for any cell.

The stack is re-run step by step (:meth:`LayerStack.unroll`) on a copy of its cells in the probe's
dtype, with every state a node of one autograd graph; ``torch.autograd.grad`` then returns the total
derivative ``dl/ds_k`` for every state ``s`` (``h``, and ``c`` or whatever else the cell keeps), every
step ``k``, layer and direction, the recurrent path included. Nothing here knows a cell's equations:
the cell's own ``step`` is differentiated. (``retain_grad()`` on a fused kernel's output would give
only the direct path from the layer above: wrong by orders of magnitude.)

Which loss: for a once-per-sequence head, the sequence's loss. For a per-step head, each direction is
differentiated against the loss at the position it reaches last (the forward direction: position T;
the backward direction: position 1), so that every direction's curve runs from its first processed
step to the loss it feeds most directly. (The loss at position T alone would reach the backward
direction only through its first processed step: a curve of zeros but one point.)

Variable length (``lengths``): each sequence's loss position is its own last step (the forward direction;
the backward direction's is position 1, as for full sequences), each direction processes each sequence over its
own steps, and "distance from the loss" is counted per sequence. The curve at distance ``d`` is the mean over
the sequences long enough to have that distance (``lengths[b] > d``): its near end averages the whole batch, its
far end only the longest sequences. Padded steps are left out.

An earlier version kept PyTorch's fused kernels and fed them pre-projected inputs through an identity
input weight; the step-by-step run was five times faster (LSTM, hidden 256, T = 35, batch 32, float64).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from rnnbench.models.stack import LayerStack

__all__ = ["GradientThroughTime", "aligned_to_loss", "gradient_through_time", "state_derivatives"]


@dataclass
class GradientThroughTime:
    """Norms of the total gradient of a loss with respect to a stack's states.

    Attributes:
        states: state name -> ``(L, D, T)`` float64; ``states[s][l, d, k]`` is the mean over the batch
            of the per-sample norm ``||dl/ds_k||`` of layer ``l``, direction ``d`` (0 forward,
            1 backward), counting every path from ``s_k`` to the loss.

    ``k`` indexes the steps in each direction's processing order: position ``t = k`` forward,
    ``t = T - 1 - k`` backward; ``k = T - 1`` is the step processed last, the one nearest the loss. With
    variable lengths, ``k = T - 1 - d`` holds distance ``d`` from each sequence's own loss position, averaged
    over the sequences that have it.
    """

    states: dict[str, Tensor]

    @property
    def hidden(self) -> Tensor:
        """``(L, D, T)``: the norms for ``h``."""
        return self.states["h"]

    @property
    def cell(self) -> Tensor | None:
        """``(L, D, T)``: the norms for the cell state ``c``; ``None`` for a cell without one."""
        return self.states.get("c")

    def log10(self, state: str = "h") -> Tensor:
        """``(L, D, T)`` log10 norms (``-inf`` for exact zeros)."""
        return torch.log10(self.states[state].to(torch.float64))

    def vanishing_log10(self, state: str = "h") -> Tensor:
        """``(L, D)``: ``log10(norm at the first processed step / norm at the last)``, a difference of
        logarithms, so finite for ratios outside float64's range."""
        curve = self.log10(state)
        return curve[..., 0] - curve[..., -1]

    def vanishing_log10_min(self, state: str = "h") -> Tensor:
        """``(L, D)``: ``log10(min over k of the norm / norm at the last processed step)``: the deepest dip,
        which the first/last ratio hides where a curve is U-shaped (lower layers of bidirectional stacks)."""
        curve = self.log10(state)
        return curve.amin(dim=-1) - curve[..., -1]

    def cell_vanishing_log10(self) -> Tensor | None:
        """:meth:`vanishing_log10` of ``c``; ``None`` for a cell without one."""
        return None if self.cell is None else self.vanishing_log10("c")

    def reach(self, state: str = "h") -> Tensor:
        """``(L, D)`` float64: how many steps, counted back from the last processed one, keep at least a tenth
        of its norm before the first that does not; ``T`` where none falls that low."""
        norms = self.states[state]
        below = (norms < norms[..., -1:] / 10).flip(-1)
        distance = below.to(torch.int64).argmax(dim=-1).to(torch.float64)
        return torch.where(below.any(dim=-1), distance, torch.full_like(distance, norms.shape[-1]))


def _per_sample_norm(gradient: Tensor) -> Tensor:
    """``(B, H) -> (B,)`` Euclidean norm over units, scaled against underflow."""
    # Squaring a 1e-170 gradient would underflow even in float64.
    scale = gradient.abs().amax(dim=-1, keepdim=True)
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    return (gradient / safe).norm(dim=-1) * scale.squeeze(-1)


def _copy_in(stack: LayerStack, dtype: torch.dtype) -> LayerStack:
    """A copy of ``stack`` in ``dtype``, in eval mode (no dropout): the caller's model is never touched."""
    with torch.no_grad():
        duplicate = copy.deepcopy(stack).to(dtype)
    for parameter in duplicate.parameters():
        parameter.grad = None
    return duplicate.eval()


def state_derivatives(
    stack: LayerStack,
    inputs: Tensor,
    readout_loss: Callable[[Tensor, Tensor], Tensor],
    dtype: torch.dtype = torch.float64,
    lengths: Tensor | None = None,
) -> list[dict[str, Tensor]]:
    """Per layer-direction (ordered ``l * D + d``), state name -> ``dl/ds`` ``(B, T, H)`` in processing order
    (with ``lengths``, each sequence's own: see :meth:`LayerStack.unroll`; padded steps hold the state).

    ``readout_loss(output, h_n)`` returns a scalar, one loss per output position summed over the batch ``(T,)``,
    or one per sequence and position ``(B, T)``; then each direction gets the loss at the position it reaches
    last (see the module docstring), in each sequence of ``lengths`` its own.
    """
    readout_dtype = next(stack.parameters()).dtype
    duplicate = _copy_in(stack, dtype)
    directions, names = stack.num_directions, stack.state_names
    with torch.enable_grad():
        # inputs requiring grad make every state a graph node, whatever the cell computes
        run = duplicate.unroll(inputs.detach().to(dtype).requires_grad_(), lengths)
        loss = readout_loss(run.output.to(readout_dtype), run.final[0].to(readout_dtype))
        if loss.dim() == 0:
            groups = [(loss, list(range(len(run.states))))]
        else:
            if loss.dim() == 1:
                reached_last = (loss[-1], loss[0])
            else:  # (B, T): each sequence's own last position, and position 1
                last = (lengths.to(loss.device) - 1 if lengths is not None
                        else torch.full((loss.shape[0],), loss.shape[1] - 1, device=loss.device))
                reached_last = (loss.gather(1, last[:, None]).sum(), loss[:, 0].sum())
            groups = [(reached_last[d], [i for i in range(len(run.states)) if i % directions == d])
                      for d in range(directions)]
        derivatives: list[dict[str, Tensor]] = [{} for _ in run.states]
        for number, (target, members) in enumerate(groups):
            nodes = [state[j] for i in members for state in run.states[i] for j in range(len(names))]
            # autograd.grad, unlike backward(), leaves every .grad untouched (the head's included)
            gradients = iter(torch.autograd.grad(target, nodes, allow_unused=True, materialize_grads=True,
                                                 retain_graph=number < len(groups) - 1))
            for i in members:
                per_step = [[next(gradients) for _ in names] for _ in run.states[i]]
                derivatives[i] = {name: torch.stack([step[j] for step in per_step], dim=1)
                                  for j, name in enumerate(names)}
    return derivatives


def aligned_to_loss(norms: Tensor, lengths: Tensor | None) -> Tensor:
    """``(B, T)`` per-sequence norms in processing order -> ``(T,)``: at ``k = T - 1 - d`` the mean over the
    sequences with a step at distance ``d`` from their own last one (all of them without ``lengths``)."""
    if lengths is None:
        return norms.mean(dim=0)
    steps = norms.shape[1]
    source = torch.arange(steps, device=norms.device) - (steps - lengths.to(norms.device))[:, None]  # (B, T)
    present = source >= 0
    shifted = norms.gather(1, source.clamp(min=0)) * present
    return shifted.sum(dim=0) / present.sum(dim=0)


def gradient_through_time(
    stack: LayerStack,
    inputs: Tensor,
    readout_loss: Callable[[Tensor, Tensor], Tensor],
    dtype: torch.dtype = torch.float64,
    lengths: Tensor | None = None,
) -> GradientThroughTime:
    """Exact total gradient norms of a loss w.r.t. every state of ``stack``.

    The stack is evaluated without dropout on a copy of its cells in ``dtype``; its parameters, their
    ``.grad`` and its training mode are left unchanged, as are the ``.grad`` of anything
    ``readout_loss`` uses. States start at the cells' ``initial_state``.

    Args:
        stack: any layer stack, any cell, layers and directions.
        inputs: ``(B, T, I)``, what the model feeds the stack; its device is used throughout.
        readout_loss: ``readout_loss(output, h_n)`` with ``output`` ``(B, T, D*H)`` and ``h_n``
            ``(L*D, B, H)`` as the stack returns them, cast to the stack's own dtype; returns the sum over
            the batch of per-sample losses, a scalar, or per output position ``(T,)``.
        dtype: dtype of the recurrence and its gradients; float64 keeps gradients of 1e-30 representable.
        lengths: None, or (B,) each sequence's own number of steps (``inputs`` padded after them); the curves
            are then aligned at each sequence's own loss position (see the module docstring).

    Returns:
        A :class:`GradientThroughTime` with ``(L, D, T)`` norms for every state.
    """
    derivatives = state_derivatives(stack, inputs, readout_loss, dtype, lengths)
    shape = (stack.num_layers, stack.num_directions, -1)
    return GradientThroughTime(states={
        name: torch.stack([aligned_to_loss(_per_sample_norm(d[name]), lengths) for d in derivatives])
        .reshape(shape).to(torch.float64)
        for name in stack.state_names})
