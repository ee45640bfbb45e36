"""Cells by name: the built-in registry, and user cells imported by dotted path."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
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
