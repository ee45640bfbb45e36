"""Minimal recurrent cells whose gates read only the input (Feng et al. 2024, "Were RNNs All We
Needed?"): the recurrence is elementwise, so it is cheap per step and could run as a parallel scan."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnbench.models.cells.base import Cell, Gates, State, uniform_init


class _InputGated(Cell):
    """Shared by the minimal cells: ``weight_ih`` (blocks*H, I) and ``bias_ih`` (blocks*H,), no recurrent weights."""

    blocks = 1

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size)
        self.weight_ih = nn.Parameter(torch.empty(self.blocks * hidden_size, input_size))
        self.bias_ih = nn.Parameter(torch.empty(self.blocks * hidden_size))
        uniform_init(self)

    def project_input(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight_ih, self.bias_ih)


class MinGRU(_InputGated):
    r"""minGRU (Feng et al. 2024, sequential mode), registered as ``mingru``:

    .. math::
        z_t = \sigma(W_z x_t + b_z),\quad \tilde h_t = W_h x_t + b_h,\quad
        h_t = (1 - z_t) \odot h_{t-1} + z_t \odot \tilde h_t

    Gates: ``update`` (z). Parameters: ``weight_ih`` (2H, I), ``bias_ih`` (2H,), blocks z, h̃.

    A deviation from Feng et al., stated: the candidate is the plain linear map :math:`\tilde h_t = W_h x_t + b_h`;
    the paper's log-space version passes it through :math:`g(x) = x + 0.5` for :math:`x \ge 0`,
    :math:`\sigma(x)` otherwise, which keeps h positive for the log-space parallel scan. This cell omits g
    (and has no parallel scan): h may be negative.
    """

    blocks = 2

    def step_projected(self, p_t: Tensor, state: State) -> tuple[State, Gates]:
        x_z, candidate = p_t.chunk(2, dim=-1)
        z = torch.sigmoid(x_z)
        return ((1 - z) * state[0] + z * candidate,), {"update": z}


class MinLSTM(_InputGated):
    r"""minLSTM (Feng et al. 2024, sequential mode), registered as ``minlstm``:

    .. math::
        f_t = \sigma(W_f x_t + b_f),\ i_t = \sigma(W_i x_t + b_i),\ \tilde h_t = W_h x_t + b_h,\\
        f'_t = \frac{f_t}{f_t + i_t},\ i'_t = \frac{i_t}{f_t + i_t},\quad
        h_t = f'_t \odot h_{t-1} + i'_t \odot \tilde h_t

    Gates: ``forget`` (f'), ``input`` (i'), the normalised ones. Parameters: ``weight_ih`` (3H, I),
    ``bias_ih`` (3H,), blocks f, i, h̃.

    A deviation from Feng et al., stated: the candidate is the plain linear map :math:`\tilde h_t = W_h x_t + b_h`;
    the paper's log-space version passes it through :math:`g(x) = x + 0.5` for :math:`x \ge 0`,
    :math:`\sigma(x)` otherwise, which keeps h positive for the log-space parallel scan. This cell omits g
    (and has no parallel scan): h may be negative.
    """

    blocks = 3

    def step_projected(self, p_t: Tensor, state: State) -> tuple[State, Gates]:
        x_f, x_i, candidate = p_t.chunk(3, dim=-1)
        f, i = torch.sigmoid(x_f), torch.sigmoid(x_i)
        total = f + i
        f, i = f / total, i / total
        return (f * state[0] + i * candidate,), {"forget": f, "input": i}
