"""Recurrent cells: the :class:`Cell` protocol, one module per family, and a registry by name.

- ``base``: the protocol (``state_names``, ``step``; optional speed hooks) and its check.
- ``simple``: ``rnn`` (Elman, PyTorch's ``nn.RNN``), ``indrnn``.
- ``lstm``: ``lstm`` (PyTorch's ``nn.LSTM``) and Greff et al.'s variants ``lstm_peephole`` (V),
  ``lstm_nig``, ``lstm_nfg``, ``lstm_nog``, ``lstm_niaf``, ``lstm_noaf``, ``lstm_cifg``, ``lstm_fgr``.
- ``gru``: ``gru`` (PyTorch's ``nn.GRU``), ``mgu``.
- ``minimal``: ``mingru``, ``minlstm``.
- ``fused``: the PyTorch kernels that run ``rnn``, ``lstm`` and ``gru`` stacks in one call.
- ``registry``: ``CELLS`` and :func:`resolve_cell` (names and dotted paths to users' cells).
"""

from rnnbench.models.cells.base import Cell, Gates, State, protocol_problem, pytorch_layout, uniform_init
from rnnbench.models.cells.registry import CELLS, resolve_cell

__all__ = ["CELLS", "Cell", "Gates", "State", "protocol_problem", "pytorch_layout", "resolve_cell", "uniform_init"]
