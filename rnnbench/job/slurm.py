"""``hydra/launcher=slurm``: what rnnbench adds to hydra-submitit-launcher, in the launching process and in each job.

In the launching process (:class:`SlurmSupport`, a Hydra callback of ``conf/hydra/rnnbench.yaml``): submitit
follows its jobs with ``sacct``, which fails on a cluster without accounting (``Slurm accounting storage is
disabled``) and then prints ``Bypassing sacct error ... status may be inaccurate`` at every poll.
:class:`QuietSlurmWatcher` asks ``sacct`` first and, once it fails, asks ``squeue`` (pending, running and
recently ended jobs) for the rest of the sweep, quietly; a job squeue no longer knows is done when its result is
on disk, as submitit already checks.

In a job (:func:`stop_signals`, :func:`restarted`, :func:`interrupted_job_ends_here`, called by
:class:`rnnbench.job.run.Job`):

- ``SIGUSR2``, submitit's warning ``signal_delay_s`` seconds before ``timeout_min`` (``sbatch --signal``), stops the
  run like SIGTERM: ``interrupted``, with its checkpoint.
- A job Slurm runs again (``scontrol requeue``, preemption with requeue, or rnnbench's own requeue below) has
  ``SLURM_RESTART_COUNT`` > 0: it continues from its checkpoint as ``resume=true`` would.
- After an interrupted run has written its record, the job either leaves without a result, because Slurm is
  requeueing it (the launcher waits for the run that continues it), or, for a time-limit warning while
  ``hydra.launcher.max_num_timeout`` allows more restarts, requeues itself and leaves; otherwise (``scancel``,
  ``scancel --signal=TERM``, the time limit reached) it returns normally, so that the sweep takes its
  ``interrupted`` record as the job's outcome and goes on; ``resume=true`` continues it later.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from rnnbench.config import SUBMITIT_SLURM

log = logging.getLogger(__name__)

TIME_LIMIT_WARNING = signal.SIGUSR2  # submitit's `#SBATCH --signal=USR2@<signal_delay_s>`

# squeue's states, as submitit's watcher understands them (it waits while a job is READY, PENDING, RUNNING,
# REQUEUED, COMPLETING, PREEMPTED or UNKNOWN).
_STILL_RUNNING = {"CONFIGURING", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED", "SUSPENDED"}
_STILL_PENDING = {"REQUEUE_FED", "REQUEUE_HOLD", "RESV_DEL_HOLD", "SPECIAL_EXIT"}


def _watcher_class() -> type:
    from submitit.slurm.slurm import SlurmInfoWatcher

    class QuietSlurmWatcher(SlurmInfoWatcher):
        """submitit's watcher, with ``squeue`` instead of ``sacct`` once ``sacct`` fails (no accounting)."""

        accounting: bool | None = None  # None: not tried yet

        def update(self) -> None:
            command = self._make_command()
            if command is None:
                return
            self._num_calls += 1
            if self.accounting is not False:
                try:
                    result = subprocess.run(command, capture_output=True, shell=False, timeout=120)
                except (OSError, subprocess.SubprocessError) as error:  # no sacct at all, or it hangs
                    result = subprocess.CompletedProcess(command, 1, b"", str(error).encode())
                if result.returncode == 0:
                    self.accounting = True
                    self._output = result.stdout
                    self._info_dict.update(self.read_info(self._output))
                    self._last_status_check = time.time()
                    return
                self.accounting = False
                log.debug("sacct failed (%s): following the jobs with squeue",
                          result.stderr.decode(errors="replace").strip())
            table = squeue_table(command[command.index("-j"):][1::2])
            if table is not None:
                self._info_dict.update(self.read_info(table))
            self._last_status_check = time.time()

    return QuietSlurmWatcher


