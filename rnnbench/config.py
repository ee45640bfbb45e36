"""Where the Hydra config tree lives, and the one up-front validation of a composed config.

:func:`validate` checks a job's config, :func:`validate_hydra` a command's Hydra settings (launcher, sweeper,
output dir). Both refuse a bad value with a :class:`~rnnbench.errors.ConfigError` naming its dotted key, before
any job starts and without writing anything. Each component checks its own arguments where it is built (the
data modules, the model); the rules here are the cross-cutting ones, and those of the components rnnbench
does not own (Lightning's Trainer, torch's optimizers, Hydra's plugins), in tables of (key, rule).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import inspect
import io
import json
import logging
import math
import os
import re
import types
import typing
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rnnbench.errors import (SEED_LIMIT, ConfigError, defaults_of, did_you_mean, format_bytes, int_range_words,
                             is_int_in, require, require_fits, root_cause_line)
from rnnbench.record.secrets import Secrets

_PACKAGE = Path(__file__).resolve().parent
CLIP_ALGORITHMS = ("norm", "value")
MAX_THREADS = 1024
DIRECTIONS = ("minimize", "maximize")


def config_dir() -> Path:
    """The config tree: shipped as ``rnnbench/conf`` in an install, ``conf/`` beside the package in a checkout."""
    for candidate in (_PACKAGE / "conf", _PACKAGE.parent / "conf"):
        if (candidate / "train.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"rnnbench's config tree (train.yaml) is neither in {_PACKAGE / 'conf'} "
                            f"nor in {_PACKAGE.parent / 'conf'}")


def build(node: DictConfig, prefix: str, **kwargs: Any) -> Any:
    """Instantiate a config node, reporting its constructor's ConfigError as one naming ``prefix.<key>``.

    Every key of the node must be an argument of what it builds (:func:`check_arguments`). Keyword arguments
    go to the constructor as they are (Hydra would turn a dataclass into a config).
    """
    check_arguments(node, prefix, provided=kwargs)
    try:
        factory = instantiate(node, _partial_=True)
        return factory(**kwargs)
    except InstantiationException as error:
        if isinstance(error.__cause__, ConfigError):
            raise _at_source(node, prefix, error.__cause__) from None
        raise
    except ConfigError as error:
        raise _at_source(node, prefix, error) from None


def _at_source(node: DictConfig, prefix: str, error: ConfigError) -> ConfigError:
    """A constructor's ConfigError on one of ``node``'s keys, named ``prefix.<key>``, or by the key it copies
    when its value is an interpolation of another (``every_n_steps: ${diagnostics.probe_every}``)."""
    raw = raw_values(node).get(error.setting)
    source = re.fullmatch(r"\$\{([\w.]+)\}", raw) if isinstance(raw, str) else None
    return ConfigError(source.group(1), error.value, error.allowed) if source else error.under(prefix)


def check_diagnostics(diagnostics: DictConfig | None) -> None:
    """Every entry under ``diagnostics`` is an instrument (a node with ``_target_``), null, or a setting that an
    instrument reads (``probe_every``, ``probe_size``): anything else would be silently ignored."""
    nodes = {name: node for name, node in (diagnostics or {}).items() if isinstance(node, DictConfig)}
    read = " ".join(str(value) for node in nodes.values() for value in raw_values(node).values())
    for name, value in (diagnostics or {}).items():
        if name in nodes or value is None:
            require(value is None or "_target_" in value, f"diagnostics.{name}", value,
                    "an instrument: a node with _target_ (as in conf/diagnostics/default.yaml)")
        else:
            require(f"diagnostics.{name}}}" in read, f"diagnostics.{name}", value,
                    "an instrument (a node with _target_) or a setting an instrument reads: "
                    + (", ".join(sorted(k for k, v in (diagnostics or {}).items() if k not in nodes
                                        and f"diagnostics.{k}}}" in read)) or "none here"))


def build_diagnostics(diagnostics: DictConfig | None) -> list[Any]:
    """One callback per instrument under ``diagnostics`` (entries without ``_target_`` are settings)."""
    return [build(node, f"diagnostics.{name}") for name, node in (diagnostics or {}).items()
            if isinstance(node, DictConfig) and "_target_" in node]


def _settings(node: Mapping[str, Any]) -> list[str]:
    """The keys of a ``_target_`` node that are arguments, not Hydra's own (``_target_``, ``_partial_``)."""
    return [str(key) for key in node.keys() if not (str(key).startswith("_") and str(key).endswith("_"))]


