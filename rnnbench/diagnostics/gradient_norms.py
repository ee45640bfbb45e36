"""Weight-gradient norms, clipping and explosions, measured every step and read once per logging step."""

from __future__ import annotations

import math
import statistics
from collections import deque
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.nn.utils import get_total_norm

from rnnbench.diagnostics.base import gradients_section, Diagnostic, log_scalars, layer_stack
from rnnbench.diagnostics.measures.gradient_norms import cell_parameter_groups, grad_norm_tensor
from rnnbench.errors import require, require_int
from rnnbench.record.schema import Record


class GradientNormMonitor(Diagnostic):
    """Global gradient norm before and after clipping, clip rate, spikes and non-finite gradients,
    and the norm of every parameter of every cell, per layer and direction, under the cell's own
    parameter names (``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh`` for the built-ins; a
    peephole LSTM adds ``weight_ch``).

    Every step's pre-clip global norm is computed on the device (``get_total_norm``: one fused pass)
    and kept there; on logging steps all of them, the group norms and the post-clip norm go to
    the host in one transfer. So every step counts towards the clip rate and the spike and
    non-finite counts, without a host sync per step or per parameter.

    A step is a spike when its pre-clip norm exceeds ``spike_factor`` times the median of the
    previous ``spike_window`` finite norms (once 10 are known). Non-finite norms are counted,
    never dropped.

    Logged (at the trainer's global step): ``grad/norm_preclip``, ``grad/norm_postclip``,
    ``grad/clipped`` (this step), ``grad/clip_rate`` (so far), ``grad/spikes``, ``grad/nonfinite``,
    ``grad/layer<l>/<direction>/<parameter name>``.
    """

    def __init__(self, every_n_steps: int | None = None, spike_factor: float = 10.0, spike_window: int = 100):
        if every_n_steps is not None:
            require_int(every_n_steps, "every_n_steps", 1)
        require(isinstance(spike_factor, (int, float)) and spike_factor > 1, "spike_factor", spike_factor,
                "a number > 1")
        self.every_n_steps = every_n_steps
        self.spike_factor = float(spike_factor)
        self.history: deque[float] = deque(maxlen=require_int(spike_window, "spike_window", 10))
        self.steps = self.clipped_steps = self.spikes = self.nonfinite = 0
        self.max_norm = -math.inf
        self.last_norm = self.last_finite_norm = math.nan
        self._last_clipped = False
        self.clip_value: float | None = None
        self.clip_by_value = False
        self._pending: list[Tensor] = []
        self.checkpointed = ("steps", "clipped_steps", "spikes", "nonfinite", "max_norm", "last_norm",
                             "last_finite_norm", "history", "_last_clipped")
        self._groups: tuple[list[str], Tensor] | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.parameters = [p for p in pl_module.parameters() if p.requires_grad]
        self.named_groups = cell_parameter_groups(layer_stack(pl_module))
        self.every = self.every_n_steps or trainer.log_every_n_steps
        self.clip_value = trainer.gradient_clip_val
        self.clip_by_value = str(trainer.gradient_clip_algorithm).lower().endswith("value")

    def _grads(self) -> list[Tensor]:
        return [p.grad for p in self.parameters if p.grad is not None]

    def _measure(self, grads: list[Tensor]) -> Tensor:
        """(2,) float64 on the device: the global L2 norm and, for value clipping, the largest absolute
        entry (the L2 norm again otherwise: an infinity-norm pass costs ten times an L2 pass on CPU)."""
        l2 = get_total_norm(grads, 2.0).double()
        largest = get_total_norm(grads, math.inf).double() if self.clip_by_value else l2
        return torch.stack([l2, largest])

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any) -> None:
        grads = self._grads()
        if not grads:
            return
        self._pending.append(self._measure(grads))
        if (trainer.global_step + 1) % self.every == 0:  # the step being taken is global_step + 1
            self._groups = grad_norm_tensor(self.named_groups, self.parameters)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        if self._groups is None:
            return
        names, group_norms = self._groups
        grads = self._grads()
        postclip = self._measure(grads)[0] if grads else torch.full((), math.nan, dtype=torch.float64)
        values = self._flush(extra=[group_norms.double(), postclip.reshape(1).to(group_norms.device)])
        group_values, post = values[:-1], values[-1]
        self._groups = None
        metrics = {"grad/norm_preclip": self.last_norm, "grad/norm_postclip": post,
                   "grad/clipped": float(self._last_clipped), "grad/clip_rate": self.clip_rate(),
                   "grad/spikes": float(self.spikes), "grad/nonfinite": float(self.nonfinite)}
        metrics.update({f"grad/{name}": value for name, value in zip(names[1:], group_values[1:])})
        log_scalars(trainer, metrics, trainer.global_step)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._flush()

    def _flush(self, extra: list[Tensor] = ()) -> list[float]:
        """Move the pending per-step norms (and ``extra``) to the host at once; update the counts."""
        if not self._pending and not extra:
            return []
        pending = len(self._pending)
        device = (self._pending or extra)[0].device
        flat = torch.cat([torch.stack(self._pending).flatten() if pending else torch.empty(0, dtype=torch.float64,
                          device=device), *[e.to(device) for e in extra]]).tolist()
        self._pending = []
        for norm, largest in zip(flat[0:2 * pending:2], flat[1:2 * pending:2]):
            self._count(norm, largest)
        return flat[2 * pending:]

    def _count(self, norm: float, largest: float) -> None:
        self.steps += 1
        self.last_norm = norm
        self._last_clipped = bool(self.clip_value) and (largest if self.clip_by_value else norm) > self.clip_value
        self.clipped_steps += self._last_clipped
        if not math.isfinite(norm):
            self.nonfinite += 1
            return
        if len(self.history) >= 10 and norm > self.spike_factor * statistics.median(self.history):
            self.spikes += 1
        self.history.append(norm)
        self.last_finite_norm = norm
        self.max_norm = max(self.max_norm, norm)

    def clip_rate(self) -> float | None:
        return self.clipped_steps / self.steps if self.clip_value and self.steps else (0.0 if self.clip_value else None)

    def state_dict(self) -> dict[str, Any]:
        self._flush()  # the per-step norms still on the device belong to steps the checkpoint covers
        state = super().state_dict()
        state["history"] = list(state["history"])  # a deque would not load with weights_only=True
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        maxlen = self.history.maxlen
        super().load_state_dict(state_dict)
        self.history = deque(self.history, maxlen=maxlen)

    def record_into(self, record: Record) -> None:
        section = gradients_section(record)
        section.update(final_norm=self.last_norm, max_norm=self.max_norm if self.steps else None,
                       clip_rate=self.clip_rate(), clipped_steps=self.clipped_steps, spikes=self.spikes,
                       nonfinite=self.nonfinite, last_finite_norm=self.last_finite_norm, steps_measured=self.steps)
