"""Validate every job of a run or sweep before any of them starts, so a typo in job 17 costs nothing."""

from __future__ import annotations

import copy
import functools
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import (ConfigCompositionException, InstantiationException, MissingConfigException,
                          OverrideParseException)
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

import rnnbench.hydra_setup  # noqa: F401  (the resolvers and sweepers Hydra's settings use, before any compose)
from rnnbench.config import (COMPONENTS, ROOT_RULES, SUBMITIT_SLURM, check_objective_for, choices_with_key,
                             config_dir, group_choices, is_optuna_search, validate, validate_hydra)
from rnnbench.errors import ConfigError, RnnbenchError, did_you_mean, jobs_memory, root_cause_line
from rnnbench.launch import MULTIRUN_FLAGS, split_multirun  # noqa: F401  (split_multirun: also imported from here)
from rnnbench.launch.value_overrides import with_value_overrides
from rnnbench.record.keys import CHECKED_ALONE
from rnnbench.record.schema import BUDGETS


PROGRESS_EVERY = 2.0  # seconds between the progress lines of a long validation


@dataclass(frozen=True)
class Axis:
    """One swept key of a grid: its ``key=value`` lines and typed values, in the sweep's order."""

    key: str
    lines: list[str]
    values: list[object]
    independent: bool  # checked by its own rule alone (rnnbench.record.keys.CHECKED_ALONE)


def with_sweeper_params(overrides: list[str], sweeper_params: dict[str, str]) -> list[Override]:
    """``overrides`` parsed, then each of the config's ``hydra.sweeper.params`` the command line does not set."""
    parser = OverridesParser.create()
    parsed: list[Override] = parser.parse_overrides(overrides)
    given = {o.get_key_element() for o in parsed}
    return parsed + [o for o in parser.parse_overrides([f"{k}={v}" for k, v in sweeper_params.items()])
                     if o.get_key_element() not in given]


def grid(overrides: list[str], sweeper_params: dict[str, str], multirun: bool) -> tuple[list[str], list[Axis]]:
    """(the fixed overrides, the swept axes) of a sweep over ``overrides`` and the config's ``hydra.sweeper.params``
    (the command line wins); a sweep that is not a discrete list (an Optuna interval, say) is not an axis: its
    sweeper draws the values (:func:`interval_bounds` gives the ones validated)."""
    parsed = with_sweeper_params(overrides, sweeper_params)
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    axes = []
    for override in parsed:
        if override.is_sweep_override() and multirun and override.is_discrete_sweep():
            key = override.get_key_element()
            strings, values = list(override.sweep_string_iterator()), list(override.sweep_iterator())
            if strings:
                independent = override.key_or_group in CHECKED_ALONE and override.package is None \
                    and not (override.is_add() or override.is_force_add() or override.is_delete())
                axes.append(Axis(key, [f"{key}={v}" for v in strings], values, independent))
    return fixed, axes


def interval_bounds(overrides: list[str], sweeper_params: dict[str, str]) -> list[list[str]]:
    """For each interval a sweeper draws from (``optim.lr=tag(log, interval(1e-4, 1e-1))``), the ``key=value``
    lines of its two bounds: an Optuna sampler may draw either (``suggest_float`` and ``suggest_int`` include
    them), and a value rule is a range, so a bad bound is the way an interval holds a bad value."""
    return [[f"{o.get_key_element()}={bound!r}" for bound in (o.value().start, o.value().end)]
            for o in with_sweeper_params(overrides, sweeper_params) if o.is_sweep_override() and o.is_interval_sweep()]


# What each part of rnnbench.config.validate reads, by top-level key: data (with its seed), the model (built for the
# data's task, its memory estimated with the data's sizes), the Trainer (its batch counts come from the data), the
# optimizer, the loggers, the diagnostics. A value of a top-level key (objective, ...) or a config-group choice
# counts towards every part.
PART_READS = {"data": ("data",), "model": ("model", "data"), "trainer": ("trainer", "data"), "optim": ("optim",),
              "logger": ("logger",), "diagnostics": ("diagnostics",)}
