r"""The LSTM and the eight variants of Greff et al. (2015, "LSTM: A Search Space Odyssey", IEEE TNNLS
2017), each a few lines over one shared definition.

Greff's vanilla LSTM (V, ``lstm_peephole``), with block input z, gates i, f, o, peepholes p:

.. math::
    z_t &= g(W_z x_t + R_z h_{t-1} + b_z) \\
    i_t &= \sigma(W_i x_t + R_i h_{t-1} + p_i \odot c_{t-1} + b_i) \\
    f_t &= \sigma(W_f x_t + R_f h_{t-1} + p_f \odot c_{t-1} + b_f) \\
    c_t &= i_t \odot z_t + f_t \odot c_{t-1} \\
    o_t &= \sigma(W_o x_t + R_o h_{t-1} + p_o \odot c_t + b_o) \\
    h_t &= o_t \odot \phi(c_t), \qquad g = \phi = \tanh

Each variant changes one thing: NIG ``i_t = 1``, NFG ``f_t = 1``, NOG ``o_t = 1``, NIAF ``g(x) = x``,
NOAF ``φ(x) = x``, NP no peepholes (PyTorch's ``nn.LSTM``, registered as ``lstm``), CIFG
``f_t = 1 - i_t``, FGR every gate also reads all three gates of the previous step
(``+ R_{*i} i_{t-1} + R_{*f} f_{t-1} + R_{*o} o_{t-1}``).

Parameters, in PyTorch's layout: ``weight_ih`` (n*H, I), ``weight_hh`` (n*H, H), ``bias_ih``,
``bias_hh`` (n*H,) for the n blocks a variant has, in the order input, forget, cell (z), output
(PyTorch's i, f, g, o); peepholes ``weight_ch`` (m*H,) for its m peephole gates; FGR's gate
recurrence ``weight_gg`` (3H, 3H). All start uniform in ±1/sqrt(H), as PyTorch initialises.
Gates reported: those the variant has among ``input``, ``forget`` (CIFG: 1 - i) and ``output``.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnbench.errors import ConfigError
from rnnbench.models.cells.base import Cell, Gates, State, pytorch_layout, uniform_init

BLOCKS = ("input", "forget", "cell", "output")  # PyTorch's order: i, f, g, o
GATES = ("input", "forget", "output")


class LSTM(Cell):
    r"""PyTorch's LSTM (``nn.LSTM``; Greff's NP, no peepholes), registered as ``lstm``:

    .. math::
        i_t &= \sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi}) \\
        f_t &= \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf}) \\
        g_t &= \tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}) \\
        o_t &= \sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho}) \\
        c_t &= f_t \odot c_{t-1} + i_t \odot g_t, \qquad h_t = o_t \odot \tanh(c_t)

    States ``h``, ``c``; gates ``input``, ``forget``, ``output``. Fused twin: ``torch.lstm``.
    The class attributes below are what Greff's variants change (see the module docstring).
    """

    state_names: ClassVar[tuple[str, ...]] = ("h", "c")
    input_gate: ClassVar[bool] = True
    forget_gate: ClassVar[bool] = True
    output_gate: ClassVar[bool] = True
    coupled_input_forget: ClassVar[bool] = False  # CIFG: f = 1 - i (no forget block of its own)
    input_activation: ClassVar[bool] = True       # g = tanh, else the identity
    output_activation: ClassVar[bool] = True      # φ = tanh, else the identity
    peepholes: ClassVar[bool] = False
    gate_recurrence: ClassVar[bool] = False       # FGR

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size)
        present = {"input": self.input_gate, "forget": self.forget_gate and not self.coupled_input_forget,
                   "cell": True, "output": self.output_gate}
        self.blocks = tuple(name for name in BLOCKS if present[name])
        pytorch_layout(self, blocks=len(self.blocks))
        self.peephole_gates = tuple(g for g in GATES if g in self.blocks) if self.peepholes else ()
        if self.peephole_gates:
            self.weight_ch = nn.Parameter(torch.empty(len(self.peephole_gates) * hidden_size))
            uniform_init(self, self.weight_ch)
        if self.gate_recurrence:
            self.weight_gg = nn.Parameter(torch.empty(3 * hidden_size, 3 * hidden_size))
            uniform_init(self, self.weight_gg)

    def project_input(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight_ih, self.bias_ih)

    def step_projected(self, p_t: Tensor, state: State) -> tuple[State, Gates]:
        h, c = state[0], state[1]
        pre = dict(zip(self.blocks, (p_t + F.linear(h, self.weight_hh, self.bias_hh)).chunk(len(self.blocks), -1)))
        if self.gate_recurrence:  # the previous step's gates, kept as states i, f, o
            for name, term in zip(GATES, F.linear(torch.cat(state[2:], -1), self.weight_gg).chunk(3, -1)):
                pre[name] = pre[name] + term
        peephole = dict(zip(self.peephole_gates, self.weight_ch.chunk(len(self.peephole_gates))
                            if self.peephole_gates else ()))

        def gate(name: str, cell: Tensor) -> Tensor | None:
            if name not in pre:
                return None
            return torch.sigmoid(pre[name] + peephole[name] * cell if name in peephole else pre[name])

        i = gate("input", c)
        f = 1 - i if self.coupled_input_forget else gate("forget", c)
        z = torch.tanh(pre["cell"]) if self.input_activation else pre["cell"]
        c = (c if f is None else f * c) + (z if i is None else i * z)
        o = gate("output", c)
        y = torch.tanh(c) if self.output_activation else c
        h = y if o is None else o * y
        gates = {name: value for name, value in zip(GATES, (i, f, o)) if value is not None}
        if self.gate_recurrence:
            return (h, c, i, f, o), gates
        return (h, c), gates

    def fused_kind(self) -> str | None:
        return "lstm" if type(self) is LSTM else None

    @torch.no_grad()
    def set_forget_bias(self, value: float) -> None:
        """Set the forget gate's total bias (``bias_ih`` + ``bias_hh``) to ``value``: all of it in
        ``bias_ih``, 0 in ``bias_hh`` (Gers et al. 2000; Jozefowicz et al. 2015)."""
        if "forget" not in self.blocks:
            raise ConfigError("forget_bias", value, f"null for {type(self).__name__}, which has no forget gate "
                                                    "of its own")
        index = self.blocks.index("forget")
        self.bias_ih.chunk(len(self.blocks))[index].fill_(value)
        self.bias_hh.chunk(len(self.blocks))[index].fill_(0.0)


class LSTMPeephole(LSTM):
    """V: Greff's vanilla LSTM, with peepholes from the cell to each gate (``lstm_peephole``)."""

    peepholes = True


