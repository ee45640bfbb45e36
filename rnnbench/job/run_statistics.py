"""What a run's record needs from training: best validation values, steps, throughput."""

from __future__ import annotations

import math
import time
from typing import Any

import pytorch_lightning as pl
from torch import Tensor

from rnnbench.data.base import unpack_batch
from rnnbench.data.task import Task
from rnnbench.job.history import split_values

Clocks = tuple[float, float]  # (wall seconds, this process's CPU seconds)


def _clocks() -> Clocks:
    return time.perf_counter(), time.process_time()


class RunStatistics(pl.Callback):
    """Collects the record's training facts as Lightning runs.

    ``train_seconds`` is the fit's wall time minus validation. Throughput is the steady state: the
    samples (and tokens, samples x steps) of every optimizer step after the first, over the time from
    the end of the first step to the end of the last, minus validation. The first step (allocator and
    kernel warm-up) and the one-off work around the loop (start-up, the probe at the start, the final
    probe) are left out, as any loop's warm-up is; the diagnostics' periodic work inside the window
    is counted. ``tokens_per_cpu_second`` divides by this process's CPU time over the same window,
    which a busy shared machine disturbs far less than wall time. Tokens are the sequences' own steps: for
    variable-length data, padding is not counted; :meth:`padding` says how much of what was processed was.

    Attributes:
        best: ``best/val/<name>`` -> best value so far, ``best/val/<name>_step`` -> its step.
        last_validation_step: global step of the latest validation (None before the first).
        last_validation, last_train: ``val/*`` and ``train/*`` at the latest validation, which a checkpoint keeps:
            a run resumed from its last checkpoint has nothing left to fit, yet its record holds them.
    """

    def __init__(self, task: Task):
        self.task = task
        self.best: dict[str, float] = {}
        self.train_seconds = 0.0
        self.last_validation_step: int | None = None
        self.last_validation: dict[str, float] = {}  # val/<name> at the latest validation
        self.last_train: dict[str, float] = {}  # train/<name> then
        self._fit_start: Clocks = (0.0, 0.0)
        self._validation_start: Clocks = (0.0, 0.0)
        self._validation: Clocks = (0.0, 0.0)        # validation time since the fit started
        # (clocks, validation time so far) at the end of the first step and of the latest step
        self._window_start: tuple[Clocks, Clocks] | None = None
        self._window_end: tuple[Clocks, Clocks] | None = None
        self._window_samples = 0
        self._window_tokens: Any = 0   # a tensor on the batch's device for variable-length data: summed without a sync
        self._window_steps = 0
        self._processed_steps = 0      # variable-length data: batch size x longest length, over every training batch
        self._useful_steps: Any = 0    # ... and the sequences' own steps
        self._variable_length = False
        self._earlier_train_seconds = 0.0  # a resumed run's training time before its checkpoint

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._fit_start, self._validation = _clocks(), (0.0, 0.0)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        mark = (_clocks(), self._validation)
        inputs, _, lengths = unpack_batch(batch)
        tokens = inputs.shape[0] * inputs.shape[1] if lengths is None else lengths.sum()
        if lengths is not None:
            self._variable_length = True
            self._processed_steps += inputs.shape[0] * inputs.shape[1]
            self._useful_steps = self._useful_steps + tokens
        if self._window_start is None:
            self._window_start = mark
            return
        self._window_end = mark
        self._window_samples += len(inputs)
        self._window_tokens = self._window_tokens + tokens
        self._window_steps += 1

    def padding(self) -> dict[str, Any] | None:
        """Variable-length data: ``processed_steps`` (each training batch's size times its longest sequence,
        summed over the run), ``useful_steps`` (the sequences' own steps) and ``fraction`` (of the processed
        steps that were padding); None for fixed-length data."""
        if not self._variable_length:
            return None
        useful = int(self._useful_steps)
        return {"processed_steps": self._processed_steps, "useful_steps": useful,
                "fraction": 1 - useful / self._processed_steps if self._processed_steps else 0.0}

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.train_seconds = self._train_seconds_so_far()

    def _train_seconds_so_far(self) -> float:
        return self._earlier_train_seconds + time.perf_counter() - self._fit_start[0] - self._validation[0]

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps (a resumed run's throughput is measured over its own steps only)."""
        return {"best": dict(self.best), "last_validation_step": self.last_validation_step,
                "last_validation": dict(self.last_validation), "last_train": dict(self.last_train),
                "train_seconds": self._train_seconds_so_far(), "padding": self.padding()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = dict(state_dict["best"])
        self.last_validation_step = state_dict["last_validation_step"]
        self.last_validation = dict(state_dict.get("last_validation", {}))
        self.last_train = dict(state_dict.get("last_train", {}))
        self._earlier_train_seconds = float(state_dict["train_seconds"])
        padding = state_dict.get("padding")
        if padding:
            self._variable_length = True
            self._processed_steps, self._useful_steps = padding["processed_steps"], padding["useful_steps"]

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._validation_start = _clocks()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._validation = tuple(total + now - start for total, now, start
                                 in zip(self._validation, _clocks(), self._validation_start))
        if trainer.sanity_checking:
            return
        self.last_validation_step = trainer.global_step
        self.last_validation, self.last_train = split_values(trainer, "val"), split_values(trainer, "train")
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
        """Steady-state ``samples_per_second``, ``tokens_per_second``, ``tokens_per_cpu_second`` and
        ``steps_timed``; None when the run had fewer than two steps."""
        if self._window_start is None or self._window_end is None:
            return None
        (start, validation_start), (end, validation_end) = self._window_start, self._window_end
        wall, cpu = (b - a - (vb - va) for a, b, va, vb in zip(start, end, validation_start, validation_end))
        if wall <= 0:
            return None
        tokens = float(self._window_tokens)
        return {"samples_per_second": self._window_samples / wall, "tokens_per_second": tokens / wall,
                "tokens_per_cpu_second": tokens / cpu if cpu > 0 else None, "steps_timed": self._window_steps}
