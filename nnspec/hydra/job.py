"""Inside a Hydra job of ``nnspec train`` (:mod:`nnspec.hydra.app`): the task function Hydra
calls (:class:`JobTask`, picklable to a trial's own process), which validates the composed config,
trains into the job directory and records the outcome.

A failure never ends the process: in a multirun it is recorded in the trial's folder
(``trial.json``), the other trials go on and the sweep exits non-zero at the end; a single run's
failure goes back to :func:`nnspec.hydra.app.run` as a :class:`JobOutcome`, which raises it once
Hydra has returned.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnspec.errors import CheckpointError, DataError, NNSpecError, SpecError
from nnspec.hydra.compose import split_overrides, validate_container
from nnspec.hydra.seeds import seeds_of, train_seeds
from nnspec.hydra.sources import Sources
from nnspec.hydra.trial import TrialRecord, write_record
from nnspec.spec import ExperimentSpec

if TYPE_CHECKING:
    from omegaconf import DictConfig

__all__ = ["TrainFn", "JobTask", "run_job", "JobOutcome", "USER_ERRORS"]

log = logging.getLogger("nnspec")
# nnspec.workflow.train(spec, *, run_dir=..., base_dir=...) -> RunResult
TrainFn = Callable[..., Any]
# The user's files were wrong (spec, data, checkpoint): exit 2, and a single run leaves no record.
# Any other nnspec error of a run (the NaN guard's TrainError, ...) is the run failing: exit 1.
USER_ERRORS = (SpecError, DataError, CheckpointError)


@dataclass(frozen=True)
class JobOutcome:
    """What a single run's job hands back to :func:`~nnspec.hydra.app.run` through Hydra's
    JobReturn."""

    error: Exception | None = None  # raised by `run` once Hydra has returned
    stray_dir: Path | None = None  # the job dir when it holds only Hydra's bookkeeping


def _trainer() -> TrainFn:
    from nnspec.workflow import train

    return train


def _job_overrides() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task)


def _parallel_launcher() -> bool:
    from hydra.core.hydra_config import HydraConfig

    launcher = HydraConfig.get().launcher
    if "BasicLauncher" in str(launcher.get("_target_", "")):
        return False
    if "n_jobs" in launcher:  # joblib and nnspec_pool (null = 1 job); submitit launchers have none
        n_jobs = launcher.get("n_jobs")
        from nnspec.hydra.plugins import effective_jobs

        return effective_jobs(n_jobs if isinstance(n_jobs, int) else None) > 1
    return True


def _spec_for_job(cfg: Any, sources: Sources) -> ExperimentSpec:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    hc = HydraConfig.get()
    data = OmegaConf.to_container(cfg, resolve=True)
    choices = OmegaConf.to_container(hc.runtime.choices)
    keys = split_overrides(_job_overrides()).keys
    spec = validate_container(data, keys, choices, sources)  # type: ignore[arg-type]
    if hc.mode == RunMode.MULTIRUN and _parallel_launcher() and spec.train.num_threads is None:
        # Parallel workers share the cores: one torch thread each unless the user said otherwise.
        spec = spec.model_copy(update={"train": spec.train.model_copy(update={"num_threads": 1})})
    return spec


@dataclass(frozen=True)
class JobTask:
    """Hydra's task function: a module-level class, so it pickles to a spawned trial process.

    ``preload`` is what a job imports before it trains; a launcher that starts trials in fresh
    processes reads it here and imports it once up front.
    """

    train_fn: TrainFn | None
    base_dir: Path | None  # the spec file's folder, for relative data paths in any process
    preload: tuple[str, ...] = ()
    sources: Sources = field(default_factory=Sources)
    plugins: tuple[str, ...] = ()  # the user's plugin modules, imported by each job first
    launcher: int = field(default_factory=os.getpid)  # a worker process dies with it

    def __call__(self, cfg: Any) -> float | JobOutcome | None:
        from nnspec.hydra.lifeline import follow_launcher

        follow_launcher(self.launcher)
        return run_job(cfg, self)


def run_job(cfg: DictConfig, task: JobTask) -> float | JobOutcome | Any | None:
    """One Hydra job: validate, train into the job dir, record the outcome; never raises.

    ``task.base_dir`` (the spec file's folder, for relative data paths) comes with the task, not
    from this process's globals: a parallel launcher runs the job in a fresh worker process.

    Returns:
        In a sweep, the objective (the monitored metric's best value), or ``None`` when the job
        failed (recorded in its ``trial.json`` and logged); in a single run, a
        :class:`JobOutcome` that :func:`~nnspec.hydra.app.run` reads back.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    t0 = time.perf_counter()
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    overrides = _job_overrides()
    sweep = hc.mode == RunMode.MULTIRUN
    try:
        if task.plugins:  # a trial in a fresh process (forkserver, loky, submitit, Ray) needs them
            from nnspec.run.plugins import load_plugins

            load_plugins(task.plugins)
        spec = _spec_for_job(cfg, task.sources)
        if task.train_fn is None:  # the training stack, once per process (nnspec._heap)
            from nnspec._heap import warm

            warm(task.preload, what="nnspec train")
        pruning = _prune_callback(hc, spec)
        extra = {"callbacks": [pruning]} if pruning is not None else {}
        train, k = task.train_fn or _trainer(), seeds_of(hc.job.env_set)
        result = train_seeds(train, spec, k, run_dir=run_dir, base_dir=task.base_dir, **extra)
    except Exception as e:  # a trial's failure is data for the report, never a crash
        if sweep:
            write_record(run_dir, TrialRecord.failed(overrides, _one_line(e)))
            log.error("trial failed: %s", _one_line(e))
            return None
        return _single_run_failed(e, run_dir, overrides, {hc.output_subdir, f"{hc.job.name}.log"})
    elapsed = time.perf_counter() - t0
    record = TrialRecord.from_result(overrides, result, elapsed)
    if pruning is not None and pruning.pruned_at is not None:
        from nnspec.hydra.pruning import Pruned

        record = replace(record, reason=f"pruned at epoch {pruning.pruned_at}")
        write_record(run_dir, record)
        return Pruned(float(result.best_value))
    write_record(run_dir, record)
    return float(result.best_value) if sweep else JobOutcome()


def _prune_callback(hc: Any, spec: ExperimentSpec) -> Any:
    """The pruning callback of a trial of a pruned Optuna study (its hidden link), else None."""
    from nnspec.hydra.pruning import LINK_KEY

    text = (hc.job.env_set or {}).get(LINK_KEY)
    if not text:
        return None
    from nnspec.hydra.pruning import PruneCallback, TrialLink

    return PruneCallback(TrialLink.from_text(str(text)), spec.train.early_stopping.monitor)


def _single_run_failed(
    e: Exception, run_dir: Path, overrides: list[str], bookkeeping: set[str | None]
) -> JobOutcome:
    """The error for :func:`~nnspec.hydra.app.run` to raise; a run dir holding only Hydra's files
    is removed then.

    A run that got somewhere (spec, metrics, checkpoints) and then failed gets its record; a
    user mistake writes none (a run dir resumed by mistake keeps its own).
    """
    if {p.name for p in run_dir.iterdir()} <= bookkeeping:
        return JobOutcome(e, run_dir)
    if not isinstance(e, USER_ERRORS):
        write_record(run_dir, TrialRecord.failed(overrides, _one_line(e)))
    return JobOutcome(e)


def _one_line(e: BaseException) -> str:
    """``Type: reason`` on one line (every problem of an nnspec error, joined by ``;``)."""
    if isinstance(e, NNSpecError) and e.problems:
        parts = [f"{p.where}: {p.message}" if p.path or p.file else p.message for p in e.problems]
        return f"{type(e).__name__}: " + "; ".join(parts)
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"
