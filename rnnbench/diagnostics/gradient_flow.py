"""The vanishing-gradient curve: exact ||dl_T/dh_t|| for every step, layer and direction, over training."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor

from rnnbench.diagnostics.base import gradients_section, Probe, log_scalars, recurrent_core, wandb_runs
from rnnbench.diagnostics.layers import DIRECTION_NAMES
from rnnbench.diagnostics.through_time import gradient_through_time
from rnnbench.errors import require

DTYPES = {"float64": torch.float64, "float32": torch.float32}


class GradientFlowProbe(Probe):
    """Gradient through time on the probe batch, for the loss at the last output position.

    Uses :func:`~rnnbench.diagnostics.through_time.gradient_through_time` (exact total
    derivatives, step by step, in float64 by default so that 1e-30 does not underflow).
    Steps are counted in each direction's processing order: for a backward direction the last
    processed step is position 1, and "distance from the loss" is counted from there.

    Logged per layer and direction: ``grad_flow/layer<l>/<direction>/vanishing_log10``
    (log10 of ||dl/dh|| at the first processed step over that at the last), ``.../reach`` (steps
    until the norm has fallen 10x), ``.../cell_vanishing_log10`` (LSTM cell state). At the end of
    training W&B also gets, once, a line chart ``grad_flow/curve`` (log10 norm against distance from
    the loss, one series per layer and direction at the first and at the last probe) and every
    probe's curves as one table ``grad_flow/table``: a chart and a table per probe cost more Python
    time than the probe itself, and the scalars above already follow training live.
    """

    def __init__(self, every_n_steps: int = 100, probe_size: int = 32, dtype: str = "float64"):
        super().__init__(every_n_steps, probe_size)
        require(dtype in DTYPES, "dtype", dtype, f"one of {', '.join(DTYPES)}")
        self.dtype = DTYPES[dtype]
        self.snapshots: list[dict[str, Any]] = []  # one per probe, in order

    def probe(self, trainer: pl.Trainer, pl_module: pl.LightningModule, encoded: Tensor, targets: Tensor,
              step: int) -> None:
        model = pl_module.model
        flow = gradient_through_time(
            recurrent_core(pl_module), encoded,
            lambda output, h_n: model.task.last_step_loss(model.readout(output, h_n), targets), dtype=self.dtype)
        layers, directions, steps = flow.hidden.shape
        cell_vanishing = flow.cell_vanishing_log10()
        parts = [flow.vanishing_log10().flatten(), flow.reach().flatten(), torch.log10(flow.hidden).flatten()]
        if flow.cell is not None:
            parts += [cell_vanishing.flatten(), torch.log10(flow.cell).flatten()]
        values = torch.cat([p.double() for p in parts]).tolist()  # one transfer

        count = layers * directions
        vanishing, reach = values[:count], values[count:2 * count]
        curves = [values[2 * count + i * steps: 2 * count + (i + 1) * steps] for i in range(count)]
        cell_offset = 2 * count + count * steps
        cell_vanishing = values[cell_offset:cell_offset + count] if flow.cell is not None else [None] * count
        cell_curves = ([values[cell_offset + count + i * steps: cell_offset + count + (i + 1) * steps]
                        for i in range(count)] if flow.cell is not None else [None] * count)
        snapshot = {"step": step, "layers": [
            {"layer": i // directions, "direction": DIRECTION_NAMES[i % directions], "vanishing_log10": vanishing[i],
             "reach": reach[i], "cell_vanishing_log10": cell_vanishing[i],
             # log10 norms in processing order: the last element is nearest the loss
             "log10_curve": curves[i], "cell_log10_curve": cell_curves[i]}
            for i in range(count)]}
        self.snapshots.append(snapshot)
        self._log_scalars(trainer, snapshot)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        self._log_curves(trainer)

    def _log_scalars(self, trainer: pl.Trainer, snapshot: dict[str, Any]) -> None:
        metrics = {}
        for entry in snapshot["layers"]:
            prefix = f"grad_flow/layer{entry['layer']}/{entry['direction']}"
            metrics[f"{prefix}/vanishing_log10"] = entry["vanishing_log10"]
            metrics[f"{prefix}/reach"] = entry["reach"]
            if entry["cell_vanishing_log10"] is not None:
                metrics[f"{prefix}/cell_vanishing_log10"] = entry["cell_vanishing_log10"]
        log_scalars(trainer, metrics, snapshot["step"])

    def _log_curves(self, trainer: pl.Trainer) -> None:
        runs = wandb_runs(trainer)
        if not runs or not self.snapshots:
            return
        import wandb

        first, last = self.snapshots[0], self.snapshots[-1]
        shown = [first] if first is last else [first, last]
        names, curves = [], []
        for snapshot in shown:
            for entry in snapshot["layers"]:
                names.append(f"layer{entry['layer']}/{entry['direction']} at step {snapshot['step']}")
                curves.append(list(reversed(entry["log10_curve"])))
        chart = wandb.plot.line_series(xs=list(range(len(curves[0]))), ys=curves, keys=names,
                                       title="log10 ||dl_T/dh_t||, first and last probe",
                                       xname="distance from the loss (steps)")
        rows = []
        for snapshot in _spread(self.snapshots, wandb.Table.MAX_ROWS // len(curves[0]) // len(last["layers"])):
            for entry in snapshot["layers"]:
                steps = len(entry["log10_curve"])
                cell = entry["cell_log10_curve"] or [None] * steps
                rows += [[snapshot["step"], entry["layer"], entry["direction"], steps - 1 - k,
                          entry["log10_curve"][k], cell[k]] for k in range(steps)]
        table = wandb.Table(columns=["step", "layer", "direction", "distance", "log10_norm", "cell_log10_norm"],
                            data=rows)
        for run in runs:
            run.log({"grad_flow/curve": chart, "grad_flow/table": table, "trainer/global_step": last["step"]})

    def record_into(self, record: dict[str, Any]) -> None:
        section = gradients_section(record)
        section["probe_steps"] = list(self.probe_steps)
        if not self.snapshots:
            section["layers"] = []
            return
        section["layers"] = [
            {"layer": last["layer"], "direction": last["direction"],
             "vanishing_log10": last["vanishing_log10"], "vanishing_log10_first": first["vanishing_log10"],
             "reach": last["reach"], "reach_first": first["reach"],
             "cell_vanishing_log10": last["cell_vanishing_log10"],
             "cell_vanishing_log10_first": first["cell_vanishing_log10"],
             "curve_first": _norms(first["log10_curve"]), "curve_last": _norms(last["log10_curve"]),
             "cell_curve_first": _norms(first["cell_log10_curve"]), "cell_curve_last": _norms(last["cell_log10_curve"]),
             "log10_curve_first": first["log10_curve"], "log10_curve_last": last["log10_curve"]}
            for first, last in zip(self.snapshots[0]["layers"], self.snapshots[-1]["layers"])]


def _spread(items: list[Any], limit: int) -> list[Any]:
    """At most ``limit`` (at least 2) of ``items``, evenly spaced, the first and the last included:
    W&B truncates a logged table beyond ``wandb.Table.MAX_ROWS`` rows, so long runs keep fewer probes."""
    limit = max(limit, 2)
    if len(items) <= limit:
        return items
    return [items[round(i * (len(items) - 1) / (limit - 1))] for i in range(limit)]


def _norms(log10_curve: list[float] | None) -> list[float] | None:
    """Norms from log10 norms (values below 1e-308 become 0.0; the log10 curves keep them)."""
    return None if log10_curve is None else [10.0 ** v if v > -308 else 0.0 for v in log10_curve]


__all__ = ["GradientFlowProbe"]
