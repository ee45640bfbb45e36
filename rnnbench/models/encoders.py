"""Input encoders: from a task's raw inputs to the (B, T, features) sequence the recurrent core reads."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from rnnbench.data.task import Task


class OneHot(nn.Module):
    """Token ids (B, T) int64 -> one-hot vectors (B, T, vocab_size) float, as d2l's RNNs read characters."""

    def __init__(self, vocab_size: int):
        super().__init__()
        self.vocab_size = vocab_size

    def forward(self, tokens: Tensor) -> Tensor:
        return F.one_hot(tokens, self.vocab_size).float()


def build_encoder(task: Task, embedding_size: int | None) -> tuple[nn.Module, int]:
    """Return the encoder for ``task`` and the feature size it produces.

    ``embedding_size=None`` feeds the inputs as they are (one-hot for tokens); an integer learns an
    embedding (tokens) or a linear projection (real inputs) of that size.
    """
    if embedding_size is None:
        if task.input_kind == "tokens":
            return OneHot(task.input_size), task.input_size
        return nn.Identity(), task.input_size
    if task.input_kind == "tokens":
        return nn.Embedding(task.input_size, embedding_size), embedding_size
    return nn.Linear(task.input_size, embedding_size), embedding_size
