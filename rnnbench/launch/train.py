"""The one launch path of ``rnnbench train``: from the command line to the exit status.

0. **Refuse a value its rule judges alone** (``seed=abc``, ``threads=0``: :data:`~rnnbench.record.keys.CHECKED_ALONE`)
   at once, in the line the validation would print, before Hydra's plugins, torch or Lightning are imported
   (:func:`refuse_a_value_alone`).
1. **Validate** every job before any starts (:func:`rnnbench.launch.validate.check_every_job`): compose once per
   distinct set of config-group choices, set each job's values on a copy, check them; a bad input ends here
   with one line (exit 2) and nothing written.
2. **Resolve the dir**: the run or sweep dir Hydra would make now, or with ``resume=true`` the latest earlier
   dir of the same command (:mod:`rnnbench.launch.resume`); it is then pinned on Hydra's command line
   (``hydra.sweep.dir=...``), so Hydra writes exactly where this process locked and will summarise.
3. **Lock** that dir (:class:`rnnbench.record.locks.DirLock`): a second ``rnnbench train`` into a dir in use is
   refused in one line; a lock left by a killed process is released by the kernel, so it never blocks.
4. **Run Hydra** (:mod:`rnnbench.job.app`) with SIGINT and SIGTERM turned into :class:`Interrupted`: a sweep's
   worker processes are stopped too, and every job writes its record.
5. **Summarise from the records** in the pinned dir (:mod:`rnnbench.launch.summary`) and return the exit
   status they imply: 0 when every job completed or diverged, 1 when one failed, was killed or never ran,
   ``128 + signal`` when interrupted, 2 for a refusal.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import OmegaConf

from rnnbench.config import BASIC_SWEEPER, ROOT_RULES, require_resolved_and_finite
from rnnbench.errors import ConfigError, RnnbenchError, root_cause_line
from rnnbench.launch import split_multirun, summary
from rnnbench.launch.resume import pin_output_dir, resolve_output_dir
from rnnbench.record.keys import CHECKED_ALONE, TRUSTING_SWEEPER
from rnnbench.record.locks import SWEEP_LOCK, DirLock
from rnnbench.record.plan import LaunchPlan
from rnnbench.record.secrets import REDACTED, SECRET_LITERAL_PREFIX, Secrets, secret_literal

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from rnnbench.launch.validate import Checked


HYDRA_FULL_ERROR = "HYDRA_FULL_ERROR"


@dataclass(frozen=True)
class Plan:
    """A validated command, ready for Hydra."""

    arguments: list[str]  # Hydra's command line: the user's, with the run or sweep dir pinned
    multirun: bool
    directory: Path  # the run dir, or the sweep dir with -m
    expected_jobs: int | None  # how many records the sweep should end with (None: its sweeper decides)
    varying: list[str]  # the keys that vary from job to job (for the sweep's per-job lines)
    validated: frozenset[str]  # the override lines of the validated jobs (the launch plan's digests)


def plan(arguments: list[str]) -> Plan:
    """Validate ``arguments`` and resolve where they write; raise :class:`RnnbenchError` (one line) if refused."""
    from rnnbench.launch.validate import check_every_job  # Hydra's plugins (optuna) and the validation's imports

    multirun, overrides = split_multirun(arguments)
    checked = check_every_job(arguments, announce=announce_sweep if multirun else None)
    directory = resolve_output_dir(overrides, checked.hydra_root, multirun)
    return Plan(pin_output_dir(arguments, directory, multirun) + trusting_sweeper(checked), multirun, directory,
                expected_jobs(checked), varying_keys(overrides, checked), checked.validated_lines)


def refuse_a_value_alone(arguments: list[str]) -> None:
    """Refuse a command-line value of a setting that its own rule judges (:data:`CHECKED_ALONE`: ``seed=abc``,
    ``threads=0``, ``verbose=maybe``, or one value of a swept ``-m seed=0,abc``) with the ConfigError the
    validation would raise for it (:func:`rnnbench.launch.validate.check_every_job`), before anything is composed
    or imported for it: no config, no Hydra plugin, no torch or Lightning. Any other value, and one this cannot
    read (an interpolation, a key given twice, a line Hydra's parser refuses), is left to the validation.

    A swept value is checked as the validation's grid checks it (its rule, in the command's order); the single
    values then as :func:`rnnbench.config.validate` checks a job (finite, then each rule in the order of
    :data:`rnnbench.config.ROOT_RULES`). A command with two faults may be refused here for the later one."""
    multirun, overrides = split_multirun(arguments)
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException:  # the validation says what is wrong with the line, as it always did
        return
    alone = [o for o in parsed if o.key_or_group in CHECKED_ALONE and o.package is None
             and not (o.is_add() or o.is_force_add() or o.is_delete())]
    keys = [o.key_or_group for o in alone]
    if len(set(keys)) != len(keys):
        return
    for override in alone:
        if override.is_sweep_override() and multirun and override.is_discrete_sweep():
            for value in override.sweep_iterator():
                ROOT_RULES[override.key_or_group].check(override.key_or_group, value)
    values = {o.key_or_group: o.value() for o in alone if not o.is_sweep_override()}
    values = {key: values[key] for key in ROOT_RULES if key in values
              and not (isinstance(values[key], str) and "${" in values[key])}
    require_resolved_and_finite(OmegaConf.create(values))
    for key, value in values.items():
        ROOT_RULES[key].check(key, value)


def search_trials(sweeper: Any) -> int | None:
    """An Optuna search's ``n_trials``, the job count of its sweep; None for a grid (its grid sampler stops at the
    grid's size)."""
    n_trials = sweeper.get("n_trials")
    if isinstance(n_trials, int) and not str((sweeper.get("sampler") or {}).get("_target_", "")).endswith(
            "GridSampler"):
        return n_trials
    return None


