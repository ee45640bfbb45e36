"""Cells by name: the built-in registry, and user cells imported by dotted path."""

from __future__ import annotations

import importlib
import inspect
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rnnbench.errors import ConfigError, did_you_mean, require
from rnnbench.models.cells.base import Cell
from rnnbench.models.cells.gru import GRU, MGU
from rnnbench.models.cells.lstm import (LSTM, LSTMCoupledGates, LSTMFullGateRecurrence, LSTMNoForgetGate,
                                        LSTMNoInputActivation, LSTMNoInputGate, LSTMNoOutputActivation,
                                        LSTMNoOutputGate, LSTMPeephole)
from rnnbench.models.cells.minimal import MinGRU, MinLSTM
from rnnbench.models.cells.simple import ElmanRNN, IndRNN

CELLS: dict[str, type[Cell]] = {
    "rnn": ElmanRNN,
    "lstm": LSTM,
    "gru": GRU,
    "lstm_peephole": LSTMPeephole,
    "lstm_nig": LSTMNoInputGate,
    "lstm_nfg": LSTMNoForgetGate,
    "lstm_nog": LSTMNoOutputGate,
    "lstm_niaf": LSTMNoInputActivation,
    "lstm_noaf": LSTMNoOutputActivation,
    "lstm_cifg": LSTMCoupledGates,
    "lstm_fgr": LSTMFullGateRecurrence,
    "mgu": MGU,
    "mingru": MinGRU,
    "minlstm": MinLSTM,
    "indrnn": IndRNN,
}

USER_CELL_TIMEOUT_S = 60.0  # a user cell's import, and its constructor with the one-step check, each stop after this
_ANNOUNCED: set[str] = set()  # the user cells this process has said it checks

ALLOWED = (f"a registered cell ({', '.join(CELLS)}) or the dotted path package.module.ClassName of a "
           "rnnbench.models.cells.Cell subclass")


def resolve_cell(name: Any) -> type[Cell]:
    """The cell class ``model.cell`` names: a registry name, or ``package.module.ClassName`` imported from
    the Python path (the current directory included). Anything else is a one-line ConfigError on ``cell``."""
    require(isinstance(name, str) and name != "", "cell", name, ALLOWED)
    if name in CELLS:
        return CELLS[name]
    module_name, _, class_name = name.rpartition(".")
    require(bool(module_name), "cell", name, lambda: ALLOWED + did_you_mean(name, CELLS))
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())  # the console script's path holds its bin dir, not the user's directory
    announce_user_cell(name)
    with user_cell_time_limit(name, f"importing {module_name}"):
        try:
            module = importlib.import_module(module_name)
        except Exception as error:  # ImportError, or the user's module failing as it imports
            raise ConfigError("cell", name, f"{ALLOWED}; importing {module_name} failed with "
                                            f"{type(error).__name__}: {_first_line(error)}") from None
    cls = getattr(module, class_name, None)
    require(cls is not None, "cell", name, f"{ALLOWED}; {module_name} has no {class_name}")
    if not (isinstance(cls, type) and issubclass(cls, Cell)):
        kind = ", ".join(f"{b.__module__}.{b.__qualname__}" for b in inspect.getmro(cls)[:2]) if isinstance(cls, type) \
            else type(cls).__name__
        raise ConfigError("cell", name, f"{ALLOWED}; {name} is not a Cell ({kind}): the diagnostics compute "
                                        "exactly only through a cell's step")
    return cls


def is_user_cell(cls: type[Cell]) -> bool:
    """Whether ``cls`` is not one of the registry's classes: its code is a user's, run under a time limit."""
    return cls not in CELLS.values()


def announce_user_cell(name: str) -> None:
    """Say on stderr, once per process and cell name, that the user's cell ``name`` is being checked: its
    import, constructor and first step run here, before any job starts, and may take a while."""
    if name not in _ANNOUNCED:
        _ANNOUNCED.add(name)
        print(f"rnnbench: checking the user cell {name} (import, constructor, one step; each stopped after "
              f"{USER_CELL_TIMEOUT_S:g} s)", file=sys.stderr, flush=True)


class _Expired(BaseException):
    """Raised by the alarm of :func:`user_cell_time_limit`: a BaseException, so that a user's ``except
    Exception`` (and the checks' own) cannot swallow it."""


@contextmanager
def user_cell_time_limit(name: str, what: str) -> Iterator[None]:
    """Run the block (``what``: the import, or the constructor and one-step check, of the user cell ``name``)
    for at most ``USER_CELL_TIMEOUT_S`` seconds; past them, a one-line ConfigError on ``cell`` naming the limit.

    The limit is a SIGALRM timer (``signal.setitimer``), so it holds only on POSIX in the main thread, and with a
    limit > 0; elsewhere the block runs unbounded. The previous handler is restored, and a timer already running
    (pytest-timeout's, say) is left to fire if it comes first, else re-armed with the time it has left. Python code
    is stopped between two bytecodes: a hang inside one C call ends when that call returns."""
    limit = USER_CELL_TIMEOUT_S
    if not (limit and limit > 0 and hasattr(signal, "setitimer")
            and threading.current_thread() is threading.main_thread()):
        yield
        return
    other, other_interval = signal.getitimer(signal.ITIMER_REAL)
    if 0 < other <= limit:  # another timer fires first: its owner's handler decides
        yield
        return
    running = True

    def alarm(signum: int, frame: Any) -> None:
        if running:
            raise _Expired

    previous = signal.signal(signal.SIGALRM, alarm)
    started = time.monotonic()
    try:
        signal.setitimer(signal.ITIMER_REAL, limit)
        try:
            yield
        finally:
            running = False
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _Expired:
        raise ConfigError("cell", name, f"a cell whose import, and whose constructor and one-step check, each finish "
                                        f"within {limit:g} s: {what} was stopped after {limit:g} s") from None
    finally:
        signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)
        if other > 0:
            signal.setitimer(signal.ITIMER_REAL, max(other - (time.monotonic() - started), 1e-3), other_interval)


def cell_options_problem(cls: type[Cell], options: dict[str, Any]) -> tuple[str, str] | None:
    """``(key, allowed)`` for the first key of ``options`` that ``cls``'s constructor does not take, else None."""
    parameters = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return None
    accepted = [n for n, p in list(parameters.items())[3:]
                if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]
    for key in options:
        if key not in accepted:
            return key, (f"an option of {cls.__name__}: one of {', '.join(accepted)}" if accepted
                         else f"no option: {cls.__name__} takes none")
    return None


def accepts_option(cls: type[Cell], name: str) -> bool:
    return cell_options_problem(cls, {name: None}) is None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""
