"""One job of a run or sweep: validate, build data, model and trainer from config, fit, test, record."""

from __future__ import annotations

import logging
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from rnnbench.config import build, build_diagnostics, validate
from rnnbench.data.references import cached_reference
from rnnbench.data.task import Task
from rnnbench.errors import RnnbenchError, root_cause_line
from rnnbench.screen.progress import Heartbeat, StepProgressBar
from rnnbench.screen.quiet import route_library_output
from rnnbench.sweeps.threads import auto_threads
from rnnbench.tracking.loggers import build_loggers, describe_run, finish_wandb, wandb_loggers, wandb_record
from rnnbench.tracking.record import RECORD_NAME, flatten, new_record, now, read_record, write_json_atomic
from rnnbench.tracking.run_statistics import RunStatistics
from rnnbench.training.divergence import DivergenceMonitor
from rnnbench.training.module import SequenceTaskModule

log = logging.getLogger(__name__)

# Batches are gathered from in-memory tensors: worker processes would only add IPC.
warnings.filterwarnings("ignore", ".*does not have many workers.*")


def run(cfg: DictConfig) -> float | None:
    """Train and test the configured model; write ``result.json`` whatever happens.

    Returns the value of the metric named by ``objective`` (for sweepers that optimise), or None.
    """
    hydra = HydraConfig.get()
    route_library_output(bool(cfg.get("verbose")))
    output_dir = Path(hydra.runtime.output_dir)
    record_path = output_dir / RECORD_NAME
    resolved = OmegaConf.to_container(cfg, resolve=True)
    choices = {k: v for k, v in hydra.runtime.choices.items() if not k.startswith("hydra")}
    record = new_record(resolved, list(hydra.overrides.task), choices, output_dir)

    previous = _finished_record(record_path, record["config_hash"]) if cfg.get("resume") else None
    if previous is not None:
        log.info("resume: %s already %s for this config; skipped", record_path, previous["status"])
        return objective_value(cfg, previous)

    write_json_atomic(record_path, record)
    started = time.perf_counter()
    try:
        _fit_and_test(cfg, record, output_dir, hydra)
    except RnnbenchError as error:
        record.update(status="failed", error=str(error))
        log.error("%s", error)
    except KeyboardInterrupt:
        record.update(status="failed", error="interrupted (KeyboardInterrupt)")
        raise
    except Exception as error:  # a job's failure must not take the sweep down; the record says why
        message = root_cause_line(error)
        record.update(status="failed", error=message, traceback=traceback.format_exc())
        log.error("run failed: %s (traceback in %s)", message, record_path)
    finally:
        finish_wandb(0 if record["status"] in ("completed", "diverged") else 1)
        record.update(wall_seconds=time.perf_counter() - started, finished_at=now())
        write_json_atomic(record_path, record)
    return objective_value(cfg, record)


def _finished_record(path: Path, config_hash: str) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    previous = read_record(path)
    if previous.get("config_hash") == config_hash and previous.get("status") in ("completed", "diverged"):
        return previous
    return None


def objective_value(cfg: DictConfig, record: dict[str, Any]) -> float | None:
    """The metric ``cfg.objective`` names, for optimising sweepers; a diverged or failed run scores worst."""
    name = cfg.get("objective")
    if not name:
        return None
    value = record["metrics"].get(name)
    if record["status"] != "completed" or value is None or value != value:
        maximize = cfg.get("objective_direction", "minimize") == "maximize"
        return float("-inf") if maximize else float("inf")
    return float(value)


def task_summary(task: Task) -> dict[str, Any]:
    return {"name": task.name, "metric": task.metric, "metric_mode": task.metric_mode, "seq_len": task.seq_len,
            "baseline_loss": task.baseline_loss, "baseline_metric": task.baseline_metric}


