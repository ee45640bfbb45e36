"""Gated recurrent units: PyTorch's GRU and the minimal gated unit (MGU)."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from rnnbench.models.cells.base import Cell, Gates, State, pytorch_layout


class GRU(Cell):
    r"""The gated recurrent unit with PyTorch's equations (``nn.GRU``; Cho et al. 2014), registered as ``gru``:

    .. math::
        r_t &= \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}) \\
        z_t &= \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) \\
        n_t &= \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn})) \\
        h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}

    Gates: ``reset`` (r), ``update`` (z). Parameters: ``weight_ih`` (3H, I), ``weight_hh`` (3H, H),
    ``bias_ih``, ``bias_hh`` (3H,), blocks in the order r, z, n. Fused twin: ``torch.gru``.

    A deviation from Cho et al. (2014), stated: this is PyTorch's variant, whose reset gate is applied *after*
    the recurrent matrix product, :math:`r_t \odot (W_{hn} h_{t-1} + b_{hn})`; Cho et al.'s GRU applies it to
    the state *before* the product, :math:`\tanh(W x_t + U (r_t \odot h_{t-1}))`. The two are different
    functions of the same parameters (no option here gives Cho et al.'s).
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size)
        pytorch_layout(self, blocks=3)

    def project_input(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight_ih, self.bias_ih)

    def step_projected(self, p_t: Tensor, state: State) -> tuple[State, Gates]:
        h = state[0]
        x_r, x_z, x_n = p_t.chunk(3, dim=-1)
        h_r, h_z, h_n = F.linear(h, self.weight_hh, self.bias_hh).chunk(3, dim=-1)
        r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        return ((1 - z) * n + z * h,), {"reset": r, "update": z}

    def fused_kind(self) -> str | None:
        return "gru" if type(self) is GRU else None


class MGU(Cell):
    r"""The minimal gated unit (Zhou et al. 2016, "Minimal Gated Unit for Recurrent Neural
    Networks"), registered as ``mgu``: one forget gate does the work of the GRU's two,

    .. math::
        f_t &= \sigma(W_{if} x_t + b_f + W_{hf} h_{t-1}) \\
        \tilde h_t &= \tanh(W_{ih} x_t + b_h + W_{hh} (f_t \odot h_{t-1})) \\
        h_t &= (1 - f_t) \odot h_{t-1} + f_t \odot \tilde h_t

    Gates: ``forget`` (f). Parameters: ``weight_ih`` (2H, I), ``weight_hh`` (2H, H), ``bias_ih`` (2H,),
    blocks in the order f, h̃.
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size)
        pytorch_layout(self, blocks=2, recurrent_bias=False)

    def project_input(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight_ih, self.bias_ih)

    def step_projected(self, p_t: Tensor, state: State) -> tuple[State, Gates]:
        h = state[0]
        x_f, x_h = p_t.chunk(2, dim=-1)
        w_f, w_h = self.weight_hh.chunk(2, dim=0)
        f = torch.sigmoid(x_f + F.linear(h, w_f))
        candidate = torch.tanh(x_h + F.linear(f * h, w_h))
        return ((1 - f) * h + f * candidate,), {"forget": f}