def check_arguments(node: DictConfig, prefix: str, provided: Iterable[str] = ()) -> None:
    """Every key of a ``_target_`` node must be an argument of what it builds, so that a typo
    (``+trainer.max_step=5``) is refused by name before any job starts, with the closest argument; an argument
    rnnbench passes itself (``provided``: the model's ``task``) is not a setting."""
    provided = set(provided)
    raw = OmegaConf.to_container(node, resolve=False)  # a ${hydra:...} value resolves only in the job
    for key in _settings(node):
        require(key not in provided, f"{prefix}.{key}", raw[key], "nothing: rnnbench sets it itself")
    try:
        parameters = _parameters(get_class(node._target_))
    except (ImportError, ValueError) as error:
        raise ConfigError(f"{prefix}._target_", node.get("_target_"), f"an importable class ({error})") from None
    if parameters is None:
        return
    for key in _settings(node):
        require(key in parameters, f"{prefix}.{key}", raw[key],
                lambda: f"an argument of {node._target_}{did_you_mean(key, parameters)}")


def _parameters(target: Any) -> list[str] | None:
    """The keyword arguments ``target`` takes (None: any, it has ``**kwargs``)."""
    parameters = inspect.signature(target.__init__ if isinstance(target, type) else target).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return None
    return [name for name in parameters if name != "self"]


# ---------------------------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class Rule:
    """What a setting may hold: ``accepts(value)``, and the words that say what is allowed."""

    accepts: Callable[[Any], bool]
    allowed: str

    def check(self, setting: str, value: Any) -> None:
        require(self.accepts(value), setting, value, self.allowed)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def integer(minimum: int, maximum: int | None = None, meaning: str = "") -> Rule:
    """An integer in [minimum, maximum]."""
    return Rule(lambda v: is_int_in(v, minimum, maximum), int_range_words(minimum, maximum) + meaning)


def positive(meaning: str = "") -> Rule:
    """A number > 0."""
    return Rule(lambda v: _is_number(v) and v > 0, "a number > 0" + meaning)


def one_of(*choices: Any, meaning: str = "") -> Rule:
    """Exactly one of ``choices`` (``null`` for None)."""
    words = ", ".join("null" if c is None else str(c) for c in choices)
    return Rule(lambda v: any(v == c and type(v) is type(c) for c in choices), f"one of {words}{meaning}")


def optional(rule: Rule, meaning: str) -> Rule:
    """None (which means ``meaning``) or what ``rule`` accepts."""
    return Rule(lambda v: v is None or rule.accepts(v), f"null ({meaning}) or {rule.allowed}")


def never(reason: str) -> Rule:
    """A key that is not a setting at all."""
    return Rule(lambda v: False, reason)


BOOLEAN = Rule(lambda v: isinstance(v, bool), "true or false")
SINGLE_PROCESS = " (rnnbench runs each job in one process; run jobs side by side with hydra/launcher=joblib)"

ROOT_RULES: dict[str, Rule] = {
    "seed": integer(0, SEED_LIMIT),
    "threads": Rule(lambda v: v in (None, "auto") or (_is_int(v) and 1 <= v <= MAX_THREADS),
                    f"auto, null (torch's default: every core) or an integer in [1, {MAX_THREADS}]"),
    "verbose": BOOLEAN,
    "resume": BOOLEAN,
    "checkpoint": Rule(lambda v: isinstance(v, bool) or v == "keep", "true, false or keep"),
    "extra": Rule(lambda v: True, "anything: free-form notes kept in the record (+extra.KEY=VALUE)"),
    "objective": Rule(lambda v: v is None or isinstance(v, str), "null or a record metric such as best/val/loss"),
    "objective_direction": one_of(*DIRECTIONS),
    "weight_noise": Rule(lambda v: _is_number(v) and v >= 0,
                         "a number >= 0: the standard deviation of the Gaussian noise added to the weights for "
                         "each training forward (0: off)"),
    "early_stopping": optional(integer(1, meaning=" (validations without improvement of val/<metric>)"),
                               "off: train for the whole step budget"),
    "logger": Rule(lambda v: isinstance(v, DictConfig), "a config of the logger group (logger=csv|wandb|none)"),
    "diagnostics": Rule(lambda v: v is None or isinstance(v, DictConfig),
                        "a config of the diagnostics group (diagnostics=default|none)"),
}
COMPONENTS = ("data", "model", "optim", "trainer")  # config groups whose node builds one object

