"""Multi-objective Optuna studies: the objectives a trial is scored on, and the Pareto front.

``hydra.sweeper.objectives=[val_loss,n_params]`` (with ``directions=[minimize,minimize]``; by
default each ``*loss*`` and ``n_params`` is minimised and anything else maximised) scores each
trial on several values, read from its ``trial.json``: ``n_params``, ``objective`` (the monitored
metric's best value) or a validation metric (``val_loss``, ``val_accuracy``). Test metrics are
not objectives (the test-set lock). Optuna cannot prune a multi-objective study. The study's
Pareto front is written to ``pareto_front.json`` in the sweep directory, and the sweep report
shows it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nnspec.files import atomic_write
from nnspec.hydra.trial import TrialRecord, read_record

__all__ = ["PARETO_FILE", "check_objectives", "default_direction", "trial_values",
           "write_pareto", "read_pareto"]  # fmt: skip

PARETO_FILE = "pareto_front.json"


def check_objectives(names: Sequence[str], directions: Sequence[str], pruner: str | None) -> None:
    """Refuse what a multi-objective study cannot do, before any trial.

    Raises:
        ValueError: a test metric, a direction list of another length or a pruner.
    """
    for name in names:
        if name.startswith("test_"):
            raise ValueError(f"hydra.sweeper.objectives: '{name}' is a test metric; a sweep is "
                             "chosen on validation metrics (use val_...)")  # fmt: skip
    if directions and len(directions) != len(names):
        raise ValueError(f"hydra.sweeper.directions: expected {len(names)} directions (one per "
                         f"objective), found {len(directions)}")  # fmt: skip
    if len(names) > 1 and pruner is not None:
        raise ValueError("hydra.sweeper.pruner: Optuna cannot prune a multi-objective study "
                         "(fix: pruner=null, or one objective)")  # fmt: skip


def default_direction(name: str) -> str:
    """minimize for losses and sizes, maximize for the rest."""
    return "minimize" if "loss" in name or name == "n_params" else "maximize"


def _value(record: TrialRecord, name: str) -> float | None:
    if name == "n_params":
        return None if record.n_params is None else float(record.n_params)
    if name == "objective":
        return record.objective
    if name.startswith("val_"):
        return record.val_metrics.get(name[len("val_") :])
    return None


def trial_values(job_dir: Path, names: Sequence[str]) -> list[float] | None:
    """The trial's value of each objective, or None when it failed or lacks one."""
    record = read_record(job_dir)
    if record.status != "ok":
        return None
    values = [_value(record, n) for n in names]
    return None if any(v is None for v in values) else [float(v) for v in values]  # type: ignore[arg-type]


def write_pareto(sweep_dir: Path, study: Any, names: Sequence[str]) -> None:
    """``pareto_front.json``: the study's best trials (none dominates another)."""
    front = [{"trial": t.number, "values": dict(zip(names, t.values, strict=True)),
              "params": t.params} for t in study.best_trials]  # fmt: skip
    atomic_write(sweep_dir / PARETO_FILE, json.dumps(front, indent=2, default=str))


def read_pareto(sweep_dir: Path) -> list[dict[str, Any]]:
    path = sweep_dir / PARETO_FILE
    return json.loads(path.read_text()) if path.is_file() else []
