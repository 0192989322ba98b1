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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
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
