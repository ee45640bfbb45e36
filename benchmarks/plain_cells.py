"""Cells for the cell-speed benchmark (``python -m benchmarks.throughput --suite cells``), importable as
``model.cell=benchmarks.plain_cells.NAME`` from the repository root."""

from __future__ import annotations

import torch
from torch import nn

from rnnbench.models.cells import Cell
from rnnbench.models.cells.lstm import LSTM


class PlainLSTM(Cell):
    """PyTorch's LSTM equations written as a user writes a cell: ``step`` only, no speed hooks."""

    state_names = ("h", "c")

    def __init__(self, input_size, hidden_size):
        super().__init__(input_size, hidden_size)
        self.gates_x = nn.Linear(input_size, 4 * hidden_size)
        self.gates_h = nn.Linear(hidden_size, 4 * hidden_size)

    def step(self, x_t, state):
        h, c = state
        i, f, g, o = (self.gates_x(x_t) + self.gates_h(h)).chunk(4, dim=-1)
        i, f, o = torch.sigmoid(i), torch.sigmoid(f), torch.sigmoid(o)
        c = f * c + i * torch.tanh(g)
        return (o * torch.tanh(c), c), {"input": i, "forget": f, "output": o}


class ProjectedLSTM(LSTM):
    """The built-in ``lstm`` run step by step: its batched input projection (``project_input``) and recurrence
    (``step_projected``) without the fused twin (a subclass never gets one)."""
