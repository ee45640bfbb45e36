"""Share the machine's cores among the jobs a parallel launcher runs at once.

Every job of a ``hydra/launcher=joblib`` sweep runs in a worker process next to ``n_jobs - 1``
others; with torch's default (one thread per core) in each, ``n_jobs`` workers would oversubscribe the
cores ``n_jobs`` times. :class:`ThreadsPerJob` gives each job ``threads = cores // n_jobs`` through
the top-level ``threads`` key (``cpus_per_task`` under submitit), unless the config or the command
line already sets ``threads``. :func:`auto_threads` is what ``threads=auto`` (the default) means for a job
that runs alone.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict, read_write

log = logging.getLogger(__name__)


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# Per-step work (batch size x parameters) above which a second thread pays on an idle machine:
# measured (results/performance/threads.md) at 0.5 M (LSTM-64, batch 32: 1 thread as fast as 2) and 77 M
# (LSTM-256, batch 256: 2 threads 1.7x faster); the threshold lies between, nearer the large case.
PARALLEL_WORK = 20_000_000


def auto_threads(parameters: int, batch_size: int, cores: int | None = None, load: float | None = None) -> int:
    """``threads=auto``: one thread for a model this small, or when other processes already keep the cores
    busy (the 1-minute load average), since then a second thread makes every step wait for a core (28x
    slower, measured); all the cores for a big model on an idle machine."""
    cores = available_cores() if cores is None else cores
    if load is None:
        try:
            load = os.getloadavg()[0]
        except OSError:
            load = 0.0
    if cores == 1 or parameters * batch_size < PARALLEL_WORK or load > 0.5:
        return 1
    return cores


def threads_per_job(launcher: DictConfig | dict[str, Any], cores: int) -> int | None:
    """Torch threads for each job under ``launcher`` (a ``hydra.launcher`` node); None: leave torch's default.

    joblib: ``cores // n_jobs`` (``n_jobs`` < 0 counts back from the cores, as joblib does);
    submitit (local or Slurm): ``cpus_per_task`` when it is set; any other launcher runs one job
    at a time (or is unknown), so its jobs keep torch's default.
    """
    target = str(launcher.get("_target_") or "")
    if target.endswith("JoblibLauncher"):
        n_jobs = launcher.get("n_jobs")
        if not isinstance(n_jobs, int) or n_jobs == 0:
            return None
        workers = n_jobs if n_jobs > 0 else max(cores + 1 + n_jobs, 1)
        return max(1, cores // workers)
    if "hydra_submitit_launcher" in target:
        cpus = launcher.get("cpus_per_task")
        return cpus if isinstance(cpus, int) and cpus > 0 else None
    return None


class ThreadsPerJob(Callback):
    """Hydra callback: at the start of a multirun whose config leaves ``threads`` null or auto, add
    ``threads=<share>`` to the sweep's task overrides, so every job (composed from them, in whatever
    process the launcher runs it) gets the launcher's share of the cores."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.get("threads") not in (None, "auto"):
            return
        threads = threads_per_job(config.hydra.launcher, available_cores())
        if threads is None:
            return
        with read_write(config), open_dict(config):
            config.threads = threads
            config.hydra.overrides.task.append(f"threads={threads}")
        log.info("threads=%d per job (%d cores, launcher %s)", threads, available_cores(),
                 str(config.hydra.launcher.get("_target_", "")).rsplit(".", 1)[-1])
