"""The errors rnnbench reports to users as one line, without a traceback."""

from __future__ import annotations

import difflib
import inspect
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path, PurePosixPath
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


CGROUP_ROOT = "/sys/fs/cgroup"  # where the cgroup file systems are mounted
PROC_CGROUP = "/proc/self/cgroup"  # this process's cgroups: ``hierarchy-id:controllers:path`` a line
NO_LIMIT = 2**60  # a limit this large means none (cgroup v1 writes 9223372036854771712, 2**63 rounded to a page)


def rlimit_memory() -> list[tuple[int, str]]:
    """The soft address-space and data-segment limits of this process (``resource.getrlimit``), those set."""
    try:
        import resource
    except ImportError:  # not on this system (Windows)
        return []
    limits = []
    for name, words in (("RLIMIT_AS", "the process's address-space limit (ulimit -v)"),
                        ("RLIMIT_DATA", "the data-segment limit (ulimit -d)")):
        try:
            soft = resource.getrlimit(getattr(resource, name))[0]
        except (AttributeError, OSError, ValueError):
            continue
        if soft != resource.RLIM_INFINITY and 0 < soft < NO_LIMIT:
            limits.append((soft, words))
    return limits


def cgroup_memory(root: str | None = None, proc_cgroup: str | None = None) -> list[tuple[int, str]]:
    """The memory limits of this process's cgroup and of each cgroup above it, from the files of cgroup v2
    (``<root>/<path>/memory.max``) and v1 (``<root>/memory/<path>/memory.limit_in_bytes``), ``<path>`` read from
    ``proc_cgroup``; the root's own file stands for a path not mounted here (a container's). A file that is
    missing, unreadable or holds no number, ``max`` or a value of :data:`NO_LIMIT` or more sets no limit."""
    root = Path(CGROUP_ROOT if root is None else root)
    paths = {"v2": "/", "v1": "/"}  # the cgroup of each version; "/": the root, as where the file is not there
    try:
        lines = Path(PROC_CGROUP if proc_cgroup is None else proc_cgroup).read_text().splitlines()
    except (OSError, ValueError):
        lines = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3 and parts[2].startswith("/") and ".." not in parts[2].split("/"):
            if parts[0] == "0" and parts[1] == "":
                paths["v2"] = parts[2]
            elif "memory" in parts[1].split(","):
                paths["v1"] = parts[2]
    limits = []
    for version, base, name in (("v2", root, "memory.max"), ("v1", root / "memory", "memory.limit_in_bytes")):
        group = PurePosixPath(paths[version])
        for directory in dict.fromkeys([group, *group.parents]):  # the process's cgroup, then each one above
            file = base / str(directory).lstrip("/") / name
            try:
                value = int(file.read_text().strip())
            except (OSError, ValueError):  # missing, unreadable, "max" or garbage: no limit known
                continue
            if 0 < value < NO_LIMIT:
                limits.append((value, f"the cgroup's memory limit ({file})"))
    return limits


def memory_limit(cgroup_root: str | None = None, proc_cgroup: str | None = None) -> tuple[int, str]:
    """The bytes of memory this process may use, and whence, in words (``"the cgroup's memory limit (...)"``):
    the smallest of this machine's physical memory (:func:`physical_memory`), the soft ``ulimit -v`` and
    ``ulimit -d`` (:func:`rlimit_memory`) and the cgroup limits (:func:`cgroup_memory`, whose arguments these
    are); ``(0, "")`` where none is known."""
    known = [(physical_memory(), "this machine's physical memory"), *rlimit_memory(),
             *cgroup_memory(cgroup_root, proc_cgroup)]
    return min(((size, words) for size, words in known if size > 0), key=lambda item: item[0], default=(0, ""))


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


_JOBS_MEMORY: ContextVar[tuple[int, str] | None] = ContextVar("jobs_memory", default=None)


@contextmanager
def jobs_memory(limit: tuple[int, str] | None) -> Iterator[None]:
    """Within the block, :func:`require_fits` checks against ``limit`` (``(bytes, whence in words)``) instead of
    this process's limit: the launch path validates jobs that run elsewhere (a Slurm job's ``mem_gb``; ``(0, "")``
    for the cluster's default, not known here, so nothing is refused). None: this process's limit."""
    token = _JOBS_MEMORY.set(limit)
    try:
        yield
    finally:
        _JOBS_MEMORY.reset(token)


def require_fits(needed: float, what: str, settings: Mapping[str, tuple[Any, Any]],
                 limit: tuple[int, str] | None = None) -> None:
    """Refuse a configuration whose ``what`` needs ``needed`` bytes, more than the memory the job may use:
    ``limit`` (``(bytes, whence in words)``; ``(0, "")``: not known, nothing refused), else the one
    :func:`jobs_memory` set, else this process's :func:`memory_limit`.

    ``settings`` maps each setting the size grows with to ``(value, default)``; the one furthest above its
    default (by ratio) is named, since that is the one to bring down.
    """
    limit = _JOBS_MEMORY.get() if limit is None else limit
    memory, source = memory_limit() if limit is None else limit
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
                                      f"more than {source} of {format_bytes(memory)}")



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
