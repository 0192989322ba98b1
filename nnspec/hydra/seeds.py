"""``hydra.sweeper.seeds_per_trial: k``: a trial trains k seeds and is scored on their mean.

The sweeper hands ``k`` to each trial as a hidden override (``hydra.job.env_set``, like the pruning
link, so it is not one of the trial's own overrides and reaches the trial under every launcher).
The trial trains its spec with ``seed``, ``seed + 1``, ..., ``seed + k - 1``, each into
``<job dir>/seed_<s>/``, one after another; its ``trial.json`` holds the mean objective and the
mean of each metric, and lists every seed's own result under ``seeds``. The study (and so
``best_spec.yaml``, the best trial's configuration) is then chosen on the mean over seeds.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnspec.spec import ExperimentSpec

__all__ = ["SEEDS_KEY", "SeedMean", "seeds_override", "seeds_of", "train_seeds"]

SEEDS_KEY = "NNSPEC_SEEDS_PER_TRIAL"  # the key in hydra.job.env_set


def seeds_override(k: int) -> str:
    """The hidden override that makes a trial train ``k`` seeds."""
    return f"+hydra.job.env_set.{SEEDS_KEY}={int(k)}"


def seeds_of(env_set: Mapping[str, Any] | None) -> int:
    """``k`` from a job's ``hydra.job.env_set`` (1 when the sweeper set none)."""
    text = (env_set or {}).get(SEEDS_KEY)
    return int(text) if text else 1


@dataclass(frozen=True)
class SeedMean:
    """The mean over a trial's seeds, with the fields of ``nnspec.run.RunResult`` the trial's
    record reads; ``best_epoch`` is the best seed's, ``epochs_run`` and ``wall_time`` sums."""

    run_dir: Path
    test_metrics: dict[str, float]
    val_metrics: dict[str, float]
    best_epoch: int
    monitor: str
    best_value: float
    mode: str
    wall_time: float
    n_params: int
    epochs_run: int
    per_seed: list[dict[str, Any]]


def _mean_metrics(results: Sequence[Any], attr: str) -> dict[str, float]:
    """Per metric, the mean over the seeds that report it."""
    names = {k for r in results for k in getattr(r, attr)}
    return {
        k: statistics.fmean(float(getattr(r, attr)[k]) for r in results if k in getattr(r, attr))
        for k in sorted(names)
    }


def _one(seed: int, r: Any) -> dict[str, Any]:
    return {
        "seed": seed,
        "objective": float(r.best_value),
        "best_epoch": int(r.best_epoch),
        "epochs_run": int(r.epochs_run),
        "val_metrics": {k: float(v) for k, v in dict(r.val_metrics).items()},
    }


def train_seeds(
    train: Callable[..., Any],
    spec: ExperimentSpec,
    k: int,
    *,
    run_dir: Path,
    base_dir: Path | None,
    **extra: Any,
) -> Any:
    """Train ``spec`` with seeds ``spec.seed .. spec.seed + k - 1``, each in its own folder;
    with ``k == 1``, the one run into ``run_dir`` itself and its own result.

    A seed's failure fails the trial (its exception propagates): a mean over the seeds that
    happened to work would flatter the configuration.
    """
    if k == 1:
        return train(spec, run_dir=run_dir, base_dir=base_dir, **extra)
    results, seeds = [], [spec.seed + i for i in range(k)]
    for seed in seeds:
        one = spec.model_copy(update={"seed": seed})
        results.append(train(one, run_dir=run_dir / f"seed_{seed}", base_dir=base_dir, **extra))
    sign = -1.0 if results[0].mode == "max" else 1.0
    best = min(results, key=lambda r: sign * float(r.best_value))
    return SeedMean(
        run_dir=run_dir,
        test_metrics=_mean_metrics(results, "test_metrics"),
        val_metrics=_mean_metrics(results, "val_metrics"),
        best_epoch=int(best.best_epoch),
        monitor=str(results[0].monitor),
        best_value=statistics.fmean(float(r.best_value) for r in results),
        mode=str(results[0].mode),
        wall_time=sum(float(r.wall_time) for r in results),
        n_params=int(results[0].n_params),
        epochs_run=sum(int(r.epochs_run) for r in results),
        per_seed=[_one(s, r) for s, r in zip(seeds, results, strict=True)],
    )
