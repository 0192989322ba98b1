"""Trackers' cost: wall time of a 30-epoch digits run with every tracker on
(``train.trackers=[tensorboard,mlflow,wandb]``) against none.

Run by hand (several minutes on 2 cores; needs the extras: pip install -e '.[dev]')::

    .venv/bin/python bench/bench_trackers.py [--epochs 30] [--repeats 3]

Goal: trackers on <= 1.03x the wall time of trackers off.
Each run is a fresh ``nnspec train`` process (the default experiment: the digits CNN, early
stopping off so both arms train the same epochs), so the figure includes what a user pays: the
trackers' imports, W&B's service start, MLflow's store and every upload. Runs alternate off/on;
the figures are medians over ``--repeats`` pairs. One untimed run with trackers first creates
MLflow's SQLite store in the shared output folder (its schema migrations run once per store, not
per run), as a user's second run would find it. W&B runs offline. The per-run overhead in seconds
is printed too: it is mostly fixed (imports, service start), so its ratio shrinks as runs grow.

``--hooks`` measures the same cost from inside one run, which a loaded machine disturbs far less
than two separate runs: one in-process run with every tracker on, each tracker hook timed (its
imports, MLflow's store, W&B's start, per-epoch logging and the uploads at the end), reported as
a fraction of that run's wall time. Work that W&B's service process does beside the run is not
inside a hook; its share of the CPU shows in the wall-time pairs only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NNSPEC = [sys.executable, "-m", "nnspec"]
ALL = "train.trackers=[tensorboard,mlflow,wandb]"


def _run(epochs: int, trackers: str, out: Path) -> float:
    args = [
        "train", f"train.epochs={epochs}", "train.early_stopping.enabled=false",
        "train.progress=none", f"train.output_dir={out}", trackers,
    ]  # fmt: skip
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    t0 = time.perf_counter()
    subprocess.run([*NNSPEC, *args], check=True, env=env, cwd=out, capture_output=True)
    return time.perf_counter() - t0


def _hooks(epochs: int) -> None:
    import nnspec
    from nnspec.run import api

    spent: dict[str, float] = {}

    def timed(tracker: object, name: str) -> None:
        method = getattr(tracker, name)

        def run(*a: object) -> None:
            t0 = time.perf_counter()
            try:
                method(*a)
            finally:
                key = type(tracker).__name__
                spent[key] = spent.get(key, 0.0) + time.perf_counter() - t0

        setattr(tracker, name, run)

    make = api.run_trackers

    def wrapped(spec: object) -> list[object]:
        trackers = make(spec)  # type: ignore[arg-type]
        for t in trackers:
            for name in ("on_fit_start", "on_epoch_end", "on_fit_end", "on_run_end"):
                timed(t, name)
        return trackers  # type: ignore[return-value]

    api.run_trackers = wrapped  # type: ignore[assignment]
    os.environ.update(WANDB_MODE="offline", WANDB_SILENT="true")
    with tempfile.TemporaryDirectory() as tmp:
        overrides = [f"train.epochs={epochs}", "train.early_stopping.enabled=false",
                     "train.progress=none", f"train.output_dir={tmp}", ALL]  # fmt: skip
        t0 = time.perf_counter()
        nnspec.train(nnspec.compose(overrides))
        wall = time.perf_counter() - t0
    total = sum(spent.values())
    print(f"{epochs}-epoch digits run with every tracker: {wall:.1f} s wall")
    for name, seconds in spent.items():
        print(f"  {name}: {seconds:.2f} s in its hooks ({seconds / wall:.1%})")
    print(f"  all trackers: {total:.2f} s ({total / wall:.1%} of the run)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hooks", action="store_true", help="time the hooks inside one run")
    args = parser.parse_args()
    if args.hooks:
        _hooks(args.epochs)
        return
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        _run(1, ALL, out)  # creates MLflow's store (untimed)
        off, on = [], []
        for i in range(args.repeats):
            off.append(_run(args.epochs, "train.trackers=[]", out))
            on.append(_run(args.epochs, ALL, out))
            print(f"pair {i + 1}: off {off[-1]:.1f} s, on {on[-1]:.1f} s", flush=True)
    m_off, m_on = statistics.median(off), statistics.median(on)
    print(f"\n{args.epochs}-epoch digits run, median of {args.repeats}:")
    print(f"  trackers off: {m_off:.1f} s")
    print(f"  all trackers: {m_on:.1f} s  ({m_on / m_off:.3f}x, +{m_on - m_off:.1f} s per run)")


if __name__ == "__main__":
    main()
