"""The GPU step, side by side: nnspec training examples/resnet50.yaml against a hand-written torch
loop doing the same work (issue: the scale issue's GPU-ready step).

Run on a machine with a GPU (``bench/gpu_tier.sh`` runs it with the gpu test tier)::

    .venv/bin/python bench/bench_gpu.py [--reps 2] [--n 2048] [--batch 64] [--epochs 3]
    .venv/bin/python bench/bench_gpu.py --device cpu --image 32 --n 128 --batch 32 --epochs 2
    # (the second line is a smoke run of the script itself, on any machine)

Both variants train the same network (``nnspec.build_model`` of examples/resnet50.yaml: 25.6 M
parameters, 1,000 classes) on the same synthetic ``n x 3 x image x image`` float32 images held
on the device, with SGD (momentum 0.9, lr 0.1, no weight decay), the same batch size and
precision (``--precision bf16`` by default: autocast), channels_last on CUDA, a fresh
per-epoch permutation and no validation. The hand loop reads nothing back to the host inside an
epoch (it synchronises once at the epoch's end); nnspec runs its whole loop: the guards' loss
log read every ``train.log_every_steps`` (50) steps, callbacks, the per-epoch row and the
metric files (checkpoints off). The figure is samples per second over the epochs after the
first (cuDNN's autotuning and the allocator warm up there), median over ``--reps`` fresh
processes per variant, run alternately; the goal is nnspec >= 0.95x the hand loop.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _spec(args: argparse.Namespace, out: str) -> Any:
    from nnspec.io import load

    spec = load(ROOT / "examples" / "resnet50.yaml")
    data = {"source": "user", "batch_size": args.batch, "standardize": False, "shuffle": True,
            "split": {"train": 0.99, "val": 0.0, "test": 0.01, "stratify": False}}  # fmt: skip
    train = {"epochs": args.epochs, "device": args.device, "precision": args.precision,
             "progress": "none", "output_dir": out, "early_stopping": {"enabled": False},
             "checkpoint": {"enabled": False}, "clip_grad": {"kind": "none"}}  # fmt: skip
    model = spec.model.model_dump(exclude_unset=True)
    model["input_shape"] = [3, args.image, args.image]
    model["layers"] = [*model["layers"][:-1], {"kind": "linear", "out_features": _classes(args)}]
    return type(spec).model_validate({
        "name": "bench-gpu", "task": "classification", "seed": 0, "model": model, "data": data,
        "optim": {"kind": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 0.0},
        "schedule": {"kind": "constant"}, "train": train,
    })  # fmt: skip


def _classes(args: argparse.Namespace) -> int:
    """ImageNet's 1,000 classes when every one gets two images, else 10 (a smoke run)."""
    return 1000 if args.n >= 2000 else 10


def _images(args: argparse.Namespace) -> tuple[Any, Any]:
    import torch

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.n, 3, args.image, args.image, generator=gen)
    y = torch.arange(args.n)[torch.randperm(args.n, generator=gen)] % _classes(args)
    return x, y


def run_nnspec(args: argparse.Namespace) -> float:
    import nnspec

    with tempfile.TemporaryDirectory() as out:
        result = nnspec.train(_spec(args, out), data=_images(args))
        rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").open()]
    # each epoch after the first: optimizer steps x batch over its wall time (no validation)
    pairs = itertools.pairwise(rows)
    rates = [(b["step"] - a["step"]) * args.batch / b["time"] for a, b in pairs]
    return statistics.median(rates)


def run_hand(args: argparse.Namespace) -> float:
    import torch

    import nnspec

    with tempfile.TemporaryDirectory() as out:
        spec = _spec(args, out)
    device = torch.device(args.device)
    model = nnspec.build_model(spec).to(device)
    cuda = device.type == "cuda"
    fmt = torch.channels_last if cuda else torch.contiguous_format
    model = model.to(memory_format=fmt).train()
    x, y = (t[: round(0.99 * args.n)].to(device) for t in _images(args))  # nnspec's 99% split
    n = len(x)
    x = x.contiguous(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.precision)
    rates = []
    for epoch in range(args.epochs):
        t0, steps = time.perf_counter(), 0
        order = torch.randperm(n, generator=torch.Generator().manual_seed(epoch)).to(device)
        total = torch.zeros((), device=device)
        for i in range(0, n - 1, args.batch):  # nnspec drops a last batch of 1, as here
            steps += 1
            idx = order[i : i + args.batch]
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            total += loss.detach()
        float(total)  # one read per epoch (the host waits for the queue here)
        rates.append(steps * args.batch / (time.perf_counter() - t0))
    return statistics.median(rates[1:])


def child(args: argparse.Namespace) -> None:
    fn = run_nnspec if args.variant == "nnspec" else run_hand
    print(json.dumps({"samples_per_s": fn(args)}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--precision", default="bf16", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--image", type=int, default=224)
    p.add_argument("--n", type=int, default=2048, help="synthetic images (held on the device)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--epochs", type=int, default=3, help="the first one is not timed")
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--variant", choices=["nnspec", "hand"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.epochs < 2:
        p.error("--epochs must be at least 2 (the first epoch is warm-up)")
    if args.variant:
        return child(args)
    runs: dict[str, list[float]] = {"nnspec": [], "hand": []}
    flags = [f"--{k}={v}" for k, v in vars(args).items() if k not in ("variant", "reps")]
    for rep in range(args.reps):
        for variant in ("nnspec", "hand") if rep % 2 == 0 else ("hand", "nnspec"):
            cmd = [sys.executable, __file__, f"--variant={variant}", *flags]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode:
                sys.exit(f"{variant} failed:\n{done.stderr}")
            runs[variant].append(json.loads(done.stdout.strip().splitlines()[-1])["samples_per_s"])
    med = {k: statistics.median(v) for k, v in runs.items()}
    print(f"ResNet-50, {args.precision}, {args.image}x{args.image}, batch {args.batch}, "
          f"{args.n} images, device {args.device}, {args.reps} reps")  # fmt: skip
    for k, v in runs.items():
        print(
            f"  {k:6s} samples/s: " + ", ".join(f"{s:,.1f}" for s in v) + f" (median {med[k]:,.1f})"
        )
    print(f"  ratio nnspec / hand loop: {med['nnspec'] / med['hand']:.3f} (goal >= 0.95)")


if __name__ == "__main__":
    main()
