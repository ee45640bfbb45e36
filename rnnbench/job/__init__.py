"""One job: trusts the config its launcher validated, builds data, model, loggers and trainer once each, trains,
tests, and writes its record (:mod:`.run`). :mod:`.app` is the ``@hydra.main`` entry Hydra runs per job.

Importing this package registers the resolvers and the sweeper plugin Hydra needs wherever it composes
(:mod:`rnnbench.hydra_setup`): Hydra instantiates this package's callbacks in every worker before it composes.
"""

import rnnbench.hydra_setup  # noqa: F401  (registers resolvers and sweepers on import)
