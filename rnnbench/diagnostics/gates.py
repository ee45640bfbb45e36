"""Gate statistics on the probe batch for any cell: means and saturation per gate, saturated and dead hidden units."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from torch import Tensor

from rnnbench.diagnostics.base import Probe, log_scalars, layer_stack
from rnnbench.diagnostics.measures.gates import gate_statistics
from rnnbench.errors import require
from rnnbench.record.schema import Record


class GateMonitor(Probe):
    """Mean of each gate the cell's ``step`` reports (LSTM input/forget/output, GRU reset/update, ...)
    and the fraction of its activations below ``saturation`` or above 1 - ``saturation``; for every
    cell, gated or not, the fraction of hidden values with ``|h| >= 1 - saturation`` (tanh units in
    their saturating regime) and of units that are 0 throughout (dead ReLU units). Logged as
    ``gates/layer<l>/<direction>/<gate>_mean``, ``..._saturated``, ``.../h_saturated``, ``.../h_dead``; the
    record keeps the last probe's values and the first probe's (initialisation) as ``<key>_first``.
    Variable-length data: over every sequence's real steps only.
    """

    def __init__(self, every_n_steps: int = 100, probe_size: int = 32, saturation: float = 0.05):
        super().__init__(every_n_steps, probe_size)
        require(isinstance(saturation, float) and 0 < saturation < 0.5, "saturation", saturation,
                "a number in (0, 0.5)")
        self.saturation = saturation
        self.first: list[dict[str, Any]] = []  # at the first probe: initialisation
        self.last: list[dict[str, Any]] = []
        self.checkpointed = (*self.checkpointed, "first", "last")

    def probe(self, trainer: pl.Trainer, pl_module: pl.LightningModule, encoded: Tensor, targets: Tensor,
              step: int, lengths: Tensor | None = None) -> None:
        self.last = gate_statistics(layer_stack(pl_module), encoded, self.saturation, lengths)
        if not self.first:
            self.first = self.last
        metrics = {f"gates/layer{row['layer']}/{row['direction']}/{key}": value
                   for row in self.last for key, value in row.items() if key not in ("layer", "direction")}
        if metrics:
            log_scalars(trainer, metrics, step)

    def record_into(self, record: Record) -> None:
        """Per layer-direction, the last probe's statistics and the first probe's (initialisation) as ``<key>_first``."""
        if not self.last:
            record.gates = None
            return
        record.gates = [{**last, **{f"{key}_first": value for key, value in first.items()
                                    if key not in ("layer", "direction")}}
                        for first, last in zip(self.first or self.last, self.last)]
