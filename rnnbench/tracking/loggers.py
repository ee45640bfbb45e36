"""Experiment loggers from the ``logger`` config group, and the W&B run lifecycle."""

from __future__ import annotations

import sys
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig
from pytorch_lightning.loggers import Logger

from rnnbench.data.task import Task


def is_wandb(logger_config: DictConfig) -> bool:
    return str(logger_config.get("_target_", "")).endswith("WandbLogger")


def wandb_loggers(loggers: list[Logger]) -> list[Logger]:
    """The W&B loggers among ``loggers`` (by name, so wandb itself is imported only when one is used)."""
    return [logger for logger in loggers if type(logger).__name__ == "WandbLogger"]


def build_loggers(logger_configs: DictConfig | None, *, save_dir: str, run_name: str | None,
                  group: str | None, tags: list[str], wandb_id: str | None = None) -> list[Logger]:
    """Instantiate every logger under ``logger``; settings the config leaves null are filled per job.

    Every logger writes under ``save_dir``, the job's own absolute output dir (W&B loses run files
    when given a relative dir in a multirun). ``wandb_id``: the W&B run a resumed job continues (one run, not two).
    """
    loggers = []
    for node in (logger_configs or {}).values():
        if node is None:
            continue
        defaults: dict[str, Any] = {"save_dir": save_dir}
        if is_wandb(node):
            defaults.update(name=run_name, group=group, tags=tags)
            if wandb_id is not None:
                defaults.update(id=wandb_id, resume="allow")
        logger = instantiate(node, **{k: v for k, v in defaults.items() if node.get(k) is None})
        if is_wandb(node):
            _drop_anonymous(logger)
        loggers.append(logger)
    return loggers


def _drop_anonymous(logger: Logger) -> None:
    """Lightning's WandbLogger always passes ``anonymous=None`` to ``wandb.init``, and wandb 0.31 then warns that
    the setting has no effect, once per process, past ``WANDB_SILENT``; leaving the key out is the same run.
    (``_wandb_init`` is Lightning's private dict of init arguments: this is its one use.)"""
    init = getattr(logger, "_wandb_init", None)
    if isinstance(init, dict) and init.get("anonymous") is None:
        init.pop("anonymous", None)


def describe_run(loggers: list[Logger], flat_config: dict[str, Any], task: Task, parameters: int) -> None:
    """Log the config to every logger; give W&B its summaries (best val, final test) and the parameter count."""
    for logger in loggers:
        logger.log_hyperparams(flat_config)
    for logger in wandb_loggers(loggers):
        run = logger.experiment
        metric_summary = "max" if task.metric_mode == "max" else "min"
        run.define_metric("val/loss", summary="min")
        run.define_metric(f"val/{task.metric}", summary=metric_summary)
        for name in ("loss", task.metric):
            run.define_metric(f"test/{name}", summary="last")
        run.summary["parameters"] = parameters


def wandb_record(loggers: list[Logger]) -> dict[str, Any] | None:
    for logger in wandb_loggers(loggers):
        if logger._experiment is not None:
            run = logger._experiment
            return {"run_id": run.id, "mode": "offline" if run.offline else "online", "dir": run.dir,
                    "group": run.group or None, "name": run.name}
    return None


def finish_wandb(exit_code: int) -> None:
    """End the current W&B run, if any, so the next job in this process starts its own."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish(exit_code=exit_code)
