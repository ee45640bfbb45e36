"""Which settings are bookkeeping: the one list every process reads.

A job's configuration has three kinds of keys. Most say *what* it computes. Some say only *how* it runs
(:data:`RUN_SETTINGS`: threads, screen output, resume, checkpoints, where it logs, how Hydra launches it): two
jobs differing in them compute the same thing. Some name a *sample* rather than a configuration
(:data:`REPLICATE_KEYS`: the seeds). Each consumer takes what it needs from these lists, and nothing else:

- :func:`rnnbench.record.schema.config_hash` (what resume and the grown-grid reuse match on): all but the run
  settings; the seed stays (another seed is another result).
- :func:`rnnbench.launch.resume.command_signature` (finding a command's previous dir): all but the run settings,
  so ``resume=true verbose=true`` continues the same jobs from their checkpoints.
- the validation of a grid (:mod:`rnnbench.launch.validate`): a swept run setting or seed is checked by its own
  rule alone (:data:`CHECKED_ALONE`).
- the readers (:func:`rnnbench.report.records.is_bookkeeping`): neither kind explains a difference in results,
  nor do :data:`SEARCH_SETTINGS` (what a sweeper optimises, not what a job computes).
- one line per job (:func:`rnnbench.record.lines.job_label`): the run settings are left out.
"""

from __future__ import annotations

RUN_SETTINGS = ("resume", "threads", "verbose", "checkpoint")  # top-level keys: how a job runs
RUN_SETTING_SECTIONS = ("logger", "hydra")  # whole sections: where a job logs, how Hydra launches it
REPLICATE_KEYS = ("seed", "data.seed")  # a sample of a configuration, not another configuration
SEARCH_SETTINGS = ("objective", "objective_direction")  # what an optimising sweeper reads from a job's record
DISPLAY_SETTINGS = ("trainer.enable_progress_bar",)  # what a single run shows on screen

# What `rnnbench train` adds to Hydra's command line itself (rnnbench.launch.train): not the user's command, so
# neither a resumed command's signature nor the report's provenance counts it.
TRUSTING_SWEEPER = "hydra/sweeper=validated"
LAUNCHER_ADDED = (TRUSTING_SWEEPER,)

# Swept values that the launcher checks by their own rule alone (no other check reads them): a 30,000-job seed
# sweep is validated in seconds. The objective is not among them: the sweeper's direction is checked with it.
CHECKED_ALONE = ("seed", *RUN_SETTINGS)


def key_of(override: str) -> str:
    """``model.cell`` of ``+model.cell=gru`` / ``~model.cell`` / ``model.cell=gru``."""
    return override.lstrip("+~").split("=", 1)[0]


def is_run_setting(key: str) -> bool:
    """Whether ``key`` (dotted, or a config group such as ``logger``) only says how a job runs."""
    top = key.split(".", 1)[0].split("/", 1)[0]
    return key in RUN_SETTINGS or top in RUN_SETTING_SECTIONS or key in DISPLAY_SETTINGS


def is_bookkeeping(key: str) -> bool:
    """Whether ``key`` never explains a difference in results: a run, search or display setting, or a seed."""
    return is_run_setting(key) or key in REPLICATE_KEYS or key in SEARCH_SETTINGS
