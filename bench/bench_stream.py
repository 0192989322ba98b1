"""Streamed data, side by side: peak anonymous memory and training throughput of nnspec's streamed
sources against a hand-written DataLoader loop over the same memory-mapped file.

Run by hand (not part of the test suite)::

    .venv/bin/python bench/bench_stream.py [--rows 2100000] [--workers 2] [--batch 1024]
        [--reps 2] [--dataset-rows 1000000] [--keep]

It writes one float32 table ``/tmp/nnspec-bench-stream.npy`` (``--rows`` x 513: 512 features and a
class label 0-9 in the last column; 2,100,000 rows = 4.3 GB) and deletes it at the end (unless
``--keep``). Each variant runs in a fresh process, interleaved (A B A B ...); a thread of this
process samples, every 20 ms, the memory of the variant's process and all its descendants (the
DataLoader workers) from ``/proc/<pid>/status`` and ``/proc/<pid>/smaps_rollup``:

  rss_anon  peak of the SUM of RssAnon over the process tree (pages a forked worker shares with
            its parent count once per process: an upper bound)
  pss_anon  peak of the sum of Pss_Anon (shared pages split between the processes sharing them)
  procs     the most processes in the tree at once, and (after the slash) how many there were
            at the RssAnon peak

Variants (one training epoch each: MLP 512 -> 64 -> 10, AdamW, ``--batch``, ``--workers``
DataLoader workers, pinned memory when CUDA is used, 70/20/10 split):

  nnspec-npy     ``data.source: npy:/tmp/nnspec-bench-stream.npy``, ``in_memory: auto`` (the file
                 is above the in-memory limit: streamed), validation and test passes included
  hand-npy       a hand-written loop: a Dataset whose ``__getitem__`` reads one row of
                 ``np.load(mmap_mode="r")``, ``DataLoader(batch_size, sampler=train rows shuffled,
                 num_workers, pin_memory)``, standardised on the batch with nnspec's statistics
  hand-batched   the same loop with a batched read (``__getitems__``), as nnspec reads
  nnspec-dataset a user map-style ``Dataset`` of ``--dataset-rows`` x 512 float32 items (one row of
                 the same file per item) passed to ``nnspec.train(spec, data=dataset)``

Throughput is training samples per second from the epoch's start to its last optimizer step
(nnspec: ``on_epoch_start`` to the last ``on_step_end``; the loops: the same span of their
epoch), so both include the worker start-up; nnspec's set-up passes (targets, statistics) and its
validation are timed separately (``prep``, ``total``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
TABLE = Path("/tmp/nnspec-bench-stream.npy")
FEATURES = 512


def write_table(rows: int) -> None:
    """The float32 table, written chunk by chunk (never whole in memory)."""
    import numpy as np

    if TABLE.exists() and np.load(TABLE, mmap_mode="r").shape == (rows, FEATURES + 1):
        return
    out = np.lib.format.open_memmap(TABLE, "w+", np.float32, (rows, FEATURES + 1))
    rng = np.random.default_rng(0)
    w = rng.normal(size=(FEATURES, 10)).astype(np.float32)
    for start in range(0, rows, 65536):
        stop = min(start + 65536, rows)
        x = rng.standard_normal((stop - start, FEATURES), dtype=np.float32)
        out[start:stop, :FEATURES] = x
        out[start:stop, FEATURES] = (x @ w).argmax(axis=1)
    out.flush()
    del out


def spec(args: argparse.Namespace, tmp: str, source: str) -> Any:
    from nnspec.spec import ExperimentSpec

    return ExperimentSpec.model_validate({
        "name": "stream", "seed": 0, "task": "classification",
        "data": {"source": source, "batch_size": args.batch, "num_workers": args.workers,
                 "in_memory": args.in_memory},
        "model": {"input_shape": [FEATURES], "layers": [{"linear": 64}, {"linear": 10}]},
        "optim": {"kind": "adamw", "lr": 0.003},
        "train": {"epochs": 1, "progress": "none", "output_dir": tmp, "num_threads": 1},
    })  # fmt: skip


class Memmapped(torch.utils.data.Dataset[Any]):
    """A user's map-style Dataset: one row of the memory-mapped table per item."""

    def __init__(self, n: int) -> None:
        import numpy as np

        self.table, self.n = np.load(TABLE, mmap_mode="r"), n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[Any, int]:
        import numpy as np

        row = np.array(self.table[i])
        return torch.from_numpy(row[:FEATURES]), int(row[FEATURES])


def epoch_clock(batch: int) -> Any:
    """A callback timing the training epoch: its start, its last optimizer step, and the
    samples trained (``batch`` a step). bench_named_stream.py times its runs with it too."""
    from nnspec.run.callbacks import Callback, FitState

    class Clock(Callback):
        start = last = 0.0
        samples = 0

        def on_epoch_start(self, state: FitState) -> None:
            self.start = time.perf_counter()

        def on_step_end(self, state: FitState) -> None:
            self.last = time.perf_counter()
            self.samples += batch

    return Clock()


def run_nnspec(args: argparse.Namespace, variant: str) -> dict[str, float]:
    import nnspec

    clock, t0 = epoch_clock(args.batch), time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        dataset = Memmapped(args.dataset_rows) if variant == "nnspec-dataset" else None
        source = "user" if dataset is not None else f"npy:{TABLE}"
        nnspec.train(spec(args, tmp, source), data=dataset, callbacks=[clock])
    total = time.perf_counter() - t0
    train = clock.last - clock.start
    return {"throughput": clock.samples / train, "train": train, "prep": clock.start - t0,
            "total": total}  # fmt: skip


