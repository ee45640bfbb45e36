"""What Hydra needs wherever it composes rnnbench's config: the launching command and every worker process.

Importing this module registers the ``rnnbench.*`` OmegaConf resolvers that ``conf/hydra/rnnbench.yaml`` uses and
rnnbench's sweepers (:mod:`hydra_plugins.rnnbench_basic_sweeper`, the default, and the resumable Optuna sweeper),
and silences one Hydra notice. ``rnnbench.launch.validate`` and ``rnnbench.job`` import it, so it runs before
anything is composed in the launcher, and wherever Hydra instantiates (or unpickles) the job's callbacks in a
joblib or submitit worker, before that worker composes its job. (``rnnbench.launch`` itself does not: the
resumable Optuna sweeper imports optuna, seconds that a command refused by one value's rule need not wait.)
"""

from __future__ import annotations

import warnings

from omegaconf import OmegaConf


def sweep_subdir(*names: str | None) -> str:
    """``name/`` for the first chosen name (the experiment, else the hparams_search), else ``""``.

    ``multirun/${rnnbench.sweep_subdir:...}${now:...}`` puts a named sweep under ``multirun/<name>/``
    and an ad-hoc one directly under ``multirun/``, so each named sweep has one stable parent folder.
    """
    for name in names:
        if name not in (None, "", "null", "None"):
            return f"{name}/"
    return ""


def _register() -> None:
    if not OmegaConf.has_resolver("rnnbench.sweep_subdir"):
        OmegaConf.register_new_resolver("rnnbench.sweep_subdir", sweep_subdir)
    # hydra/sweeper=validated (the default) and optuna_resumable: Hydra finds plugins by scanning the hydra_plugins namespace, which an
    # editable install's import hook hides from that scan; registering it (Hydra's public API) works either way.
    from hydra.core.plugins import Plugins

    plugins = Plugins.instance()  # first: its scan re-imports Hydra's core plugins, which our sweeper subclasses
    from hydra_plugins.rnnbench_basic_sweeper.validated import ValidatedBasicSweeper
    from hydra_plugins.rnnbench_optuna_sweeper.resumable import ResumableOptunaSweeper

    plugins.register(ValidatedBasicSweeper)
    plugins.register(ResumableOptunaSweeper)
    # conf/hydra/launcher/{joblib,submitit_local}.yaml carry the plugins' names on purpose (so that
    # `hydra/launcher=joblib` means rnnbench's preset); Hydra then validates them against the plugins'
    # schemas, which is what we want, and says so in a deprecation notice on every composition.
    warnings.filterwarnings(
        "ignore", message=r"\s*'hydra/launcher/(joblib|submitit_local)' is validated against ConfigStore schema")


_register()
