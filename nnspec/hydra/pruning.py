"""Pruned Optuna studies: trials report their objective every epoch and stop when told to.

The sweeper (``hydra.sweeper.pruner=median``, ``successive_halving`` or ``hyperband``; single
objective only) gives each trial a :class:`TrialLink` as a hidden Hydra override
(``hydra.job.env_set``, so it is not one of the trial's own overrides and survives every
launcher: a forked, spawned, Ray or SLURM process gets it with its config). The trial's task
rebuilds the pruner from the link, and :class:`PruneCallback` reports the monitored metric to the
shared journal storage after each epoch's validation; when Optuna says prune, the run stops
cleanly (its epoch is recorded and checkpointed) and the task returns :class:`Pruned`, which the
sweeper tells the study as PRUNED, not FAIL.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import Any

from nnspec.run.callbacks import Callback, FitState

__all__ = ["LINK_KEY", "PRUNERS", "TrialLink", "Pruned", "PruneCallback", "make_pruner"]

LINK_KEY = "NNSPEC_OPTUNA_TRIAL"  # the key in hydra.job.env_set
# Optuna's pruners by the name the sweeper's `pruner` takes; defaults are Optuna's.
PRUNERS = MappingProxyType({
    "median": "MedianPruner",
    "successive_halving": "SuccessiveHalvingPruner",
    "hyperband": "HyperbandPruner",
})  # fmt: skip


def make_pruner(name: str, warmup_epochs: int = 0) -> Any:
    """Optuna's pruner named ``name`` (``median`` waits ``warmup_epochs`` reports first).

    Raises:
        ValueError: an unknown name, with the known ones.
    """
    import optuna

    if name not in PRUNERS:
        raise ValueError(f"hydra.sweeper.pruner: expected one of {', '.join(PRUNERS)} or null, "
                         f"found {name!r}")  # fmt: skip
    cls = getattr(optuna.pruners, PRUNERS[name])
    return cls(n_warmup_steps=warmup_epochs) if name == "median" else cls()


@dataclass(frozen=True)
class TrialLink:
    """Where a trial reports: the journal file, the study, its number, the pruner to rebuild."""

    journal: str
    study: str
    number: int
    pruner: str
    warmup_epochs: int = 0

    def override(self) -> str:
        """The hidden override that hands the link to the trial's job."""
        from nnspec.hydra.configtext import quoted

        return f"+hydra.job.env_set.{LINK_KEY}={quoted(json.dumps(asdict(self)))}"

    @classmethod
    def from_text(cls, text: str) -> TrialLink:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class Pruned:
    """A trial's return value when Optuna pruned it: the best value it reached."""

    value: float


class PruneCallback(Callback):
    """Reports ``monitor`` after each epoch's validation; stops the run when Optuna prunes it."""

    def __init__(self, link: TrialLink, monitor: str) -> None:
        import optuna
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        storage = JournalStorage(JournalFileBackend(link.journal))
        study = optuna.load_study(study_name=link.study, storage=storage,
                                  pruner=make_pruner(link.pruner, link.warmup_epochs))  # fmt: skip
        study_id = storage.get_study_id_from_name(link.study)
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, link.number)
        self.trial = optuna.trial.Trial(study, trial_id)
        self.monitor = monitor
        self.pruned_at: int | None = None

    def on_validation_end(self, state: FitState) -> None:
        value = state.metrics.get(self.monitor)
        if value is None or not math.isfinite(float(value)):
            return
        self.trial.report(float(value), state.epoch)
        if self.trial.should_prune():
            self.pruned_at = state.epoch
            state.stop(f"pruned by Optuna at epoch {state.epoch}")