TRAINER_RULES: dict[str, Rule] = {
    "max_steps": Rule(lambda v: v == -1 and _is_int(v) or _is_int(v) and v >= 1,
                      "an integer >= 1, or -1 to let trainer.max_epochs decide"),
    "max_epochs": Rule(lambda v: v is None or _is_int(v) and (v == -1 or v >= 1),
                       "-1 or null (trainer.max_steps decides) or an integer >= 1"),
    "val_check_interval": Rule(lambda v: v is None or _is_int(v) and v >= 1 or isinstance(v, float) and 0 < v <= 1
                               or isinstance(v, (str, DictConfig)),
                               "null (once per epoch), an integer >= 1 (training batches), a fraction of an epoch "
                               "in (0, 1] (with trainer.check_val_every_n_epoch set) or a duration 'DD:HH:MM:SS'"),
    "check_val_every_n_epoch": optional(integer(1), "trainer.val_check_interval counts batches across epochs"),
    "log_every_n_steps": integer(1),
    "num_sanity_val_steps": Rule(lambda v: _is_int(v) and v >= -1,
                                 "an integer >= 0, or -1 for every validation batch"),
    "accumulate_grad_batches": integer(1),
    "limit_train_batches": Rule(lambda v: v is None or _is_int(v) and v >= 1 or isinstance(v, float) and 0 < v <= 1,
                                "null, an integer >= 1 (batches per epoch) or a fraction in (0, 1] (0 trains nothing)"),
    # more than one device is refused below from the Trainer built; a huge count is refused before building it
    "devices": Rule(lambda v: not (_is_int(v) and v > 1), f"1, -1 or 'auto' (one device){SINGLE_PROCESS}"),
    "gradient_clip_val": optional(positive(), "no clipping"),
    "gradient_clip_algorithm": one_of(*CLIP_ALGORITHMS),
    "strategy": one_of("auto", "single_device", meaning=SINGLE_PROCESS),
    "num_nodes": one_of(1, meaning=SINGLE_PROCESS),
    "logger": never("nothing: rnnbench passes the job's loggers (choose them with logger=csv|wandb|none)"),
    "callbacks": never("nothing: rnnbench passes its own callbacks (the diagnostics group configures them)"),
    "default_root_dir": never("nothing: it is the job's output dir (hydra.run.dir, hydra.sweep.dir)"),
}
OPTIM_RULES: dict[str, Rule] = {
    "lr": positive(),
    "params": never("nothing: rnnbench passes the model's parameters"),
}
# torch's optimizers name some arguments in words ("Invalid learning rate: -1")
OPTIM_WORDS = {"lr": ("learning rate",), "eps": ("epsilon",), "betas": ("beta",)}


def objective_names(metric: str) -> list[str]:
    """The record metrics a job can return to a sweeper, for a task whose metric is ``metric``."""
    return ["train/loss", "val/loss", f"val/{metric}", "test/loss", f"test/{metric}", "best/val/loss",
            f"best/val/{metric}"]


@functools.cache
def primary_keys() -> tuple[str, ...]:
    """The top-level keys of the primary config, ``train.yaml`` (its own, not its groups')."""
    return tuple(str(key) for key in OmegaConf.load(config_dir() / "train.yaml").keys() if key != "defaults")


def group_choices(group: str) -> list[str]:
    """The configs a group of rnnbench's tree offers (``data`` -> ``adding``, ``copy``, ...)."""
    return sorted(path.stem for path in (config_dir() / group).glob("*.yaml"))


def choices_with_key(group: str, key: str) -> list[str]:
    """The configs of ``group`` whose own file sets ``key`` (``data``, ``test_seq_len`` -> ``adding``, ``copy``):
    where a key one choice lacks is found."""
    return [choice for choice in group_choices(group)
            if key in (OmegaConf.load(config_dir() / group / f"{choice}.yaml") or {})]


# ---------------------------------------------------------------------------------------------- walking


def raw_values(node: DictConfig | ListConfig) -> dict[Any, Any]:
    """Each key of ``node`` (an index of a list) to its value as written, unresolved: an interpolation's text
    (``${oc.env:X}``), ``???`` for a value still to be given, a nested node as plain containers."""
    raw = OmegaConf.to_container(node, resolve=False)
    return dict(enumerate(raw)) if isinstance(raw, list) else raw


def _hydra_resolved_later(raw: Any) -> bool:
    """An interpolation of Hydra's run-time config (``${hydra:runtime.output_dir}``): it resolves in the job."""
    return isinstance(raw, str) and "${hydra:" in raw.replace(" ", "")


def _resolved(node: DictConfig | ListConfig, key: Any, name: str) -> Any:
    """``node[key]`` resolved; an interpolation that does not resolve is a ConfigError naming ``name``."""
    try:
        return node[key]
    except OmegaConfBaseException as error:
        raw = raw_values(node).get(key)
        reason = " ".join(str(error).split("\n")[0].split())
        raise ConfigError(name, raw, f"an interpolation that resolves ({reason})") from None


