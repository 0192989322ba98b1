"""DDP throughput: samples/s of a 2-rank gloo DDP run (torchrun, one thread per rank) against the
same experiment in one process (two threads, then one), plus a soak of separate 2-rank launches.

Run by hand (not part of the test suite)::

    .venv/bin/python bench/bench_ddp.py [--reps 3] [--epochs 3] [--soak 10]

Workload: MLP 64->256->256->10 on 40,000 x 64 synthetic samples (28,000 training rows), global
batch 256 (128 per rank under DDP), AdamW, validation every epoch, checkpoints on. Every variant
trains the same model in the same order at the same global batch (the DDP run computes what one
process does: tests/run/test_ddp.py), each in a fresh process, interleaved (A B C A B C ...);
``fit_time`` from ``summary.json`` (seconds in the epoch loop: training, validation, metric files,
checkpoints) gives samples/s = training rows x epochs / fit_time. The table shows medians and the
ratio to the one-process run with one thread (on a shared 2-core machine two torch threads in one
process can be much slower than one: they spin waiting for each other's core).

On a machine with 2 cores the DDP run cannot be faster than one process using both cores: its
ranks each compute half the batch with one thread, and pay gloo's gradient all-reduce, the
per-step loss all-reduce and the validation metric states' all-reduce on top. The figure is the
engine's cost here, not a speed-up; DDP pays where each rank has its own GPU or node.

``--soak N`` launches N separate 2-rank runs of a tiny MLP (each a fresh torchrun, its process
group created, barrier, destroyed) and counts the launches that did not exit 0 (an abort at
teardown shows up here).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _spec(out: Path, epochs: int, threads: int, n_samples: int = 40_000) -> dict[str, Any]:
    return {
        "name": "bench-ddp",
        "seed": 0,
        "task": "classification",
        "data": {
            "source": "synthetic:classification",
            "n_samples": n_samples,
            "options": {"n_features": 64, "n_informative": 32, "n_classes": 10},
            "batch_size": 256,
        },
        "model": {
            "input_shape": [64],
            "layers": [{"linear": 256}, {"linear": 256}, {"linear": 10}],
        },
        "optim": {"kind": "adamw", "lr": 1e-3},
        "train": {
            "epochs": epochs,
            "num_threads": threads,
            "progress": "none",
            "output_dir": str(out),
            "early_stopping": {"enabled": False},
        },
    }


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    return {**env, "PYTHONWARNINGS": "ignore"}


def _run(spec: dict[str, Any], ddp: bool, tmp: Path) -> float:
    """Train ``spec`` once (fresh processes); returns samples/s in the epoch loop."""
    path = tmp / "spec.json"
    path.write_text(json.dumps(spec))
    code = ("import json,sys; from nnspec.run import fit; from nnspec.spec import ExperimentSpec;"
            "r = fit(ExperimentSpec.model_validate(json.load(open(sys.argv[1]))));"
            "print('RUN_DIR', r.run_dir)")  # fmt: skip
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone",
              "--nproc_per_node=2"] if ddp else [sys.executable]  # fmt: skip
    script = tmp / "fit_once.py"
    script.write_text(code)
    done = subprocess.run([*launch, str(script), str(path)], capture_output=True, text=True,
                          env=_env(), cwd=ROOT, check=True)  # fmt: skip
    run_dir = next(line.split(" ", 1)[1] for line in done.stdout.splitlines()
                   if line.startswith("RUN_DIR"))  # fmt: skip
    summary = json.loads((Path(run_dir) / "summary.json").read_text())
    rows = round(0.7 * spec["data"]["n_samples"])  # the default 70/15/15 split
    return rows * summary["epochs_run"] / summary["fit_time"]


def throughput(reps: int, epochs: int) -> None:
    variants = {"one process, 2 threads": (2, False), "one process, 1 thread": (1, False),
                "DDP 2 ranks x 1 thread (gloo)": (1, True)}  # fmt: skip
    results: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(reps):
            for name, (threads, ddp) in variants.items():
                folder = Path(tmp) / f"{rep}-{threads}-{ddp}"
                folder.mkdir()
                results[name].append(_run(_spec(folder, epochs, threads), ddp, folder))
                print(f"  rep {rep + 1} {name}: {results[name][-1]:,.0f} samples/s", flush=True)
    base = statistics.median(results["one process, 1 thread"])
    print(f"\n| variant | samples/s (median of {reps}) | ratio |\n|---|---:|---:|")
    for name, values in results.items():
        median = statistics.median(values)
        print(f"| {name} | {median:,.0f} | {median / base:.2f}x |")


def soak(launches: int) -> None:
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(launches):
            folder = Path(tmp) / str(i)
            folder.mkdir()
            spec = _spec(folder, 2, 1, n_samples=301)
            spec["data"]["batch_size"] = 32
            try:
                _run(spec, True, folder)
            except subprocess.CalledProcessError as e:
                failed += 1
                print(f"  launch {i + 1}: exit {e.returncode}\n{e.stderr[-1500:]}", flush=True)
    print(f"\nsoak: {launches} separate 2-rank launches, {failed} did not exit 0")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--soak", type=int, default=0, help="separate 2-rank launches to count")
    args = p.parse_args()
    if args.reps:
        throughput(args.reps, args.epochs)
    if args.soak:
        soak(args.soak)


if __name__ == "__main__":
    main()