PART_KEYS = frozenset(key for reads in PART_READS.values() for key in reads)  # a key outside these: every part


def part_signatures(lines: tuple[str, ...], groups: set[str]) -> dict[str, tuple[str, ...]]:
    """For each part of the validation, the job's swept ``key=value`` lines it reads (see :data:`PART_READS`)."""
    keys = [line.split("=", 1)[0].lstrip("+~") for line in lines]
    top = [key.split(".")[0] for key in keys]
    everywhere = {i for i, key in enumerate(keys) if top[i] not in PART_KEYS or key in groups}
    return {part: tuple(line for i, line in enumerate(lines) if i in everywhere or top[i] in reads)
            for part, reads in PART_READS.items()}


class Progress:
    """``rnnbench: validated N of M jobs`` every :data:`PROGRESS_EVERY` seconds, once a validation is slow."""

    LARGE = 10_000  # a grid this large says so before it starts

    def __init__(self, total: int, announced: bool = False):
        self.total, self.started, self.shown = total, time.monotonic(), time.monotonic()
        if total > self.LARGE and not announced:
            print(f"rnnbench: validating {total:,} jobs before any starts", flush=True)

    def update(self, done: int) -> None:
        now = time.monotonic()
        if self.total > 1000 and now - self.shown >= PROGRESS_EVERY:
            self.shown = now
            rate = done / max(now - self.started, 1e-9)
            print(f"rnnbench: validated {done:,} of {self.total:,} jobs ({rate:,.0f}/s)", flush=True)


def config_groups() -> set[str]:
    """Every config group of the tree (``data``, ``model``, ``hydra/launcher``, ...)."""
    root = config_dir()
    return {path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_dir()}


def _shapes_composition(override: Override, groups: set[str]) -> bool:
    """A config-group choice (or a Hydra setting): it changes which files are composed, not a value."""
    key = override.key_or_group
    return key in groups or key == "hydra" or key.startswith(("hydra.", "hydra/")) or override.package is not None


def check_group_choices(parsed: list[Override], groups: set[str]) -> None:
    """Refuse a choice of one of rnnbench's config groups that has no file: Hydra itself refuses one of a
    required group, but silently skips a misspelled choice of an ``optional`` group (``experiment``,
    ``hparams_search``, ``debug``)."""
    for override in parsed:
        group = override.key_or_group
        if group not in groups or group.startswith("hydra") or override.package is not None or override.is_delete():
            continue
        values = list(override.sweep_string_iterator()) if override.is_sweep_override() and \
            override.is_discrete_sweep() else [override.value()]
        choices = group_choices(group)
        for value in values:
            if value is not None and str(value) not in choices and str(value) != "null":
                raise ConfigError(group, str(value), f"one of {', '.join(choices)}{did_you_mean(str(value), choices)}")


def experiments_listing(group: str) -> list[str]:
    """The experiments whose defaults list ``group`` (``- /d2l: rnn``): a group that ``train.yaml`` does not
    list sets only what differs between the runs of those experiments, and means nothing without one."""
    return _groups_of_experiments().get(group, [])


@functools.cache
def _groups_of_experiments() -> dict[str, list[str]]:
    """Each group that experiments list in their defaults (``/d2l``) -> those experiments, from ``conf/``."""
    import yaml

    found: dict[str, list[str]] = {}
    for path in sorted((config_dir() / "experiment").glob("*.yaml")):
        for entry in (yaml.safe_load(path.read_text()) or {}).get("defaults") or []:
            for key in entry if isinstance(entry, dict) else ():
                if str(key).startswith("/"):
                    found.setdefault(str(key)[1:], []).append(path.stem)
    return found


