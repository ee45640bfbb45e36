"""The errors rnnbench reports to users as one line, without a traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from hydra.errors import InstantiationException


class RnnbenchError(Exception):
    """An error whose message alone tells the user what to fix."""


class ConfigError(RnnbenchError):
    """A setting holds a value that is not allowed.

    Components raise it with the setting's name relative to their own config node (``cell``);
    :meth:`under` prefixes the node's path (``model.cell``) where the config is known.
    """

    def __init__(self, setting: str, value: Any, allowed: str):
        self.setting, self.value, self.allowed = setting, value, allowed
        super().__init__(f"{setting}={value!r} is not allowed: {allowed}")

    def under(self, prefix: str) -> "ConfigError":
        return ConfigError(f"{prefix}.{self.setting}", self.value, self.allowed)


class DataError(RnnbenchError):
    """Data could not be read, fetched or verified."""


def require(condition: bool, setting: str, value: Any, allowed: str) -> None:
    if not condition:
        raise ConfigError(setting, value, allowed)


def require_int(value: Any, setting: str, minimum: int) -> int:
    require(isinstance(value, int) and not isinstance(value, bool) and value >= minimum,
            setting, value, f"an integer >= {minimum}")
    return value


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``"; did you mean X?"`` for the closest of ``candidates`` (difflib), or ``""``."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def root_cause_line(error: BaseException) -> str:
    """``Type: first line`` of the root cause: Hydra wraps constructor errors in an InstantiationException."""
    while isinstance(error, InstantiationException) and error.__cause__ is not None:
        error = error.__cause__
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"
