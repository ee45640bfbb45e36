"""Experiment loggers from the ``logger`` config group, and the W&B run lifecycle.

What W&B shows of a run: :func:`wandb_config` (the flat config without Hydra's ``_target_`` clutter, plus the
config-group choices, ``config_hash`` and the overrides as filterable keys); :func:`wandb_identity` (its name, a
group per configuration of a sweep invocation, its job type: run, sweep, search or smoke), from what varies in
the sweep (:func:`sweep_grid`, read from its ``multirun.yaml``); :func:`describe_run` and :func:`summarise_run`
(the summary a runs table shows); :func:`attach_run_files` (the record, the config, the log in the run).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig
from pytorch_lightning.loggers import Logger

from rnnbench.config import is_optuna_search
from rnnbench.diagnostics.base import wandb_loggers
from rnnbench.record.keys import REPLICATE_KEYS, is_run_setting, key_of
from rnnbench.record.lines import shown_override

log = logging.getLogger(__name__)


def is_wandb(logger_config: DictConfig) -> bool:
    return str(logger_config.get("_target_", "")).endswith("WandbLogger")


def build_loggers(logger_configs: DictConfig | None, *, save_dir: str, identity: WandbIdentity,
                  tags: list[str], wandb_id: str | None = None) -> list[Logger]:
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
            # console="off" whatever verbose says: the job's log is the run's output.log (attach_run_files)
            defaults.update(name=identity.name, group=identity.group, job_type=identity.job_type,
                            tags=[*tags, *identity.tags], settings={"console": "off"})
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


# Hydra's instantiation keys: how an object is built, not a setting a reader filters on.
INSTANTIATION_LEAVES = frozenset({"_target_", "_partial_", "_recursive_", "_convert_", "_args_"})
GROUP_LIMIT = 128  # characters W&B keeps of a group name


def wandb_config(flat_config: Mapping[str, Any], *, choices: Mapping[str, Any] | None = None,
                 config_hash: str | None = None, overrides: Sequence[str] | None = None) -> dict[str, Any]:
    """The config a logger gets: ``flat_config`` without Hydra's instantiation keys (``optim._target_``), then each
    config-group choice under its group's name (``model``: ``lstm_forget_bias1``; not Hydra's own groups),
    ``config_hash`` and ``overrides`` (the job's, one string), so that W&B can filter and group on them."""
    config = {k: v for k, v in flat_config.items() if k.rsplit(".", 1)[-1] not in INSTANTIATION_LEAVES}
    for group, choice in (choices or {}).items():
        if not str(group).startswith("hydra") and group not in config:
            config[str(group)] = choice
    if config_hash:
        config["config_hash"] = config_hash
    if overrides is not None:
        config["overrides"] = " ".join(overrides)
    return config


def _parsed(overrides: Sequence[str]) -> list[Any]:
    """The overrides Hydra's parser reads; one it cannot (a secret's value redacted to ``<redacted>`` in a saved
    file) is left out: it names no sweep."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    parser, parsed = OverridesParser.create(), []
    for line in overrides:
        try:
            parsed += parser.parse_overrides([line])
        except OverrideParseException:
            continue
    return parsed


def sweep_grid(sweep_dir: str | Path, sweeper_params: Mapping[str, Any] | None = None) -> list[str]:
    """The sweep's overrides that vary (``model.cell=rnn,gru``, ``seed=0,1``, ``lr=interval(...)``): the command
    line's, from ``multirun.yaml`` in ``sweep_dir`` (Hydra's basic sweeper writes it before any job), then the
    preset's ``hydra.sweeper.params`` (``sweeper_params``; read from the same file when not given)."""
    import yaml

    task: list[str] = []
    path = Path(sweep_dir) / "multirun.yaml"
    if path.is_file():
        try:
            saved = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError):
            saved = {}
        hydra = saved.get("hydra") or {}
        task = list((hydra.get("overrides") or {}).get("task") or [])
        if sweeper_params is None:
            sweeper_params = (hydra.get("sweeper") or {}).get("params") or {}
    grid = [o.input_line for o in _parsed(task) if o.is_sweep_override()]
    keys = {o.key_or_group for o in _parsed(grid)}
    grid += [f"{key}={value}" for key, value in (sweeper_params or {}).items() if key not in keys
             and _parsed([f"{key}={value}"])[0].is_sweep_override()]
    return grid


