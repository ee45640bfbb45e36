"""What a run's record needs from training: best validation values, steps, throughput."""

from __future__ import annotations

import math
import time
from typing import Any

import pytorch_lightning as pl
from torch import Tensor

from rnnbench.data.task import Task


class RunStatistics(pl.Callback):
    """Collects the record's training facts as Lightning runs.

    Throughput counts training samples (and tokens, samples x steps) over the fit's wall time minus
    the time spent validating, so it compares across validation cadences; ``tokens_per_cpu_second``
    divides by this process's CPU time instead, which a busy shared machine disturbs far less.

    Attributes:
        best: ``best/val/<name>`` -> best value so far, ``best/val/<name>_step`` -> its step.
        last_validation_step: global step of the latest validation (None before the first).
    """

    def __init__(self, task: Task):
        self.task = task
        self.best: dict[str, float] = {}
        self.samples = 0
        self.tokens = 0
        self.train_seconds = 0.0
        self.train_cpu_seconds = 0.0
        self.last_validation_step: int | None = None
        self._fit_start = self._validation_start = (0.0, 0.0)
        self._validation_seconds = (0.0, 0.0)

    @staticmethod
    def _clocks() -> tuple[float, float]:
        return time.perf_counter(), time.process_time()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._fit_start, self._validation_seconds = self._clocks(), (0.0, 0.0)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.samples += len(batch[0])
        self.tokens += len(batch[0]) * self.task.seq_len

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.train_seconds, self.train_cpu_seconds = (now - start - validation for now, start, validation
                                                      in zip(self._clocks(), self._fit_start, self._validation_seconds))

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._validation_start = self._clocks()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._validation_seconds = tuple(total + now - start for total, now, start
                                         in zip(self._validation_seconds, self._clocks(), self._validation_start))
        if trainer.sanity_checking:
            return
        self.last_validation_step = trainer.global_step
        for name in ("loss", self.task.metric):
            value = trainer.callback_metrics.get(f"val/{name}")
            if value is None:
                continue
            value = float(value)
            key = f"best/val/{name}"
            lower_is_better = name == "loss" or self.task.metric_mode == "min"
            previous = self.best.get(key)
            if math.isfinite(value) and (previous is None or (value < previous if lower_is_better else value > previous)):
                self.best[key], self.best[f"{key}_step"] = value, trainer.global_step

    def throughput(self) -> dict[str, float] | None:
        if self.train_seconds <= 0:
            return None
        return {"samples_per_second": self.samples / self.train_seconds,
                "tokens_per_second": self.tokens / self.train_seconds,
                "tokens_per_cpu_second": self.tokens / self.train_cpu_seconds if self.train_cpu_seconds > 0 else None}
