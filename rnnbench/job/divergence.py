"""Stop a run cleanly at its first non-finite loss, so that it ends as ``diverged`` rather than crashing."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch

from rnnbench.diagnostics.base import CallbackState


class DivergenceMonitor(CallbackState, pl.Callback):
    """Watches the training loss; at the first NaN or infinity it records the step and stops the trainer.

    The first bad step is kept on the loss's device and read by the host every ``check_every``
    steps (every step on CPU, where the read is free), so GPU runs do not sync every step.

    Attributes:
        diverged_at_step: the 1-based optimizer step whose loss was not finite, or None.
    """

    def __init__(self, check_every: int = 20):
        self.check_every = check_every
        self.diverged_at_step: int | None = None
        self._first_bad: torch.Tensor | None = None
        self.checkpointed = ("diverged_at_step", "_first_bad")

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        loss = loss.detach()
        if self._first_bad is None:
            self._first_bad = torch.full((), -1, dtype=torch.long, device=loss.device)
        step = trainer.global_step  # already counts this batch's optimizer step
        self._first_bad = torch.where((self._first_bad < 0) & ~torch.isfinite(loss), step, self._first_bad)
        if loss.device.type == "cpu" or step % self.check_every == 0:
            self.check(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.check(trainer)

    def check(self, trainer: pl.Trainer) -> None:
        if self.diverged_at_step is None and self._first_bad is not None:
            first = int(self._first_bad)
            if first >= 0:
                self.diverged_at_step = first
                trainer.should_stop = True