def resolved_leaves(node: DictConfig | ListConfig, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted key, resolved value)`` of every leaf under ``node``; an interpolation that does not resolve
    (``${nope}``, ``${oc.env:UNSET}``) or a mandatory value left ``???`` is a ConfigError naming its key."""
    raws = raw_values(node)
    keys = range(len(node)) if isinstance(node, ListConfig) else node.keys()
    for key in keys:
        name = f"{prefix}[{key}]" if isinstance(node, ListConfig) else f"{prefix}{'.' if prefix else ''}{key}"
        raw = raws.get(key)
        if OmegaConf.is_missing(node, key):
            raise ConfigError(name, "???", "a value (the config leaves it to be given: ???)")
        if _hydra_resolved_later(raw):
            continue
        value = _resolved(node, key, name)
        if isinstance(value, (DictConfig, ListConfig)):
            yield from resolved_leaves(value, name)
        else:
            yield name, value


def require_resolved_and_finite(node: DictConfig | ListConfig, prefix: str = "") -> None:
    """Every interpolation under ``node`` resolves and every number is finite (no nan, no ±inf)."""
    for name, value in resolved_leaves(node, prefix):
        if isinstance(value, float):
            require(math.isfinite(value), name, value, "a finite number (not nan or inf)")


# ---------------------------------------------------------------------------------------------- types


SEQUENCES = (list, tuple, Sequence, Iterable)  # what a YAML list can stand for
_OBJECT = " (a node with _target_)"


def matches(value: Any, annotation: Any) -> bool:
    """Whether a config value (a YAML scalar, list or mapping) can be what a type ``annotation`` describes, as
    pydantic judges it in strict mode: read as the JSON value it is (a list fits a tuple, a string a path) or as
    the Python object Hydra passes (an instance of a class); nothing converts (``"1"`` is no integer, ``1`` no
    boolean). A value holding a ``_target_`` node is left to the build (the object it stands for is known only
    then), and an annotation pydantic does not read accepts anything."""
    import pydantic
    import pydantic_core

    plain = OmegaConf.to_container(value, resolve=True) if isinstance(value, (DictConfig, ListConfig)) else value
    if _holds_target(plain):
        return True
    try:
        adapter = _type_adapter(annotation)
    except (pydantic.PydanticUserError, pydantic_core.SchemaError, TypeError, NameError):
        return True
    readings = [lambda: adapter.validate_python(plain, strict=True)]
    with contextlib.suppress(TypeError, ValueError):  # a value JSON cannot hold is read as the Python object only
        text = json.dumps(plain)
        readings.insert(0, lambda: adapter.validate_json(text, strict=True))
    for reading in readings:
        try:
            result = reading()
            if isinstance(result, Iterator):  # an Iterable[...] is checked as it is consumed
                collections.deque(result, maxlen=0)
        except pydantic.ValidationError:
            continue
        except TypeError:  # an isinstance check that cannot run (a protocol that is not runtime-checkable)
            pass
        return True
    return False


def _holds_target(plain: Any) -> bool:
    if isinstance(plain, dict):
        return "_target_" in plain or any(_holds_target(v) for v in plain.values())
    return isinstance(plain, list) and any(_holds_target(v) for v in plain)


@functools.lru_cache(maxsize=None)
def _cached_adapter(annotation: Any) -> Any:
    import pydantic

    return pydantic.TypeAdapter(annotation, config=pydantic.ConfigDict(arbitrary_types_allowed=True))


def _type_adapter(annotation: Any) -> Any:
    """pydantic's validator of ``annotation`` (a class it has no schema for: by ``isinstance``), built once."""
    try:
        return _cached_adapter(annotation)
    except TypeError as error:  # an unhashable annotation: built each time
        if "unhashable" not in str(error):
            raise
        return _cached_adapter.__wrapped__(annotation)


