"""The record each trial leaves in its Hydra job directory (``trial.json``), read by the report.

Written atomically (temp file + rename), so an interrupted sweep never leaves half a record: a job
directory without ``trial.json`` is a trial that never finished.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from nnspec.files import atomic_write

__all__ = ["TRIAL_FILE", "TrialRecord", "write_record", "read_record"]

TRIAL_FILE = "trial.json"
Status = Literal["ok", "failed", "incomplete"]


@dataclass(frozen=True)
class TrialRecord:
    """One trial's outcome: its overrides, status and the trainer's summary."""

    overrides: list[str]
    status: Status
    reason: str = ""
    objective: float | None = None
    monitor: str = ""
    mode: str = "min"
    best_epoch: int | None = None
    epochs_run: int | None = None
    wall_time: float | None = None
    job_time: float | None = None  # the whole job: validation + trainer, incl. what wall_time omits
    n_params: int | None = None
    test_metrics: dict[str, float] = field(default_factory=dict)
    val_metrics: dict[str, float] = field(default_factory=dict)
    # seeds_per_trial > 1: each seed's own result (objective and metrics above are their means)
    seeds: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def failed(cls, overrides: list[str], reason: str) -> TrialRecord:
        return cls(overrides=overrides, status="failed", reason=reason)

    @classmethod
    def from_result(
        cls, overrides: list[str], result: Any, job_time: float | None = None
    ) -> TrialRecord:
        """From a ``nnspec.run.RunResult`` (or anything with its fields)."""
        return cls(
            job_time=job_time,
            overrides=overrides,
            status="ok",
            objective=float(result.best_value),
            monitor=str(result.monitor),
            mode=str(result.mode),
            best_epoch=int(result.best_epoch),
            epochs_run=int(result.epochs_run),
            wall_time=float(result.wall_time),
            n_params=int(result.n_params),
            test_metrics={k: float(v) for k, v in dict(result.test_metrics).items()},
            val_metrics={k: float(v) for k, v in dict(result.val_metrics).items()},
            seeds=list(getattr(result, "per_seed", [])),
        )


def write_record(job_dir: Path, record: TrialRecord) -> None:
    """Save ``trial.json`` into the job directory (rank 0's alone in a data-parallel job, whose
    tasks share it)."""
    from nnspec.run.launch import is_main_process

    if not is_main_process():
        return
    atomic_write(job_dir / TRIAL_FILE, json.dumps(asdict(record), indent=2, allow_nan=True))


def _overrides_of(job_dir: Path) -> list[str]:
    from ruamel.yaml import YAML

    path = job_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return []
    return [str(x) for x in (YAML(typ="safe", pure=True).load(path.read_text()) or [])]


def read_record(job_dir: Path) -> TrialRecord:
    """The record of a job directory; ``incomplete`` when the trial never finished."""
    path = job_dir / TRIAL_FILE
    if path.is_file():
        data = json.loads(path.read_text())
        known = TrialRecord.__dataclass_fields__
        return TrialRecord(**{k: v for k, v in data.items() if k in known})
    return TrialRecord(overrides=_overrides_of(job_dir), status="incomplete", reason="no result")
