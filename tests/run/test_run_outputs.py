"""RunWriter's background work: snapshots, order, and nothing lost after flush()."""

from __future__ import annotations

from pathlib import Path

import torch

from nnspec.run.checkpoint import snapshot
from nnspec.run.outputs import RunWriter


def test_background_metrics_and_checkpoint_are_complete_after_flush(tmp_path: Path) -> None:
    w = RunWriter(tmp_path)
    rows = [{"epoch": 1, "train_loss": 0.5}]
    weight = torch.zeros(3)
    for epoch in (1, 2):
        w.save_torch_background([f"checkpoints/epoch-{epoch:04d}.pt"], snapshot({"w": weight}))
        w.write_metrics(rows, background=True)
        weight.add_(1)  # training goes on while the writer thread pickles the snapshot
        rows.append({"epoch": epoch + 1, "train_loss": 0.1})
    w.flush()
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert lines == ["epoch,train_loss", "1,0.5", "2,0.1"]  # the rows as they were when queued
    for epoch, value in ((1, 0.0), (2, 1.0)):
        ck = torch.load(tmp_path / f"checkpoints/epoch-{epoch:04d}.pt", weights_only=True)
        assert ck["w"].tolist() == [value] * 3
    assert not list(tmp_path.rglob("*.tmp"))


def test_snapshot_copies_live_optimizer_state() -> None:
    p = torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = torch.ones(2)
    opt.step()
    snap = snapshot(opt.state_dict())
    opt.step()  # updates the momentum buffer in place
    assert snap["state"][0]["momentum_buffer"].tolist() == [1.0, 1.0]
    assert opt.state_dict()["state"][0]["momentum_buffer"].tolist() != [1.0, 1.0]
