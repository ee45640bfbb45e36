"""Initialisation options for any cell's recurrent weights, the ones studies of gradient flow sweep.

They act on what every cell may have, by name: its recurrent matrix ``weight_hh`` ((k*H, H): k gate
blocks of (H, H), PyTorch's layout; a vector (H,) for IndRNN's diagonal recurrence) and, for cells with a
forget gate, :meth:`set_forget_bias`.
"""

from __future__ import annotations

import torch
from torch import nn

from rnnbench.errors import ConfigError
from rnnbench.models.stack import LayerStack

RECURRENT_INITS = ("default", "orthogonal", "identity")


@torch.no_grad()
def init_recurrent(stack: LayerStack, kind: str) -> None:
    """Re-initialise every cell's ``weight_hh``:

    - ``orthogonal``: each (H, H) block an independent random orthogonal matrix: all singular values 1,
      so a linear recurrence neither shrinks nor grows the gradient (Saxe et al. 2014; Arjovsky et al. 2016).
    - ``identity``: each block the identity (a diagonal recurrence: all ones) and every bias of the cell
      zero: Le et al. (2015)'s IRNN with ``cell=rnn nonlinearity=relu``.
    - ``default``: the cell's own initialisation.
    """
    if kind not in RECURRENT_INITS:
        raise ConfigError("recurrent_init", kind, f"one of {', '.join(RECURRENT_INITS)}")
    if kind == "default":
        return
    for _, _, cell in stack.layer_cells():
        weight = getattr(cell, "weight_hh", None)
        hidden = cell.hidden_size
        matrix = isinstance(weight, nn.Parameter) and weight.dim() == 2 and weight.shape[1] == hidden \
            and weight.shape[0] % hidden == 0
        diagonal = isinstance(weight, nn.Parameter) and tuple(weight.shape) == (hidden,)
        if not (matrix or (diagonal and kind == "identity")):
            raise ConfigError("recurrent_init", kind, f"default for cell {stack.cell_name}: it has no recurrent "
                              f"weight_hh of (k*H, H) gate blocks" + (" (its weight_hh is a vector)" if diagonal else ""))
        if diagonal:
            weight.fill_(1.0)
        for block in (weight.chunk(weight.shape[0] // hidden, dim=0) if matrix else ()):
            if kind == "orthogonal":
                nn.init.orthogonal_(block)
            else:
                block.copy_(torch.eye(hidden))
        if kind == "identity":
            for name, parameter in cell.named_parameters():
                if name.startswith("bias"):
                    parameter.zero_()


def set_forget_bias(stack: LayerStack, value: float) -> None:
    """Set the total forget-gate bias of every cell to ``value`` (cells without a forget gate refuse)."""
    for _, _, cell in stack.layer_cells():
        setter = getattr(cell, "set_forget_bias", None)
        if setter is None:
            raise ConfigError("forget_bias", value, f"null for cell {stack.cell_name} (it has no forget gate "
                                                    "to bias; the LSTM family has)")
        setter(float(value))
