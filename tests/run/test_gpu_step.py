"""The training step on CUDA: no synchronisation between loss reads (torch's sync debug mode set
to "error"), cuda:N, pinned DataLoader batches, channels_last, fp16 and torch.compile.

Marked ``gpu``: they skip, with the reason, on a machine without CUDA. ``bench/gpu_tier.sh`` runs
them together with bench/bench_gpu.py on a GPU machine.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from runhelp import tiny

from nnspec.errors import SpecError
from nnspec.run.callbacks import Callback, FitState
from nnspec.run.guards import LoopState, LossLog
from nnspec.run.loop import Trainer
from nnspec.workflow import train

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (none on this machine)"),
]


@pytest.fixture
def no_sync_in_steps(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Training epochs run with ``torch.cuda.set_sync_debug_mode("error")`` (a synchronising
    call raises) except inside the loss reads, which synchronise on purpose; yields the step
    counts the reads happened at."""
    train_epoch, read = Trainer.train_epoch, LossLog.read
    reads: list[int] = []

    def strict_epoch(trainer: Trainer, epoch: int) -> float:
        torch.cuda.synchronize()  # the epoch starts with nothing queued
        torch.cuda.set_sync_debug_mode("error")
        try:
            return train_epoch(trainer, epoch)
        finally:
            torch.cuda.set_sync_debug_mode("default")

    def allowed_read(
        log: LossLog, model: Any, state: LoopState, last: int, before_update: bool
    ) -> None:
        reads.append(last)
        mode = torch.cuda.get_sync_debug_mode()
        torch.cuda.set_sync_debug_mode("default")
        try:
            read(log, model, state, last, before_update)
        finally:
            torch.cuda.set_sync_debug_mode(mode)

    monkeypatch.setattr(Trainer, "train_epoch", strict_epoch)
    monkeypatch.setattr(LossLog, "read", allowed_read)
    yield reads
    torch.cuda.set_sync_debug_mode("default")


def _cnn(tmp: Path, **train_extra: Any) -> Any:
    conv = {"conv2d": 16, "kernel_size": 3, "padding": 1}
    model = {"input_shape": [1, 8, 8], "defaults": {"norm": "batch"},
             "layers": [conv, conv, "flatten", {"linear": 10}]}  # fmt: skip
    section = {"epochs": 2, "device": "cuda:0", "log_every_steps": 5, **train_extra}
    return tiny(tmp, data={"source": "sklearn:digits", "batch_size": 64}, model=model,
                train=section)  # fmt: skip


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
@pytest.mark.parametrize("clip", ["none", "norm"])
def test_steps_between_loss_reads_never_synchronise(
    precision: str, clip: str, tmp_path: Path, no_sync_in_steps: list[int]
) -> None:
    spec = _cnn(tmp_path, precision=precision, clip_grad={"kind": clip}, accumulate=2)
    result = train(spec)
    assert result.epochs_run == 2 and no_sync_in_steps  # the reads did happen
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["device"] == "cuda:0"


def test_the_dataloader_path_pins_its_batches_and_never_synchronises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_sync_in_steps: list[int]
) -> None:
    import nnspec.run.streams as streams

    pinned: list[bool] = []

    def spy(self: Any) -> Iterator[dict[str, torch.Tensor]]:  # streams' copy to the device
        for batch in self.batches:
            pinned.extend(t.is_pinned() for t in batch.values())
            yield {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}

    monkeypatch.setattr(streams._OnDevice, "__iter__", spy)
    spec = _cnn(tmp_path)
    spec = spec.model_copy(update={"data": spec.data.model_copy(update={"in_memory": "no"})})
    train(spec)
    assert pinned and all(pinned)


def test_channels_last_is_automatic_for_a_cnn_on_cuda(tmp_path: Path) -> None:
    layouts: list[bool] = []

    class Layout(Callback):
        def on_fit_start(self, state: FitState) -> None:
            weight = [p for p in state.model.parameters() if p.dim() == 4][1]
            layouts.append(weight.is_contiguous(memory_format=torch.channels_last))

    train(_cnn(tmp_path / "auto"), callbacks=[Layout()])
    train(_cnn(tmp_path / "no", channels_last="no"), callbacks=[Layout()])
    assert layouts == [True, False]


def test_a_cuda_index_past_the_last_gpu_is_a_spec_error(tmp_path: Path) -> None:
    count = torch.cuda.device_count()
    with pytest.raises(SpecError) as e:
        train(_cnn(tmp_path, device=f"cuda:{count}"))
    (problem,) = e.value.problems
    assert problem.path == ("train", "device") and f"{count} CUDA device(s)" in str(problem.found)
    assert not (tmp_path / "runs").exists()


def test_fp16_on_cuda_reports_its_scaler(tmp_path: Path) -> None:
    result = train(_cnn(tmp_path, precision="fp16", epochs=3))
    assert result.test_metrics["accuracy"] > 0.8
    rows = [json.loads(x) for x in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["skipped_steps"] == sum(r["skipped_steps"] for r in rows)


@pytest.mark.slow
def test_compiled_training_on_cuda_matches_eager(tmp_path: Path) -> None:
    eager = train(_cnn(tmp_path / "eager", precision="bf16"))
    compiled = train(_cnn(tmp_path / "compiled", precision="bf16", compile=True))
    a, b = (json.loads((r.run_dir / "metrics.jsonl").read_text().splitlines()[-1])
            for r in (eager, compiled))  # fmt: skip
    assert b["train_loss"] == pytest.approx(a["train_loss"], rel=0.05)
    assert b["val_accuracy"] == pytest.approx(a["val_accuracy"], abs=0.03)