def check_part_of_experiment(parsed: list[Override]) -> None:
    """Refuse a choice of a group that belongs to experiments (``d2l=lstm``, or ``+d2l=lstm`` as Hydra advises)
    without one of them: it would train the default task with settings meant for another (d2l's SGD rate 4 on
    the adding problem)."""
    experiments = {str(value) for o in parsed if o.key_or_group == "experiment" and not o.is_delete()
                   for value in (o.sweep_string_iterator() if o.is_sweep_override() and o.is_discrete_sweep()
                                 else [o.value()])}
    for override in parsed:
        group = override.key_or_group
        if override.package is not None or override.is_delete() or "." in group or "/" in group:
            continue
        owners = experiments_listing(group)
        if owners and (not experiments or not experiments <= set(owners)):
            value = written_value(override)
            named = next((o for o in owners if o.startswith(group)), owners[0])
            raise ConfigError(group, value, f"a choice made with experiment={' or experiment='.join(owners)}, whose "
                                            f"runs it sets apart (as in: rnnbench train experiment={named} "
                                            f"{group}={value})")


def written_value(override: Override) -> str | None:
    """The value of an override line as written (``0.01,1e12``, ``choice(16, 32)``); None for ``~key``."""
    return override.input_line.split("=", 1)[1] if "=" in override.input_line else None


def _leaf_keys(cfg: DictConfig, prefix: str = "") -> list[str]:
    keys = []
    for key in cfg.keys():
        name = f"{prefix}{key}"
        keys.append(name)
        if not OmegaConf.is_interpolation(cfg, key) and not OmegaConf.is_missing(cfg, key) \
                and isinstance(cfg[key], DictConfig):
            keys += _leaf_keys(cfg[key], name + ".")
    return keys


def unknown_key_error(key: str, value: object, cfg: DictConfig) -> ConfigError:
    """A one-line refusal of ``key=value`` for a key ``cfg`` lacks, with the closest existing key."""
    parent, _, leaf = key.rpartition(".")
    where = f"{parent} has no key {leaf!r}" if parent else f"the config has no key {leaf!r}"
    node = OmegaConf.select(cfg, parent, default=None) if parent else cfg
    if isinstance(node, DictConfig):  # a sibling of the misspelled key, matched on its own name
        close = did_you_mean(leaf, [str(k) for k in node.keys()])
        suggestion = close.replace("did you mean ", f"did you mean {parent}.") if parent and close else close
    else:
        suggestion = did_you_mean(key, [k for k in _leaf_keys(cfg) if not k.startswith("hydra")])
    if not suggestion and parent in COMPONENTS:  # a key of other choices of the group (data.test_seq_len)
        owners = choices_with_key(parent, leaf)
        if owners:
            suggestion = f" (a setting of {' and '.join(f'{parent}={choice}' for choice in owners)} only)"
    return ConfigError(key, value, f"{where}{suggestion or f' (to add one: +{key}=...)'}")


def _under_null(parsed: list[Override], root: DictConfig | None) -> RnnbenchError:
    """The one-line refusal of an override that sets a key below a null node (Hydra only asserts)."""
    for override in parsed:
        parts = override.key_or_group.split(".")
        ancestors = [".".join(parts[:i]) for i in range(1, len(parts))]
        parent = next((a for a in ancestors if root is not None
                       and OmegaConf.select(root, a, default=_ABSENT) is None), None)
        if parent:
            return ConfigError(override.key_or_group, written_value(override), f"a key below {parent}, which is null here"
                               + (" (to sweep a key, give it its values on the command line: KEY=A,B)"
                                  if parent.startswith("hydra.sweeper.params") else ""))
    return RnnbenchError("an override sets a key below a node that is null in the composed config")


def _one_line(error: Exception) -> RnnbenchError:
    if isinstance(error, MissingConfigException) and error.options:
        group, _, choice = str(error.missing_cfg_file).rpartition("/")
        return ConfigError(group, choice, f"one of {', '.join(error.options)}{did_you_mean(choice, error.options)}")
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return RnnbenchError(" ".join(lines[:2]) if lines else type(error).__name__)


