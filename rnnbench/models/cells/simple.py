"""Ungated cells: Elman's RNN (PyTorch's ``nn.RNN``) and the independently recurrent IndRNN."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnbench.errors import require
from rnnbench.models.cells.base import Cell, Gates, State, pytorch_layout, uniform_init

NONLINEARITIES = {"tanh": torch.tanh, "relu": torch.relu}


def _nonlinearity(nonlinearity: str):
    require(nonlinearity in NONLINEARITIES, "nonlinearity", nonlinearity, f"one of {', '.join(NONLINEARITIES)}")
    return NONLINEARITIES[nonlinearity]


class ElmanRNN(Cell):
    r"""The simple recurrent cell, PyTorch's ``nn.RNN`` (registered as ``rnn``):

    .. math::
        h_t = \phi(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}),\quad \phi = \tanh \text{ or ReLU}

    Args:
        nonlinearity: ``tanh`` (default) or ``relu`` (``model.nonlinearity``).

    Parameters: ``weight_ih`` (H, I), ``weight_hh`` (H, H), ``bias_ih`` (H,), ``bias_hh`` (H,).
    Fused twin: ``torch.rnn_tanh`` / ``torch.rnn_relu``.
    """

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "tanh"):
        super().__init__(input_size, hidden_size)
        self.activation = _nonlinearity(nonlinearity)
        self.nonlinearity = nonlinearity
        pytorch_layout(self, blocks=1)

    def project_input(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight_ih, self.bias_ih)

    def step_projected(self, p_t: Tensor, state: State) -> tuple[State, Gates]:
        return (self.activation(p_t + F.linear(state[0], self.weight_hh, self.bias_hh)),), {}

    def fused_kind(self) -> str | None:
        return f"rnn_{self.nonlinearity}" if type(self) is ElmanRNN else None


class IndRNN(Cell):
    r"""Independently recurrent cell (Li et al. 2018, "Independently Recurrent Neural Network"),
    registered as ``indrnn``: each unit sees only its own past,

    .. math::
        h_t = \phi(W_{ih} x_t + b_{ih} + u \odot h_{t-1}),\quad \phi = \text{ReLU (default) or } \tanh

    Args:
        nonlinearity: ``relu`` (default, as in the paper) or ``tanh``.

    Parameters: ``weight_ih`` (H, I) and ``bias_ih`` (H,) uniform in ±1/sqrt(H); the recurrent
    weight ``weight_hh`` is a vector u (H,), initialised uniform in [0, 1] (so that |u| <= 1 and no unit
    explodes at initialisation); no recurrent bias.

    A deviation from the authors' code, stated: ours initialises u from U(0, 1) whatever the sequence length
    and does not constrain it during training (no clipping or clamping of u after an update, so the optimizer
    may take u above 1 or below 0), which differs from how the authors' code initialises and constrains u
    (their scheme is not restated here). ``model.recurrent_init=identity`` sets u to 1 instead.
    """

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "relu"):
        super().__init__(input_size, hidden_size)
        self.activation = _nonlinearity(nonlinearity)
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(hidden_size))
        uniform_init(self, self.weight_ih, self.bias_ih)
        with torch.no_grad():
            self.weight_hh.uniform_(0.0, 1.0)

    def project_input(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight_ih, self.bias_ih)

    def step_projected(self, p_t: Tensor, state: State) -> tuple[State, Gates]:
        return (self.activation(p_t + self.weight_hh * state[0]),), {}
