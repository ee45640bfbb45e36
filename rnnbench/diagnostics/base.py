"""What every diagnostic callback shares: a narrow view of the model, a probe batch, logging, the record, and the
state a checkpoint keeps of any rnnbench callback (:class:`CallbackState`, which the job's own callbacks use too)."""

from __future__ import annotations

import copy
import math
from abc import abstractmethod
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.loggers import Logger
import torch
from torch import Tensor

from rnnbench.data.base import first_samples, unpack_batch
from rnnbench.errors import require_int
from rnnbench.models.stack import LayerStack
from rnnbench.record.schema import Record


class CallbackState:
    """Mix into a Lightning callback: its attributes named in :attr:`checkpointed` go into checkpoints (Lightning
    calls ``state_dict``/``load_state_dict``), so that a resumed run continues its counts and curves."""

    checkpointed: tuple[str, ...] = ()

    def state_dict(self) -> dict[str, Any]:
        return {name: copy.deepcopy(getattr(self, name)) for name in self.checkpointed}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for name in self.checkpointed:
            if name in state_dict:
                setattr(self, name, state_dict[name])


def wandb_loggers(loggers: list[Logger]) -> list[Logger]:
    """The W&B loggers among ``loggers`` (by name, so wandb itself is imported only when one is used)."""
    return [logger for logger in loggers if type(logger).__name__ == "WandbLogger"]


def layer_stack(pl_module: pl.LightningModule) -> LayerStack:
    """The one part of the model the instruments look at: its layer stack (``pl_module.model.stack``)."""
    return pl_module.model.stack


def log_scalars(trainer: pl.Trainer, metrics: dict[str, float], step: int) -> None:
    """Send host floats straight to every logger at the trainer's global step."""
    for logger in trainer.loggers:
        logger.log_metrics(metrics, step=step)


def wandb_runs(trainer: pl.Trainer) -> list[Any]:
    return [logger.experiment for logger in wandb_loggers(trainer.loggers)]


def gradients_section(record: Record) -> dict[str, Any]:
    """The record's ``gradients`` section, created on first use."""
    if record.gradients is None:
        record.gradients = {}
    return record.gradients


def total_steps(trainer: pl.Trainer) -> int | None:
    """The optimizer steps this fit will take: ``max_steps``, else what ``max_epochs`` implies."""
    total = trainer.estimated_stepping_batches
    return int(total) if isinstance(total, (int, float)) and math.isfinite(total) else None


class Diagnostic(CallbackState, pl.Callback):
    """A Lightning callback whose findings also go into the run's ``result.json``, and whose state
    (:attr:`checkpointed`) goes into the run's checkpoints."""

    @abstractmethod
    def record_into(self, record: Record) -> None:
        """Add this instrument's summary to ``record`` (the ``gradients`` section, or its own)."""


class Probe(Diagnostic):
    """Runs :meth:`probe` on a fixed batch (the first ``probe_size`` samples of the first validation batch: for
    variable-length data, batched longest first, the longest sequences) at the
    start of training, every ``every_n_steps`` optimizer steps, and at the end (a resumed run: at the same steps).

    The model is left exactly as it was: probes use their own autograd graph, not ``.grad``.
    """

    def __init__(self, every_n_steps: int = 100, probe_size: int = 32):
        self.every_n_steps = require_int(every_n_steps, "every_n_steps", 1)
        self.probe_size = require_int(probe_size, "probe_size", 1)
        self.batch: tuple[Tensor, Tensor] | None = None
        self.probe_steps: list[int] = []
        self.final_step: int | None = None  # the fit's last optimizer step (set as training starts)
        self.checkpointed = ("probe_steps",)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        batch = first_samples(next(iter(trainer.datamodule.val_dataloader())), self.probe_size)
        self.batch = tuple(tensor.to(pl_module.device) for tensor in batch)
        self.final_step = total_steps(trainer)
        if trainer.global_step == 0:  # a run resumed from a checkpoint probes where the uninterrupted run would
            self._run(trainer, pl_module)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        # the last step's probe comes before its validation and checkpoint, so a run killed after its last
        # checkpoint resumes with it already taken (on_train_end still probes a run stopped early)
        if step % self.every_n_steps == 0 or step == self.final_step:
            self._run(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._run(trainer, pl_module)

    def _run(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        step = trainer.global_step
        if self.batch is None or (self.probe_steps and self.probe_steps[-1] == step):
            return
        self.probe_steps.append(step)
        inputs, targets, lengths = unpack_batch(self.batch)
        with torch.no_grad():
            encoded = pl_module.model.encode(inputs)
        self.probe(trainer, pl_module, encoded, targets, step, lengths)

    @abstractmethod
    def probe(self, trainer: pl.Trainer, pl_module: pl.LightningModule, encoded: Tensor, targets: Tensor,
              step: int, lengths: Tensor | None = None) -> None:
        """Measure on ``encoded`` (B, T, input_size), the recurrent core's input, and ``targets``; ``lengths``
        (B,) each sequence's own number of steps (variable-length data) or None."""