def check_keys_exist(value_overrides: list[Override], cfg: DictConfig) -> None:
    """``KEY=VALUE`` (not ``+KEY``) must name a key the composed config has: refuse a typo with the closest key,
    instead of Hydra's advice to append it."""
    for override in value_overrides:
        if override.is_add() or override.is_force_add() or override.is_delete():
            continue
        key = override.key_or_group
        if key.startswith("hydra"):
            continue
        if OmegaConf.select(cfg, key, default=_ABSENT, throw_on_missing=False) is _ABSENT:
            value = override.value() if not override.is_sweep_override() else written_value(override)
            raise unknown_key_error(key, value, cfg)


_ABSENT = object()


@dataclass(frozen=True)
class Checked:
    """What validating a command found: how many jobs its grid holds (an Optuna search: the first value of each
    interval, once), and its composed config with Hydra's settings (``hydra.sweep.dir``, the launcher, the
    sweeper) and the command's fixed values, which the launch path resolves its run or sweep dir from."""

    multirun: bool
    jobs: int
    hydra_root: DictConfig
    validated_lines: frozenset[str] = frozenset()  # every override line a validated job may hold (the launch plan)
    compositions: int = 0  # how many configs were composed to validate the command (one per group-choice set)


class OneTorchThread:
    """torch on one thread from the first job validated until the validation ends: building a model to validate it
    is tiny work, and torch's thread pool would only add contention (an orthogonal init's QR takes 0.1 s with 2
    threads on a busy machine, 0.2 ms with 1). torch is imported by :meth:`limit`, not before: a command refused
    while its grid is composed, or its sweep announced, waits for no torch import."""

    def __init__(self) -> None:
        self.saved: int | None = None

    def limit(self) -> None:
        if self.saved is None:
            import torch

            self.saved = torch.get_num_threads()
            torch.set_num_threads(1)

    def restore(self) -> None:
        if self.saved is not None:
            import torch

            torch.set_num_threads(self.saved)
            self.saved = None