def describe(annotation: Any) -> str:
    """A type ``annotation`` in a user's words (``Optional[int]`` -> ``null or an integer``); a class is left
    out of a union that offers a YAML value too (``float | Tensor`` -> ``a number``)."""
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in arguments if typing.get_origin(a) is not typing.Literal]
        choices = [c for a in arguments if typing.get_origin(a) is typing.Literal for c in typing.get_args(a)]
        words = list(dict.fromkeys(describe(m) for m in sorted(members, key=lambda m: m is not type(None))))
        if choices:
            words.append(describe(typing.Literal[tuple(choices)]))
        plain = [w for w in words if not w.endswith(_OBJECT)]
        return " or ".join(plain or words)
    if origin is typing.Literal:
        return "one of " + ", ".join(dict.fromkeys(str(choice) for choice in arguments))
    words = {type(None): "null", bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if annotation in words:
        return words[annotation]
    container = origin or annotation
    if isinstance(container, type) and (issubclass(container, Mapping) or container is dict):
        return "a mapping"
    if container is tuple and arguments and Ellipsis not in arguments:
        return f"a list of {len(arguments)}: {', '.join(describe(a) for a in arguments)}"
    if container in SEQUENCES:
        return "a list" + (f" of {describe(arguments[0])}" if arguments else "")
    return f"a {getattr(container, '__name__', container)}{_OBJECT}"


def annotations_of(target: Any) -> dict[str, Any]:
    """The evaluated annotations of ``target``'s constructor (or of a function); a name an annotation uses that
    its module does not define at run time (``Run`` in ``WandbLogger``, imported only for type checkers) stands
    for ``Any``, so the other arguments are still checked."""
    function = target.__init__ if isinstance(target, type) else target
    namespace = dict(getattr(function, "__globals__", {}))
    for _ in range(16):
        try:
            return typing.get_type_hints(function, globalns=namespace)
        except NameError as error:
            if not getattr(error, "name", None) or error.name in namespace:
                return {}
            namespace[error.name] = Any
        except TypeError:  # an annotation that does not evaluate here: nothing to check against
            return {}
    return {}


def check_types(node: DictConfig, prefix: str, skip: Iterable[str]) -> None:
    """Every setting of a ``_target_`` node but ``skip`` matches the type its constructor annotates."""
    hints, raws = annotations_of(get_class(node._target_)), raw_values(node)
    for key in _settings(node):
        if key in hints and key not in skip and not _hydra_resolved_later(raws.get(key)):
            require(matches(node[key], hints[key]), f"{prefix}.{key}", node[key],
                    f"{describe(hints[key])} (the type of {node._target_}'s argument {key})")


# ---------------------------------------------------------------------------------------------- trials


@contextlib.contextmanager
def _quietly() -> Iterator[None]:
    """Lightning's Trainer logs its devices and tips and may warn while it is built; none of that shows, and
    the torch flags it sets (determinism, cudnn benchmark) are put back."""
    import torch

    disabled = logging.root.manager.disable
    flags = (torch.backends.cudnn.benchmark, torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled(), os.environ.get("CUBLAS_WORKSPACE_CONFIG"))
    logging.disable(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(disabled)
        benchmark, deterministic, warn_only, cublas = flags
        torch.backends.cudnn.benchmark = benchmark
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        if cublas is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
        else:
            os.environ["CUBLAS_WORKSPACE_CONFIG"] = cublas


def _trial_errors() -> tuple[type[BaseException], ...]:
    from lightning_fabric.utilities.exceptions import MisconfigurationException

    # ImportError: a device or plugin whose package is not installed (trainer.accelerator=tpu needs torch_xla)
    return MisconfigurationException, ValueError, TypeError, RuntimeError, ImportError, InstantiationException


def _attempt(settings: Mapping[str, Any], kwargs: Mapping[str, Any]) -> tuple[Any, BaseException | None]:
    """``(object, None)`` built from ``settings`` (a ``_target_`` mapping) and ``kwargs``, or ``(None, error)``."""
    try:
        with _quietly():
            return instantiate(dict(settings), _partial_=True)(**kwargs), None
    except _trial_errors() as error:
        return None, error


def trial_build(node: DictConfig, prefix: str, words: Mapping[str, Sequence[str]] = {}, **kwargs: Any) -> Any:
    """Build what ``node`` configures (Lightning's Trainer, a torch optimizer) as a job would, but writing
    nothing, and report the exception its constructor raises as a ConfigError on the key at fault.

    The key at fault: of the keys its message names (``words``: other names the message may use for a key),
    else of all, in that order, the first without which the object builds; else the first named.
    """
    settings = OmegaConf.to_container(node, resolve=True)
    built, error = _attempt(settings, kwargs)
    if error is None:
        return built
    message = root_cause_line(error).split(": ", 1)[-1]
    keys = _settings(settings)
    mentioned = sorted((match.start(), key) for key in keys for word in (key, *words.get(key, ()))
                       if (match := re.search(rf"\b{re.escape(word)}\b", message, re.IGNORECASE)))
    named = list(dict.fromkeys(key for _, key in mentioned))
    candidates = named + [key for key in keys if key not in named]
    culprit = next((key for key in candidates
                    if _attempt({k: v for k, v in settings.items() if k != key}, kwargs)[1] is None),
                   named[0] if named else None)
    if culprit is None:
        raise ConfigError(f"{prefix}._target_", node._target_, f"settings it accepts: {message}")
    raise ConfigError(f"{prefix}.{culprit}", node[culprit], f"what {node._target_} accepts: {message}")


# ---------------------------------------------------------------------------------------------- validate


def check_node(node: DictConfig, prefix: str, rules: Mapping[str, Rule], filled: Iterable[str] = ()) -> None:
    """A node rnnbench does not own: its keys are arguments, pass their rule, else match their annotated type
    (but ``filled``, keys rnnbench fills in per job)."""
    check_arguments(node, prefix)
    for key in _settings(node):
        if key in rules:
            rules[key].check(f"{prefix}.{key}", node[key])
    check_types(node, prefix, skip=set(rules) | set(filled))


def check_loggers(loggers: DictConfig) -> None:
    """Each logger's settings are arguments of the logger of their annotated type; a null one is filled per
    job (the output dir, the run's name)."""
    secrets = Secrets.from_environment()
    for name, node in loggers.items():
        require(node is None or isinstance(node, DictConfig) and "_target_" in node, f"logger.{name}", node,
                "a logger (a node with _target_, as in conf/logger/) or null")
        if isinstance(node, DictConfig) and "_target_" in node:
            raws = raw_values(node)
            check_node(node, f"logger.{name}", LOGGER_RULES.get(node._target_, {}), filled=[
                k for k in _settings(node) if _hydra_resolved_later(raws.get(k)) or node[k] is None])
            for key in PATH_SETTINGS:
                if key in node and not _hydra_resolved_later(raws.get(key)):
                    refuse_a_credential_in_a_path(f"logger.{name}.{key}", node[key], secrets)


# Logger settings that become dir or file names (and are printed): a credential there cannot be scrubbed away.
PATH_SETTINGS = ("save_dir", "dir", "name", "version", "project")


def refuse_a_credential_in_a_path(setting: str, value: Any, secrets: Secrets | None = None) -> None:
    """ConfigError when ``value`` holds a credential of this process's environment (see
    :mod:`rnnbench.record.secrets`): a path would carry it into dir names, logs and the screen, where no scrubbing
    reaches; the error line shows the value redacted."""
    secrets = secrets or Secrets.from_environment()
    if isinstance(value, str) and secrets.scrub(value) != value:
        raise ConfigError(setting, secrets.scrub(value), "a path without a credential from the environment "
                                                          "(it would name a dir and be printed)")


LOGGER_RULES: dict[str, dict[str, Rule]] = {  # rules for the settings whose annotation is not checked at run time
    "pytorch_lightning.loggers.WandbLogger": {"offline": BOOLEAN, "log_model": one_of(True, False, "all")},
}


def check_root(cfg: DictConfig) -> None:
    """The top-level keys: each component group chosen, each setting as its rule says, no unknown key."""
    for group in COMPONENTS:
        node = cfg.get(group)
        require(isinstance(node, DictConfig) and "_target_" in node, group, node,
                f"a config of the {group} group: one of {', '.join(group_choices(group))}")
    for key, rule in ROOT_RULES.items():
        rule.check(key, cfg.get(key))
    known = list(dict.fromkeys([*COMPONENTS, *ROOT_RULES, *primary_keys()]))
    for key in cfg.keys():
        require(key in known, str(key), cfg.get(key),
                lambda: f"nothing: rnnbench's config has no key {key!r}{did_you_mean(str(key), known)}")


def check_memory(cfg: DictConfig, datamodule: Any, task: Any) -> None:
    """Refuse, before the model is built, a training step that cannot fit in this machine's memory: the data,
    the weights and gradients, and the activations of one batch (the model class's ``footprint``)."""
    check_arguments(cfg.model, "model", provided=["task"])
    model_class = get_class(cfg.model._target_)
    footprint = getattr(model_class, "footprint", None)
    samples = getattr(datamodule, "split_samples", None)
    if footprint is None or samples is None:
        return
    batch = min(datamodule.batch_size, samples["train"])
    settings = {key: cfg.model[key] for key in _settings(cfg.model)}
    try:
        needed = footprint(task, batch, settings) + datamodule.memory_bytes()
    except ConfigError as error:
        raise error.under("model") from None
    data_defaults, model_defaults = defaults_of(type(datamodule).__init__), defaults_of(model_class.__init__)
    growing = {f"data.{key}": (getattr(datamodule, key), data_defaults.get(key))
               for key in ("batch_size", "seq_len") if hasattr(datamodule, key)}
    growing.update({f"model.{key}": (settings[key], model_defaults.get(key))
                    for key in ("hidden_size", "num_layers", "embedding_size", "param_budget", "state_budget")
                    if settings.get(key) is not None})
    require_fits(needed, f"training (the data, the model and one batch's activations: {format_bytes(needed)})",
                 growing)


def _batches(samples: int, batch_size: int, limit: Any) -> int:
    """The batches Lightning runs of a split of ``samples`` under ``limit_<split>_batches`` (an int caps them,
    a float keeps that fraction, rounded down)."""
    batches = math.ceil(samples / batch_size)
    return min(batches, limit) if _is_int(limit) else int(batches * limit)


def check_epochs(trainer: DictConfig, datamodule: Any) -> None:
    """The Trainer's checks that fire only once data is there: a fraction of a split that rounds to no batch,
    validation more batches apart than an epoch has, and a run that would never end."""
    defaults = defaults_of(get_class(trainer._target_).__init__)
    setting = {key: trainer.get(key, defaults.get(key)) for key in (
        "max_steps", "max_epochs", "val_check_interval", "check_val_every_n_epoch", "limit_train_batches",
        "limit_val_batches", "limit_test_batches")}
    max_epochs = setting["max_epochs"]
    require(setting["max_steps"] != -1 or (_is_int(max_epochs) and max_epochs >= 1), "trainer.max_steps",
            setting["max_steps"], f"an integer >= 1 while trainer.max_epochs={max_epochs} (with both unset the run "
                                  f"would never end; to train for N epochs set trainer.max_epochs=N)")
    samples = getattr(datamodule, "split_samples", None)
    if samples is None:
        return
    batches = {}
    for split, count in samples.items():
        limit = setting[f"limit_{split}_batches"]
        limit = 1.0 if limit is None else limit
        batches[split] = _batches(count, datamodule.batch_size, limit)
        full = math.ceil(count / datamodule.batch_size)
        require(not (isinstance(limit, float) and limit > 0 and batches[split] == 0), f"trainer.limit_{split}_batches",
                limit, f"0, a fraction >= {1 / full:.3g} (the {split} split has {full} batches) or an integer")
    interval, every = setting["val_check_interval"], setting["check_val_every_n_epoch"]
    validates = not (isinstance(setting["limit_val_batches"], (int, float)) and setting["limit_val_batches"] == 0)
    if _is_int(interval) and every is not None and validates and batches["train"]:
        require(interval <= batches["train"], "trainer.val_check_interval", interval,
                f"an integer <= {batches['train']} (the training batches of an epoch) while "
                f"trainer.check_val_every_n_epoch={every}; set that to null to count batches across epochs")


def check_trainer(trainer: DictConfig, datamodule: Any, here: bool) -> None:
    """Lightning's Trainer: rnnbench's rules, the argument types, then a Trainer built from the config (no
    logger, no callbacks, nothing written), which must run in one process."""
    from pytorch_lightning.strategies import SingleDeviceStrategy

    require(trainer.get("_target_") == TRAINER, "trainer._target_", trainer.get("_target_"), TRAINER)
    check_node(trainer, "trainer", TRAINER_RULES)
    check_epochs(trainer, datamodule)
    if not here:
        return
    built = trial_build(trainer, "trainer", logger=False, callbacks=[], enable_checkpointing=False,
                        enable_progress_bar=False)
    require(isinstance(built.strategy, SingleDeviceStrategy), "trainer.devices", trainer.get("devices", "auto"),
            f"1 (Lightning would start {type(built.strategy).__name__} over {built.num_devices} devices)"
            f"{SINGLE_PROCESS}")


TRAINER = "pytorch_lightning.Trainer"


def check_optim(optim: DictConfig) -> None:
    """A torch optimizer: rnnbench's rules, the argument types, then the optimizer built on a dummy parameter."""
    import torch

    check_node(optim, "optim", OPTIM_RULES)
    trial_build(optim, "optim", OPTIM_WORDS, params=[torch.nn.Parameter(torch.zeros(1))])


def validate(cfg: DictConfig, here: bool = True) -> None:
    """Refuse every bad value of a job's composed config, in one line naming its key, before any work.

    Building the data module and the model is cheap (no data is generated or read until ``setup``, and a model
    that cannot fit in memory is refused from its parameter count), so validation constructs them rather than
    repeating their rules here. ``here=False``: the jobs run on other machines (a Slurm launcher), so the
    checks of this machine's devices (a Trainer built here) are left to them.
    """
    require_resolved_and_finite(cfg)
    check_root(cfg)
    datamodule = build(cfg.data, "data")
    task = datamodule.task
    names = objective_names(task.metric)
    require(cfg.get("objective") is None or cfg.objective in names, "objective", cfg.get("objective"),
            lambda: f"null or a metric of the record: one of {', '.join(names)}"
                    f"{did_you_mean(str(cfg.objective), names)}")
    check_memory(cfg, datamodule, task)
    model = build(cfg.model, "model", task=task)
    lengths = getattr(datamodule, "test_lengths", ())
    require(not lengths or getattr(model, "readout_kind", "last") != "all", "data.test_seq_len",
            list(lengths), f"null with model.readout=all (its head reads exactly the training length's "
                           f"{task.seq_len} steps; last or mean read any length)")
    check_diagnostics(cfg.get("diagnostics"))
    build_diagnostics(cfg.get("diagnostics"))
    check_loggers(cfg.logger)
    check_trainer(cfg.trainer, datamodule, here)
    check_optim(cfg.optim)


# ---------------------------------------------------------------------------------------------- hydra

JOBLIB = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
SUBMITIT_LOCAL = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"
SUBMITIT_SLURM = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
OPTUNA = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
RESUMABLE_OPTUNA = "hydra_plugins.rnnbench_optuna_sweeper.resumable.ResumableOptunaSweeper"  # hydra/sweeper=optuna_resumable
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
VALIDATED_BASIC_SWEEPER = "hydra_plugins.rnnbench_basic_sweeper.validated.ValidatedBasicSweeper"  # the default


SUBMITIT_RULES: dict[str, Rule] = {
    "timeout_min": integer(1, meaning=" (minutes)"),
    "cpus_per_task": optional(integer(1), "the cluster's default"),
    "gpus_per_node": optional(integer(0), "none"),
    "tasks_per_node": one_of(1, meaning=SINGLE_PROCESS),
    "nodes": one_of(1, meaning=SINGLE_PROCESS),
    "mem_gb": optional(positive(), "the cluster's default"),
}
HYDRA_RULES: dict[str, dict[str, Rule]] = {  # launcher or sweeper _target_ -> its settings' rules
    JOBLIB: {
        "n_jobs": Rule(lambda v: _is_int(v) and v != 0, "an integer other than 0: the jobs run at once, or -1 for "
                                                          "one per core (-2: all cores but one, ...)"),
        "prefer": one_of(None, "processes", "threads"),
        "require": one_of(None, "sharedmem"),
        "verbose": integer(0),
        "timeout": optional(positive(), "none"),
        "batch_size": Rule(lambda v: v == "auto" or _is_int(v) and v >= 1, "auto or an integer >= 1"),
        "pre_dispatch": Rule(lambda v: isinstance(v, str) or _is_int(v) and v >= 1,
                             "all, an expression of n_jobs such as 2*n_jobs, or an integer >= 1"),
        "mmap_mode": one_of(None, "r+", "r", "w+", "c"),
    },
    SUBMITIT_LOCAL: SUBMITIT_RULES,
    SUBMITIT_SLURM: {
        **SUBMITIT_RULES,
        "array_parallelism": integer(1),
        "cpus_per_gpu": optional(integer(1), "the cluster's default"),
        "gpus_per_task": optional(integer(1), "the cluster's default"),
        "signal_delay_s": integer(0),
        "max_num_timeout": integer(0),
    },
    OPTUNA: {
        "n_trials": integer(1),
        "n_jobs": integer(1, meaning=" (trials per batch)"),
        "direction": one_of(*DIRECTIONS, meaning=" (rnnbench's jobs return one objective)"),
        "max_failure_rate": Rule(lambda v: _is_number(v) and 0 <= v <= 1, "a number in [0, 1]"),
        "sampler.seed": optional(integer(0, SEED_LIMIT), "a random seed"),
        "sampler.n_startup_trials": integer(0),
    },
    BASIC_SWEEPER: {"max_batch_size": optional(integer(1), "every job in one batch")},
}
HYDRA_RULES[RESUMABLE_OPTUNA] = HYDRA_RULES[OPTUNA]
HYDRA_RULES[VALIDATED_BASIC_SWEEPER] = HYDRA_RULES[BASIC_SWEEPER]


def validate_hydra(root: DictConfig, multirun: bool) -> None:
    """Refuse a bad Hydra setting of a command before any job starts: the launcher's and the sweeper's
    settings (rules per plugin, :data:`HYDRA_RULES`), the output dir (``hydra.run.dir``, or ``hydra.sweep.dir``
    for ``multirun``) resolving, and, for an Optuna sweep, an ``objective`` to optimise.

    ``root`` is a config composed with ``return_hydra_config=True``: its ``hydra`` node and its job settings.
    """
    hydra_cfg = root.hydra
    launcher, sweeper = hydra_cfg.launcher, hydra_cfg.sweeper
    require_resolved_and_finite(launcher, "hydra.launcher")
    require_resolved_and_finite(sweeper, "hydra.sweeper")
    output = "sweep" if multirun else "run"
    directory = _resolved(hydra_cfg[output], "dir", f"hydra.{output}.dir")
    require(isinstance(directory, str) and directory.strip() != "", f"hydra.{output}.dir", directory,
            "a directory path")
    refuse_a_credential_in_a_path(f"hydra.{output}.dir", directory)
    for name, node in (("launcher", launcher), ("sweeper", sweeper)):
        for key, rule in HYDRA_RULES.get(node.get("_target_"), {}).items():
            value = OmegaConf.select(node, key, default=_ABSENT)
            if value is not _ABSENT:
                rule.check(_set_by(node, key, f"hydra.{name}.{key}"), value)
    if multirun and "objective" in root:
        check_objective_for(sweeper, root.objective)


def is_optuna_search(sweeper: Any) -> bool:
    """Whether ``hydra.sweeper`` is an Optuna search (Hydra's sweeper or rnnbench's resumable one): its trials are
    drawn, each its own configuration, and it optimises the record metric ``objective`` names."""
    return (sweeper or {}).get("_target_") in (OPTUNA, RESUMABLE_OPTUNA)


def check_objective_for(sweeper: DictConfig, objective: Any) -> None:
    """An Optuna sweep optimises the record metric ``objective`` names: it cannot be null."""
    if is_optuna_search(sweeper):
        require(objective is not None, "objective", objective,
                "a record metric such as best/val/loss: an Optuna sweep optimises the value it names")


def _set_by(node: DictConfig, key: str, name: str) -> str:
    """The setting a user gives for ``node.key``: the key it interpolates (``${objective_direction}``), else
    ``name``."""
    parent, _, leaf = key.rpartition(".")
    holder = OmegaConf.select(node, parent) if parent else node
    raw = raw_values(holder).get(leaf) if isinstance(holder, DictConfig) else None
    match = re.fullmatch(r"\$\{([\w.]+)\}", raw) if isinstance(raw, str) else None
    return match.group(1) if match else name


_ABSENT = object()
