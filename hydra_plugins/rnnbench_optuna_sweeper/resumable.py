"""An Optuna search that resumes: its study lives in a SQLite file in the sweep dir.

``hydra/sweeper=optuna_resumable`` (``conf/hydra/sweeper/optuna_resumable.yaml``, which the hparams_search
presets use) is hydra-optuna-sweeper's sweeper with two additions; it lives in the ``hydra_plugins`` namespace
because Hydra loads sweepers only from there. Unless ``hydra.sweeper.storage`` names one, the study is stored in ``<sweep dir>/optuna.db``, so
``resume=true`` (which continues the same sweep dir) loads it with every trial told so far. Then:

- trials the study holds as finished count towards ``n_trials``: only the rest run;
- trials left running by a killed or interrupted sweep are told failed (so the sampler stops waiting on them)
  and asked again first with the same parameters; their old records are set aside
  (``result.json.superseded-<time>``), so the sweep's records hold each trial once;
- new trials get job dirs after every earlier one (``<sweep dir>/<trial number>``), never an old one's.

It also saves ``multirun.yaml`` in the sweep dir, as Hydra's basic sweeper does, which is where ``resume=true``
and ``rnnbench status`` read the command.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper
from omegaconf import OmegaConf

log = logging.getLogger(__name__)

STUDY_FILE = "optuna.db"


class ResumableOptunaSweeper(OptunaSweeper):
    def setup(self, *, hydra_context: Any, task_function: Any, config: Any) -> None:
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        self.sweep_dir = Path(str(config.hydra.sweep.dir))
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        # Like Hydra's basic sweeper (the Optuna one does not): the command, where resume=true finds this sweep
        OmegaConf.save(config, self.sweep_dir / "multirun.yaml")
        if self.sweeper.storage is None:
            self.sweeper.storage = f"sqlite:///{(self.sweep_dir / STUDY_FILE).resolve()}"

    def sweep(self, arguments: list[str]) -> Any:
        import optuna

        impl = self.sweeper
        try:
            study = optuna.load_study(study_name=impl.study_name, storage=impl.storage)
        except KeyError:  # no study of that name yet: a new search
            return super().sweep(arguments)
        finished = [t for t in study.trials if t.state.is_finished()]  # before the stale ones are told failed
        stale = [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]
        impl.job_idx = len(study.trials)  # trial numbers and job dirs go on together (an enqueued trial is one)
        for trial in stale:
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
            study.enqueue_trial(trial.params)
            self._set_aside(trial.number)
        impl.n_trials = max(0, impl.n_trials - len(finished))
        log.info("resume: study %s has %d finished trial(s); %d left to run (%d asked again)", impl.study_name,
                 len(finished), impl.n_trials, len(stale))
        return super().sweep(arguments)

    def _set_aside(self, number: int) -> None:
        from rnnbench.record.schema import RECORD_NAME, set_aside

        record = self.sweep_dir / str(number) / RECORD_NAME
        if record.exists():
            set_aside(record, "superseded")
