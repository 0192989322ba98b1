"""Structured config of the sweeper, registered as ``hydra/sweeper: nnspec_optuna``."""

# No `from __future__ import annotations`: Hydra's plugin scan executes this module without
# registering it in sys.modules, and dataclasses then cannot resolve string annotations.
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore

__all__ = ["NNSpecOptunaSweeperConf"]


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


ConfigStore.instance().store(
    group="hydra/sweeper", name="nnspec_optuna", node=NNSpecOptunaSweeperConf, provider="nnspec"
)
