"""The Lightning module: loss and torchmetrics from the task, the optimizer from config. No diagnostics here."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import pytorch_lightning as pl
import torch
from torch import Tensor

from rnnbench.data.base import Batch, unpack_batch
from rnnbench.data.task import Task
from rnnbench.models.sequence_model import SequenceModel

OptimizerFactory = Callable[[Iterable[torch.nn.Parameter]], torch.optim.Optimizer]


class SequenceTaskModule(pl.LightningModule):
    """Trains a :class:`SequenceModel` on its task.

    Logs ``train/loss`` every ``trainer.log_every_n_steps`` steps, ``val/loss`` and ``val/<metric>`` per
    validation, ``test/loss`` and ``test/<metric>`` on test, for every ``<metric>`` of the task's ``metric_names``
    (``mse``, ``accuracy``, ``perplexity``, or ``nll`` and ``frame_accuracy``).

    The values are ``self.log``-ged for Lightning's callbacks and progress bar only;
    :class:`rnnbench.job.history.StepAlignedLogging` sends them to the loggers, each at the number of optimizer
    steps done when it was measured (Lightning's own logging puts a validation one step before the probe taken with
    the same weights).

    A batch is ``(inputs, targets)``, or ``(inputs, targets, lengths)`` for variable-length data: the model
    then runs each sequence over its own steps, and losses and metrics leave the padding out (a per-step
    loss is the mean over every real step of the batch; metrics weigh every real step of the split alike).

    With more test splits (``data.test_seq_len``: the data module's ``test_tasks``), the test loops over each,
    ``test@<T>`` logged as ``test@<T>/loss`` and ``test@<T>/<metric>`` with that length's task.

    Args:
        model: the network; its ``task`` gives the loss and metric.
        optimizer: called with the parameters, returns the optimizer (Hydra's ``_partial_`` optim config).
        test_tasks: every test split's name and task, in the order of the test dataloaders; None: ``test`` alone.
    """

    def __init__(self, model: SequenceModel, optimizer: OptimizerFactory, test_tasks: Mapping[str, Task] | None = None):
        super().__init__()
        self.model, self.task, self.optimizer_factory = model, model.task, optimizer
        self.split_tasks = {"val": self.task, **(test_tasks or {"test": self.task})}
        self.test_splits = list(self.split_tasks)[1:]
        self.metrics = torch.nn.ModuleDict({split: torch.nn.ModuleDict(task.make_metrics())
                                            for split, task in self.split_tasks.items()})

    def forward(self, inputs: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.model(inputs, lengths)

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        inputs, targets, lengths = unpack_batch(batch)
        loss = self.task.compute_loss(self.model(inputs, lengths), targets, lengths=lengths)
        self.log("train/loss", loss, on_step=True, on_epoch=False, batch_size=len(inputs), logger=False)
        return loss

    def _evaluate(self, split: str, batch: Batch) -> None:
        inputs, targets, lengths = unpack_batch(batch)
        task = self.split_tasks[split]
        predictions = self.model(inputs, lengths)
        loss = task.compute_loss(predictions, targets, lengths=lengths)
        metrics = self.metrics[split]
        task.update_metrics(metrics, predictions, targets, lengths)
        # a batch's loss weighs by its real steps, so that the epoch's val/loss is frame-weighted too
        weight = len(inputs) if lengths is None or not task.per_step else int(lengths.sum())
        self.log(f"{split}/loss", loss, on_step=False, on_epoch=True, batch_size=weight, logger=False,
                 add_dataloader_idx=False)
        for name, metric in metrics.items():
            self.log(f"{split}/{name}", metric, on_step=False, on_epoch=True, logger=False, add_dataloader_idx=False)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate("val", batch)

    def test_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._evaluate(self.test_splits[dataloader_idx], batch)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer_factory(self.parameters())
