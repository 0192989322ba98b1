"""Sweep throughput: an 8-trial sweep of a small MLP, sequential vs parallel with 2 jobs (nnspec's
own launcher `hydra/launcher=nnspec_pool` and Hydra's joblib launcher), and Hydra's per-trial
overhead (trial wall time minus the trainer's own wall time).

Run by hand (a few minutes on 2 cores)::

    .venv/bin/python bench/bench_sweep.py [--epochs 150] [--repeats 1]

Goals: 2 parallel jobs >= 1.6x faster than sequential on 2 cores; per-trial overhead
<= 0.5 s.
Each sweep runs in a fresh `nnspec train -m` process in a temp dir; the figures are medians over
``--repeats`` interleaved runs. The trials train the breast-cancer example for its own 150 epochs
(early stopping off, so every trial does the same work). Overhead per trial = (sequential sweep
wall time - one process's start-up and composition, measured by `nnspec train --cfg job`, - the
one-time import of the training stack in the first trial, measured in a fresh process) / 8 -
the mean of the trainer's own ``wall_time`` over the other (warm) trials (from each trial.json:
the whole ``nnspec.train`` call, i.e. data, build, epochs, test pass, files and plots).

Every joblib (loky) worker is a fresh interpreter that imports torch, torch._dynamo (the first
optimizer imports it), scikit-learn and Hydra again; the sequential sweep pays that once. The
speed-up therefore grows with the trial length (``--epochs``).
nnspec_pool imports that stack once in the launching process and forks each trial from it.
Two vCPUs do not always give two cores' worth of work (docs/benchmarks.md), so the parallel
figures vary from run to run more than the sequential ones.
"""

from __future__ import annotations

import argparse
import json
import os
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


# What the first trial of a process imports (once per process, not per trial): the training stack.
_STACK = (
    "nnspec.run", "torch._dynamo", "sklearn.datasets", "sklearn.model_selection",
    "sklearn.metrics", "matplotlib.figure", "matplotlib.backends.backend_agg",
)  # fmt: skip


