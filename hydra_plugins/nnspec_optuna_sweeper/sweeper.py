"""The sweeper: Optuna's ask/tell loop, trials launched in batches through Hydra's launcher.

- The study lives in an Optuna journal file (``<sweep dir>/optuna_journal.log`` by default), which
  works across processes; rerunning the same command (same ``hydra.sweep.dir``) resumes it, and
  ``n_trials`` counts the trials of earlier runs too.
- Trials left RUNNING by a crash are marked FAIL on resume (their job directories stay, and the
  report lists them as incomplete).
- The sampler's seed is the spec's seed (or ``seed``) plus the number of finished trials, so a
  resumed study does not replay the proposals it started with.
- A trial that fails (its job raised, or nnspec's task recorded a failure and returned ``None``)
  is told to Optuna as FAIL; the study goes on.
- Trials are launched ``n_jobs`` at a time (default: the launcher's ``n_jobs``), so the joblib and
  submitit launchers run them in parallel unchanged.
"""

# No `from __future__ import annotations`: Hydra's plugin scan executes this module without
# registering it in sys.modules, and dataclasses then cannot resolve string annotations.
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from hydra_plugins.nnspec_optuna_sweeper.journal import repair_journal
from nnspec.hydra.plugins import effective_jobs
from nnspec.hydra.space import SearchSpace, make_sampler, parse_space

if TYPE_CHECKING:  # optuna is imported only when a sweep runs
    from optuna import Study

__all__ = ["NNSpecOptunaSweeper", "finished_trials"]

log = logging.getLogger(__name__)
JOURNAL = "optuna_journal.log"


def finished_trials(study: "Study") -> int:
    """Trials that ended (complete, failed or pruned)."""
    return sum(1 for t in study.get_trials(deepcopy=False) if t.state.is_finished())


def fail_stale_running(study: "Study") -> int:
    """Mark trials left RUNNING by an interrupted run as FAIL; returns how many."""
    from optuna.trial import TrialState

    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for t in stale:
        study._storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL)
    return len(stale)


def _direction(config: DictConfig, explicit: str | None) -> str:
    if explicit:
        return explicit
    from nnspec.spec.train import resolve_mode

    stop = config.train.early_stopping
    return "maximize" if resolve_mode(str(stop.monitor), str(stop.mode)) == "max" else "minimize"


def _objective(ret: JobReturn) -> float | None:
    """The trial's value, or None when it failed (raised, returned None or a non-finite value)."""
    if ret.status != JobStatus.COMPLETED:
        return None
    value = ret.return_value
    if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