def _shown(override: Any) -> str:
    """A parsed override as a name shows it (:func:`rnnbench.record.lines.shown_override`)."""
    return override.input_line if override.is_sweep_override() else shown_override(override.input_line)


def varying_overrides(job_overrides: Sequence[str], grid: Sequence[str], but: Sequence[str] = ()) -> list[str]:
    """The job's overrides of the settings that vary in the sweep's ``grid`` but the keys ``but``, in the job's
    order, as names show them (:func:`_shown`)."""
    varying = {o.key_or_group.lstrip("+~") for o in _parsed(grid)} - set(but)
    return [_shown(o) for o in _parsed(job_overrides) if o.key_or_group.lstrip("+~") in varying]


def sweep_run_name(job_overrides: Sequence[str], grid: Sequence[str]) -> str | None:
    """A job's W&B run name: its overrides of the settings that vary in the sweep (``model.cell=gru,seed=1``), in
    the job's order; None when nothing varies (W&B then names the run itself)."""
    return ",".join(varying_overrides(job_overrides, grid)) or None


def _limited(name: str) -> str:
    return name if len(name) <= GROUP_LIMIT else name[:GROUP_LIMIT - 1] + "…"


@dataclass(frozen=True)
class WandbIdentity:
    """How a job appears in W&B (see :func:`wandb_identity`)."""

    name: str | None
    group: str | None
    job_type: str
    tags: tuple[str, ...] = ()


# The kinds of job, W&B's ``job_type`` (and a tag for the two that are not results)
SMOKE, SEARCH, SWEEP, RUN = "smoke", "search", "sweep", "run"


def preset_of(choices: Mapping[str, Any]) -> str | None:
    """The named preset a job belongs to: its ``experiment``, else its ``hparams_search``; None for neither."""
    preset = choices.get("experiment") or choices.get("hparams_search")
    return str(preset) if preset else None


def invocation_label(choices: Mapping[str, Any], sweep_dir: str | Path) -> str:
    """``<preset or sweep>@<sweep dir's name>`` (:func:`preset_of` the config-group ``choices``): one sweep
    invocation (its dir's name is its start time)."""
    return f"{preset_of(choices) or 'sweep'}@{Path(str(sweep_dir)).name}"


def wandb_identity(hydra: Any, scrub: Callable[[str], str] = lambda text: text) -> WandbIdentity:
    """A job's W&B name, group, job type and extra tags, from its Hydra config (``HydraConfig.get()``).

    - ``job_type``: ``smoke`` (``debug=...``), ``search`` (an Optuna trial), ``sweep`` (a grid's job) or ``run``;
      smoke and search jobs are tagged so too, so that filtering them out of a workspace is one click.
    - ``group``: in a sweep, one per configuration of that invocation, the seeds of a configuration together (W&B
      then draws each group as the mean over its seeds with a band): ``<preset or sweep>@<sweep dir>/<the job's
      varying overrides but the seeds>``, or ``<preset or sweep>@<sweep dir>`` when only seeds vary, and for every
      trial of a search (each draw is its own configuration). Another invocation, another group: runs of another
      code version or a smoke test never pool with these. A single run: its preset's name, else none.
    - ``name``: in a sweep, the job's varying overrides (``model.cell=gru,seed=1``); a single run, its overrides
      but the run settings (``threads``, ``resume``, ...); floats to 4 significant digits.

    ``scrub`` removes secrets from each override before it is used.
    """
    from hydra.types import RunMode

    choices = hydra.runtime.choices
    multirun = hydra.mode == RunMode.MULTIRUN
    job_type = SMOKE if choices.get("debug") else SEARCH if choices.get("hparams_search") or \
        is_optuna_search(hydra.get("sweeper")) else SWEEP if multirun else RUN
    tags = (job_type,) if job_type in (SMOKE, SEARCH) else ()
    overrides = [scrub(o) for o in hydra.overrides.task]
    if not multirun:
        shown = [_shown(o) for o in _parsed(overrides) if not is_run_setting(key_of(o.input_line))]
        return WandbIdentity(",".join(shown) or None, preset_of(choices), job_type, tags)
    params = hydra.sweeper.get("params")
    grid = [scrub(o) for o in sweep_grid(hydra.sweep.dir, dict(params) if params else None)]
    invocation = invocation_label(choices, hydra.sweep.dir)
    configuration = varying_overrides(overrides, grid, but=REPLICATE_KEYS)
    group = invocation if job_type == SEARCH or not configuration else f"{invocation}/{','.join(configuration)}"
    return WandbIdentity(sweep_run_name(overrides, grid), _limited(group), job_type, tags)


