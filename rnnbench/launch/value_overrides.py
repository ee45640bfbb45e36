"""Set a job's ``KEY=VALUE`` overrides on a config composed without them, exactly as Hydra does.

rnnbench validates every job of a sweep before any starts. Composing is the slow part (~0.5 s), so it composes
once per distinct set of config-group choices and sets each job's values on a copy. Hydra has no public API
for that step; its composer calls ``ConfigLoaderImpl._apply_overrides_to_config`` (hydra-core 1.3). That one
private call lives here and nowhere else, and ``tests/test_validation.py`` pins its behaviour against a real
compose (plain, ``+``, ``++``, ``~`` and swept values) so that a Hydra release that changes it fails a test,
not a user's sweep.
"""

from __future__ import annotations

import copy

from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig


def with_value_overrides(cfg: DictConfig, overrides: list[Override]) -> DictConfig:
    """A copy of ``cfg`` with ``overrides`` (value overrides only, no config-group choices) applied."""
    job = copy.deepcopy(cfg)
    ConfigLoaderImpl._apply_overrides_to_config(overrides, job)
    return job
