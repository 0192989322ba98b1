"""Spec -> module time against hand-written torch, and spec validation/parsing times (by hand).

    .venv/bin/python bench/bench_build.py [--repeat 20]

Table 1: ``nnspec.build_model(spec)`` (shape inference + construction + nnspec's init of every
parameter) against constructing the same network by hand in plain torch and initialising it with
the same rules (torch.nn.init with an explicit generator). Goal: ratio <= 1.3 for the three
examples and a 64-layer MLP. The two run alternately, ``--repeat`` times each; best of each (the
least noisy statistic on a shared box).

Table 2: ``ExperimentSpec.model_validate`` of an in-memory 1,000-layer spec (goal < 100 ms),
shape inference of it, and, separately, YAML parsing + validation of the same spec's text
(``nnspec.loads``; a round-trip parser that keeps line marks is slower by design).
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

import nnspec
from nnspec.compile import build_model, infer_shapes
from nnspec.spec import ExperimentSpec, ModelSpec

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _best_pair(a: Callable[[], Any], b: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Best times of ``a`` and ``b`` run alternately (A B A B ...), so load spikes hit both."""
    a(), b()  # warm-up (lazy imports, allocator)
    best_a = best_b = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        a()
        middle = time.perf_counter()
        b()
        best_a = min(best_a, middle - start)
        best_b = min(best_b, time.perf_counter() - middle)
    return best_a, best_b


def _best(fn: Callable[[], Any], repeat: int) -> float:
    fn()  # warm-up (lazy imports, allocator)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _init_hidden(m: nn.Module, g: torch.Generator, a: float = 0.0) -> None:
    nn.init.kaiming_normal_(m.weight, a=a, nonlinearity="leaky_relu" if a else "relu", generator=g)
    if m.bias is not None:
        nn.init.zeros_(m.bias)


def _init_head(m: nn.Linear, g: torch.Generator) -> None:
    nn.init.xavier_uniform_(m.weight, generator=g)
    with torch.no_grad():
        m.weight.mul_(0.1)
    nn.init.zeros_(m.bias)


def _init_norms(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def digits_by_hand() -> nn.Module:
    g = torch.Generator().manual_seed(0)
    layers = [
        nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.LeakyReLU(0.1),
        nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(512, 128, bias=False), nn.BatchNorm1d(128), nn.ReLU(), nn.Dropout(0.3),
        nn.Linear(128, 10),
    ]  # fmt: skip
    model = nn.Sequential(*layers)
    _init_hidden(layers[0], g)
    _init_hidden(layers[3], g, 0.1)
    _init_hidden(layers[8], g)
    _init_head(layers[12], g)
    _init_norms(model)
    return model


def mlp_by_hand(widths: list[int], dropout: float = 0.0) -> nn.Module:
    g = torch.Generator().manual_seed(0)
    layers: list[nn.Module] = []
    for n_in, n_out in itertools.pairwise(widths[:-1]):
        lin = nn.Linear(n_in, n_out)
        _init_hidden(lin, g)
        layers += [lin, nn.ReLU()] + ([nn.Dropout(dropout)] if dropout else [])
    head = nn.Linear(widths[-2], widths[-1])
    _init_head(head, g)
    return nn.Sequential(*layers, head)


def mlp_spec(widths: list[int]) -> ModelSpec:
    layers = [{"linear": w} for w in widths[1:]]
    return ModelSpec.model_validate({"input_shape": [widths[0]], "layers": layers})


def build_rows(repeat: int) -> None:
    deep = [256] * 64 + [10]  # 64 weight layers of width 256
    cases: dict[str, tuple[ModelSpec, Callable[[], nn.Module]]] = {
        "digits_cnn": (nnspec.load(str(EXAMPLES / "digits_cnn.yaml")).model, digits_by_hand),
        "breast_cancer_mlp": (
            nnspec.load(str(EXAMPLES / "breast_cancer_mlp.yaml")).model,
            lambda: mlp_by_hand([30, 32, 16, 1]),
        ),
        "diabetes_mlp": (
            nnspec.load(str(EXAMPLES / "diabetes_mlp.yaml")).model,
            lambda: mlp_by_hand([10, 64, 32, 1]),
        ),
        "mlp_64x256": (mlp_spec(deep), lambda: mlp_by_hand(deep)),
    }
    print(f"{'model':<20} {'params':>10} {'nnspec ms':>10} {'by hand ms':>11} {'ratio':>6}")
    for name, (spec, by_hand) in cases.items():
        ours, theirs = _best_pair(lambda spec=spec: build_model(spec), by_hand, repeat)
        n = sum(p.numel() for p in by_hand().parameters())
        print(f"{name:<20} {n:>10,} {ours * 1e3:10.2f} {theirs * 1e3:11.2f} {ours / theirs:6.2f}")


def validation_rows(repeat: int) -> None:
    layers = [{"kind": "linear", "out_features": 64} for _ in range(999)] + [{"linear": 10}]
    data = {"name": "deep", "model": {"input_shape": [64], "layers": layers}}
    spec = ExperimentSpec.model_validate(data)
    text = nnspec.dump(spec)
    rows = {
        "model_validate, 1,000 layers": _best(lambda: ExperimentSpec.model_validate(data), repeat),
        "infer_shapes, 1,000 layers": _best(lambda: infer_shapes(spec.model), repeat),
        "nnspec.loads (YAML), 1,000 layers": _best(lambda: nnspec.loads(text), max(3, repeat // 4)),
    }
    print(f"\n{'step':<36} {'best ms':>9}")
    for name, seconds in rows.items():
        print(f"{name:<36} {seconds * 1e3:9.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)  # both sides alike; avoids thread-pool noise on a shared machine
    build_rows(args.repeat)
    validation_rows(args.repeat)


if __name__ == "__main__":
    main()
