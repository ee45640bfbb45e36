"""Experiment loggers from the ``logger`` config group, and the W&B run lifecycle.

What W&B shows of a run: :func:`wandb_config` (the flat config without Hydra's ``_target_`` clutter, plus the
config-group choices, ``config_hash`` and the overrides as filterable keys), :func:`sweep_run_name` (only the
overrides that vary inside the sweep) and :func:`sweep_group` (a multirun without a preset: its sweep overrides, not
a timestamp), both from :func:`run_naming`; :func:`sweep_grid` reads what varies from the sweep's ``multirun.yaml``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig
from pytorch_lightning.loggers import Logger

from rnnbench.data.task import Task
from rnnbench.diagnostics.base import wandb_loggers


def is_wandb(logger_config: DictConfig) -> bool:
    return str(logger_config.get("_target_", "")).endswith("WandbLogger")


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


def sweep_run_name(job_overrides: Sequence[str], grid: Sequence[str]) -> str | None:
    """A job's W&B run name: its overrides of the settings that vary in the sweep (``model.cell=gru,seed=1``), in
    the job's order; None when nothing varies (W&B then names the run itself)."""
    varying = {o.key_or_group.lstrip("+~") for o in _parsed(grid)}
    kept = [o.input_line for o in _parsed(job_overrides) if o.key_or_group.lstrip("+~") in varying]
    return ",".join(kept) or None


def sweep_group(grid: Sequence[str]) -> str | None:
    """A readable W&B group for a multirun without a preset: its varying overrides, ``model.cell=rnn,gru seed=0,1``
    (at most :data:`GROUP_LIMIT` characters), rather than the sweep dir's timestamp; None for an empty grid."""
    name = " ".join(grid)
    if not name:
        return None
    return name if len(name) <= GROUP_LIMIT else name[:GROUP_LIMIT - 1] + "…"


def run_naming(hydra: Any, scrub: Callable[[str], str] = lambda text: text) -> tuple[str | None, str | None]:
    """A job's W&B ``(name, group)`` from its Hydra config (``HydraConfig.get()``): in a multirun, the name is the
    job's overrides of what varies (:func:`sweep_run_name`), the group the preset's name (``experiment`` or
    ``hparams_search``), else :func:`sweep_group`; a single run is named by all its overrides, ungrouped unless a
    preset names it. ``scrub`` removes secrets from each override before it is used."""
    from hydra.types import RunMode

    choices = hydra.runtime.choices
    preset = choices.get("experiment") or choices.get("hparams_search")
    overrides = [scrub(o) for o in hydra.overrides.task]
    if hydra.mode != RunMode.MULTIRUN:
        return ",".join(overrides) or None, str(preset) if preset else None
    params = hydra.sweeper.get("params")
    grid = [scrub(o) for o in sweep_grid(hydra.sweep.dir, dict(params) if params else None)]
    return sweep_run_name(overrides, grid), str(preset) if preset else sweep_group(grid)


def describe_run(loggers: list[Logger], flat_config: dict[str, Any], task: Task, parameters: int, *,
                 choices: Mapping[str, Any] | None = None, config_hash: str | None = None,
                 overrides: Sequence[str] | None = None) -> None:
    """Log the config (:func:`wandb_config`) to every logger; give W&B its summaries (best val, final test) and the
    parameter count."""
    config = wandb_config(flat_config, choices=choices, config_hash=config_hash, overrides=overrides)
    for logger in loggers:
        logger.log_hyperparams(config)
    for logger in wandb_loggers(loggers):
        run = logger.experiment
        run.define_metric("val/loss", summary="min")
        for name in task.metric_names:
            run.define_metric(f"val/{name}", summary=task.mode_of(name))
        for name in ("loss", *task.metric_names):
            run.define_metric(f"test/{name}", summary="last")
        run.summary["parameters"] = parameters


def wandb_record(loggers: list[Logger]) -> dict[str, Any] | None:
    """The W&B run of a WandbLogger that has started (or reused) one, read without starting one: ``wandb.run``
    is that run, and the logger's ``version`` is its id (before, the id it was given, if any)."""
    wandb = sys.modules.get("wandb")
    run = wandb.run if wandb is not None else None
    if run is None or not any(logger.version == run.id for logger in wandb_loggers(loggers)):
        return None
    return {"run_id": run.id, "mode": "offline" if run.offline else "online", "dir": run.dir,
            "group": run.group or None, "name": run.name}


def finish_wandb(exit_code: int) -> None:
    """End the current W&B run, if any, so the next job in this process starts its own."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish(exit_code=exit_code)
