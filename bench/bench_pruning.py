"""A pruned Optuna study against the same study unpruned: epochs trained and the best val loss.

Run by hand (a few minutes on 2 cores)::

    .venv/bin/python bench/bench_pruning.py [--trials 16] [--epochs 30] [--warmup 5]

Both studies train the breast-cancer example with a seeded random sampler (the same 16 proposals
of ``optim.lr`` and ``optim.weight_decay``), ``--epochs`` epochs per trial and early stopping
off, one ``nnspec train -m`` process each, in a temporary folder. The second adds
``hydra.sweeper.pruner=median`` (Optuna's MedianPruner: 5 startup trials, ``--warmup`` epochs
before a trial may be stopped). Reported: the epochs the pruned study ran as a share of the
unpruned one's (goal <= 60%), and its best validation loss relative to the unpruned best (goal:
within 5%).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def study(tmp: Path, name: str, trials: int, epochs: int, pruner: list[str]) -> dict[str, float]:
    sweep = tmp / name
    cmd = [sys.executable, "-m", "nnspec", "train", "-m", "experiment=breast_cancer_mlp",
           "hydra/sweeper=nnspec_optuna", "hydra.sweeper.sampler=random", "hydra.sweeper.seed=0",
           f"hydra.sweeper.n_trials={trials}", f"train.epochs={epochs}",
           "train.early_stopping.enabled=false", "train.checkpoint.enabled=false",
           "train.progress=none", "optim.lr=tag(log, interval(1e-4, 3e-2))",
           "optim.weight_decay=tag(log, interval(1e-5, 1e-1))", f"hydra.sweep.dir={sweep}",
           *pruner]  # fmt: skip
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=tmp, capture_output=True)
    wall = time.perf_counter() - t0
    records = [json.loads(p.read_text()) for p in sweep.glob("*/trial.json")]
    done = [r for r in records if r["status"] == "ok"]
    full = [r for r in done if not r["reason"].startswith("pruned")]
    return {
        "epochs": sum(r["epochs_run"] for r in done),
        "best": min(r["objective"] for r in full),
        "pruned": len(done) - len(full),
        "wall": wall,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        plain = study(tmp, "plain", args.trials, args.epochs, [])
        pruned = study(tmp, "pruned", args.trials, args.epochs,
                       ["hydra.sweeper.pruner=median",
                        f"hydra.sweeper.pruner_warmup_epochs={args.warmup}"])  # fmt: skip
    share = pruned["epochs"] / plain["epochs"]
    gap = pruned["best"] / plain["best"] - 1
    print(f"unpruned: {plain['epochs']:.0f} epochs, best val_loss {plain['best']:.4f}, "
          f"{plain['wall']:.0f} s")
    print(f"median pruner: {pruned['epochs']:.0f} epochs ({pruned['pruned']:.0f} trials pruned), "
          f"best val_loss {pruned['best']:.4f}, {pruned['wall']:.0f} s")
    print(f"epochs: {share:.0%} of the unpruned study (goal <= 60%); "
          f"best val_loss {gap:+.1%} (goal within 5%)")


if __name__ == "__main__":
    main()
