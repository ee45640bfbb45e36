"""Initialisation options for the recurrent core, the ones studies of gradient flow sweep."""

from __future__ import annotations

import torch
from torch import nn

GATES = {nn.RNN: 1, nn.LSTM: 4, nn.GRU: 3}  # gate blocks stacked in weight_hh, in PyTorch's order
LSTM_FORGET_GATE = 1  # LSTM blocks are (input, forget, cell, output)


def layer_parameters(rnn: nn.RNNBase, kind: str) -> list[nn.Parameter]:
    """Every layer's and direction's parameter of one kind (``weight_hh``, ``bias_ih``, ...)."""
    return [p for name, p in rnn.named_parameters() if name.startswith(kind + "_l")]


@torch.no_grad()
def orthogonal_recurrent(rnn: nn.RNNBase) -> None:
    """Make each gate's (H, H) block of every ``weight_hh`` an independent random orthogonal matrix.

    An orthogonal ``W_hh`` has all singular values 1, so a linear recurrence neither shrinks nor
    grows the gradient (Saxe et al. 2014; Arjovsky et al. 2016).
    """
    for weight in layer_parameters(rnn, "weight_hh"):
        for block in weight.chunk(GATES[type(rnn)], dim=0):
            nn.init.orthogonal_(block)


@torch.no_grad()
def set_forget_bias(lstm: nn.LSTM, value: float) -> None:
    """Set the forget gate's total bias (``bias_ih`` + ``bias_hh`` forget slices) to ``value``.

    The whole value goes to ``bias_ih`` and ``bias_hh``'s slice becomes 0, so the total is exact.
    A positive bias keeps f near 1 at initialisation and the cell state's gradient alive
    (Gers et al. 2000; Jozefowicz et al. 2015).
    """
    if not lstm.bias:
        return
    for kind, fill in (("bias_ih", value), ("bias_hh", 0.0)):
        for bias in layer_parameters(lstm, kind):
            bias.chunk(4)[LSTM_FORGET_GATE].fill_(fill)
