"""The training step: no host reads between loss reads, guards that name the exact step from
deferred reads, fp16 with a GradScaler, device names, channels_last."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from runhelp import tiny

import nnspec
from nnspec.errors import SpecError, TrainError
from nnspec.run.callbacks import Callback, FitState
from nnspec.run.guards import SKIP_LIMIT, LoopState, LossLog
from nnspec.run.loop import Trainer
from nnspec.run.step import MixedPrecision, resolve_device, use_channels_last
from nnspec.spec.train import TrainSpec
from nnspec.workflow import train

# Every way a tensor's value reaches the host (each one a synchronisation on a GPU).
HOST_READS = ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__")


class HostReadSpy:
    """Records each host read made while training steps run, and those made by the loss reads
    (``LossLog.read``) apart: ``steps`` must stay empty, ``reads`` proves the spy sees them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.steps: list[tuple[str, int]] = []
        self.reads: list[str] = []
        self.where: str | None = None  # None: outside any training epoch
        self.reads_at: list[int] = []  # the step counts the loss reads happened at
        for name in HOST_READS:
            monkeypatch.setattr(torch.Tensor, name, self._spy(name, getattr(torch.Tensor, name)))
        train_epoch, read = Trainer.train_epoch, LossLog.read

        def spied_epoch(trainer: Trainer, epoch: int) -> float:
            self.where, self.trainer = "step", trainer
            try:
                return train_epoch(trainer, epoch)
            finally:
                self.where = None

        def spied_read(
            log: LossLog, model: Any, state: LoopState, last: int, before_update: bool
        ) -> None:
            outer, self.where = self.where, "read"
            self.reads_at.append(last)
            try:
                read(log, model, state, last, before_update)
            finally:
                self.where = outer

        monkeypatch.setattr(Trainer, "train_epoch", spied_epoch)
        monkeypatch.setattr(LossLog, "read", spied_read)

    def _spy(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def spy(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            if self.where == "step":
                self.steps.append((name, self.trainer.state.step))
            elif self.where == "read":
                self.reads.append(name)
            return original(tensor, *args, **kwargs)

        return spy


def _spec(tmp: Path, **train_extra: Any) -> Any:
    # 210 training samples / batch 16: 14 batches, 7 optimizer steps per epoch with accumulate 2
    section = {"epochs": 3, "log_every_steps": 4, "accumulate": 2,
               "clip_grad": {"kind": "norm", "max_norm": 1.0}, **train_extra}  # fmt: skip
    return tiny(tmp, data={"batch_size": 16}, train=section)


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_no_host_read_happens_between_the_loss_reads(
    precision: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = HostReadSpy(monkeypatch)
    result = train(_spec(tmp_path, precision=precision))  # adamw: built fused, as sgd and adam
    assert spy.steps == []
    # the reads happen, every 4 steps (before that step's update) and at each epoch's end
    assert spy.reads and set(spy.reads) <= {"tolist"}
    assert spy.reads_at == [4, 7, 8, 12, 14, 16, 20, 21]
    assert result.epochs_run == 3 and math.isfinite(result.test_metrics["loss"])


def test_the_spy_sees_a_callback_that_reads_the_loss_every_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[float] = []

    class LossReader(Callback):
        def on_step_end(self, state: FitState) -> None:
            seen.append(state.loss)  # a host read, made only because this hook asks

    spy = HostReadSpy(monkeypatch)
    train(_spec(tmp_path), callbacks=[LossReader()])
    assert [name for name, _ in spy.steps] == ["__float__"] * 21 and len(seen) == 21
    assert all(math.isfinite(v) for v in seen)


def _rows(result: Any) -> list[dict[str, Any]]:
    lines = (result.run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "time"} for line in lines]


def test_deferred_reads_change_nothing_but_when_the_loss_is_read(tmp_path: Path) -> None:
    every = [train(_spec(tmp_path / str(n), log_every_steps=n)) for n in (1, 4, 1000)]
    rows = [_rows(r) for r in every]
    assert rows[0] == rows[1] == rows[2]  # train_loss bit for bit: same values, same order
    weights = [torch.load(r.run_dir / "model.pt", weights_only=True)["model"] for r in every]
    assert all(torch.equal(weights[0][k], w[k]) for w in weights[1:] for k in weights[0])


def _guard_message(tmp: Path, every: int, **sections: Any) -> str:
    with pytest.raises(TrainError) as e:
        train(tiny(tmp / str(every), **sections, train={"log_every_steps": every, "epochs": 6}))
    return e.value.problems[0].message


def test_nan_guard_names_the_same_first_bad_step_whenever_it_reads(tmp_path: Path) -> None:
    sgd = {"kind": "sgd", "lr": 1e6, "momentum": 0.9}
    at_once = _guard_message(tmp_path, 1, optim=sgd)
    deferred = _guard_message(tmp_path, 50, optim=sgd)  # 7 steps per epoch: read at epoch end
    head = at_once.split(";")[0]
    assert head.startswith("NaN guard: non-finite loss nan at step ")
    assert deferred.split(";")[0] == head
    assert "first parameter with a non-finite gradient: layers." in at_once
    step = int(head.split("at step ")[1].split()[0])
    assert "read at step 7 (the loss is read every train.log_every_steps steps" in deferred
    assert step < 7 and "first parameter with a non-finite value now: layers." in deferred


def test_divergence_guard_stops_at_the_same_step_whenever_it_reads(tmp_path: Path) -> None:
    adam = {"kind": "adam", "lr": 1e6}
    messages = {every: _guard_message(tmp_path, every, optim=adam) for every in (1, 3, 50)}
    assert messages[1].startswith("divergence guard: the smoothed loss")
    assert messages[1] == messages[3] == messages[50]  # value, limit and step all equal


def _log(values: list[float], ends: list[int], skipped: list[bool] | None = None) -> LossLog:
    """A log holding ``values`` (batches of 2), step j ending before batch ``ends[j]``."""
    log = LossLog(every=100, factor=10.0, limit=3)
    start = 0
    for j, end in enumerate(ends):
        for v in values[start:end]:
            log.add(torch.tensor(v), 2)
        start = end
        log.end_step(None if skipped is None else torch.tensor(skipped[j]))
    return log


def test_a_loss_log_replays_each_step_of_the_window() -> None:
    state, model = LoopState(step=10), torch.nn.Linear(2, 1)
    log = _log([1.0, 2.0, 3.0, 4.0], ends=[2, 4])  # two steps of two batches
    log.read(model, state, last=12, before_update=False)
    assert log.mean() == pytest.approx(2.5) and log.seen == 8
    assert state.initial_loss == 2.0 and state.smoothed_loss == pytest.approx(0.9 * 2 + 0.4)
    # a non-finite loss in the first batch of step 14's group: the step is named, not 15
    log = _log([1.0, math.inf, 1.0, 1.0], ends=[1, 3, 4])
    with pytest.raises(TrainError, match=r"non-finite loss inf at step 14 \(epoch 1\)"):
        log.read(model, state, last=15, before_update=True)


def test_fp16_skipped_steps_are_counted_and_not_averaged_and_a_long_run_stops() -> None:
    state, model = LoopState(), torch.nn.Linear(2, 1)
    log = _log(
        [math.nan, 1.0, math.inf, 3.0], ends=[1, 2, 3, 4], skipped=[True, False, True, False]
    )
    log.read(model, state, last=4, before_update=False)
    assert (state.skipped_steps, state.skipped_run) == (2, 0)
    assert log.mean() == 2.0  # the skipped steps' non-finite losses are left out
    assert state.initial_loss == 1.0  # the divergence guard starts at the first applied step
    run = SKIP_LIMIT - 1
    log = _log([math.nan] * run, ends=list(range(1, run + 1)), skipped=[True] * run)
    log.read(model, state, last=4 + run, before_update=False)  # one short of the limit
    assert state.skipped_steps == 2 + run
    log = _log([math.nan], ends=[1], skipped=[True])
    with pytest.raises(TrainError, match=f"skipped {SKIP_LIMIT} consecutive steps") as e:
        log.read(model, state, last=5 + run, before_update=False)
    assert e.value.problems[0].path == ("train", "precision")
    assert f"steps 5 to {5 + run}" in e.value.problems[0].message


def test_fp16_trains_on_the_cpu_and_reports_its_scaler(tmp_path: Path) -> None:
    result = train(tiny(tmp_path, train={"precision": "fp16", "epochs": 3}))
    assert result.test_metrics["accuracy"] > 0.5
    summary = json.loads((result.run_dir / "summary.json").read_text())
    rows = _rows(result)
    assert summary["skipped_steps"] == sum(r["skipped_steps"] for r in rows)
    assert all(r["loss_scale"] > 0 for r in rows)
    ckpt = torch.load(result.run_dir / "checkpoints" / "epoch-0003.pt", weights_only=True)
    assert ckpt["scaler"]["scale"] == rows[-1]["loss_scale"]
    fp32 = train(tiny(tmp_path / "fp32", train={"epochs": 1}))
    assert torch.load(fp32.run_dir / "checkpoints" / "epoch-0001.pt",
                      weights_only=True)["scaler"] is None  # fmt: skip
    assert "skipped_steps" not in _rows(fp32)[0]
    assert json.loads((fp32.run_dir / "summary.json").read_text())["skipped_steps"] == 0


def test_fp16_skips_steps_until_the_guard_stops_a_run_that_cannot_recover(tmp_path: Path) -> None:
    spec = tiny(tmp_path, optim={"kind": "sgd", "lr": 1e6},
                train={"precision": "fp16", "epochs": 20, "divergence_factor": 1e30})  # fmt: skip
    with pytest.raises(TrainError) as e:
        train(spec)
    assert e.value.problems[0].message.startswith(
        f"NaN guard: the fp16 loss scaler skipped {SKIP_LIMIT} consecutive steps"
    )


class StopAt(Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, state: FitState) -> None:
        if state.epoch == self.epoch:
            state.stop("test")


def test_an_fp16_run_resumes_bit_for_bit_with_its_loss_scale(tmp_path: Path) -> None:
    def spec(tmp: Path) -> Any:
        return tiny(tmp, optim={"kind": "sgd", "lr": 0.5},
                    train={"precision": "fp16", "epochs": 4, "log_every_steps": 3})  # fmt: skip

    whole = train(spec(tmp_path / "a")).run_dir
    part = train(spec(tmp_path / "b"), callbacks=[StopAt(2)]).run_dir
    train(spec(tmp_path / "b"), [f"train.resume={part}"])
    a, b = (
        torch.load(d / "checkpoints" / "epoch-0004.pt", weights_only=True) for d in (whole, part)
    )
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["scaler"] == b["scaler"] and a["loop"]["skipped_steps"] == b["loop"]["skipped_steps"]


# ---- devices and memory format ----


@pytest.mark.parametrize("name", ["cpu", "cuda", "cuda:0", "cuda:12", "mps", "auto"])
def test_device_names_the_spec_accepts(name: str) -> None:
    assert TrainSpec(device=name).device == name


@pytest.mark.parametrize(
    ("name", "hint"),
    [("gpu", "cuda"), ("cuda1", "cuda:1"), ("GPU:1", "cuda:1"), ("cuda:", "cuda:0"),
     ("cuda:-1", "cuda:1"), ("tpu", None)],
)  # fmt: skip
def test_a_bad_device_is_a_spec_error_with_the_choices(name: str, hint: str | None) -> None:
    with pytest.raises(SpecError) as e:
        nnspec.loads(
            f"model: {{input_shape: [4], layers: [{{linear: 2}}]}}\ntrain: {{device: '{name}'}}\n"
        )
    (problem,) = e.value.problems
    assert problem.path == ("train", "device") and problem.line == 2
    assert f"unknown device '{name}'; expected auto, cpu, cuda, cuda:N" in problem.message
    assert (f"did you mean '{hint}'?" in problem.message) == (hint is not None)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")
def test_a_cuda_device_this_machine_lacks_stops_the_run_before_any_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as e:
        train(tiny(tmp_path, train={"device": "cuda:1"}))
    (problem,) = e.value.problems
    assert problem.path == ("train", "device") and "no CUDA device" in str(problem.found)
    assert not (tmp_path / "runs").exists()
    assert resolve_device("auto") == torch.device("cpu")


def _cnn(tmp: Path, **train_extra: Any) -> Any:
    conv = {"conv2d": 8, "kernel_size": 3, "padding": 1}
    layers = [conv, conv, "flatten", {"linear": 10}]
    model = {"input_shape": [1, 8, 8], "defaults": {"norm": "batch"}, "layers": layers}
    data = {"source": "sklearn:digits", "batch_size": 64}
    return tiny(tmp, data=data, model=model, train={"epochs": 1, **train_extra})


def test_channels_last_trains_an_image_model_like_the_default_layout(tmp_path: Path) -> None:
    layouts: list[bool] = []

    class Layout(Callback):
        def on_fit_start(self, state: FitState) -> None:
            weight = [p for p in state.model.parameters() if p.dim() == 4][1]  # 8 channels in
            layouts.append(weight.is_contiguous(memory_format=torch.channels_last))

    runs = {cl: train(_cnn(tmp_path / cl, channels_last=cl), callbacks=[Layout()])
            for cl in ("yes", "no")}  # fmt: skip
    assert layouts == [True, False]
    a, b = (_rows(runs[cl]) for cl in ("yes", "no"))
    assert [r["train_loss"] for r in a] == pytest.approx([r["train_loss"] for r in b], rel=1e-4)


def test_channels_last_auto_is_on_for_convolutions_on_cuda_only() -> None:
    conv, mlp = torch.nn.Conv2d(1, 2, 3), torch.nn.Linear(64, 2)
    image, cpu, cuda = torch.zeros(1, 8, 8), torch.device("cpu"), torch.device("cuda", 0)
    auto = TrainSpec()
    assert use_channels_last(auto, conv, image, cuda) is True
    assert use_channels_last(auto, conv, image, cpu) is False
    assert use_channels_last(auto, mlp, image, cuda) is False  # no convolution
    assert use_channels_last(auto, conv, torch.zeros(64), cuda) is False  # not an image
    assert use_channels_last(TrainSpec(channels_last="no"), conv, image, cuda) is False
    assert use_channels_last(TrainSpec(channels_last="yes"), mlp, image, cpu) is True


def test_channels_last_yes_needs_image_inputs(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as e:
        train(tiny(tmp_path, train={"channels_last": "yes"}))
    (problem,) = e.value.problems
    assert problem.path == ("train", "channels_last") and problem.found == "samples of shape (8,)"
    assert not (tmp_path / "runs").exists()


def test_mixed_precision_without_a_scaler_steps_like_torch() -> None:
    p = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([p], lr=0.5)

    class Schedule:
        steps = 0

        def step_batch(self) -> None:
            self.steps += 1

    precision, schedule = MixedPrecision("fp32", torch.device("cpu"), [p]), Schedule()
    precision.backward((p * 2).sum())
    assert precision.unscale(opt) is None and precision.scale() is None
    precision.step(opt, schedule, first=True)
    assert torch.equal(p.detach(), torch.zeros(3)) and p.grad is None and schedule.steps == 1
