"""One job of a run or sweep: validate, build data, model and trainer from config, fit, test, record."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import signal
import sys
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
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

from rnnbench.config import build, build_diagnostics, validate
from rnnbench.data.references import cached_reference
from rnnbench.data.task import Task
from rnnbench.errors import RnnbenchError, defaults_of, root_cause_line
from rnnbench.job import slurm
from rnnbench.job.checkpoints import (BEST_NAME, CHECKPOINT_DIR, RandomState, checkpoint_path, checkpoint_step,
                                      last_checkpoint)
from rnnbench.job.divergence import DivergenceMonitor
from rnnbench.job.history import HistoryMark, StepAlignedLogging, copy_history, keep_history
from rnnbench.job.loggers import (attach_run_files, build_loggers, describe_run, finish_wandb, summarise_run,
                                  wandb_identity, wandb_loggers, wandb_record)
from rnnbench.job.module import SequenceTaskModule
from rnnbench.job.progress import Heartbeat, StepProgressBar
from rnnbench.job.quiet import route_library_output
from rnnbench.job.run_statistics import RunStatistics
from rnnbench.job.threads import auto_threads
from rnnbench.job.wandb_offline import continue_offline_run, supersede_segments
from rnnbench.job.weight_noise import WeightNoise
from rnnbench.record.interrupts import LAUNCHER_PID, Interrupted, ParentWatch, interrupt_on_signals
from rnnbench.record.locks import JOB_LOCK, DirLock
from rnnbench.record.plan import finished_elsewhere, read_plan
from rnnbench.record.schema import (COMPLETED, DIVERGED, FAILED, FINISHED, INTERRUPTED, RECORD_NAME, Record,
                                    RecordError, SpaceReserve, flatten, new_record, now, read_record, set_aside,
                                    write_json_atomic)
from rnnbench.record.secrets import Secrets

log = logging.getLogger(__name__)

# Batches are gathered from in-memory tensors: worker processes would only add IPC.
warnings.filterwarnings("ignore", ".*does not have many workers.*")
# A resumed run's data module continues the batch order from the checkpoint's step itself
# (rnnbench.data.base.ResumableBatches), which Lightning cannot see.
warnings.filterwarnings("ignore", ".*resuming from a checkpoint that ended before the epoch ended.*")
# A resumed run continues in its own checkpoint dir, which holds the checkpoint it resumes from by design.
warnings.filterwarnings("ignore", ".*Checkpoint directory .* exists and is not empty.*")


def run(cfg: DictConfig) -> float | None:
    """Train and test the configured model; write ``result.json`` whatever happens (see :class:`Job`).

    Returns the value of the metric named by ``objective`` (for sweepers that optimise), or None.
    """
    return Job(cfg, HydraConfig.get()).run()


class Job:
    """One job in its output dir: the record, the lock, resume, signals, secrets, and the order of the writes.

    The order protects what matters most: the final record is written first, small and before anything optional
    (W&B's finish, removing the checkpoint, scrubbing files), so a full disk or a kill there never loses a result.
    """

    def __init__(self, cfg: DictConfig, hydra: DictConfig):
        self.cfg, self.hydra = cfg, hydra
        self.output_dir = Path(hydra.runtime.output_dir)
        self.record_path = self.output_dir / RECORD_NAME
        self.secrets = Secrets.from_environment(list(hydra.overrides.task))
        self.checkpoint = checkpoint_path(self.output_dir)
        self.reserve = SpaceReserve(self.output_dir)

    def run(self) -> float | None:
        cfg, hydra = self.cfg, self.hydra
        route_library_output(bool(cfg.get("verbose")))
        sys.argv[:] = self.secrets.scrub_overrides(sys.argv)  # W&B records the command line
        self.secrets.scrub_files(self.output_dir / ".hydra")
        if hydra.mode == RunMode.MULTIRUN:
            self.secrets.scrub_file(Path(hydra.sweep.dir) / "multirun.yaml")
        resolved = self.secrets.scrub_tree(OmegaConf.to_container(cfg, resolve=True))
        choices = {k: v for k, v in hydra.runtime.choices.items() if not k.startswith("hydra")}
        record = new_record(resolved, self.secrets.scrub_overrides(hydra.overrides.task), choices, self.output_dir)
        watch = ParentWatch.for_this_process() if launched_by_another_process() else None
        if watch is not None:
            watch.job_started()
        try:
            with DirLock(self.output_dir, JOB_LOCK).acquire(wait=JOB_LOCK_WAIT, what="this job"):
                return self._run_locked(record)
        except RnnbenchError as error:  # the job dir is another process's: leave its files alone
            log.error("rnnbench: error: %s", self.secrets.scrub(str(error)))
            return objective_value(self.cfg, record.to_json())
        finally:
            if watch is not None and watch.job_ended():  # the parent is gone and the record is written: end here
                logging.shutdown()
                os._exit(Interrupted(signal.SIGTERM).exit_status)

    def _run_locked(self, record: Record) -> float | None:
        cfg = self.cfg
        remove_stray_temporaries(self.output_dir)
        previous = self._previous_record()
        resume = bool(cfg.get("resume")) or slurm.restarted()  # a job Slurm runs again continues from its checkpoint
        if previous is not None and previous.get("config_hash") == record.config_hash:
            if resume and previous.get("status") in FINISHED:
                log.info("resume: %s already %s for this config; skipped", self.record_path, previous["status"])
                return objective_value(cfg, previous)
        elif previous is not None:
            set_aside(self.record_path, "replaced")  # another config's record: kept beside, never overwritten
            previous = None
        if resume and previous is None and self.hydra.mode == RunMode.MULTIRUN:
            earlier = finished_elsewhere(Path(self.hydra.sweep.dir), record.config_hash)
            if earlier is not None:  # a grown grid: this config already ran in an earlier sweep of the command
                copy_history(Path(earlier["reused_from"]).parent, self.output_dir, cfg.get("logger"))
                write_json_atomic(self.record_path, earlier)
                log.info("resume: the same config already %s in %s; reused", earlier["status"], earlier["output_dir"])
                return objective_value(cfg, earlier)
        resume_step = checkpoint_step(self.checkpoint) if resume and previous is not None else None
        if previous is not None and resume:
            record.wandb = previous.get("wandb")  # the W&B run to continue (by id)
            record.started_at = previous.get("started_at") or record.started_at
        record.resumed_from_step = resume_step
        write_json_atomic(self.record_path, record)
        try:
            self.reserve.take()
        except OSError as error:
            record.update(status=FAILED, error=f"{self.output_dir}: {error.strerror or error}: no room to run the job",
                          finished_at=now())
            self._write_final(record)
            log.error("rnnbench: error: %s", record.error)
            return objective_value(cfg, record.to_json())
        started = time.perf_counter()
        stop: Interrupted | None = None
        training = Training(cfg, self.hydra, record, self.output_dir, self.secrets, resume_step)
        try:
            with interrupt_on_signals(*slurm.stop_signals()):
                training.fit_and_test()
        except Interrupted as interrupted:
            stop = interrupted
            training.keep_progress()
            record.update(status=INTERRUPTED, error=str(interrupted))
            log.warning("rnnbench: %s at step %d; resume=true continues it from its last checkpoint",
                        interrupted, record.steps)
        except RnnbenchError as error:
            training.keep_progress()
            record.update(status=FAILED, error=str(error))
            log.error("%s", error)
        except Exception as error:  # a job's failure must not take the sweep down; the record says why
            training.keep_progress()  # the steps done, and the last validation's metrics
            message = root_cause_line(error)
            record.update(status=FAILED, error=message, traceback=traceback.format_exc())
            log.error("run failed: %s (traceback in %s)", message, self.record_path)
        record.update(error=self.secrets.scrub(record.error) if record.error else None,
                      traceback=self.secrets.scrub(record.traceback) if record.traceback else None,
                      progress=None, wall_seconds=time.perf_counter() - started, finished_at=now())
        self._write_final(record)
        self.reserve.release()
        # what follows is optional: a failure here must not change the result already on disk
        with interrupt_on_signals():  # a second Ctrl-C during clean-up is answered once the files are closed
            self.secrets.scrub_files(self.output_dir)  # before W&B takes copies of the job's files
            try:  # only into a W&B run that started: W&B's own failure (online, no network) must not end the job
                if record.wandb:
                    summarise_run(training.loggers, record.to_json())
                    attach_run_files(training.loggers, self.output_dir)
            except Exception as error:
                log.warning("rnnbench: warning: W&B's summary and files of this run: %s", root_cause_line(error))
            finish_wandb(0 if record.status in FINISHED else 1)
            if record.status in FINISHED and self.checkpoint.parent.exists() and cfg.get("checkpoint") != "keep":
                shutil.rmtree(self.checkpoint.parent, ignore_errors=True)
            self.secrets.scrub_files(self.output_dir)
        if stop is not None and not slurm.in_slurm_job():
            raise stop  # the sweep stops
        if stop is not None and not slurm.interrupted_job_ends_here(stop.signum, self.hydra.get("launcher")):
            raise SystemExit(stop.exit_status)  # Slurm runs this job again: leave without a result (the launcher waits)
        return objective_value(cfg, record.to_json())  # an interrupted Slurm job's record is its outcome

    def _previous_record(self) -> dict[str, Any] | None:
        """This dir's record, if any; an unreadable or foreign one is set aside (kept, renamed) and counts as none."""
        if not self.record_path.exists():
            return None
        try:
            return read_record(self.record_path)
        except RecordError as error:
            aside = set_aside(self.record_path, "unreadable")
            log.warning("rnnbench: warning: %s; kept as %s and the job runs again", error, aside.name)
            return None

    def _write_final(self, record: Record) -> None:
        """The final record; on a full disk, again once the job's reserved space is given back, then a smaller
        one (no curves, no traceback); then one line."""
        attempts = (record, record, dataclasses.replace(record, traceback=None, gradients=None, gates=None))
        first: OSError | None = None
        for attempt, payload in enumerate(attempts):
            try:
                write_json_atomic(self.record_path, payload)
            except OSError as error:
                first = first or error
                self.reserve.release()
                continue
            if first is not None:
                log.error("rnnbench: error: %s: %s%s", self.record_path, first.strerror or first,
                          "; wrote the record without its gradient curves" if attempt == 2 else
                          "; wrote the record into the space reserved for it")
            return
        log.error("rnnbench: error: cannot write %s: %s; the job's result (%s) is lost",
                  self.record_path, first.strerror or first, record.status)


JOB_LOCK_WAIT = 60.0  # seconds a job waits for an orphan of a killed sweep to stop writing its dir


def validated_by_launcher(hydra: DictConfig) -> bool:
    """Whether ``rnnbench train`` validated this job's overrides before it started (:mod:`rnnbench.record.plan`)."""
    directory = Path(hydra.sweep.dir) if hydra.mode == RunMode.MULTIRUN else Path(hydra.runtime.output_dir)
    plan = read_plan(directory)
    return plan is not None and plan.covers(hydra.overrides.task)


def launched_by_another_process() -> bool:
    """Whether this job runs in a worker process (joblib, submitit) rather than in the process that launched the
    sweep (``RNNBENCH_LAUNCHER_PID``, set by the launch path)."""
    launcher = os.environ.get(LAUNCHER_PID)
    return launcher is not None and launcher != str(os.getpid())


def remove_stray_temporaries(directory: Path) -> None:
    """Remove temporary records a killed writer left (``.result.json.*.tmp``)."""
    for stray in directory.glob(f".{RECORD_NAME}.*.tmp"):
        stray.unlink(missing_ok=True)


def objective_value(cfg: DictConfig, record: dict[str, Any]) -> float | None:
    """The metric ``cfg.objective`` names, for optimising sweepers; a diverged or failed run scores worst."""
    name = cfg.get("objective")
    if not name:
        return None
    value = record["metrics"].get(name)
    if record["status"] != COMPLETED or value is None or value != value:
        maximize = cfg.get("objective_direction", "minimize") == "maximize"
        return float("-inf") if maximize else float("inf")
    return float(value)


def task_summary(task: Task) -> dict[str, Any]:
    return {"name": task.name, "metric": task.metric, "metric_mode": task.metric_mode, "seq_len": task.seq_len,
            "baseline_loss": task.baseline_loss, "baseline_metric": task.baseline_metric}


class Training:
    """Build data, model, loggers and trainer from the config, fit (from a checkpoint when resuming), test, and fill
    the record; :meth:`keep_progress` fills it for a run stopped midway."""

    def __init__(self, cfg: DictConfig, hydra: DictConfig, record: Record, output_dir: Path, secrets: Secrets,
                 resume_step: int | None):
        self.cfg, self.hydra, self.record, self.output_dir = cfg, hydra, record, output_dir
        self.secrets, self.resume_step = secrets, resume_step
        self.trainer: pl.Trainer | None = None
        self.statistics: RunStatistics | None = None
        self.loggers: list[Any] = []

    def fit_and_test(self) -> None:
        cfg, record, output_dir, hydra = self.cfg, self.record, self.output_dir, self.hydra
        if not validated_by_launcher(hydra):
            validate(cfg)  # a value the launcher could not see (an Optuna draw), or a job Hydra ran directly
        pl.seed_everything(cfg.seed, workers=True, verbose=False)

        datamodule = build(cfg.data, "data")
        task = datamodule.task
        model = build(cfg.model, "model", task=task)
        module = SequenceTaskModule(model, instantiate(cfg.optim), datamodule.test_tasks)
        parameters = sum(p.numel() for p in model.parameters())
        threads = cfg.get("threads")
        if threads == "auto":
            threads = auto_threads(parameters, datamodule.batch_size)
        if threads:
            torch.set_num_threads(threads)
        data_settings = {k: v for k, v in OmegaConf.to_container(cfg.data, resolve=True).items()
                         if k != "batch_size"}
        record.update(task={**task_summary(task), "reference": cached_reference(datamodule, data_settings)},
                      parameters=parameters, threads=torch.get_num_threads(),
                      model_size={"hidden_size": model.hidden_size, "parameters": parameters,
                                  "param_budget": model.param_budget, "state_size": model.state_size,
                                  "state_budget": model.state_budget})

        model_setting = {**defaults_of(type(model).__init__), **cfg.model}.get  # ~model.cell: the default cell
        tags = [task.name, str(model_setting("cell")), f"layers={model_setting('num_layers')}",
                "bidirectional" if model_setting("bidirectional") else "unidirectional"]
        previous_wandb = record.wandb or {}
        identity = wandb_identity(hydra, self.secrets.scrub_override)
        # scrubbed before any logger sees them: W&B writes its init arguments (notes, tags) into the run's .wandb
        # file, a binary log that no later scrubbing could rewrite, and `wandb sync` uploads it
        logger_configs = cfg.get("logger")
        if logger_configs is not None:
            logger_configs = OmegaConf.create(self.secrets.scrub_tree(OmegaConf.to_container(logger_configs,
                                                                                             resolve=True)))
        self.loggers = build_loggers(
            logger_configs, save_dir=str(output_dir), identity=identity, tags=tags,
            wandb_id=previous_wandb.get("run_id") if self.resume_step is not None else None)
        if self.resume_step is None and previous_wandb:  # started again from step 0: a new W&B run
            supersede_segments(output_dir / "wandb")
        if self.resume_step is not None:  # before anything opens the CSV log, which Lightning would start afresh
            keep_history(self.loggers, checkpoint_path(output_dir), self.resume_step)
            for run in (logger.experiment for logger in wandb_loggers(self.loggers)):
                if run.offline:  # an online run continues on the server (resume="allow")
                    continue_offline_run(run, self.resume_step)
        describe_run(self.loggers, flatten(record.config), choices=record.choices, config_hash=record.config_hash,
                     overrides=record.overrides)
        record.wandb = wandb_record(self.loggers)

        self.statistics, divergence = RunStatistics(task), DivergenceMonitor()
        diagnostics = build_diagnostics(cfg.get("diagnostics"))
        record_path = output_dir / RECORD_NAME

        def beat(steps: int, total: int | None, rate: float) -> None:  # the running record, for `rnnbench status`
            write_json_atomic(record_path, dataclasses.replace(record, steps=steps, progress={
                "max_steps": total, "steps_per_second": rate, "updated_at": now()}))

        callbacks = [StepAlignedLogging(), self.statistics, divergence, *diagnostics, RandomState(), HistoryMark(),
                     Heartbeat(beat, threads=torch.get_num_threads())]
        if cfg.get("weight_noise"):
            callbacks.insert(0, WeightNoise(cfg.weight_noise, seed=cfg.seed))
        if cfg.get("checkpoint", True):
            callbacks.append(last_checkpoint(output_dir))
            record.checkpoint = str(checkpoint_path(output_dir))
        stopping = early_stopping(cfg.get("early_stopping"), task, output_dir)
        callbacks += list(stopping or ())
        # a single run shows its progress; a sweep prints a line per finished job instead (rnnbench.launch.sweep_lines)
        show_progress = bool(cfg.trainer.get("enable_progress_bar")) and hydra.mode != RunMode.MULTIRUN
        if show_progress:
            callbacks.append(StepProgressBar(task.metric))
        self.trainer = trainer = instantiate(
            cfg.trainer, logger=self.loggers or False, callbacks=callbacks, default_root_dir=str(output_dir),
            enable_progress_bar=show_progress,
            enable_checkpointing=bool(cfg.get("checkpoint", True)) or stopping is not None)
        record.device = str(trainer.strategy.root_device)
        if self.resume_step is not None:
            log.info("resume: continuing %s from its checkpoint at step %d", output_dir, self.resume_step)
            trainer.fit(module, datamodule=datamodule, ckpt_path=str(checkpoint_path(output_dir)), weights_only=True)
        else:
            trainer.fit(module, datamodule=datamodule)

        # what the latest validation saw (a run resumed from its last checkpoint fits nothing, and Lightning's
        # callback_metrics then start empty); what Lightning holds now is newer where it has it
        metrics: dict[str, float] = {**self.statistics.last_train, **self.statistics.last_validation}
        if divergence.diverged_at_step is None:
            if self.statistics.last_validation_step != trainer.global_step:
                trainer.validate(module, datamodule=datamodule, verbose=False)
            metrics.update(_numbers(trainer.callback_metrics))
            if stopping is not None:
                record.early_stopping = tested_best(trainer, module, datamodule, *stopping)
            else:
                trainer.test(module, datamodule=datamodule, verbose=False)
            status = COMPLETED
        else:
            status = DIVERGED
            log.warning("loss became non-finite at step %d: run ends as diverged", divergence.diverged_at_step)
        metrics.update(_numbers(trainer.callback_metrics))
        metrics.update(self.statistics.best)
        for diagnostic in diagnostics:
            diagnostic.record_into(record)
        throughput = self.statistics.throughput()
        record.update(status=status, metrics=metrics, steps=trainer.global_step,
                      diverged_at_step=divergence.diverged_at_step, train_seconds=self.statistics.train_seconds,
                      throughput=throughput, padding=self.statistics.padding())

    def keep_progress(self) -> None:
        """A run stopped midway keeps its steps and the metrics of its last validation."""
        if self.trainer is None or self.statistics is None:
            return
        self.record.update(steps=self.trainer.global_step,
                           metrics={**self.statistics.last_validation, **self.statistics.best},
                           train_seconds=self.statistics._train_seconds_so_far())


def early_stopping(patience: int | None, task: Task,
                   output_dir: Path) -> tuple[EarlyStopping, ModelCheckpoint] | None:
    """Lightning's ``EarlyStopping`` on ``val/<metric>`` after ``patience`` validations without improvement, and a
    ``ModelCheckpoint`` keeping the best validation's weights (``checkpoints/best.ckpt``) for the test; None when
    ``patience`` is None."""
    if patience is None:
        return None
    monitor = f"val/{task.metric}"
    return (EarlyStopping(monitor=monitor, mode=task.metric_mode, patience=patience, check_on_train_epoch_end=False,
                          check_finite=False),
            ModelCheckpoint(dirpath=output_dir / CHECKPOINT_DIR, filename=BEST_NAME, monitor=monitor,
                            mode=task.metric_mode, save_top_k=1, save_weights_only=True, save_on_train_epoch_end=False,
                            enable_version_counter=False))


def tested_best(trainer: pl.Trainer, module: pl.LightningModule, datamodule: pl.LightningDataModule,
                stopping: EarlyStopping, best: ModelCheckpoint) -> dict[str, Any]:
    """Test the best validation checkpoint's weights (the last weights if no validation scored); the record's
    ``early_stopping`` section."""
    stopped_at = trainer.global_step if stopping.wait_count >= stopping.patience else None
    if best.best_model_path:
        tested_step = checkpoint_step(Path(best.best_model_path))
        for callback in trainer.callbacks:  # the history's test row at the step of the weights it measures
            if isinstance(callback, StepAlignedLogging):
                callback.tested_step = tested_step
        trainer.test(module, datamodule=datamodule, verbose=False, ckpt_path=best.best_model_path, weights_only=True)
    else:
        tested_step = trainer.global_step
        trainer.test(module, datamodule=datamodule, verbose=False)
    return {"patience": stopping.patience, "monitor": stopping.monitor, "stopped_at_step": stopped_at,
            "tested_step": tested_step}


def _numbers(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items()}
