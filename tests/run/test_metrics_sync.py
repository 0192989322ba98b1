"""Metric states reduce across ranks with torch.distributed (gloo, two processes): each rank sees
a different share of the split, and after ``sync`` every rank holds the whole split's values."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from test_run_metrics import case

from nnspec.run.metrics import MetricSet

NAMES = {
    "classification": ("accuracy", "macro_f1", "auroc", "top_2_accuracy"),
    "binary": ("f1", "auroc", "pr_auc"),
    "multilabel": ("accuracy", "micro_f1", "pr_auc"),
    "regression": ("mae", "rmse", "r2"),
}


def _rank(rank: int, world: int, init: str, results: dict[str, object]) -> None:
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        for task, names in NAMES.items():
            out, y, info = case(task, 11)
            metrics = MetricSet(names, info, report=True)
            share = slice(rank * 40, (rank + 1) * 40 if rank + 1 < world else len(y))
            loss = torch.nn.functional.mse_loss(out[share], out[share] * 0.5)
            metrics.update(out[share], y[share], loss, torch.tensor(share.stop - share.start))
            metrics.sync()
            results[f"{rank}/{task}"] = (metrics.compute(), metrics.report(),
                                         metrics.compute_loss())  # fmt: skip
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_ranks_reduce_to_the_whole_split(tmp_path: object) -> None:
    world = 2
    with mp.Manager() as manager:
        results = manager.dict()
        init = f"file://{tmp_path}/store"
        mp.spawn(_rank, args=(world, init, results), nprocs=world, join=True)
        results = dict(results)
    for task, names in NAMES.items():
        out, y, info = case(task, 11)
        whole = MetricSet(names, info, report=True)
        whole.update(out, y)
        expected = whole.compute()
        for rank in range(world):
            values, report, _ = results[f"{rank}/{task}"]
            assert values == pytest.approx(expected, abs=1e-12), (task, rank)
            assert report == whole.report()
    first, second = (results[f"{r}/regression"][2] for r in range(world))
    assert first == second  # the loss is reduced too


def test_sync_without_a_process_group_changes_nothing() -> None:
    out, y, info = case("binary", 0)
    metrics = MetricSet(("f1", "auroc"), info)
    metrics.update(out, y)
    before = metrics.compute()
    metrics.sync()
    assert metrics.compute() == before
