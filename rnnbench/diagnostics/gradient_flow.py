"""The vanishing-gradient curve: exact ||dl/ds_t|| for every state, step, layer and direction, over training."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor

from rnnbench.diagnostics.base import Probe, gradients_section, layer_stack, log_scalars, wandb_runs
from rnnbench.diagnostics.measures.gradient_flow import gradient_through_time
from rnnbench.errors import require
from rnnbench.models.stack import DIRECTION_NAMES
from rnnbench.record.schema import Record

DTYPES = {"float64": torch.float64, "float32": torch.float32}
MEASURES = ("vanishing_log10", "vanishing_log10_min", "reach")  # per state, layer and direction


def state_prefix(state: str) -> str:
    """How a state's keys are named in the record and the logs: ``h`` bare (``vanishing_log10``), the cell
    state ``c`` as ``cell_`` (``cell_vanishing_log10``), any other state by its name (``i_vanishing_log10``)."""
    return "" if state == "h" else "cell_" if state == "c" else f"{state}_"


class GradientFlowProbe(Probe):
    """Gradient through time on the probe batch, for every state of the cell (``h``, ``c``, ...).

    Uses :func:`~rnnbench.diagnostics.measures.gradient_flow.gradient_through_time` (exact total
    derivatives through the cell's own ``step``, in float64 by default so that 1e-30 does not underflow).
    The loss is the sequence's for a once-per-sequence head; for a per-step head each direction is
    measured against the loss at the position it reaches last (forward: position T, backward: position 1).
    A once-per-sequence head that reads every step (``model.readout=all`` or ``mean``) is measured from the same
    position: the loss's path through the other steps' outputs is cut (:meth:`SequenceModel.probe_output`), so
    the curve shows what the recurrence carries back, as with ``readout=last``.
    Steps are counted in each direction's processing order, so "distance from the loss" is counted from
    each direction's last processed step. Variable-length data: from each sequence's own loss position, the
    curve at distance d averaging the sequences long enough to have it (see
    :mod:`rnnbench.diagnostics.measures.gradient_flow`).

    Logged per layer, direction and state (prefix as :func:`state_prefix`):
    ``grad_flow/layer<l>/<direction>/<prefix>vanishing_log10`` (log10 of the norm at the first processed
    step over that at the last), ``..._min`` (the deepest dip over all steps, against the last), ``reach``
    (steps back until the norm has fallen 10x; T if it never does). At the end of training W&B also
    gets, once, a line chart ``grad_flow/curve`` (log10 ||dl/dh|| against distance from the loss, one
    series per layer and direction at the first and at the last probe) and every probe's curves as one
    table ``grad_flow/table``.
    """

    def __init__(self, every_n_steps: int = 100, probe_size: int = 32, dtype: str = "float64"):
        super().__init__(every_n_steps, probe_size)
        require(dtype in DTYPES, "dtype", dtype, f"one of {', '.join(DTYPES)}")
        self.dtype = DTYPES[dtype]
        self.snapshots: list[dict[str, Any]] = []  # one per probe, in order
        self.checkpointed = (*self.checkpointed, "snapshots")

    def probe(self, trainer: pl.Trainer, pl_module: pl.LightningModule, encoded: Tensor, targets: Tensor,
              step: int, lengths: Tensor | None = None) -> None:
        model, stack = pl_module.model, layer_stack(pl_module)
        flow = gradient_through_time(stack, encoded, model.probe_loss(targets, lengths), dtype=self.dtype,
                                     lengths=lengths)
        names = stack.state_names
        parts = [part.flatten() for name in names for part in
                 (flow.vanishing_log10(name), flow.vanishing_log10_min(name), flow.reach(name), flow.log10(name))]
        values = iter(torch.cat([p.double() for p in parts]).tolist())  # one transfer
        steps = flow.hidden.shape[-1]
        entries: list[dict[str, Any]] = [
            {"layer": layer, "direction": DIRECTION_NAMES[direction]} for layer, direction, _ in stack.layer_cells()]
        for name in names:
            prefix = state_prefix(name)
            for measure in MEASURES:
                for entry in entries:
                    entry[prefix + measure] = next(values)
            for entry in entries:  # log10 norms in processing order: the last element is nearest the loss
                entry[prefix + "log10_curve"] = [next(values) for _ in range(steps)]
        snapshot = {"step": step, "states": names, "layers": entries}
        self.snapshots.append(snapshot)
        log_scalars(trainer, {f"grad_flow/layer{e['layer']}/{e['direction']}/{state_prefix(name)}{measure}":
                              e[state_prefix(name) + measure]
                              for e in entries for name in names for measure in MEASURES}, step)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        self._log_curves(trainer)

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
                                       title="log10 ||dl/dh_t||, first and last probe",
                                       xname="distance from the loss (steps)")
        rows = []
        for snapshot in _spread(self.snapshots, wandb.Table.MAX_ROWS // len(curves[0]) // len(last["layers"])):
            for entry in snapshot["layers"]:
                steps = len(entry["log10_curve"])
                cell = entry.get("cell_log10_curve") or [None] * steps
                rows += [[snapshot["step"], entry["layer"], entry["direction"], steps - 1 - k,
                          entry["log10_curve"][k], cell[k]] for k in range(steps)]
        table = wandb.Table(columns=["step", "layer", "direction", "distance", "log10_norm", "cell_log10_norm"],
                            data=rows)
        for run in runs:
            run.log({"grad_flow/curve": chart, "grad_flow/table": table, "trainer/global_step": last["step"]})

    def record_into(self, record: Record) -> None:
        section = gradients_section(record)
        section["probe_steps"] = list(self.probe_steps)
        if not self.snapshots:
            section["layers"] = []
            return
        first_snapshot, last_snapshot = self.snapshots[0], self.snapshots[-1]
        # h and c keep their keys (null for a cell without c); any other state adds its own
        names = ("h", "c") + tuple(n for n in last_snapshot["states"] if n not in ("h", "c"))
        layers = []
        for first, last in zip(first_snapshot["layers"], last_snapshot["layers"]):
            entry: dict[str, Any] = {"layer": last["layer"], "direction": last["direction"]}
            for name in names:
                prefix = state_prefix(name)
                for measure in MEASURES:
                    entry[prefix + measure] = last.get(prefix + measure)
                    entry[prefix + measure + "_first"] = first.get(prefix + measure)
                for when, snapshot in (("first", first), ("last", last)):
                    entry[f"{prefix}curve_{when}"] = _norms(snapshot.get(prefix + "log10_curve"))
                    entry[f"{prefix}log10_curve_{when}"] = snapshot.get(prefix + "log10_curve")
            layers.append(entry)
        section["layers"] = layers


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


__all__ = ["GradientFlowProbe", "state_prefix"]