class NNSpecOptunaSweeper(Sweeper):
    """Bayesian (TPE), random, grid or CMA-ES search with Optuna, resumable from a journal file."""

    def __init__(
        self,
        sampler: str = "tpe",
        n_trials: int = 20,
        n_jobs: int | None = None,
        direction: str | None = None,
        study_name: str = "nnspec",
        storage: str | None = None,
        seed: int | None = None,
        params: Mapping[str, Any] | None = None,
        pruner: str | None = None,
        pruner_warmup_epochs: int = 0,
        objectives: Sequence[str] | None = None,
        directions: Sequence[str] | None = None,
        max_params: int | None = None,
        conditions: Mapping[str, Any] | None = None,
        seeds_per_trial: int = 1,
    ) -> None:
        if not isinstance(n_trials, int) or n_trials < 1:  # -5 ran nothing and exited 0
            from nnspec.errors import Problem, SpecError

            raise SpecError(Problem(("hydra", "sweeper", "n_trials"), "a sweep needs trials",
                                    expected="an integer >= 1", found=repr(n_trials),
                                    fix="e.g. hydra.sweeper.n_trials=20"))  # fmt: skip
        self.sampler_name = sampler
        self.n_trials = n_trials
        self.n_jobs = n_jobs
        self.direction = direction
        self.study_name = study_name
        self.storage = storage
        self.seed = seed
        self.params = dict(params or {})
        self.conditions = dict(conditions or {})
        _check_seeds(seeds_per_trial, pruner)
        self.seeds_per_trial = seeds_per_trial
        if pruner is not None:
            from nnspec.hydra.pruning import make_pruner

            make_pruner(pruner)  # an unknown name fails before any trial
        self.pruner = pruner
        self.max_params = max_params
        self.objectives = list(objectives or [])
        self.directions = list(directions or [])
        if self.objectives:
            from nnspec.hydra.objectives import check_objectives

            check_objectives(self.objectives, self.directions, pruner)
        self.pruner_warmup_epochs = pruner_warmup_epochs
        self.journal: Path | None = None
        self.config: DictConfig | None = None
        self.launcher: Any = None
        self.hydra_context: HydraContext | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        from hydra.core.plugins import Plugins

        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def _batch_size(self) -> int:
        if self.n_jobs:
            return int(self.n_jobs)
        assert self.config is not None
        jobs = OmegaConf.select(self.config, "hydra.launcher.n_jobs", default=None)
        return effective_jobs(jobs) if isinstance(jobs, int) else 1

    def _study(self, sweep_dir: Path, space: SearchSpace) -> Any:
        import optuna
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        assert self.config is not None
        path = Path(self.storage) if self.storage else sweep_dir / JOURNAL
        self.journal = path.resolve()
        if repair_journal(path):  # a record torn by a killed sweep: cut off before appending
            log.warning("cut an incomplete last record off %s (kept in %s.torn)", path, path.name)
        storage = JournalStorage(JournalFileBackend(str(path)))
        base = self.seed if self.seed is not None else int(self.config.get("seed", 0))
        study = optuna.create_study(
            study_name=self.study_name,
            storage=storage,
            **self._directions(),
            load_if_exists=True,
            pruner=self._pruner(),
        )
        stale = fail_stale_running(study)
        if stale:
            log.warning("marked %d trial(s) left RUNNING by an interrupted sweep as FAIL", stale)
        study.sampler = make_sampler(self.sampler_name, space, base + finished_trials(study))
        return study

    def sweep(self, arguments: list[str]) -> list[Sequence[JobReturn]]:
        """Ask, launch a batch, tell, until the study holds ``n_trials`` trials."""
        assert self.config is not None and self.launcher is not None
        space = parse_space(arguments, self.params, self.conditions)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        study = self._study(sweep_dir, space)
        returns: list[Sequence[JobReturn]] = []
        while (left := self._left(study, space)) > 0:
            trials = [space.ask(study) for _ in range(min(left, self._batch_size()))]
            trials = [t for t in trials if self._fits(study, t, space)]
            if not trials:
                continue
            batch = [[*space.overrides(t.params), *self._link(t.number), *self._seeds()]
                     for t in trials]  # fmt: skip
            self.validate_batch_is_legal(batch)
            results = self.launcher.launch(batch, initial_job_idx=trials[0].number)
            for trial, ret in zip(trials, results, strict=True):
                value = self._values(ret) if self._multi else _objective(ret)
                if _pruned(ret):
                    study.tell(trial, state=_pruned_state())
                elif value is None:
                    study.tell(trial, state=_fail_state())
                else:
                    study.tell(trial, value)
            returns.append(results)
        if self._multi:
            from nnspec.hydra.objectives import write_pareto

            write_pareto(sweep_dir, study, self.objectives)
        else:
            self._log_best(study)
        return returns

    def _fits(self, study: Any, trial: Any, space: SearchSpace) -> bool:
        """A trial over ``max_params`` never starts: it is told FAIL (and logged) here."""
        if self.max_params is None:
            return True
        from nnspec.errors import NNSpecError
        from nnspec.hydra.budget import budget, over_budget
        from nnspec.hydra.compose import validate_container

        assert self.hydra_context is not None and self.config is not None
        overrides = space.overrides(trial.params)
        from omegaconf.errors import OmegaConfBaseException

        try:
            cfg = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
            job = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
            data = OmegaConf.to_container(job, resolve=True)
            reason = over_budget(budget(validate_container(data)), self.max_params)  # type: ignore[arg-type]
        except (NNSpecError, OmegaConfBaseException):
            return True  # an invalid trial starts, fails and says why in its trial.json
        if reason:
            log.warning("trial #%d not started, %s: %s", trial.number, reason, " ".join(overrides))
            study.tell(trial, state=_fail_state())
        return not reason

    @property
    def _multi(self) -> bool:
        return len(self.objectives) > 1

    def _directions(self) -> dict[str, Any]:
        """``direction=`` of a single-objective study, ``directions=`` of a multi-objective one."""
        from nnspec.hydra.objectives import default_direction

        assert self.config is not None
        if not self._multi:
            return {"direction": _direction(self.config, self.direction)}
        return {"directions": self.directions or [default_direction(n) for n in self.objectives]}

    def _values(self, ret: JobReturn) -> list[float] | None:
        from nnspec.hydra.objectives import trial_values

        if ret.status != JobStatus.COMPLETED or ret.return_value is None or ret.hydra_cfg is None:
            return None
        job_dir = Path(str(ret.hydra_cfg.hydra.runtime.output_dir))  # the trial's own folder
        return trial_values(job_dir, self.objectives)

    def _pruner(self) -> Any:
        from nnspec.hydra.pruning import make_pruner

        return make_pruner(self.pruner, self.pruner_warmup_epochs) if self.pruner else None

    def _link(self, number: int) -> list[str]:
        """The hidden override that lets a trial of a pruned study report to it."""
        from nnspec.hydra.pruning import TrialLink

        if self.pruner is None:
            return []
        assert self.journal is not None
        link = TrialLink(str(self.journal), self.study_name, number, self.pruner,
                         self.pruner_warmup_epochs)  # fmt: skip
        return [link.override()]

    def _seeds(self) -> list[str]:
        """The hidden override that makes each trial train ``seeds_per_trial`` seeds."""
        from nnspec.hydra.seeds import seeds_override

        return [seeds_override(self.seeds_per_trial)] if self.seeds_per_trial > 1 else []

    def _left(self, study: Any, space: SearchSpace) -> int:
        """Trials still to launch: up to ``n_trials``, and never more than a grid's size."""
        limit = self.n_trials
        if self.sampler_name == "grid":
            limit = min(limit, math.prod(len(v) for v in space.grid().values()))
        return limit - len(study.get_trials(deepcopy=False))

    @staticmethod
    def _log_best(study: Any) -> None:
        from optuna.trial import TrialState

        if study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            best = study.best_trial
            log.info("best trial #%d: value %.6g, params %s", best.number, best.value, best.params)


def _check_seeds(k: Any, pruner: str | None) -> None:
    from nnspec.errors import Problem, SpecError

    where = ("hydra", "sweeper", "seeds_per_trial")
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise SpecError(Problem(where, "seeds_per_trial is how many seeds each trial trains",
                                expected="an integer >= 1", found=repr(k),
                                fix="e.g. hydra.sweeper.seeds_per_trial=3"))  # fmt: skip
    if k > 1 and pruner is not None:
        raise SpecError(Problem(where, "a pruned trial reports one learning curve; with "
                                "seeds_per_trial > 1 it trains several one after another",
                                expected="seeds_per_trial=1 with a pruner", found=str(k),
                                fix="hydra.sweeper.pruner=null, or seeds_per_trial=1"))  # fmt: skip


def _pruned(ret: JobReturn) -> bool:
    from nnspec.hydra.pruning import Pruned

    return ret.status == JobStatus.COMPLETED and isinstance(ret.return_value, Pruned)


def _pruned_state() -> Any:
    from optuna.trial import TrialState

    return TrialState.PRUNED


def _fail_state() -> Any:
    from optuna.trial import TrialState

    return TrialState.FAIL
