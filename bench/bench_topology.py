"""Side-by-side: nnspec's ResNet-18 (examples/resnet18.yaml, a GraphModel) vs the same network
written by hand in torch. Prints median times of build, forward and forward+backward and their
ratios (goal: <= 1.05x for forward/backward: the graph walk adds only Python dict lookups).

Run by hand: ``.venv/bin/python bench/bench_topology.py [--repeats 7] [--size 64]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

import nnspec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "topology"))  # the tests' hand-written reference ResNet
from reference_resnet import ResNet  # noqa: E402


def hand_resnet18() -> nn.Module:
    return ResNet((2, 2, 2, 2))


def _median(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    spec = nnspec.load(ROOT / "examples" / "resnet18.yaml").model
    x = torch.randn(args.batch, 3, args.size, args.size)
    ours, ref = nnspec.build_model(spec), hand_resnet18()

    def step(model: nn.Module) -> Callable[[], object]:
        return lambda: model(x).sum().backward()

    def forward(model: nn.Module) -> Callable[[], object]:
        def run() -> object:
            with torch.no_grad():
                return model(x)

        return run

    rows = {"build": (lambda: nnspec.build_model(spec), hand_resnet18)}
    rows["forward"] = (forward(ours.eval()), forward(ref.eval()))
    rows["forward+backward"] = (step(ours.train()), step(ref.train()))
    print(f"{'':18} {'nnspec':>10} {'torch':>10} {'ratio':>7}")
    for name, (a, b) in rows.items():
        a(), b()  # warm up
        pairs = [(_median(a, 1), _median(b, 1)) for _ in range(args.repeats)]  # interleaved
        ta = statistics.median(p[0] for p in pairs)
        tb = statistics.median(p[1] for p in pairs)
        print(f"{name:18} {ta * 1e3:9.1f}ms {tb * 1e3:9.1f}ms {ta / tb:6.2f}x")


if __name__ == "__main__":
    main()
