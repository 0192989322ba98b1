"""RunWriter's background work: consistent copies, order, and nothing lost after flush()."""

from __future__ import annotations

from pathlib import Path

import torch

from nnspec.run.outputs import RunWriter


def test_background_metrics_and_checkpoint_are_complete_after_flush(tmp_path: Path) -> None:
    w = RunWriter(tmp_path)
    rows = [{"epoch": 1, "train_loss": 0.5}]
    weight = torch.zeros(3)
    for epoch in (1, 2):
        w.save_torch_background([f"checkpoints/epoch-{epoch:04d}.pt"], {"w": weight})
        w.write_metrics(rows, background=True)
        weight.add_(1)  # training goes on while the writer thread writes the bytes
        rows.append({"epoch": epoch + 1, "train_loss": 0.1})
    w.flush()
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert lines == ["epoch,train_loss", "1,0.5", "2,0.1"]  # the rows as they were when queued
    for epoch, value in ((1, 0.0), (2, 1.0)):
        ck = torch.load(tmp_path / f"checkpoints/epoch-{epoch:04d}.pt", weights_only=True)
        assert ck["w"].tolist() == [value] * 3
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_checkpoint_holds_the_state_at_save_time_even_with_live_optimizer_state(
    tmp_path: Path,
) -> None:
    """The loop passes live state_dict()s (the optimizer's buffers change in place next step)."""
    p = torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = torch.ones(2)
    opt.step()
    w = RunWriter(tmp_path)
    w.save_torch_background(["ck.pt"], {"opt": opt.state_dict()})
    opt.step()  # updates the momentum buffer in place
    w.flush()
    saved = torch.load(tmp_path / "ck.pt", weights_only=True)["opt"]
    assert saved["state"][0]["momentum_buffer"].tolist() == [1.0, 1.0]
    assert opt.state_dict()["state"][0]["momentum_buffer"].tolist() != [1.0, 1.0]