def _group(cfg: DictConfig, hydra: DictConfig) -> str | None:
    """W&B group: the experiment's (or search's) name, else the sweep dir's name in a multirun."""
    named = hydra.runtime.choices.get("experiment") or hydra.runtime.choices.get("hparams_search")
    if named:
        return str(named)
    if hydra.mode == RunMode.MULTIRUN:
        return Path(hydra.sweep.dir).name
    return None


def _fit_and_test(cfg: DictConfig, record: dict[str, Any], output_dir: Path, hydra: DictConfig) -> None:
    validate(cfg)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)

    datamodule = build(cfg.data, "data")
    task = datamodule.task
    model = build(cfg.model, "model", task=task)
    module = SequenceTaskModule(model, instantiate(cfg.optim))
    parameters = sum(p.numel() for p in model.parameters())
    threads = cfg.get("threads")
    if threads == "auto":
        threads = auto_threads(parameters, datamodule.batch_size)
    if threads:
        torch.set_num_threads(threads)
    data_settings = {k: v for k, v in OmegaConf.to_container(cfg.data, resolve=True).items() if k != "batch_size"}
    record.update(task={**task_summary(task), "reference": cached_reference(datamodule, data_settings)},
                  parameters=parameters, threads=torch.get_num_threads(),
                  model_size={"hidden_size": model.hidden_size, "parameters": parameters,
                              "param_budget": model.param_budget})

    tags = [task.name, cfg.model.cell, f"layers={cfg.model.num_layers}",
            "bidirectional" if cfg.model.bidirectional else "unidirectional"]
    loggers = build_loggers(cfg.get("logger"), save_dir=str(output_dir), group=_group(cfg, hydra), tags=tags,
                            run_name=hydra.job.override_dirname or None)
    describe_run(loggers, flatten(record["config"]), task, parameters)
    record["wandb"] = wandb_record(loggers)

    statistics, divergence = RunStatistics(task), DivergenceMonitor()
    diagnostics = build_diagnostics(cfg.get("diagnostics"))
    record_path = output_dir / RECORD_NAME

    def beat(steps: int, total: int | None, rate: float) -> None:  # the running record, for `rnnbench status`
        write_json_atomic(record_path, {**record, "steps": steps, "progress": {
            "max_steps": total, "steps_per_second": rate, "updated_at": now()}})

    callbacks = [statistics, divergence, *diagnostics, Heartbeat(beat, threads=torch.get_num_threads())]
    # a single run shows its progress; a sweep prints a line per finished job instead (rnnbench.screen)
    show_progress = bool(cfg.trainer.get("enable_progress_bar")) and hydra.mode != RunMode.MULTIRUN
    if show_progress:
        callbacks.append(StepProgressBar(task.metric))
    trainer: pl.Trainer = instantiate(cfg.trainer, logger=loggers or False, callbacks=callbacks,
                                      default_root_dir=str(output_dir), enable_progress_bar=show_progress)
    record["device"] = str(trainer.strategy.root_device)
    trainer.fit(module, datamodule=datamodule)

    metrics: dict[str, float] = {}
    if divergence.diverged_at_step is None:
        if statistics.last_validation_step != trainer.global_step:
            trainer.validate(module, datamodule=datamodule, verbose=False)
        metrics.update(_numbers(trainer.callback_metrics))
        trainer.test(module, datamodule=datamodule, verbose=False)
        status = "completed"
    else:
        status = "diverged"
        log.warning("loss became non-finite at step %d: run ends as diverged", divergence.diverged_at_step)
    metrics.update(_numbers(trainer.callback_metrics))
    metrics.update(statistics.best)
    for diagnostic in diagnostics:
        diagnostic.record_into(record)
    throughput = statistics.throughput()
    record.update(status=status, metrics=metrics, steps=trainer.global_step,
                  diverged_at_step=divergence.diverged_at_step, train_seconds=statistics.train_seconds,
                  throughput=throughput)
    for logger in wandb_loggers(loggers):
        logger.experiment.summary.update({"status": status, "steps": trainer.global_step, **statistics.best,
                                          **(throughput or {})})


def _numbers(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items()}
