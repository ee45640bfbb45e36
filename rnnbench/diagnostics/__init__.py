"""Diagnostics: Lightning callbacks that measure how gradients travel through time and layers.

- :class:`GradientNormMonitor`: weight-gradient norms before/after clipping, clip rate, spikes, non-finite.
- :class:`GradientFlowProbe`: the exact vanishing-gradient curve ||dl_T/dh_t|| per layer and direction.
- :class:`GateMonitor`: gate means and saturation, saturated and dead hidden units.

They see the model only through its layer stack (``pl_module.model.stack``: the cells, their ``step``
and parameters), its ``encode``/``readout`` and its task, never a concrete cell class, so every cell,
a user's included, gets every instrument. Each callback's math is in ``measures/`` under the same name.
"""

from rnnbench.diagnostics.gates import GateMonitor
from rnnbench.diagnostics.gradient_flow import GradientFlowProbe
from rnnbench.diagnostics.gradient_norms import GradientNormMonitor

__all__ = ["GateMonitor", "GradientFlowProbe", "GradientNormMonitor"]
