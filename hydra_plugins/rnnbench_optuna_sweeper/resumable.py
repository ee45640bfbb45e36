"""An Optuna search that resumes: its study lives in a SQLite file in the sweep dir.

``hydra/sweeper=optuna_resumable`` (``conf/hydra/sweeper/optuna_resumable.yaml``, which the hparams_search
presets use) is hydra-optuna-sweeper's sweeper with two additions; it lives in the ``hydra_plugins`` namespace
because Hydra loads sweepers only from there. Unless ``hydra.sweeper.storage`` names one, the study is stored in ``<sweep dir>/optuna.db``, so
``resume=true`` (which continues the same sweep dir) loads it with every trial told so far. Then:

- trials the study holds as finished count towards ``n_trials``: only the rest run;
- trials left running by a killed or interrupted sweep are told failed (so the sampler stops waiting on them)
  and asked again first with the same parameters; their old records are set aside
  (``result.json.superseded-<time>``), so the sweep's records hold each trial once;
- new trials get job dirs after every earlier one (``<sweep dir>/<trial number>``), never an old one's;
- the sampler continues its random sequence from ``<sweep dir>/optuna-sampler.pkl`` (:class:`PersistedSampler`),
  so the resumed search asks what the uninterrupted one would have asked, never its first trials again.

It also saves ``multirun.yaml`` in the sweep dir, as Hydra's basic sweeper does, which is where ``resume=true``
reads the command.
"""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path
from typing import Any

from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper
from optuna.samplers import BaseSampler
from omegaconf import OmegaConf

log = logging.getLogger(__name__)

STUDY_FILE = "optuna.db"


SAMPLER_FILE = "optuna-sampler.pkl"


class PersistedSampler(BaseSampler):
    """``sampler``, saved to ``path`` after every draw (pickle: Optuna's documented way to resume a sampler), so a
    resumed search continues the sampler's random sequence where the killed one left it, instead of replaying it
    from its seed (which asked the first trials' parameters again and never the ones the uninterrupted search
    reached)."""

    def __init__(self, sampler: BaseSampler, path: Path):
        self.sampler, self.path = sampler, path

    def infer_relative_search_space(self, study: Any, trial: Any) -> Any:
        return self.sampler.infer_relative_search_space(study, trial)

    def sample_relative(self, study: Any, trial: Any, search_space: Any) -> Any:
        values = self.sampler.sample_relative(study, trial, search_space)
        self._save()
        return values

    def sample_independent(self, study: Any, trial: Any, param_name: str, param_distribution: Any) -> Any:
        value = self.sampler.sample_independent(study, trial, param_name, param_distribution)
        self._save()
        return value

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        self.sampler.after_trial(study, trial, state, values)
        self._save()

    def reseed_rng(self) -> None:
        self.sampler.reseed_rng()

    def _save(self) -> None:
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        temporary.write_bytes(pickle.dumps(self.sampler))
        os.replace(temporary, self.path)


class ResumableOptunaSweeper(OptunaSweeper):
    def setup(self, *, hydra_context: Any, task_function: Any, config: Any) -> None:
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        self.sweep_dir = Path(str(config.hydra.sweep.dir))
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        # Like Hydra's basic sweeper (the Optuna one does not): the command, where resume=true finds this sweep
        OmegaConf.save(config, self.sweep_dir / "multirun.yaml")
        if self.sweeper.storage is None:
            self.sweeper.storage = f"sqlite:///{(self.sweep_dir / STUDY_FILE).resolve()}"
        sampler = self.sweeper.sampler
        if isinstance(sampler, BaseSampler):  # not the grid sampler, which the plugin builds later from the grid
            saved = self.sweep_dir / SAMPLER_FILE
            if saved.is_file():  # the sampler of this sweep dir's study, as its last draw left it
                sampler = pickle.loads(saved.read_bytes())
                log.info("resume: the sampler continues from %s", saved)
            self.sweeper.sampler = PersistedSampler(sampler, saved)

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