def check_every_job(arguments: list[str], announce: Callable[[int, DictConfig], None] | None = None) -> Checked:
    """Compose and validate the config of every job ``rnnbench train ARGUMENTS`` would run, composing once per
    distinct set of config-group choices; raise :class:`RnnbenchError` with a one-line message.

    ``announce(jobs, hydra_root)`` is called once the grid is known (its job count, the command's composed config
    with Hydra's settings), before any job is validated: the launcher says then that a sweep has started."""
    multirun, overrides = split_multirun(arguments)
    checked = 0
    everything: list[Override] = []
    hydra_root: DictConfig | None = None
    threads = OneTorchThread()
    try:
        with initialize_config_dir(str(config_dir()), version_base="1.3", job_name="preflight"):
            groups = config_groups()
            everything = OverridesParser.create().parse_overrides(overrides)
            check_group_choices(everything, groups)
            check_part_of_experiment(everything)
            # Hydra's own settings are composition overrides (_shapes_composition), so composing these alone gives
            # the sweeper's params and a config to check the value overrides' keys against, in one compose.
            structure_only = [o.input_line for o in everything if _shapes_composition(o, groups)
                              and not (multirun and o.is_sweep_override())]
            hydra_root = compose("train", overrides=structure_only, return_hydra_config=True)
            # the jobs' configs are this composition without Hydra's settings (what compose() returns without
            # return_hydra_config): the jobs whose config-group choices are the command's reuse it
            composed: dict[tuple[str, ...], DictConfig] = {tuple(structure_only): _without_hydra(hydra_root)}
            values = [o for o in everything if not _shapes_composition(o, groups)]
            check_keys_exist(values, hydra_root)
            hydra_root = with_value_overrides(hydra_root, [o for o in values if not o.is_sweep_override()])
            hydra_cfg = hydra_root.hydra
            validate_hydra(hydra_root, multirun)
            params = {str(k): str(v) for k, v in (hydra_cfg.sweeper.get("params") or {}).items()}
            check_group_choices(OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()]),
                                groups)
            fixed, axes = grid(overrides, params if multirun else {}, multirun)
            memory = slurm_memory(hydra_cfg.launcher)
            for axis in axes:  # each value of a key that only its own rule checks, once
                if axis.independent:
                    for value in axis.values:
                        ROOT_RULES[axis.key].check(axis.key, value)
            dependent = [axis for axis in axes if not axis.independent]
            jobs = math.prod(len(axis.lines) for axis in axes)
            if multirun:
                refuse_a_shared_wandb_id(hydra_root, axes, jobs)
            refuse_a_size_a_budget_overrides(with_sweeper_params(overrides, params), hydra_root)
            per_combination = jobs // max(1, math.prod(len(axis.lines) for axis in dependent))
            if announce is not None:
                announce(jobs, hydra_root)
            progress = Progress(jobs, announced=announce is not None)
            first_checked: set[tuple[str, ...]] = set()
            # A combination whose every part (PART_READS) was validated in an earlier job needs no validation of its
            # own: a 100 x 100 grid of optim.lr x model.hidden_size is validated in about 200 full validations.
            # A swept value that interpolates (${...}) may read any part: then every combination is validated.
            by_parts = not any("${" in line for axis in dependent for line in axis.lines)
            seen: dict[str, set[tuple[str, ...]]] = {part: set() for part in PART_READS}
            for combination in itertools.product(*(axis.lines for axis in dependent)):
                signatures = part_signatures(combination, groups) if by_parts else {}
                if by_parts and all(signature in seen[part] for part, signature in signatures.items()):
                    checked += per_combination
                    progress.update(checked)
                    continue
                # the first value of each independent axis stands for all of them (each was checked above)
                job = fixed + [axis.lines[0] for axis in axes if axis.independent] + list(combination)
                structure, values, base = job_composition(job, groups, composed)
                if structure not in first_checked:
                    first_checked.add(structure)
                    check_keys_exist(values, base)
                cfg = with_value_overrides(base, values)
                threads.limit()
                with jobs_memory(memory):
                    validate(cfg, here=memory is None)
                if multirun:
                    check_objective_for(hydra_cfg.sweeper, cfg.get("objective"))
                for part, signature in signatures.items():
                    seen[part].add(signature)
                checked += per_combination
                progress.update(checked)
            if multirun:  # a job at each bound of each interval, the rest at the grid's first values
                first = fixed + [axis.lines[0] for axis in axes]
                for bounds in interval_bounds(overrides, params):
                    for line in bounds:
                        threads.limit()
                        with jobs_memory(memory):
                            validate_at_bound(first + [line], line, groups, composed, here=memory is None)
    except (ConfigCompositionException, OverrideParseException) as error:
        raise _one_line(error) from None
    except (InstantiationException, TypeError) as error:  # e.g. +model.unknown=1: a constructor refuses it
        raise RnnbenchError(root_cause_line(error)) from None
    except AssertionError:  # Hydra asserts when an override sets a key below a node that is null
        raise _under_null(everything, hydra_root) from None
    finally:
        threads.restore()
    lines = {line for axis in axes for line in axis.lines}
    for override in OverridesParser.create().parse_overrides(fixed):  # as written, and as Hydra's sweeper writes it
        lines |= {override.input_line, f"{override.get_key_element()}={override.get_value_element_as_str()}"}
    return Checked(multirun, checked, hydra_root, frozenset(lines), len(composed))