def squeue_table(job_ids: list[str]) -> str | None:
    """What ``sacct -o JobID,State,NodeList --parsable2`` would say about ``job_ids`` (one line per array task),
    from ``squeue``, which knows pending, running and recently ended jobs; None when it knows none of them (they
    ended long ago: their result files tell) or cannot be reached."""
    if not job_ids:
        return None
    try:
        result = subprocess.run(["squeue", "--noheader", "--array", "--states=all", "--format=%i|%T|%N",
                                 f"--jobs={','.join(job_ids)}"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as error:
        log.debug("squeue failed: %s", error)
        return None
    if result.returncode != 0:
        log.debug("squeue failed: %s", result.stderr.strip())
        return None
    lines = ["JobID|State|NodeList"]
    for line in result.stdout.splitlines():
        job, _, rest = line.strip().partition("|")
        state, _, nodes = rest.partition("|")
        state = (state.split() or ["UNKNOWN"])[0]
        state = "RUNNING" if state in _STILL_RUNNING else "PENDING" if state in _STILL_PENDING else state
        lines.append(f"{job}|{state}|{nodes}")
    return "\n".join(lines)


def install_quiet_watcher() -> None:
    """Make every submitit Slurm job of this process use :class:`QuietSlurmWatcher` (idempotent)."""
    from submitit.slurm.slurm import SlurmJob

    if getattr(type(SlurmJob.watcher), "__name__", "") != "QuietSlurmWatcher":
        SlurmJob.watcher = _watcher_class()(delay_s=600)


class SlurmSupport(Callback):
    """Hydra callback: a Slurm sweep's launching process follows its jobs quietly (:class:`QuietSlurmWatcher`)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if str(config.hydra.launcher.get("_target_", "")) == SUBMITIT_SLURM:
            install_quiet_watcher()


# ------------------------------------------------------------------------------------------------ in a job


def in_slurm_job() -> bool:
    """Whether this process runs a submitit job on Slurm (``hydra/launcher=slurm``)."""
    return os.environ.get("SUBMITIT_EXECUTOR") == "slurm" and "SLURM_JOB_ID" in os.environ


def restarted() -> bool:
    """Whether Slurm runs this job again (requeued after preemption, ``scontrol requeue`` or a time limit)."""
    return in_slurm_job() and int(os.environ.get("SLURM_RESTART_COUNT") or 0) > 0


def stop_signals() -> tuple[int, ...]:
    """The signals besides SIGINT and SIGTERM that stop a run as ``interrupted``: Slurm's time-limit warning."""
    return (TIME_LIMIT_WARNING,) if in_slurm_job() else ()


def _job_id() -> str:
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"{array}_{task}" if array and task else os.environ["SLURM_JOB_ID"]


def slurm_restarts() -> int | None:
    """How many times Slurm has restarted this job so far, from ``scontrol`` (None if it cannot tell)."""
    try:
        result = subprocess.run(["scontrol", "show", "job", "-o", os.environ["SLURM_JOB_ID"]], capture_output=True,
                                text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    for item in result.stdout.split():
        if item.startswith("Restarts="):
            return int(item.split("=", 1)[1])
    return None


def being_requeued() -> bool:
    """Whether Slurm is putting this job back in the queue right now (its restart count has gone up since it
    started: ``scontrol requeue``, or preemption with requeue)."""
    restarts = slurm_restarts()
    return restarts is not None and restarts > int(os.environ.get("SLURM_RESTART_COUNT") or 0)


def requeue() -> bool:
    """Ask Slurm to run this job again (it will continue from its checkpoint); False if Slurm refuses."""
    try:
        result = subprocess.run(["scontrol", "requeue", _job_id()], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as error:
        result = subprocess.CompletedProcess([], 1, "", str(error))
    if result.returncode != 0:
        log.warning("rnnbench: Slurm did not requeue job %s: %s", _job_id(), result.stderr.strip())
    return result.returncode == 0


def interrupted_job_ends_here(signum: int, launcher: DictConfig | None) -> bool:
    """After a run of this job stopped as ``interrupted`` and wrote its record: True when the job ends here
    (return its record to the sweep: scancel, the time limit, SIGINT), False when the process should leave
    without a result because Slurm runs the job again (requeued by Slurm, or here for a time-limit warning while
    ``max_num_timeout`` allows); always False outside a Slurm job (the interrupt stops the sweep, as before)."""
    if not in_slurm_job():
        return False
    if being_requeued():
        log.warning("rnnbench: Slurm requeued this job; it continues from its checkpoint when it runs again")
        return False
    allowed = int((launcher or {}).get("max_num_timeout") or 0)
    if signum == TIME_LIMIT_WARNING and int(os.environ.get("SLURM_RESTART_COUNT") or 0) < allowed and requeue():
        log.warning("rnnbench: near its time limit: requeued (restart %d of at most %d); it continues from its "
                    "checkpoint", int(os.environ.get("SLURM_RESTART_COUNT") or 0) + 1, allowed)
        return False
    return True
