"""The Lightning module: loss and torchmetrics from the task, the optimizer from config. No diagnostics here."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytorch_lightning as pl
import torch
from torch import Tensor

from rnnbench.models.sequence_model import SequenceModel

OptimizerFactory = Callable[[Iterable[torch.nn.Parameter]], torch.optim.Optimizer]


class SequenceTaskModule(pl.LightningModule):
    """Trains a :class:`SequenceModel` on its task.

    Logs ``train/loss`` every step, ``val/loss`` and ``val/<metric>`` per validation, ``test/loss`` and
    ``test/<metric>`` on test, where ``<metric>`` is the task's (``mse``, ``accuracy`` or ``perplexity``).

    Args:
        model: the network; its ``task`` gives the loss and metric.
        optimizer: called with the parameters, returns the optimizer (Hydra's ``_partial_`` optim config).
    """

    def __init__(self, model: SequenceModel, optimizer: OptimizerFactory):
        super().__init__()
        self.model, self.task, self.optimizer_factory = model, model.task, optimizer
        self.metrics = torch.nn.ModuleDict({split: self.task.make_metric() for split in ("val", "test")})

    def forward(self, inputs: Tensor) -> Tensor:
        return self.model(inputs)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        inputs, targets = batch
        loss = self.task.compute_loss(self.model(inputs), targets)
        self.log("train/loss", loss, on_step=True, on_epoch=False, batch_size=len(inputs))
        return loss

    def _evaluate(self, split: str, batch: tuple[Tensor, Tensor]) -> None:
        inputs, targets = batch
        predictions = self.model(inputs)
        loss = self.task.compute_loss(predictions, targets)
        metric = self.metrics[split]
        metric.update(*self.task.metric_inputs(predictions, targets))
        self.log(f"{split}/loss", loss, on_step=False, on_epoch=True, batch_size=len(inputs))
        self.log(f"{split}/{self.task.metric}", metric, on_step=False, on_epoch=True)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate("val", batch)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate("test", batch)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer_factory(self.parameters())