def announce_sweep(jobs: int, hydra_root: DictConfig) -> None:
    """A sweep's first line, once its grid is composed and before any job is validated (torch is not even
    imported yet): ``rnnbench: validating N jobs before any starts``; the dir follows with ``N job(s) into DIR``
    once every job passed."""
    trials = search_trials(hydra_root.hydra.sweeper)
    count = jobs if trials is None else trials
    what = f"{count:,} job{'' if count == 1 else 's'}"
    print(f"rnnbench: validating {what if trials is None else f'a search of {what}'} before any starts", flush=True)


def trusting_sweeper(checked: Checked) -> list[str]:
    """``hydra/sweeper=validated`` for a sweep on Hydra's basic sweeper: the same grid, without Hydra composing
    every job once more before it launches it (:mod:`hydra_plugins.rnnbench_basic_sweeper`)."""
    sweeper = str(checked.hydra_root.hydra.sweeper.get("_target_", ""))
    return [TRUSTING_SWEEPER] if checked.multirun and sweeper == BASIC_SWEEPER else []


def expected_jobs(checked: Checked) -> int | None:
    """The grid's job count; an Optuna search's ``n_trials`` (its grid sampler stops at the grid's size)."""
    trials = search_trials(checked.hydra_root.hydra.sweeper)
    return trials if trials is not None else checked.jobs if checked.multirun else 1


def varying_keys(overrides: list[str], checked: Checked) -> list[str]:
    parsed = OverridesParser.create().parse_overrides(overrides)
    varying = [o.key_or_group for o in parsed if o.is_sweep_override()]
    params = checked.hydra_root.hydra.sweeper.get("params") or {}
    return varying + [str(k) for k in params if str(k) not in varying]


def hide_secret_literals(arguments: list[str]) -> list[str]:
    """``arguments`` with each credential literal (``+extra.api_key=sekrit``) moved into an environment variable
    and the override reading it back (``+extra.api_key=${oc.env:RNNBENCH_SECRET_LITERAL_0}``).

    Hydra and its plugins store override lines where no scrubbing reaches (an Optuna study's trial attributes in
    ``optuna.db``, submitit's pickled jobs, local or on Slurm, whose ``sbatch`` passes the environment on): with
    the value in the environment only, no file holds it, and every job still resolves it. The variables' names
    contain ``SECRET``, so every process scrubs their values from what it writes (:class:`Secrets`). A swept
    credential is refused: each value would need its own variable and its own job."""
    hidden, parser = [], OverridesParser.create()
    for argument in arguments:
        literal = secret_literal(argument)
        if literal is None:
            hidden.append(argument)
            continue
        key = argument.partition("=")[0]
        if parser.parse_override(argument).is_sweep_override():
            raise ConfigError(key.lstrip("+~"), REDACTED, "one value: a credential is not swept (one job per value "
                                                          "would write it into the sweep's files)")
        variable = f"{SECRET_LITERAL_PREFIX}{sum(SECRET_LITERAL_PREFIX in line for line in hidden)}"
        os.environ[variable] = literal
        hidden.append(f"{key}=${{oc.env:{variable}}}")
    return hidden