def describe_run(loggers: list[Logger], flat_config: dict[str, Any], *, choices: Mapping[str, Any] | None = None,
                 config_hash: str | None = None, overrides: Sequence[str] | None = None) -> None:
    """Log the config (:func:`wandb_config`) to every logger."""
    config = wandb_config(flat_config, choices=choices, config_hash=config_hash, overrides=overrides)
    for logger in loggers:
        logger.log_hyperparams(config)


# The record's gradient headline, at initialisation (``_first``) and after training, of the first layer's forward
# direction: the numbers README's tables put side by side.
GRADIENT_HEADLINE = ("vanishing_log10_first", "vanishing_log10", "reach_first", "reach")


def run_summary(record: Mapping[str, Any]) -> dict[str, Any]:
    """What a W&B runs table shows of a finished run, from its record, one key per number:

    ``run/status``, ``run/steps``, ``model/parameters``, ``model/hidden_size``, ``model/state_size``; the final
    ``val/*``, ``test/*`` and ``test@<T>/*`` (``test/loss`` left out where it equals the task's metric, as MSE does) and ``best/val/*``; the gradient
    headline ``gradients/<key>`` (:data:`GRADIENT_HEADLINE`, and ``gradients/final_norm``, ``clip_rate``); the
    task's input-blind ``baseline/<metric>`` and its reference model's ``reference/<split>/<metric>``;
    ``throughput/*``."""
    metrics = record.get("metrics") or {}
    task = record.get("task") or {}
    summary: dict[str, Any] = {"run/status": record.get("status"), "run/steps": record.get("steps"),
                               "model/parameters": record.get("parameters"),
                               "model/hidden_size": (record.get("model_size") or {}).get("hidden_size"),
                               "model/state_size": (record.get("model_size") or {}).get("state_size")}
    metric = task.get("metric")
    for key, value in metrics.items():
        split = key.split("/", 1)[0]
        if split in ("val", "test", "best") or split.startswith("test@"):  # test@<T>: tested at another length
            summary[key] = value
    if metric and metrics.get("test/loss") is not None and metrics.get("test/loss") == metrics.get(f"test/{metric}"):
        summary.pop("test/loss", None)
    gradients = record.get("gradients") or {}
    layers = gradients.get("layers") or []
    first = next((entry for entry in layers if entry.get("layer") == 0 and entry.get("direction") == "forward"), None)
    for key in GRADIENT_HEADLINE:
        if first is not None and first.get(key) is not None:
            summary[f"gradients/{key}"] = first[key]
    for key in ("final_norm", "clip_rate"):
        if gradients.get(key) is not None:
            summary[f"gradients/{key}"] = gradients[key]
    if metric and task.get("baseline_metric") is not None:
        summary[f"baseline/{metric}"] = task["baseline_metric"]
    reference = task.get("reference") or {}
    for key, value in reference.items():
        if "/" in str(key) and isinstance(value, (int, float)):
            summary[f"reference/{key}"] = value
    for key, value in (record.get("throughput") or {}).items():
        summary[f"throughput/{key}"] = value
    return {key: value for key, value in summary.items() if value is not None}


def summarise_run(loggers: list[Logger], record: Mapping[str, Any]) -> None:
    """Replace each W&B run's summary (W&B's last value of every logged key) by :func:`run_summary`: the keys a
    runs table needs, without duplicates (``val/loss`` and its min beside ``best/val/loss``) or bookkeeping at the
    top level. The history keeps every logged value."""
    wanted = run_summary(record)
    for logger in wandb_loggers(loggers):
        summary = logger.experiment.summary
        for key in [k for k in summary.keys() if k not in wanted and _replaced(k, summary[k])]:
            del summary[key]
        summary.update(wanted)


