"""Sweep throughput: an 8-trial sweep of a small MLP, sequential vs joblib (2 jobs), and Hydra's
per-trial overhead (trial wall time minus the trainer's own wall time).

Run by hand (a few minutes on 2 cores)::

    .venv/bin/python bench/bench_sweep.py [--epochs 15] [--repeats 1]

Goals (issue 4): joblib >= 1.6x faster than sequential on 2 cores; per-trial overhead <= 0.5 s.
Each sweep runs in a fresh `nnspec train -m` process in a temp dir; the figures are medians over
``--repeats`` interleaved runs. Overhead per trial = (sequential sweep wall time - one process's
start-up and composition, measured by `nnspec train --cfg job`) / 8 - the mean of the trainer's own
``wall_time`` (from each trial.json).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TRIALS = 8


def _spec_args(epochs: int) -> list[str]:
    return [
        "experiment=breast_cancer_mlp",
        f"train.epochs={epochs}",
        "train.early_stopping.enabled=false",
        "train.checkpoint.enabled=false",
        "train.progress=none",
        f"seed=range(0,{TRIALS})",
    ]


def _timed(args: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "nnspec.cli.main", "train", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    )
    return time.perf_counter() - t0


def _times(sweep: Path, key: str) -> list[float]:
    return [json.loads(p.read_text())[key] for p in sweep.glob("*/trial.json")]


def run_once(epochs: int, tmp: Path, tag: str) -> dict[str, float]:
    """One sequential sweep, one joblib sweep and one start-up measurement."""
    base = _spec_args(epochs)
    startup = _timed(["--cfg", "job", "experiment=breast_cancer_mlp"], tmp)
    seq = _timed(["-m", *base, f"hydra.sweep.dir=seq_{tag}"], tmp)
    par = _timed(
        [
            "-m",
            *base,
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
            f"hydra.sweep.dir=par_{tag}",
        ],
        tmp,
    )
    train = statistics.fmean(_times(tmp / f"seq_{tag}", "wall_time"))
    job = statistics.fmean(_times(tmp / f"seq_{tag}", "job_time"))
    return {"startup": startup, "sequential": seq, "joblib": par, "train": train, "job": job,
            "overhead": (seq - startup) / TRIALS - train,
            "hydra": (seq - startup) / TRIALS - job}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = [run_once(args.epochs, Path(tmp), str(i)) for i in range(args.repeats)]
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(f"8-trial sweep, breast_cancer_mlp, {args.epochs} epochs/trial, {args.repeats} repeat(s)")
    print(f"{'measure':<34}{'seconds':>10}")
    print(f"{'process start-up + compose':<34}{med['startup']:>10.2f}")
    print(f"{'sequential sweep (basic launcher)':<34}{med['sequential']:>10.2f}")
    print(f"{'joblib sweep, 2 jobs':<34}{med['joblib']:>10.2f}")
    print(f"{'trainer wall time per trial':<34}{med['train']:>10.2f}")
    print(f"{'job time per trial (task function)':<34}{med['job']:>10.2f}")
    print(f"{'overhead per trial, all':<34}{med['overhead']:>10.2f}   (goal <= 0.5)")
    print(f"{'  of which Hydra (outside the job)':<34}{med['hydra']:>10.2f}")
    print(
        f"speed-up joblib vs sequential: {med['sequential'] / med['joblib']:.2f}x   (goal >= 1.6x)"
    )


if __name__ == "__main__":
    main()
