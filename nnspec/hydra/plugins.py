"""Settings of nnspec's Hydra plugins, and what the app needs to know of them.

``hydra/sweeper: nnspec_optuna`` and ``hydra/launcher: nnspec_pool`` are structured configs
registered in Hydra's ConfigStore when this module is imported (composition imports it, so files
and overrides can select them); the plugin classes they name live in ``hydra_plugins`` and import
this module, never the other way round.
"""

# No `from __future__ import annotations`: OmegaConf reads these dataclasses' annotations.
import os
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore

__all__ = ["NNSpecOptunaSweeperConf", "NNSpecPoolLauncherConf", "effective_jobs"]


@dataclass
class NNSpecOptunaSweeperConf:
    """Settings of ``hydra/sweeper=nnspec_optuna`` (all overridable as ``hydra.sweeper.X=...``)."""

    _target_: str = "hydra_plugins.nnspec_optuna_sweeper.sweeper.NNSpecOptunaSweeper"
    # tpe (default), random, grid or cmaes
    sampler: str = "tpe"
    # total trials of the study, counting those of earlier (resumed) runs
    n_trials: int = 20
    # trials launched together; None = the launcher's n_jobs (joblib) or 1
    n_jobs: int | None = None
    # minimize / maximize; None = from the spec's monitored metric
    direction: str | None = None
    study_name: str = "nnspec"
    # journal file; None = <sweep dir>/optuna_journal.log
    storage: str | None = None
    # sampler seed base; None = the spec's seed (plus the number of finished trials)
    seed: int | None = None
    # search space in Hydra's override grammar, key -> expression
    params: dict[str, Any] = field(default_factory=dict)
    # median, successive_halving or hyperband: trials report each epoch and stop when pruned
    # (single-objective studies only); None = every trial runs to its end
    pruner: str | None = None
    # epochs every trial runs before the median pruner may stop it
    pruner_warmup_epochs: int = 0
    # several objectives (a multi-objective study, Pareto front in the report): n_params,
    # objective or validation metrics, e.g. [val_loss, n_params]; empty = the monitored metric
    objectives: list[str] = field(default_factory=list)
    # one per objective; empty = minimize losses and n_params, maximize the rest
    directions: list[str] = field(default_factory=list)
    # a trial whose model has more parameters never starts (told FAIL; --dry-run marks it)
    max_params: int | None = None
    # conditional parameters: key -> "parent=value[,value...]", e.g. {optim.momentum: optim=sgd}
    # (sampled only in the trials whose parent has one of those values; not with sampler=grid)
    conditions: dict[str, Any] = field(default_factory=dict)
    # seeds each trial trains (its seed, seed+1, ...); the trial's objective is their mean and
    # trial.json lists each seed's result (not with a pruner)
    seeds_per_trial: int = 1


@dataclass
class NNSpecPoolLauncherConf:
    """Settings of ``hydra/launcher=nnspec_pool`` (all overridable as ``hydra.launcher.X=...``)."""

    _target_: str = "hydra_plugins.nnspec_pool_launcher.launcher.NNSpecPoolLauncher"
    # trials run at once; -1 = one per available core, -2 = all but one (joblib's convention)
    n_jobs: int = -1
    # fork (default on Linux), forkserver (default elsewhere) or spawn
    start_method: str | None = None
    # modules imported once before the first trial (fork: by this process; forkserver: by the
    # server), so each trial starts with them loaded; None = what the app imports before a run
    # (nnspec train's PRELOAD list)
    preload: list[str] | None = None
    # where GPUs are visible, each trial gets one to itself (CUDA_VISIBLE_DEVICES in its process)
    # and at most one trial per GPU runs at once; false: every trial sees every GPU
    one_gpu_per_trial: bool = True


def effective_jobs(n_jobs: int | None) -> int:
    """Trials at once for joblib's convention: ``-1`` all available cores, ``-2`` all but one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    if n_jobs is None or n_jobs == 0:
        return 1
    return n_jobs if n_jobs > 0 else max(1, cores + 1 + n_jobs)


_STORE = ConfigStore.instance()
_STORE.store(group="hydra/sweeper", name="nnspec_optuna", node=NNSpecOptunaSweeperConf,
             provider="nnspec")  # fmt: skip
_STORE.store(group="hydra/launcher", name="nnspec_pool", node=NNSpecPoolLauncherConf,
             provider="nnspec")  # fmt: skip
