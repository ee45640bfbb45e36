"""The launching command, ``rnnbench train``: parse, compose once per group-choice set, validate once
(:mod:`.validate`), resolve resume (:mod:`.resume`), lock, write the launch plan, run Hydra, print a line per
finished job (:mod:`.sweep_lines`) and summarise (:mod:`.summary`); :mod:`.train` holds the path from the command
line to the exit status.

Importing this package costs nothing: a value refused by its own rule (``seed=abc``) is refused before Hydra's
plugins, torch or Lightning are imported. :mod:`.validate`, the first module that composes, imports
:mod:`rnnbench.hydra_setup` (the resolvers and sweepers Hydra's settings use).
"""

from __future__ import annotations

MULTIRUN_FLAGS = ("-m", "--multirun")


def split_multirun(arguments: list[str]) -> tuple[bool, list[str]]:
    """(whether ``-m``/``--multirun`` is among ``arguments``, the overrides without it)."""
    return any(flag in arguments for flag in MULTIRUN_FLAGS), [a for a in arguments if a not in MULTIRUN_FLAGS]