def _import_seconds() -> float:
    """Seconds a fresh process spends importing the training stack (after nnspec's CLI)."""
    code = (
        "import time, importlib, nnspec.hydra.app; t = time.perf_counter()\n"
        f"for m in {_STACK!r}: importlib.import_module(m)\n"
        "print(time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def _times(sweep: Path, key: str, *, skip_first: bool = False) -> list[float]:
    records = sorted(sweep.glob("*/trial.json"), key=lambda p: int(p.parent.name))
    return [json.loads(p.read_text())[key] for p in records[1 if skip_first else 0 :]]


class _NoopResult:
    """What a trainer returns, for a trial that trains nothing (isolates the sweep overhead)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir, self.test_metrics, self.val_metrics = run_dir, {}, {}
        self.best_epoch, self.monitor, self.best_value, self.mode = 0, "val_loss", 0.0, "min"
        self.wall_time, self.n_params, self.epochs_run = 0.0, 0, 0


def _noop_train(spec: object, *, run_dir: Path, base_dir: Path | None = None) -> _NoopResult:
    run_dir.mkdir(parents=True, exist_ok=True)
    return _NoopResult(run_dir)


def noop_sweep(sweep_dir: str) -> None:
    """8 trials through Hydra and nnspec's job function with a trainer that does nothing."""
    from nnspec.cli.train import main as run

    # a 1-trial warm-up pays the imports and Hydra's plugin scan, so the timed sweep shows the
    # per-trial cost (CPU time too: robust when other processes load the machine)
    run(["-m", *_spec_args(1)[:-1], f"hydra.sweep.dir={sweep_dir}_warm"], train_fn=_noop_train)
    t0, c0 = time.perf_counter(), time.process_time()
    run(["-m", *_spec_args(1), f"hydra.sweep.dir={sweep_dir}"], train_fn=_noop_train)
    print(f"NOOP {time.perf_counter() - t0:.3f} {time.process_time() - c0:.3f}")


def _noop_seconds(tmp: Path, tag: str) -> tuple[float, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--noop-sweep", str(tmp / f"noop_{tag}")],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    wall, cpu = next(x for x in out.splitlines() if x.startswith("NOOP")).split()[1:]
    return float(wall), float(cpu)


_SPIN = (
    "import time\nt = time.perf_counter()\nx = 0\n"
    "for i in range(10_000_000): x += i\nprint(time.perf_counter() - t)"
)


def _spin(n: int) -> float:
    """Longest time of ``n`` copies of a pure-Python loop started together."""
    procs = [
        subprocess.Popen([sys.executable, "-c", _SPIN], stdout=subprocess.PIPE, text=True)
        for _ in range(n)
    ]
    return max(float(p.communicate()[0]) for p in procs)


def parallel_capacity() -> float:
    """Cores' worth of CPU two processes get side by side (2.0 on two free cores): 2 x one loop's
    time alone / the slower of two run together."""
    return 2 * _spin(1) / _spin(2)


def run_once(epochs: int, tmp: Path, tag: str) -> dict[str, float]:
    """One sequential sweep, one joblib sweep and one start-up measurement."""
    base = _spec_args(epochs)
    startup = _timed(["--cfg", "job", "experiment=breast_cancer_mlp"], tmp)
    seq = _timed(["-m", *base, f"hydra.sweep.dir=seq_{tag}"], tmp)
    # the same sequential sweep with one torch thread, as each joblib worker gets: separates the
    # parallel speed-up from the thread-count effect on a tiny model
    seq1 = _timed(["-m", *base, "train.num_threads=1", f"hydra.sweep.dir=seq1_{tag}"], tmp)
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
    pool = _timed(
        [
            "-m",
            *base,
            "hydra/launcher=nnspec_pool",
            "hydra.launcher.n_jobs=2",
            f"hydra.sweep.dir=pool_{tag}",
        ],
        tmp,
    )
    imports = _import_seconds()
    capacity = parallel_capacity()
    # trial 0 imported the training stack (inside the job and the trainer): `imports` already
    # takes that out of seq, so the per-trial means come from the other, warm trials
    train = statistics.fmean(_times(tmp / f"seq_{tag}", "wall_time", skip_first=True))
    job = statistics.fmean(_times(tmp / f"seq_{tag}", "job_time", skip_first=True))
    noop, noop_cpu = (x / TRIALS for x in _noop_seconds(tmp, tag))
    return {
        "startup": startup, "imports": imports, "sequential": seq, "sequential_1t": seq1,
        "joblib": par, "pool": pool, "capacity": capacity, "train": train, "job": job,
        "noop": noop, "noop_cpu": noop_cpu,
        "overhead": (seq - startup - imports) / TRIALS - train,
        "hydra": (seq - startup - imports) / TRIALS - job,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--noop-sweep", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.noop_sweep:
        noop_sweep(args.noop_sweep)
        return
    with tempfile.TemporaryDirectory() as tmp:
        runs = [run_once(args.epochs, Path(tmp), str(i)) for i in range(args.repeats)]
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    load = os.getloadavg()[0]
    print(f"8-trial sweep, breast_cancer_mlp, {args.epochs} epochs/trial, {args.repeats} repeat(s),"
          f" load average {load:.1f} on {os.cpu_count()} cores")  # fmt: skip
    print(f"{'measure':<34}{'seconds':>10}")
    print(f"{'process start-up + compose':<34}{med['startup']:>10.2f}")
    print(f"{'training-stack imports (once)':<34}{med['imports']:>10.2f}")
    print(f"{'sequential sweep (basic launcher)':<34}{med['sequential']:>10.2f}")
    print(f"{'sequential, 1 torch thread':<34}{med['sequential_1t']:>10.2f}")
    print(f"{'joblib sweep, 2 jobs (1 thread each)':<34}{med['joblib']:>10.2f}")
    print(f"{'nnspec_pool sweep, 2 jobs':<34}{med['pool']:>10.2f}")
    print(f"{'trainer wall time per trial':<34}{med['train']:>10.2f}")
    print(f"{'job time per trial (task function)':<34}{med['job']:>10.2f}")
    print(f"{'overhead per trial, all':<34}{med['overhead']:>10.2f}   (incl. one-time first-use"
          " costs beyond the imports, /8)")  # fmt: skip
    print(f"{'  of which Hydra (outside the job)':<34}{med['hydra']:>10.2f}")
    print(f"{'per trial, no-op trainer: wall':<34}{med['noop']:>10.2f}   (Hydra + nnspec only,"
          " warm process; goal <= 0.5)")  # fmt: skip
    print(f"{'per trial, no-op trainer: CPU':<34}{med['noop_cpu']:>10.2f}   (incl. the report)")
    # what 2 jobs could give at best: the start-up and the imports stay serial, the trials share
    # the capacity the machine gave two processes side by side
    serial = med["startup"] + med["imports"]
    ideal = med["sequential"] / (serial + (med["sequential"] - serial) / med["capacity"])
    print(f"machine: 2 processes side by side got {med['capacity']:.2f} cores' worth of CPU;"
          f" best possible 2-job speed-up here {ideal:.2f}x")  # fmt: skip
    for name, key in (("nnspec_pool", "pool"), ("joblib", "joblib")):
        print(f"speed-up {name} vs sequential: {med['sequential'] / med[key]:.2f}x (goal >= 1.6x);"
              f" vs sequential with 1 thread: {med['sequential_1t'] / med[key]:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
