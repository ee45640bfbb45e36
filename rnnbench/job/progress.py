"""Progress while a run trains: a bar over the optimizer steps on a terminal, a status line at most every 30 s
without one, a heartbeat in the run's record for ``rnnbench status``, and a warning in rnnbench's words when
training slows far below the speed of its first steps (other processes sharing the cores, usually)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import TQDMProgressBar

from rnnbench.diagnostics.base import total_steps
from rnnbench.record.lines import status_line

log = logging.getLogger("rnnbench.progress")

STATUS_INTERVAL = 30.0  # seconds between status lines without a terminal


def latest_metrics(trainer: pl.Trainer, task_metric: str | None) -> dict[str, float]:
    """``train/loss`` and the latest ``val/<metric>`` Lightning holds, as floats."""
    found = {}
    for name in ("train/loss", f"val/{task_metric}" if task_metric else None):
        value = trainer.callback_metrics.get(name) if name else None
        if value is not None:
            found[name] = float(value)
    return found


class StepProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar counted in optimizer steps over the whole fit (``max_steps``, or what
    ``max_epochs`` implies) instead of batches per epoch, with the latest ``train/loss`` and validation metric;
    rate and ETA are tqdm's. Without a terminal it draws nothing and logs a :func:`status_line` at most every
    ``interval`` seconds instead. Validation and test draw no bars of their own."""

    def __init__(self, task_metric: str | None = None, interval: float = STATUS_INTERVAL, terminal: bool | None = None):
        super().__init__()
        self.task_metric, self.interval = task_metric, interval
        self.terminal = sys.stdout.isatty() if terminal is None else terminal
        self._started = self._last_line = 0.0
        self._last_postfix = 0.0

    def init_train_tqdm(self):
        bar = super().init_train_tqdm()
        bar.unit = "step"
        return bar

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._started = self._last_line = time.perf_counter()
        if self.terminal:
            super().on_train_start(trainer, pl_module)
            self.train_progress_bar.total = total_steps(trainer)
            self.train_progress_bar.set_description("Training")

    def on_train_epoch_start(self, trainer: pl.Trainer, *_: Any) -> None:
        pass  # one bar for the whole fit

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        now, step = time.perf_counter(), trainer.global_step
        if self.terminal:
            bar = self.train_progress_bar
            if now - self._last_postfix >= 0.5:  # reading the loss is a device sync: twice a second at most
                self._last_postfix = now
                bar.set_postfix({k: f"{v:.4g}" for k, v in latest_metrics(trainer, self.task_metric).items()},
                                refresh=False)
            bar.update(step - bar.n)  # tqdm redraws at most every mininterval
        elif now - self._last_line >= self.interval:
            self._last_line = now
            rate = step / (now - self._started) if now > self._started else 0.0
            log.info("%s", status_line(step, total_steps(trainer), rate, latest_metrics(trainer, self.task_metric)))

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        pass

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.terminal:
            self.train_progress_bar.n = trainer.global_step
            self.train_progress_bar.set_postfix({k: f"{v:.4g}" for k, v in
                                                 latest_metrics(trainer, self.task_metric).items()})
            self.train_progress_bar.close()

    # no bars of their own for validation and test: the training bar shows the latest validation metric
    def on_validation_start(self, *_: Any) -> None:
        pass

    def on_validation_batch_start(self, *_: Any, **__: Any) -> None:
        pass

    def on_validation_batch_end(self, *_: Any, **__: Any) -> None:
        pass

    def on_validation_end(self, *_: Any) -> None:
        pass

    def on_test_start(self, *_: Any) -> None:
        pass

    def on_test_batch_start(self, *_: Any, **__: Any) -> None:
        pass

    def on_test_batch_end(self, *_: Any, **__: Any) -> None:
        pass

    def on_test_end(self, *_: Any) -> None:
        pass


class Heartbeat(pl.Callback):
    """Every ``interval`` seconds of training, hands ``beat(steps, total, steps_per_second)`` the progress (the
    run rewrites its ``running`` record with it, which ``rnnbench status`` reads), and warns once when the
    recent speed falls below ``slow_fraction`` of the speed measured over the first ``interval`` seconds."""

    def __init__(self, beat: Callable[[int, int | None, float], None], interval: float = 10.0,
                 slow_fraction: float = 0.2, threads: int | None = None):
        self.beat, self.interval, self.slow_fraction, self.threads = beat, interval, slow_fraction, threads
        self._mark: tuple[float, int] | None = None
        self._early_rate: float | None = None
        self.warned = False

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        now, step = time.perf_counter(), trainer.global_step
        if self._mark is None:
            self._mark = (now, step)  # after the first step: warm-up excluded
            return
        elapsed = now - self._mark[0]
        if elapsed < self.interval:
            return
        rate = (step - self._mark[1]) / elapsed
        self._mark = (now, step)
        self.beat(step, total_steps(trainer), rate)
        if self._early_rate is None:
            self._early_rate = rate
        elif not self.warned and rate < self.slow_fraction * self._early_rate:
            self.warned = True
            advice = ("; threads=1 keeps a small model fast when the machine is shared" if (self.threads or 1) > 1
                      else "")
            log.warning("rnnbench: warning: training slowed to %.0f%% of its early speed (%.3g against %.3g "
                        "steps/s): other processes may be sharing the cores%s", 100 * rate / self._early_rate,
                        rate, self._early_rate, advice)