def _replaced(key: str, value: Any) -> bool:
    """Whether :func:`summarise_run` drops a summary key W&B kept: every number but W&B's own (``_step``) and the
    step axis (``trainer/global_step``); a table or chart (a nested value: wandb's summary dict of a ``_type``)
    stays, so that its panel shows."""
    return not key.startswith("_") and key != "trainer/global_step" and not hasattr(value, "keys")


# A job's own files that W&B keeps with its run (``wandb sync`` uploads them): the record, Hydra's config and
# overrides, the job's log; relative to the job's output dir.
RUN_FILES = ("result.json", ".hydra/config.yaml", ".hydra/overrides.yaml", ".hydra/hydra.yaml")
LOG_FILE = "rnnbench.log"


def attach_run_files(loggers: list[Logger], output_dir: Path) -> None:
    """Put the job's record, config, overrides and log into its W&B run, after the final record is written (and
    scrubbed, as every file the job writes): the files under their own names, the log also as ``output.log``, the
    file W&B's Logs tab shows (W&B's own console capture is off: the job's log holds the lines instead)."""
    import shutil

    for logger in wandb_loggers(loggers):
        run = logger.experiment
        for name in RUN_FILES:
            if (output_dir / name).is_file():
                run.save(str(output_dir / name), base_path=str(output_dir), policy="now")
        log_file = output_dir / LOG_FILE
        if log_file.is_file():
            run.save(str(log_file), base_path=str(output_dir), policy="end")
            shutil.copyfile(log_file, Path(run.dir) / "output.log")


def wandb_record(loggers: list[Logger]) -> dict[str, Any] | None:
    """The W&B run of a WandbLogger that has started (or reused) one, read without starting one: ``wandb.run``
    is that run, and the logger's ``version`` is its id (before, the id it was given, if any)."""
    wandb = sys.modules.get("wandb")
    run = wandb.run if wandb is not None else None
    if run is None or not any(logger.version == run.id for logger in wandb_loggers(loggers)):
        return None
    return {"run_id": run.id, "mode": "offline" if run.offline else "online", "dir": run.dir,
            "group": run.group or None, "job_type": run.job_type or None, "name": run.name}


def finish_wandb(exit_code: int) -> None:
    """End the current W&B run, if any, so the next job in this process starts its own."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish(exit_code=exit_code)


def log_sweep_table(sweep_dir: Path, wandb_settings: Mapping[str, Any], offline: bool, invocation: str,
                    columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str | None:
    """The sweep's table (what ``rnnbench table`` prints at its end) as a ``wandb.Table`` in a run of its own,
    ``job_type="table"``, grouped as ``<invocation>/table`` (``invocation``: ``<preset or sweep>@<sweep dir>``,
    the prefix of its jobs' groups, never one of them), written under ``<sweep_dir>/wandb`` with the sweep's W&B
    project and entity (``logger.wandb``), offline when its jobs ran offline. Returns the run's id; None when W&B
    could not make it (the sweep's result is on disk)."""
    import wandb

    from rnnbench.record.secrets import Secrets

    saved_argv = sys.argv[:]
    sys.argv[:] = Secrets.from_environment(sys.argv).scrub_overrides(sys.argv)  # W&B records the command line
    try:
        run = wandb.init(project=wandb_settings.get("project"), entity=wandb_settings.get("entity"),
                         dir=str(sweep_dir), group=f"{invocation}/table", job_type="table", name=f"{invocation} table",
                         mode="offline" if offline else "online", config={"sweep_dir": str(sweep_dir)},
                         reinit="finish_previous", settings=wandb.Settings(silent=True, console="off"))
        run.log({"table": wandb.Table(columns=list(columns), data=[list(row) for row in rows])})
        run.finish()
        return run.id
    except Exception as error:  # W&B's own failure (no network, a bad setting) must not fail a finished sweep
        log.info("no W&B table for %s: %s", sweep_dir, error)
        return None
    finally:
        sys.argv[:] = saved_argv
