"""train.checkpoint.keep_top_k: the checkpoints of the k best epochs by the monitored metric."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import nnspec
from nnspec.run.topk import top_k_change, top_k_epochs
from tests.run.runhelp import tiny


def test_ranking_ties_and_non_finite_values() -> None:
    rows = [{"epoch": e, "val_accuracy": v} for e, v in
            [(1, 0.5), (2, 0.7), (3, float("nan")), (4, 0.7), (5, 0.6)]]  # fmt: skip
    assert top_k_epochs(rows, "val_accuracy", "max", 3) == [2, 4, 5]  # tie: the earlier first
    assert top_k_change(rows, "val_accuracy", "max", 2) == (False, [])
    assert top_k_change(rows[:4], "val_accuracy", "max", 2) == (True, [1])


@pytest.mark.slow
def test_the_k_best_epochs_keep_their_checkpoints(tmp_path: Path) -> None:
    spec = tiny(tmp_path, train={"epochs": 6, "checkpoint": {"keep_top_k": 2, "keep_last": 1},
                                 "early_stopping": {"enabled": False}})  # fmt: skip
    run = nnspec.train(spec).run_dir
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    best = sorted(rows, key=lambda r: (r["val_loss"], r["epoch"]))[:2]
    files = sorted(p.name for p in (run / "checkpoints").glob("top-epoch-*.pt"))
    assert files == sorted(f"top-epoch-{r['epoch']:04d}.pt" for r in best)
    for r in best:
        ckpt = torch.load(run / "checkpoints" / f"top-epoch-{r['epoch']:04d}.pt", weights_only=True)
        assert ckpt["epoch"] == r["epoch"]
    assert sorted(p.name for p in (run / "checkpoints").glob("epoch-*.pt")) == ["epoch-0006.pt"]