def job_composition(job: list[str], groups: set[str], composed: dict[tuple[str, ...], DictConfig]
                    ) -> tuple[tuple[str, ...], list[Override], DictConfig]:
    """(the job's config-group choices, its value overrides, the config those choices compose to). Composing is the
    slow part (~0.5 s): ``composed`` keeps one composition per distinct set of choices, and each job's values are
    then set on it the way Hydra does after composing (:func:`with_value_overrides`)."""
    parsed = OverridesParser.create().parse_overrides(job)
    structure = tuple(o.input_line for o in parsed if _shapes_composition(o, groups))
    if structure not in composed:
        composed[structure] = compose("train", overrides=list(structure))
    return structure, [o for o in parsed if not _shapes_composition(o, groups)], composed[structure]


def validate_at_bound(job: list[str], bound: str, groups: set[str], composed: dict[tuple[str, ...], DictConfig],
                      here: bool) -> None:
    """Validate ``job``, whose ``bound`` line is an interval's bound; a refusal says the sweeper may draw it."""
    _, values, base = job_composition(job, groups, composed)
    try:
        validate(with_value_overrides(base, values), here)
    except ConfigError as error:
        if error.setting != bound.split("=", 1)[0]:
            raise
        raise ConfigError(error.setting, error.value, f"{error.allowed} (a bound of the interval swept: the "
                                                      f"sweeper may draw it)") from None


def refuse_a_shared_wandb_id(root: DictConfig, axes: list[Axis], jobs: int) -> None:
    """A W&B run id given to a sweep's every job would make W&B resume one run from all of them (their histories
    interleaved, one summary): each job is its own run, named by rnnbench, unless the id is swept itself."""
    wandb = OmegaConf.select(root, "logger.wandb", default=None)
    if not isinstance(wandb, DictConfig) or "id" not in wandb or OmegaConf.is_interpolation(wandb, "id"):
        return  # no id, or one per job (``r${seed}``)
    run_id = wandb.get("id")
    if run_id is not None and (jobs != 1 or is_optuna_search(root.hydra.sweeper)) and \
            not any(axis.key.lstrip("+~") == "logger.wandb.id" for axis in axes):
        raise ConfigError("logger.wandb.id", run_id, "unset in a sweep: every job would log into this one W&B run "
                                                     "(each job is its own run, grouped by its configuration)")


def refuse_a_size_a_budget_overrides(parsed: list[Override], root: DictConfig) -> None:
    """``model.hidden_size`` given beside a parameter or state budget (on the command line or in a sweeper's params) would be
    recorded but not trained (the budget chooses the size): refused, so that no record's config names a size that
    never ran."""
    def given(key: str) -> Override | None:
        return next((o for o in parsed if o.key_or_group.lstrip("+") == key and not o.is_delete()), None)

    size = given("model.hidden_size")
    for key in (f"model.{budget}" for budget in BUDGETS):
        budget = given(key)
        budget_value = written_value(budget) if budget is not None else OmegaConf.select(root, key, default=None)
        if size is not None and budget_value not in (None, "null"):
            raise ConfigError("model.hidden_size", written_value(size),
                              f"left unset beside {key}={budget_value}, which chooses the hidden size (the "
                              f"record's model_size.hidden_size says which): give one of the two")


def slurm_memory(launcher: DictConfig) -> tuple[int, str] | None:
    """The memory a Slurm job gets (``hydra.launcher.mem_gb``, in GiB as Slurm counts; ``(0, "")`` for the
    cluster's default), for jobs that run on the cluster rather than here; None for any other launcher."""
    if launcher.get("_target_") != SUBMITIT_SLURM:
        return None
    mem_gb = launcher.get("mem_gb")
    return (int(mem_gb * 2**30), f"the Slurm job's memory (hydra.launcher.mem_gb={mem_gb})") if mem_gb else (0, "")


def _without_hydra(cfg: DictConfig) -> DictConfig:
    job = copy.deepcopy(cfg)
    with read_write(job), open_dict(job):
        del job["hydra"]
    return job


def preflight(arguments: list[str]) -> int:
    """Validate every job of ``rnnbench train ARGUMENTS`` (:func:`check_every_job`); return how many there are."""
    return check_every_job(arguments).jobs