def run_hand(args: argparse.Namespace, batched: bool) -> dict[str, float]:
    import numpy as np
    import torch
    from torch import nn

    from nnspec.run.data import prepare_data

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        s = spec(args, tmp, f"npy:{TABLE}")
        s = s.model_copy(update={"data": s.data.model_copy(update={"in_memory": "no"})})
        t0 = time.perf_counter()
        bundle = prepare_data(s)  # nnspec's split and statistics: the same samples, same inputs
        prep = time.perf_counter() - t0
    train_rows = bundle.train.reader.positions
    mean, std = bundle.info.x_mean, bundle.info.x_std

    class Rows(torch.utils.data.Dataset[Any]):
        def __init__(self) -> None:
            self.table = np.load(TABLE, mmap_mode="r")

        def __len__(self) -> int:
            return len(self.table)

        def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
            row = np.array(self.table[i])
            return torch.from_numpy(row[:FEATURES]), int(row[FEATURES])

    class BatchedRows(Rows):
        def __getitems__(self, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
            rows = self.table[np.sort(np.asarray(idx))]
            return torch.from_numpy(rows[:, :FEATURES]), torch.from_numpy(rows[:, FEATURES])

    dataset = BatchedRows() if batched else Rows()
    gen = torch.Generator().manual_seed(0)
    sampler = torch.utils.data.SubsetRandomSampler(train_rows.tolist(), generator=gen)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=args.batch, sampler=sampler, num_workers=args.workers,
        pin_memory=torch.cuda.is_available(),
        collate_fn=(lambda b: b) if batched else None,
    )  # fmt: skip
    model = nn.Sequential(nn.Linear(FEATURES, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.AdamW(model.parameters(), lr=0.003)
    loss_fn = nn.CrossEntropyLoss()
    start, samples = time.perf_counter(), 0
    for x, y in loader:
        out = model((x - mean) / std)
        loss = loss_fn(out, y.long())
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        float(loss.detach())
        samples += len(y)
    train = time.perf_counter() - start
    return {"throughput": samples / train, "train": train, "prep": prep}


# ---- the parent: fresh processes, memory sampled from /proc ----


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo.extend(int(c) for c in (task / "children").read_text().split())
            except OSError:
                pass
    return pids


def _field(path: str, name: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def measure(cmd: list[str]) -> dict[str, Any]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    peak = {"rss_anon": 0, "pss_anon": 0, "processes": 1, "at_peak": 1}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            pids = _tree(proc.pid)
            rss = sum(_field(f"/proc/{p}/status", "RssAnon") for p in pids)
            pss = sum(_field(f"/proc/{p}/smaps_rollup", "Pss_Anon") for p in pids)
            if rss > peak["rss_anon"]:
                peak["rss_anon"], peak["at_peak"] = rss, len(pids)
            peak["pss_anon"] = max(peak["pss_anon"], pss)
            peak["processes"] = max(peak["processes"], len(pids))
            time.sleep(0.02)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    out, _ = proc.communicate()
    done.set()
    thread.join()
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[-1]} failed ({proc.returncode})")
    return {**json.loads(out.strip().splitlines()[-1]), **peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2_100_000)
    parser.add_argument("--dataset-rows", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--variants", default="nnspec-npy,hand-npy,hand-batched,nnspec-dataset")
    parser.add_argument("--keep", action="store_true", help="keep the table afterwards")
    parser.add_argument("--in-memory", default="auto", help="data.in_memory (smoke runs: no)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = (run_hand(args, args.child == "hand-batched") if args.child.startswith("hand")
                  else run_nnspec(args, args.child))  # fmt: skip
        print(json.dumps(result))
        return
    try:
        write_table(args.rows)
        print(f"table: {TABLE} {TABLE.stat().st_size / 1e9:.2f} GB; batch {args.batch}, "
              f"{args.workers} workers", flush=True)  # fmt: skip
        report(interleaved(__file__, args.variants.split(","), args.reps))
    finally:
        if not args.keep:
            TABLE.unlink(missing_ok=True)


def interleaved(script: str, variants: list[str], reps: int) -> dict[str, list[dict[str, Any]]]:
    """``reps`` rounds of every variant, each in a fresh process (``script --child VARIANT``
    with this process's arguments), measured and printed as they end."""
    results: dict[str, list[dict[str, Any]]] = {}
    base = [sys.executable, script, *sys.argv[1:]]
    for _ in range(reps):
        for variant in variants:
            r = measure([*base, "--child", variant])
            results.setdefault(variant, []).append(r)
            print(variant, json.dumps(r), flush=True)
    return results


def report(results: dict[str, list[dict[str, Any]]]) -> None:
    def med(variant: str, key: str) -> float:
        return statistics.median(r[key] for r in results[variant])

    hand = med("hand-npy", "throughput") if "hand-npy" in results else None
    print(f"\n{'variant':16} {'samples/s':>10} {'vs hand':>8} {'train s':>8} {'prep s':>7} "
          f"{'RssAnon sum':>12} {'worst':>8} {'PssAnon':>8} {'procs':>5}")  # fmt: skip
    for variant in results:
        tput = med(variant, "throughput")
        ratio = f"{tput / hand:.2f}x" if hand else "-"
        print(f"{variant:16} {tput:10.0f} {ratio:>8} {med(variant, 'train'):8.1f} "
              f"{med(variant, 'prep'):7.1f} {med(variant, 'rss_anon') / 2**30:10.2f}GiB "
              f"{max(r['rss_anon'] for r in results[variant]) / 1e9:6.2f}GB "
              f"{med(variant, 'pss_anon') / 2**30:6.2f}GiB "
              f"{max(r['processes'] for r in results[variant]):3d}/"
              f"{max(r['at_peak'] for r in results[variant])}")  # fmt: skip


if __name__ == "__main__":
    main()
