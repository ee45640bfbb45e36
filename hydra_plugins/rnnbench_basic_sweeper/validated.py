"""Hydra's basic sweeper, trusting ``rnnbench train``'s validation.

Before it launches a batch, Hydra's ``BasicSweeper`` composes every job of the batch once more, only to catch a
composition error early (``validate_batch_is_legal``; its own comment: "This can be a bit slow for large jobs. can
potentially allow disabling from the config"), and then composes each job again to launch it. ``rnnbench train``
has already composed and validated every job (:mod:`rnnbench.launch.validate`) and left the launch plan in the
sweep dir (:mod:`rnnbench.record.plan`): for a batch whose every job the plan covers, that extra composition is
skipped. A sweep Hydra runs without rnnbench's launcher (no plan) is checked as Hydra checks it.

``conf/hydra/sweeper/validated.yaml`` selects it; ``rnnbench train`` puts ``hydra/sweeper=validated`` on Hydra's
command line when the command's sweeper is Hydra's basic one (:func:`rnnbench.launch.train.plan`), so the config's
default stays Hydra's own for Hydra run directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hydra._internal.core_plugins import basic_sweeper


# Subclassed from the module as it stands when this one is imported: Hydra's plugin scan re-imports its core
# plugins, and BasicSweeper.__init__ calls super(BasicSweeper, self) with the module's name for the class, so the
# class subclassed must be the one the module holds then (rnnbench.hydra_setup scans before importing this).
class ValidatedBasicSweeper(basic_sweeper.BasicSweeper):
    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        from rnnbench.record.plan import read_plan

        plan = read_plan(Path(str(self.config.hydra.sweep.dir))) if self.config is not None else None
        if plan is not None and all(plan.covers(job) for job in batch):
            return
        super().validate_batch_is_legal(batch)
