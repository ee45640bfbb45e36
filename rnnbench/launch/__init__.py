"""The launching command, ``rnnbench train``: parse, compose once per group-choice set, validate once
(:mod:`.validate`), resolve resume (:mod:`.resume`), lock, write the launch plan, run Hydra, print a line per
finished job (:mod:`.sweep_lines`) and summarise (:mod:`.summary`); :mod:`.train` holds the path from the command
line to the exit status."""

import rnnbench.hydra_setup  # noqa: F401  (registers resolvers and sweepers on import)
