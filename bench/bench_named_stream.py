"""A Dataset of named items, streamed, side by side with a hand-written DataLoader loop over the
same Dataset: training samples per second of one epoch.

Run by hand (not part of the test suite)::

    .venv/bin/python bench/bench_named_stream.py [--items 200000] [--workers 2] [--batch 512]
        [--reps 3]

The Dataset's items are ``({"tabular": 64 float32, "city": an id of 1,000}, {"segment": a
class of 3, "spend": a float})``, made on the fly from the item number (no file). Model: a
tabular branch (linear 64 -> 64) and a city embedding (1,000 x 8) concatenated, a 64-wide trunk,
a classification and a regression head; AdamW; one epoch of the 70 % training split.

  nnspec  ``nnspec.train(spec, data=dataset)`` with ``data.in_memory: no`` (``NamedStreamSplit``:
          each batch read, checked and standardised in a worker)
  hand    a DataLoader over the same training items (``SubsetRandomSampler``, the same batch
          size, workers, ``default_collate``), standardised on the batch with the run's
          statistics, the same model and the weighted loss

Throughput counts from the epoch's start to its last optimizer step (both include the workers'
start). Each variant runs in a fresh process, interleaved.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np
import torch

WIDTH, CITIES = 64, 1000


class Items(torch.utils.data.Dataset[tuple[dict[str, Any], dict[str, Any]]]):
    """Items computed from their number (seeded per item): no file, no memory."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.w = np.random.default_rng(0).normal(size=WIDTH).astype(np.float32)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[dict[str, Any], dict[str, Any]]:
        rng = np.random.default_rng(i)
        tab = rng.normal(size=WIDTH).astype(np.float32)
        city = int(rng.integers(0, CITIES))
        z = float(tab @ self.w) + (city % 7) / 3
        return ({"tabular": tab, "city": city},
                {"segment": int(z > 1) + int(z > -1), "spend": z * 10 + 100})  # fmt: skip


def spec(args: argparse.Namespace, tmp: str) -> Any:
    from nnspec.spec import ExperimentSpec

    return ExperimentSpec.model_validate({
        "name": "named_stream", "seed": 0,
        "data": {"source": "user", "batch_size": args.batch, "num_workers": args.workers,
                 "in_memory": "no"},
        "model": {
            "inputs": {"tabular": "auto", "city": "auto"},
            "outputs": {"segment": {"task": "classification"},
                        "spend": {"task": "regression", "weight": 0.5}},
            "layers": [
                {"kind": "linear", "name": "tab", "out_features": 64, "inputs": ["tabular"]},
                {"kind": "embedding", "name": "emb", "num_embeddings": CITIES,
                 "embedding_dim": 8, "inputs": ["city"]},
                {"kind": "flatten", "name": "flat"},
                {"kind": "concat", "name": "joined", "inputs": ["tab", "flat"]},
                {"kind": "linear", "name": "trunk", "out_features": 64},
                {"kind": "linear", "name": "segment", "out_features": 3, "inputs": ["trunk"]},
                {"kind": "linear", "name": "spend", "out_features": 1, "inputs": ["trunk"]},
            ],
        },
        "optim": {"kind": "adamw", "lr": 0.003},
        "train": {"epochs": 1, "progress": "none", "output_dir": tmp, "num_threads": 1,
                  "early_stopping": {"enabled": False}},
    })  # fmt: skip


def run_nnspec(args: argparse.Namespace) -> dict[str, float]:
    from bench_stream import epoch_clock  # the same timing as the streamed-table benchmark

    import nnspec

    clock = epoch_clock(args.batch)
    with tempfile.TemporaryDirectory() as tmp:
        nnspec.train(spec(args, tmp), data=Items(args.items), callbacks=[clock])
    return {"throughput": clock.samples / (clock.last - clock.start)}


def run_hand(args: argparse.Namespace) -> dict[str, float]:
    from torch import nn

    from nnspec.run.data import prepare_data
    from nnspec.run.sources import user_data

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        bundle = prepare_data(spec(args, tmp), raw=user_data(Items(args.items)))
    rows = bundle.train.reader.positions  # type: ignore[union-attr]
    meta = bundle.info.extra["arrays"]["tabular"]
    mean, std = torch.tensor(meta["mean"]), torch.tensor(meta["std"])
    y_mean, y_std = bundle.info.outputs["spend"].y_mean, bundle.info.outputs["spend"].y_std
    gen = torch.Generator().manual_seed(0)
    loader = torch.utils.data.DataLoader(
        Items(args.items), batch_size=args.batch, num_workers=args.workers,
        sampler=torch.utils.data.SubsetRandomSampler(rows.tolist(), generator=gen),
    )  # fmt: skip

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tab, self.emb = nn.Linear(WIDTH, 64), nn.Embedding(CITIES, 8)
            self.trunk = nn.Linear(72, 64)
            self.segment, self.spend = nn.Linear(64, 3), nn.Linear(64, 1)

        def forward(self, tab: torch.Tensor, city: torch.Tensor) -> tuple[torch.Tensor, ...]:
            h = torch.cat([self.tab(tab), self.emb(city)], dim=1)
            h = torch.relu(self.trunk(h))
            return self.segment(h), self.spend(h)

    model = Model()
    opt = torch.optim.AdamW(model.parameters(), lr=0.003)
    ce, mse = nn.CrossEntropyLoss(), nn.MSELoss()
    start, samples, last = time.perf_counter(), 0, 0.0
    for x, y in loader:
        seg, spend = model((x["tabular"] - mean) / std, x["city"])
        target = ((y["spend"].float() - y_mean) / y_std).reshape(-1, 1)
        loss = ce(seg, y["segment"]) + 0.5 * mse(spend, target)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        float(loss.detach())
        samples += len(y["segment"])
        last = time.perf_counter()
    return {"throughput": samples / (last - start)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_nnspec(args) if args.child == "nnspec" else run_hand(args)))
        return
    base = [sys.executable, __file__, *sys.argv[1:]]
    results: dict[str, list[float]] = {"nnspec": [], "hand": []}
    for rep in range(args.reps):
        for variant in results:
            out = subprocess.run([*base, "--child", variant], capture_output=True, text=True,
                                 check=True).stdout  # fmt: skip
            results[variant].append(json.loads(out.strip().splitlines()[-1])["throughput"])
        ratio = results["nnspec"][-1] / results["hand"][-1]
        print(f"round {rep + 1}: nnspec {results['nnspec'][-1]:,.0f} samples/s, hand loop "
              f"{results['hand'][-1]:,.0f} samples/s, ratio {ratio:.2f}x", flush=True)  # fmt: skip
    ratios = [a / b for a, b in zip(results["nnspec"], results["hand"], strict=True)]
    print(f"median ratio {statistics.median(ratios):.2f}x")


if __name__ == "__main__":
    main()
