"""Diagnostics: Lightning callbacks that measure how gradients travel through time and layers.

- :class:`GradientNormMonitor`: weight-gradient norms before/after clipping, clip rate, spikes, non-finite.
- :class:`GradientFlowProbe`: the exact vanishing-gradient curve ||dl_T/dh_t|| per layer and direction.
- :class:`GateMonitor`: LSTM/GRU gate means and saturation.

They see the model only through ``pl_module.model.rnn`` (a fused nn.RNN/LSTM/GRU), its
``encode``/``readout`` and its task, so every cell type gets every instrument.
"""

from rnnbench.diagnostics.gate_monitor import GateMonitor
from rnnbench.diagnostics.gradient_flow import GradientFlowProbe
from rnnbench.diagnostics.gradient_norms import GradientNormMonitor

__all__ = ["GateMonitor", "GradientFlowProbe", "GradientNormMonitor"]
