"""The errors rnnbench reports to users as one line, without a traceback."""

from __future__ import annotations

import difflib
import inspect
import os
from collections.abc import Callable, Iterable, Mapping
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


SEED_LIMIT = 2**32 - 1  # the largest seed numpy, hence Lightning's seed_everything, accepts


def require(condition: bool, setting: str, value: Any, allowed: str | Callable[[], str]) -> None:
    """ConfigError(setting, value, allowed) unless ``condition``. ``allowed`` may be a function that makes the
    text, called only on refusal: a message with :func:`did_you_mean` (difflib) costs nothing when the value is
    fine, which matters on every job of a large grid."""
    if not condition:
        raise ConfigError(setting, value, allowed() if callable(allowed) else allowed)


def is_int_in(value: Any, minimum: int, maximum: int | None = None) -> bool:
    """Whether ``value`` is an integer (not a bool) in [minimum, maximum]."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum and \
        (maximum is None or value <= maximum)


def int_range_words(minimum: int, maximum: int | None = None) -> str:
    """What :func:`is_int_in` accepts, in words."""
    return f"an integer >= {minimum}" + ("" if maximum is None else f" and <= {maximum}")


def require_int(value: Any, setting: str, minimum: int, maximum: int | None = None) -> int:
    """``value``, if it is an integer (not a bool) in [minimum, maximum]; else a ConfigError on ``setting``."""
    require(is_int_in(value, minimum, maximum), setting, value, int_range_words(minimum, maximum))
    return value


def physical_memory() -> int:
    """Bytes of physical memory of this machine (``os.sysconf``); 0 where the system does not tell."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return 0


def format_bytes(count: float) -> str:
    """``count`` bytes in the largest binary unit that keeps the number >= 1 (``1.5 GiB``)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if count < 1024 or unit == "PiB":
            return f"{count:.3g} {unit}" if count < 1e6 else f"{count:.2e} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def defaults_of(function: Callable[..., Any]) -> dict[str, Any]:
    """The default value of each parameter of ``function`` that has one."""
    return {name: p.default for name, p in inspect.signature(function).parameters.items()
            if p.default is not inspect.Parameter.empty}


def require_fits(needed: float, what: str, settings: Mapping[str, tuple[Any, Any]]) -> None:
    """Refuse a configuration whose ``what`` needs ``needed`` bytes, more than this machine's physical memory.

    ``settings`` maps each setting the size grows with to ``(value, default)``; the one furthest above its
    default (by ratio) is named, since that is the one to bring down.
    """
    memory = physical_memory()
    if not memory or needed <= memory:
        return

    def ratio(item: tuple[str, tuple[Any, Any]]) -> float:
        value, default = item[1]
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return 0.0
        base = default if isinstance(default, (int, float)) and default > 0 else 1
        return value / base

    setting, (value, _) = max(settings.items(), key=ratio)
    raise ConfigError(setting, value, f"a smaller value: {what} would need at least {format_bytes(needed)}, "
                                      f"more than this machine's {format_bytes(memory)} of memory")



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
