"""A pruned Optuna study against the same study unpruned: epochs trained and the best val loss.

Run by hand (a few minutes on 2 cores)::

    .venv/bin/python bench/bench_pruning.py [--trials 16] [--epochs 30] [--warmup 5]

Both studies train the breast-cancer example with a seeded random sampler (the same 16 proposals
of ``optim.lr`` and ``optim.weight_decay``), ``--epochs`` epochs per trial and early stopping
off, one ``nnspec train -m`` process each, in a temporary folder. The second adds
``hydra.sweeper.pruner=median`` (Optuna's MedianPruner: 5 startup trials, ``--warmup`` epochs
before a trial may be stopped). Reported: the epochs the pruned study ran as a share of the
unpruned one's (goal <= 60%), and its best validation loss relative to the unpruned best (goal:
within 5%). A third study (``--studies pareto`` runs it alone) has two objectives, ``val_loss``
and ``n_params``, over the learning rate and the first hidden layer's width, and prints its Pareto
front (``pareto_front.json``). ``--out DIR`` keeps the sweep folders.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def command(trials: int, epochs: int, sweep: Path) -> list[str]:
    return [sys.executable, "-m", "nnspec", "train", "-m", "experiment=breast_cancer_mlp",
            "hydra/sweeper=nnspec_optuna", "hydra.sweeper.sampler=random", "hydra.sweeper.seed=0",
            f"hydra.sweeper.n_trials={trials}", f"train.epochs={epochs}",
            "train.early_stopping.enabled=false", "train.checkpoint.enabled=false",
            "train.progress=none", "optim.lr=tag(log, interval(1e-4, 3e-2))",
            f"hydra.sweep.dir={sweep}"]  # fmt: skip


def run(cmd: list[str], cwd: Path) -> None:
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"failed ({res.returncode}): {' '.join(cmd)}\n{res.stdout[-2000:]}\n"
                 f"{res.stderr[-4000:]}")  # fmt: skip


def pareto(tmp: Path, trials: int, epochs: int) -> list[dict]:
    """The Pareto front of a (val_loss, n_params) study over lr and the first layer's width."""
    sweep = tmp / "pareto"
    cmd = [*command(trials, epochs, sweep), "hydra.sweeper.objectives=[val_loss,n_params]",
           "model.layers.0.out_features=choice(4, 8, 16, 32, 64)"]  # fmt: skip
    run(cmd, tmp)
    return json.loads((sweep / "pareto_front.json").read_text())


def study(tmp: Path, name: str, trials: int, epochs: int, pruner: list[str]) -> dict[str, float]:
    sweep = tmp / name
    cmd = [*command(trials, epochs, sweep), "optim.weight_decay=tag(log, interval(1e-5, 1e-1))",
           *pruner]  # fmt: skip
    t0 = time.perf_counter()
    run(cmd, tmp)
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
    ap.add_argument(
        "--studies",
        default="pruning,pareto",
        help="pruning (unpruned and median-pruned), pareto (2 objectives), or both",
    )
    ap.add_argument("--out", type=Path, help="keep the sweeps here (default: a temporary folder)")
    args = ap.parse_args()
    studies = set(args.studies.split(","))
    with tempfile.TemporaryDirectory() as d:
        tmp = args.out or Path(d)
        tmp.mkdir(parents=True, exist_ok=True)
        if "pruning" in studies:
            pruning(tmp, args)
        if "pareto" in studies:
            front = pareto(tmp, args.trials, args.epochs)
            print(f"2-objective study (val_loss, n_params), {args.trials} trials; Pareto front:")
            for p in sorted(front, key=lambda p: p["values"]["n_params"]):
                v = p["values"]
                print(
                    f"  trial {p['trial']:>2}: val_loss {v['val_loss']:.4f}, "
                    f"{v['n_params']:.0f} parameters, {p['params']}"
                )


def pruning(tmp: Path, args: argparse.Namespace) -> None:
    plain = study(tmp, "plain", args.trials, args.epochs, [])
    pruned = study(tmp, "pruned", args.trials, args.epochs,
                   ["hydra.sweeper.pruner=median",
                    f"hydra.sweeper.pruner_warmup_epochs={args.warmup}"])  # fmt: skip
    share = pruned["epochs"] / plain["epochs"]
    gap = pruned["best"] / plain["best"] - 1
    print(
        f"unpruned: {plain['epochs']:.0f} epochs, best val_loss {plain['best']:.4f}, "
        f"{plain['wall']:.0f} s"
    )
    print(
        f"median pruner: {pruned['epochs']:.0f} epochs ({pruned['pruned']:.0f} trials pruned), "
        f"best val_loss {pruned['best']:.4f}, {pruned['wall']:.0f} s"
    )
    print(
        f"epochs: {share:.0%} of the unpruned study (goal <= 60%); "
        f"best val_loss {gap:+.1%} (goal within 5%)"
    )


if __name__ == "__main__":
    main()