def train(arguments: list[str]) -> int:
    """``rnnbench train ARGUMENTS``: validate, resolve, lock, run, summarise; return the exit status."""
    try:
        arguments = hide_secret_literals(arguments)
        refuse_a_value_alone(arguments)
        launch = plan(arguments)
    except (RnnbenchError, HydraException) as error:
        message = " ".join(str(error).split())
        print(f"rnnbench: error: {Secrets.from_environment(arguments).scrub(message)}", file=sys.stderr)
        return 2
    try:
        lock = DirLock(launch.directory, SWEEP_LOCK).acquire(what="this command")
    except RnnbenchError as error:  # in use (2: refused), or not writable (1: the machine's fault, not the input's)
        print(f"rnnbench: error: {error}", file=sys.stderr)
        return 1 if str(error).startswith("cannot write") else 2
    try:
        # the jobs trust what was validated here, and `rnnbench status` counts against the same job count
        LaunchPlan.of(launch.multirun, launch.expected_jobs, launch.varying, launch.validated).write(launch.directory)
        return run_hydra(launch, arguments)
    finally:
        lock.release()


def run_hydra(launch: Plan, arguments: list[str]) -> int:
    from rnnbench.job import app
    from rnnbench.launch.sweep_lines import SweepLines
    from rnnbench.record.interrupts import LAUNCHER_PID, Interrupted, interrupt_on_signals

    # Hydra's only public way to run an app with its sweepers, launchers, output dirs and logging is @hydra.main,
    # which reads sys.argv (the compose API composes, but neither launches nor sweeps); so its command line is set
    # here, for the duration of the run, and restored after.
    saved_argv, sys.argv = sys.argv, ["rnnbench train", *launch.arguments]
    os.environ[LAUNCHER_PID] = str(os.getpid())  # jobs in other processes watch this one (ParentWatch)
    traceback_wanted = HYDRA_FULL_ERROR in os.environ
    os.environ[HYDRA_FULL_ERROR] = "1"  # Hydra raises its errors to this function instead of printing a traceback
    lines = None
    if launch.multirun:
        print(f"rnnbench: {launch.expected_jobs or 'a'} job(s) into {launch.directory.resolve()}", flush=True)
        lines = SweepLines(launch.directory, launch.expected_jobs, launch.varying).start()
    stopped: str | None = None
    status: int | None = None
    try:
        with interrupt_on_signals(stop_workers=True):
            app.train()
    except Interrupted as stop:
        # Ctrl-C or SIGTERM: the handler stopped the jobs of other processes (joblib, submitit) first, and they
        # wrote their records
        print(f"rnnbench: {stop}", flush=True)
        stopped, status = "was interrupted", stop.exit_status
    except Exception as error:
        # Hydra itself failed between jobs (a full disk as it saved a job's config, a joblib worker killed): one
        # line, then what the jobs' records tell. HYDRA_FULL_ERROR set by the user: Hydra's traceback instead.
        if traceback_wanted:
            raise
        secrets = Secrets.from_environment(arguments)
        where = f" (writing under {launch.directory})" if isinstance(error, OSError) and not error.filename else ""
        print(f"rnnbench: error: {secrets.scrub(root_cause_line(error))}{where}", file=sys.stderr, flush=True)
        stopped, status = "stopped early: its launcher raised (see above)", 1
    finally:
        sys.argv = saved_argv
        if lines is not None:
            lines.stop()
    if not launch.multirun:
        found = summary.report_run(launch.directory) if launch.directory.exists() else 1
        return status if status is not None else found
    if stopped is not None:
        print(f"rnnbench: the sweep {stopped}", flush=True)
        found = max(1, summary.report_sweep(launch.directory, launch.expected_jobs))
        return status if status is not None else found
    return summary.report_sweep(launch.directory)
