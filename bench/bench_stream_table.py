"""A typed Parquet table (numbers with missing cells, text columns, true/false), streamed by
row group, side by side with what a user writes by hand: pandas reads it whole, scikit-learn's
ColumnTransformer imputes, scales and one-hot encodes it, and a DataLoader over the encoded
tensors trains the same model. Peak anonymous memory and time to the end of one epoch.

Run by hand (not part of the test suite)::

    .venv/bin/python bench/bench_stream_table.py [--rows 3000000] [--reps 2] [--batch 1024]

The table (written once to /tmp, deleted at the end unless ``--keep``): 8 float columns (5 %
missing cells), 3 text columns of 20, 200 and 2,000 values (4 % missing), a true/false column and
a binary label; 3 files of row groups of 65,536 rows. Both sides keep the 64 most frequent values
of each text column (plus an unknown and a missing slot), impute numbers with their mean, train
on the same training rows (nnspec's hold-out rule) with the same model (linear 64, ReLU, linear
2; AdamW) and batch size.

  nnspec-stream  ``nnspec.train`` with ``data.in_memory: no`` (columns fitted from row-group
                 summaries, rows encoded in DataLoader workers, ``--workers``)
  nnspec-memory  ``nnspec.train`` with ``data.in_memory: yes`` (the table read whole)
  hand           pandas + ColumnTransformer(SimpleImputer, StandardScaler, OneHotEncoder) fitted
                 on the training rows, a TensorDataset of the encoded rows, one epoch

``total`` counts from the process's start of work (after imports) to the epoch's last step:
reading, fitting, encoding and training. Memory: the peak of RssAnon summed over the process and
its workers, sampled every 20 ms (bench_stream.measure). Each variant runs in a fresh process,
interleaved.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_stream import epoch_clock, interleaved

FOLDER = Path("/tmp/nnspec-bench-table")
NUMBERS, TEXTS = 8, {"shop": 20, "item": 200, "user": 2000}


def write_table(rows: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if FOLDER.exists():  # kept by --keep: reused when it has the rows asked for
        if sum(pq.ParquetFile(f).metadata.num_rows for f in FOLDER.glob("*.parquet")) == rows:
            return
        shutil.rmtree(FOLDER)
    FOLDER.mkdir()
    rng = np.random.default_rng(0)
    per_file = -(-rows // 3)
    for f in range(3):
        n = min(per_file, rows - f * per_file)
        x = rng.normal(size=(n, NUMBERS))
        cols: dict[str, Any] = {}
        for j in range(NUMBERS):
            cols[f"x{j}"] = pa.array(x[:, j], mask=rng.random(n) < 0.05)
        score = x[:, 0] + x[:, 1]
        for name, k in TEXTS.items():
            ids = rng.zipf(1.3, n) % k
            score += (ids % 3 == 0) * 0.5
            values = np.char.add(name, ids.astype(str))
            cols[name] = pa.array(values, mask=rng.random(n) < 0.04)
        cols["flag"] = pa.array(rng.random(n) > 0.7)
        cols["label"] = pa.array((score > np.median(score)).astype(np.int64))
        pq.write_table(pa.table(cols), FOLDER / f"part-{f}.parquet", row_group_size=65_536)


def spec(args: argparse.Namespace, tmp: str, in_memory: str) -> Any:
    from nnspec.spec import ExperimentSpec

    return ExperimentSpec.model_validate({
        "name": "table", "seed": 0, "task": "classification",
        "data": {"source": f"parquet:{FOLDER}", "target": "label", "in_memory": in_memory,
                 "batch_size": args.batch, "num_workers": args.workers, "max_categories": 64},
        "model": {"input_shape": "auto", "layers": [{"linear": 64}, {"linear": "auto"}]},
        "optim": {"kind": "adamw", "lr": 0.003},
        "train": {"epochs": 1, "output_dir": tmp, "progress": "none", "num_threads": 1,
                  "checkpoint": {"enabled": False}, "early_stopping": {"enabled": False}},
    })  # fmt: skip


def run_nnspec(args: argparse.Namespace, in_memory: str) -> dict[str, float]:
    import nnspec

    clock, t0 = epoch_clock(args.batch), time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = nnspec.train(spec(args, tmp, in_memory), callbacks=[clock])
    return {"total": clock.last - t0, "train": clock.last - clock.start,
            "samples": clock.samples, "test_accuracy": result.test_metrics["accuracy"]}  # fmt: skip


def run_hand(args: argparse.Namespace) -> dict[str, float]:
    import pandas as pd
    import torch
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from torch import nn

    from nnspec.run.iterables import holdout_parts

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    frame = pd.read_parquet(FOLDER)
    y = frame.pop("label").to_numpy()
    train = holdout_parts(np.arange(len(frame)), 0.2, 0.1) == 0  # nnspec's default split
    numbers = [f"x{j}" for j in range(NUMBERS)]
    texts = [*TEXTS, "flag"]
    frame[texts] = frame[texts].astype(object)
    encoder = ColumnTransformer([
        ("numbers", make_pipeline(SimpleImputer(), StandardScaler()), numbers),
        ("texts", make_pipeline(SimpleImputer(strategy="constant", fill_value="<missing>"),
                                OneHotEncoder(max_categories=66, sparse_output=False,
                                              handle_unknown="infrequent_if_exist",
                                              dtype=np.float32)), texts),
    ])  # fmt: skip
    encoder.fit(frame[train])
    x = torch.from_numpy(encoder.transform(frame[train]).astype(np.float32))
    del frame
    targets = torch.from_numpy(y[train])
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, targets), batch_size=args.batch, shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    model = nn.Sequential(nn.Linear(x.shape[1], 64), nn.ReLU(), nn.Linear(64, 2))
    opt = torch.optim.AdamW(model.parameters(), lr=0.003)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    samples = 0
    for xb, yb in loader:
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        float(loss.detach())
        samples += len(yb)
    end = time.perf_counter()
    return {"total": end - t0, "train": end - start, "samples": samples, "test_accuracy": -1.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--variants", default="nnspec-stream,nnspec-memory,hand")
    parser.add_argument("--keep", action="store_true", help="keep the table afterwards")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        in_memory = "no" if args.child == "nnspec-stream" else "yes"
        result = run_hand(args) if args.child == "hand" else run_nnspec(args, in_memory)
        print(json.dumps(result))
        return
    try:
        write_table(args.rows)
        size = sum(f.stat().st_size for f in FOLDER.iterdir()) / 1e6
        print(f"table: {FOLDER} {args.rows:,} rows, {size:.0f} MB of Parquet; batch "
              f"{args.batch}, {args.workers} workers", flush=True)  # fmt: skip
        report(interleaved(__file__, args.variants.split(","), args.reps))
    finally:
        if not args.keep:
            shutil.rmtree(FOLDER, ignore_errors=True)


def report(results: dict[str, list[dict[str, Any]]]) -> None:
    def med(variant: str, key: str) -> float:
        return statistics.median(r[key] for r in results[variant])

    hand = results.get("hand")
    print(f"\n{'variant':14} {'total s':>8} {'vs hand':>8} {'epoch s':>8} {'RssAnon peak':>13} "
          f"{'vs hand':>8}")  # fmt: skip
    for variant in results:
        total, peak = med(variant, "total"), max(r["rss_anon"] for r in results[variant])
        t_ratio = f"{total / med('hand', 'total'):.2f}x" if hand else "-"
        m_ratio = f"{peak / max(r['rss_anon'] for r in hand):.2f}x" if hand else "-"
        print(f"{variant:14} {total:8.1f} {t_ratio:>8} {med(variant, 'train'):8.1f} "
              f"{peak / 1e9:11.2f}GB {m_ratio:>8}")  # fmt: skip


if __name__ == "__main__":
    main()
