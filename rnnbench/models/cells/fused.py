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
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

KERNELS = {"lstm": torch.lstm, "gru": torch.gru, "rnn_tanh": torch.rnn_tanh, "rnn_relu": torch.rnn_relu}


def fused_forward(kind: str, inputs: Tensor, weights: list[Tensor], num_layers: int, bidirectional: bool,
                  dropout: float, training: bool, lengths: Tensor | None = None) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Run a whole stack in one kernel call.

    Args:
        kind: ``lstm``, ``gru``, ``rnn_tanh`` or ``rnn_relu``.
        inputs: (B, T, I), batch first.
        weights: per layer, then per direction: ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``.
        dropout: applied to the outputs of every layer but the last, when ``training``.
        lengths: None, or (B,) int64: sequence ``b`` is its first ``lengths[b]`` steps, the rest padding; the
            kernel then reads a ``pack_padded_sequence`` (as ``nn.LSTM`` does with one).

    Returns:
        ``(output, final)``: output (B, T, D*H), zeros at padding; final, one (L*D, B, H) tensor per state (h,
        and c for lstm), starting from zero states, each sequence's after its own last step.
    """
    directions = 2 if bidirectional else 1
    hidden_size = weights[1].shape[1]
    zeros = inputs.new_zeros(num_layers * directions, inputs.shape[0], hidden_size)
    hx = (zeros, zeros) if kind == "lstm" else zeros
    with warnings.catch_warnings():
        # cuDNN copies separately allocated weights into one buffer per call, and says so.
        warnings.filterwarnings("ignore", ".*not part of single contiguous chunk of memory.*")
        if lengths is None:
            output, *final = KERNELS[kind](inputs, hx, weights, True, num_layers, dropout, training, bidirectional,
                                           True)
            return output, tuple(final)
        packed = pack_padded_sequence(inputs, lengths.cpu(), batch_first=True, enforce_sorted=False)
        data, *final = KERNELS[kind](packed.data, packed.batch_sizes, hx, weights, True, num_layers, dropout,
                                     training, bidirectional)
    output, _ = pad_packed_sequence(PackedSequence(data, packed.batch_sizes, packed.sorted_indices,
                                                   packed.unsorted_indices), batch_first=True,
                                    total_length=inputs.shape[1])
    # the kernel saw the batch sorted by length: its final states come back in that order
    return output, tuple(state.index_select(1, packed.unsorted_indices) for state in final)
