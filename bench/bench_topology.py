"""Side-by-side: nnspec's ResNet-18 (examples/resnet18.yaml, a GraphModel) vs the same network
written by hand in torch. Prints median times of build, forward and forward+backward and their
ratios (goal: <= 1.05x for forward/backward: the graph walk adds only Python dict lookups).

Run by hand: ``.venv/bin/python bench/bench_topology.py [--repeats 7] [--size 64]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

import nnspec

ROOT = Path(__file__).resolve().parents[1]


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.down = None
        if stride != 1 or c_in != c_out:
            self.down = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(out + (x if self.down is None else self.down(x)))


def hand_resnet18() -> nn.Module:
    layers: list[nn.Module] = [
        nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)
    ]  # fmt: skip
    c_in = 64
    for stage in range(4):
        c_out = 64 * 2**stage
        for r in range(2):
            layers.append(BasicBlock(c_in, c_out, 2 if r == 0 and stage > 0 else 1))
            c_in = c_out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 1000)]
    return nn.Sequential(*layers)


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