class LSTMNoInputGate(LSTMPeephole):
    """NIG: no input gate, ``i_t = 1`` (``lstm_nig``)."""

    input_gate = False


class LSTMNoForgetGate(LSTMPeephole):
    """NFG: no forget gate, ``f_t = 1`` (``lstm_nfg``)."""

    forget_gate = False


class LSTMNoOutputGate(LSTMPeephole):
    """NOG: no output gate, ``o_t = 1`` (``lstm_nog``)."""

    output_gate = False


class LSTMNoInputActivation(LSTMPeephole):
    """NIAF: no input activation function, ``g(x) = x`` (``lstm_niaf``)."""

    input_activation = False


class LSTMNoOutputActivation(LSTMPeephole):
    """NOAF: no output activation function, ``φ(x) = x`` (``lstm_noaf``)."""

    output_activation = False


class LSTMCoupledGates(LSTMPeephole):
    """CIFG: coupled input and forget gate, ``f_t = 1 - i_t`` (``lstm_cifg``; the GRU's trick)."""

    coupled_input_forget = True


class LSTMFullGateRecurrence(LSTMPeephole):
    """FGR: full gate recurrence, every gate reads all gates of the previous step (``lstm_fgr``).
    The previous gates are states ``i``, ``f``, ``o`` (zeros before the first step)."""

    gate_recurrence = True
    state_names = ("h", "c", "i", "f", "o")
