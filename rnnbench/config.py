"""Where the Hydra config tree lives, and the one up-front validation of a composed config."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig

from rnnbench.errors import ConfigError, did_you_mean, require, require_int

_PACKAGE = Path(__file__).resolve().parent
CLIP_ALGORITHMS = ("norm", "value")


def config_dir() -> Path:
    """The config tree: shipped as ``rnnbench/conf`` in an install, ``conf/`` beside the package in a checkout."""
    for candidate in (_PACKAGE / "conf", _PACKAGE.parent / "conf"):
        if (candidate / "train.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"rnnbench's config tree (train.yaml) is neither in {_PACKAGE / 'conf'} "
                            f"nor in {_PACKAGE.parent / 'conf'}")


def build(node: DictConfig, prefix: str, **kwargs: Any) -> Any:
    """Instantiate a config node, reporting its constructor's ConfigError as one naming ``prefix.<key>``.

    Keyword arguments go to the constructor as they are (Hydra would turn a dataclass into a config).
    """
    try:
        factory = instantiate(node, _partial_=True)
        return factory(**kwargs)
    except InstantiationException as error:
        if isinstance(error.__cause__, ConfigError):
            raise error.__cause__.under(prefix) from None
        raise
    except ConfigError as error:
        raise error.under(prefix) from None


def build_diagnostics(diagnostics: DictConfig | None) -> list[Any]:
    """One callback per instrument under ``diagnostics`` (entries without ``_target_`` are settings)."""
    return [build(node, f"diagnostics.{name}") for name, node in (diagnostics or {}).items()
            if isinstance(node, DictConfig) and "_target_" in node]


def check_arguments(node: DictConfig, prefix: str) -> None:
    """Every key of a ``_target_`` node (``trainer``, ``optim``) must be an argument of what it builds, so that a
    typo (``+trainer.max_step=5``) is refused by name before any job starts, with the closest argument."""
    target = get_class(node._target_)
    parameters = inspect.signature(target.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    accepted = [name for name in parameters if name != "self"]
    for key in node.keys():
        if str(key).startswith("_") and str(key).endswith("_"):
            continue
        require(key in accepted, f"{prefix}.{key}", node.get(key),
                f"an argument of {node._target_}{did_you_mean(str(key), accepted)}")


def validate(cfg: DictConfig) -> None:
    """Refuse every bad value, in one line, before any work: each component checks its own arguments.

    Building the data module and the model is cheap (no data is generated or read until
    ``setup``), so validation constructs them rather than repeating their rules here.
    """
    require(isinstance(cfg.get("seed"), int) and not isinstance(cfg.seed, bool) and cfg.seed >= 0,
            "seed", cfg.get("seed"), "an integer >= 0")
    if cfg.get("threads") not in (None, "auto"):
        require(isinstance(cfg.threads, int) and not isinstance(cfg.threads, bool) and cfg.threads >= 1, "threads",
                cfg.threads, "auto, null (torch's default: every core) or an integer >= 1")
    datamodule = build(cfg.data, "data")
    build(cfg.model, "model", task=datamodule.task)

    build_diagnostics(cfg.get("diagnostics"))

    check_arguments(cfg.trainer, "trainer")
    check_arguments(cfg.optim, "optim")
    lr = cfg.optim.get("lr")
    require(isinstance(lr, (int, float)) and not isinstance(lr, bool) and lr > 0, "optim.lr", lr, "a number > 0")
    clip = cfg.trainer.get("gradient_clip_val")
    require(clip is None or (isinstance(clip, (int, float)) and not isinstance(clip, bool) and clip > 0),
            "trainer.gradient_clip_val", clip, "null (no clipping) or a number > 0")
    algorithm = cfg.trainer.get("gradient_clip_algorithm")
    require(algorithm in CLIP_ALGORITHMS, "trainer.gradient_clip_algorithm", algorithm,
            f"one of {', '.join(CLIP_ALGORITHMS)}")
    max_steps = cfg.trainer.get("max_steps", -1)
    require(max_steps == -1 or (isinstance(max_steps, int) and max_steps >= 1), "trainer.max_steps", max_steps,
            "an integer >= 1, or -1 to let trainer.max_epochs decide")
