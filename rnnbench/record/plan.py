"""What a launcher leaves in its run or sweep dir for the jobs and the readers, so none of them re-derives it.

``.rnnbench-launch.json`` (:data:`PLAN_NAME`), written by ``rnnbench train`` after it validated the command and
before any job starts (:class:`LaunchPlan`):

- ``jobs``: how many records the command should end with (an Optuna search: its ``n_trials``; null: the sweeper
  decides), which ``rnnbench status`` counts "not started" against;
- ``varying``: the keys that tell the jobs apart (the per-job lines and ``status`` label jobs with them);
- ``validated``: a SHA-256 digest of every ``key=value`` override line the launcher validated (the fixed ones and
  each value of every discrete sweep axis). A job whose own override lines are all among them trusts its config;
  a job with a line the launcher could not see (a value an Optuna sampler drew from an interval, a job run by
  ``wandb agent`` or by Hydra directly) validates its config itself. Digests, not the lines: an override may hold
  a credential, and nothing that any command writes may.

``.rnnbench-finished.json`` (:data:`FINISHED_INDEX`), written by a ``resume=true`` launch that starts a new sweep
dir: ``{config_hash: path}`` of the finished records of the command's earlier sweeps, so a grown grid's job reuses
its configuration's earlier result (:func:`finished_elsewhere`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from rnnbench.record.schema import FINISHED, RecordError, read_record, write_json_atomic

PLAN_NAME = ".rnnbench-launch.json"
FINISHED_INDEX = ".rnnbench-finished.json"
PLAN_VERSION = 1


def line_digest(line: str) -> str:
    """The digest the plan keeps of one ``key=value`` override line."""
    return hashlib.sha256(line.encode()).hexdigest()[:32]


@dataclass
class LaunchPlan:
    """What ``rnnbench train`` validated and expects (see the module docstring)."""

    multirun: bool
    jobs: int | None
    varying: list[str]
    validated: list[str] = field(default_factory=list)  # line digests
    version: int = PLAN_VERSION

    @classmethod
    def of(cls, multirun: bool, jobs: int | None, varying: list[str], lines: Iterable[str]) -> "LaunchPlan":
        return cls(multirun, jobs, list(varying), sorted({line_digest(line) for line in lines}))

    def covers(self, overrides: Iterable[str]) -> bool:
        """Whether the launcher validated a job with exactly these override lines (Hydra's ``overrides.task``)."""
        return all(line_digest(str(line)) in self._digests for line in overrides)

    @cached_property
    def _digests(self) -> frozenset[str]:  # once: a 100,000-job batch asks per job
        return frozenset(self.validated)

    def write(self, directory: Path) -> Path:
        path = directory / PLAN_NAME
        write_json_atomic(path, asdict(self))
        return path


def read_plan(directory: Path) -> LaunchPlan | None:
    """The plan in ``directory``, or None when there is none or it cannot be read (a reader then does without)."""
    try:
        payload: Any = json.loads((directory / PLAN_NAME).read_text(encoding="utf-8"))
        plan = LaunchPlan(multirun=bool(payload["multirun"]), jobs=payload["jobs"], varying=list(payload["varying"]),
                          validated=list(payload["validated"]), version=int(payload["version"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if plan.version != PLAN_VERSION or not (plan.jobs is None or isinstance(plan.jobs, int)) \
            or not all(isinstance(item, str) for item in [*plan.varying, *plan.validated]):
        return None
    return plan


def finished_elsewhere(sweep_dir: Path, config_hash: str) -> dict | None:
    """A copy of the finished record of the same config in an earlier sweep of the command, with ``reused_from``
    set to its path, if the index names one that still reads as finished with that hash."""
    try:
        path = Path(json.loads((sweep_dir / FINISHED_INDEX).read_text())[config_hash])
        record = read_record(path)
    except (OSError, KeyError, TypeError, ValueError, RecordError):
        return None
    if record["status"] not in FINISHED or record["config_hash"] != config_hash:
        return None
    return {**record, "reused_from": str(path)}
