"""The fused twins of the built-in cells: PyTorch's multi-layer recurrent kernels, called on the cells'
own parameters.

``torch.lstm``, ``torch.gru``, ``torch.rnn_tanh`` and ``torch.rnn_relu`` are the ATen operators behind
``nn.LSTM``, ``nn.GRU`` and ``nn.RNN`` (which call them through ``torch._VF``); they take the weights as a
flat list, so the cells keep their parameters and the whole stack runs in one kernel call (cuDNN on a
GPU). ``tests/test_cells.py`` pins this function to ``nn.LSTM``/``nn.GRU``/``nn.RNN`` and to the cells'
step loops.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

KERNELS = {"lstm": torch.lstm, "gru": torch.gru, "rnn_tanh": torch.rnn_tanh, "rnn_relu": torch.rnn_relu}


def fused_forward(kind: str, inputs: Tensor, weights: list[Tensor], num_layers: int, bidirectional: bool,
                  dropout: float, training: bool) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Run a whole stack in one kernel call.

    Args:
        kind: ``lstm``, ``gru``, ``rnn_tanh`` or ``rnn_relu``.
        inputs: (B, T, I), batch first.
        weights: per layer, then per direction: ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``.
        dropout: applied to the outputs of every layer but the last, when ``training``.

    Returns:
        ``(output, final)``: output (B, T, D*H); final, one (L*D, B, H) tensor per state (h, and c for lstm),
        starting from zero states.
    """
    directions = 2 if bidirectional else 1
    hidden_size = weights[1].shape[1]
    zeros = inputs.new_zeros(num_layers * directions, inputs.shape[0], hidden_size)
    with warnings.catch_warnings():
        # cuDNN copies separately allocated weights into one buffer per call, and says so.
        warnings.filterwarnings("ignore", ".*not part of single contiguous chunk of memory.*")
        if kind == "lstm":
            output, h_n, c_n = torch.lstm(inputs, (zeros, zeros), weights, True, num_layers, dropout, training,
                                          bidirectional, True)
            return output, (h_n, c_n)
        output, h_n = KERNELS[kind](inputs, zeros, weights, True, num_layers, dropout, training, bidirectional, True)
    return output, (h_n,)
