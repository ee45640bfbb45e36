"""A resumed run keeps its whole history: the CSV log's rows up to its checkpoint, then the rows it logs on.

Lightning's ``CSVLogger`` starts ``csv/metrics.csv`` afresh when a run starts in a dir that has one, so a run
resumed from its checkpoint at step k used to keep only the rows it logged after k, and everything read from the
history (``steps_to:``, the curves) was wrong. Here every checkpoint records how many rows the log held when it
was written (:class:`HistoryMark`, the log flushed first), and a resumed run starts its log with exactly those rows
(:func:`keep_history`): the rows a killed run logged after its checkpoint are dropped, since the resumed run logs
them again. An uninterrupted run and the same run killed at any moment and resumed write the same file.
"""

from __future__ import annotations

import csv
import logging
import shutil
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import CSVLogger, Logger

log = logging.getLogger(__name__)

CSV_ROWS = "rnnbench_csv_rows"  # the checkpoint's key: {logger's metrics file name: rows it held}


def csv_loggers(loggers: list[Logger]) -> list[CSVLogger]:
    return [logger for logger in loggers if isinstance(logger, CSVLogger)]


def _metrics_file(logger: CSVLogger) -> Path:
    return Path(logger.log_dir) / "metrics.csv"


def _read_rows(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8") as file:
            return list(csv.DictReader(file))
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


class HistoryMark(pl.Callback):
    """Writes into every checkpoint how many rows each CSV log holds, after flushing what it buffered."""

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        rows = {}
        for logger in csv_loggers(trainer.loggers):
            logger.save()
            rows[_metrics_file(logger).name] = len(_read_rows(_metrics_file(logger)))
        checkpoint[CSV_ROWS] = rows


class StepAlignedLogging(pl.Callback):
    """Sends the module's ``train/*``, ``val/*`` and ``test/*`` values to every logger at the number of optimizer
    steps done when each was measured (the record's ``history_steps``: ``completed``): step k's training loss at k
    (every ``trainer.log_every_n_steps`` steps), the validation after k steps at k, the test at the step of the
    weights it measured; the probes log at the same step. The module logs them with ``logger=False``.

    A callback rather than module hooks: Lightning calls callbacks before the module and its checkpoint callbacks
    last, so the validation after step k is in the log before the checkpoint of step k counts the log's rows
    (:class:`HistoryMark`), and a run resumed from that checkpoint keeps it."""

    def __init__(self) -> None:
        self.logged_step = -1  # the last step whose training loss went out (gradient accumulation: once per step)
        self.tested_step: int | None = None  # the step of the weights the test measures, if not the last (early stop)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        step = trainer.global_step  # this batch's optimizer step is done (or, accumulating, the last one)
        loss = trainer.callback_metrics.get("train/loss")  # as logged: not divided by the accumulation count
        if step > 0 and step != self.logged_step and step % trainer.log_every_n_steps == 0 and loss is not None:
            self.logged_step = step
            _to_loggers(trainer, {"train/loss": float(loss)}, step)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            _to_loggers(trainer, split_values(trainer, "val"), trainer.global_step)

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        step = trainer.global_step if self.tested_step is None else self.tested_step
        _to_loggers(trainer, split_values(trainer, "test"), step)


def split_values(trainer: pl.Trainer, split: str) -> dict[str, float]:
    """What the module logged last under ``<split>/`` (``val/loss``, ``val/mse``, ``train/loss``), and under
    ``<split>@<T>/`` (``test@400/mse``: the test at another length), as floats."""
    return {name: float(value) for name, value in trainer.callback_metrics.items()
            if name.startswith((f"{split}/", f"{split}@"))}


def _to_loggers(trainer: pl.Trainer, values: dict[str, float], step: int) -> None:
    if values:
        for logger in trainer.loggers:
            logger.log_metrics({**values, "epoch": trainer.current_epoch}, step=step)


def rows_at_checkpoint(checkpoint: Path) -> dict[str, int] | None:
    """What :class:`HistoryMark` wrote into ``checkpoint``; None for a checkpoint written without it."""
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - an unreadable checkpoint: Lightning says why when it loads it
        return None
    rows = state.get(CSV_ROWS)
    return rows if isinstance(rows, dict) else None


def keep_history(loggers: list[Logger], checkpoint: Path, resume_step: int) -> int:
    """Start each CSV log of a resumed run with the rows its checkpoint counted; return how many were kept.

    A checkpoint written before this existed has no count: then the rows of the steps before ``resume_step`` are
    kept, which may drop the last validation's row or keep a row the resumed run logs again."""
    counted = rows_at_checkpoint(checkpoint)
    kept = 0
    for logger in csv_loggers(loggers):
        path = _metrics_file(logger)
        rows = _read_rows(path)
        if counted is not None:
            rows = rows[:counted.get(path.name, 0)]
        else:
            rows = [row for row in rows if _step(row) is not None and _step(row) < resume_step]
        with warnings.catch_warnings():  # "previous log files ... will be deleted": the rows kept are written back
            warnings.filterwarnings("ignore", ".*exists and is not empty.*")
            writer = logger.experiment
        writer.metrics[:0] = rows
        writer.metrics_keys = sorted(set(writer.metrics_keys).union(*(row.keys() for row in rows)))
        if rows:
            writer.save()
        kept += len(rows)
    return kept


def copy_history(source: Path, destination: Path, logger_configs: Any) -> None:
    """Copy the CSV logs a finished job left in its dir (``<dir>/<name>`` of each CSV logger writing into the job
    dir) into the dir of the job that reuses its record (a grown grid's ``resume=true``), so its history, and so
    ``steps_to:`` and the curves, travel with it."""
    for node in (logger_configs or {}).values():
        if node is None or not str(node.get("_target_", "")).endswith("CSVLogger") or node.get("save_dir"):
            continue
        name = str(node.get("name") or "")
        if name and (source / name).is_dir():
            shutil.copytree(source / name, destination / name, dirs_exist_ok=True)


def _step(row: dict[str, str]) -> int | None:
    try:
        return int(float(row.get("step") or ""))
    except ValueError:
        return None
