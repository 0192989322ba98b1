"""Training monitors (MON-1/2/3): gradient norms, dead units, warnings, fit diagnosis."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nnspec.check.monitors import SAMPLE_EVERY, TrainingMonitor, diagnose_fit, make_monitor
from nnspec.spec.train import MonitorsSpec


def mlp(bias: float = 0.0) -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    nn.init.constant_(model[0].bias, bias)
    return model


def step(model: nn.Module, mon: TrainingMonitor, scale: float = 1.0) -> None:
    model.zero_grad()
    (model(torch.randn(16, 4)).pow(2).mean() * scale).backward()
    mon.sample_gradients()


def monitor(model: nn.Module, **kw) -> tuple[TrainingMonitor, list[str]]:
    messages: list[str] = []
    opts = {"grad_norms": True, "dead_units": True, "warn": True, **kw}
    mon = TrainingMonitor(**opts)
    mon.bind(model, messages.append, torch.randn(32, 4))
    return mon, messages


def test_grad_norms_are_logged_per_layer_as_epoch_means() -> None:
    model = mlp()
    mon, messages = monitor(model)
    step(model, mon)
    expected = [float(model[0].weight.grad.norm()), float(model[2].weight.grad.norm())]
    step(model, mon, scale=3.0)
    weights = (model[0].weight, model[2].weight)
    expected = [(e + float(w.grad.norm())) / 2 for e, w in zip(expected, weights, strict=True)]
    # the loop calls the sampling hook every SAMPLE_EVERY-th step only (tests/run: step hooks)
    assert TrainingMonitor.every_n_steps == SAMPLE_EVERY
    out = mon.end_epoch({"epoch": 1, "train_loss": 1.0})
    assert out["grad_norm/0"] == pytest.approx(expected[0], rel=1e-6)
    assert out["grad_norm/2"] == pytest.approx(expected[1], rel=1e-6)
    assert 0.0 <= out["dead/1"] < 0.5 and messages == []


def test_dead_relu_layer_is_reported_and_warned() -> None:
    model = mlp(bias=-100.0)
    mon, messages = monitor(model, grad_norms=False)
    step(model, mon)
    out = mon.end_epoch({"epoch": 1, "train_loss": 1.0})
    assert out == {"dead/1": 1.0}
    assert any("100% of 1's units dead (MON-3)" in m for m in messages)


def test_exploding_and_vanishing_gradients_warn() -> None:
    model = mlp()
    mon, messages = monitor(model, dead_units=False)
    step(model, mon, scale=1e6)
    mon.end_epoch({"epoch": 1, "train_loss": 1.0})
    assert any("exploding gradients" in m for m in messages)
    model2 = mlp()
    mon2, messages2 = monitor(model2, dead_units=False)
    model2.zero_grad()
    model2(torch.randn(16, 4)).pow(2).mean().backward()
    model2[0].weight.grad.mul_(1e-8)  # the first layer barely receives gradient
    mon2.sample_gradients()
    mon2.end_epoch({"epoch": 1, "train_loss": 1.0})
    assert any("vanishing gradients" in m for m in messages2)


def test_rising_training_loss_warns_after_three_epochs() -> None:
    mon, messages = monitor(mlp(), grad_norms=False, dead_units=False)
    for epoch, loss in enumerate([1.0, 0.8, 0.9, 1.1, 1.3], 1):
        mon.end_epoch({"epoch": epoch, "train_loss": loss})
    assert len(messages) == 1 and "epoch 5: training loss rose 3 epochs" in messages[0]


def test_make_monitor_is_none_when_every_monitor_is_off() -> None:
    off = MonitorsSpec(grad_norms=False, dead_units=False, warn=False)
    assert make_monitor(off) is None
    assert isinstance(make_monitor(MonitorsSpec()), TrainingMonitor)


def rows(pairs):
    return [{"train_loss": t, "val_loss": v} for t, v in pairs]


@pytest.mark.parametrize(
    ("pairs", "label"),
    [
        ([(1.0, 1.0), (0.5, 0.6), (0.3, 0.45), (0.2, 0.4)], "healthy"),
        ([(1.0, 1.0), (0.5, 0.5), (0.3, 0.55), (0.2, 0.6), (0.1, 0.7)], "overfitting"),
        ([(1.0, 1.0), (0.5, 0.4), (0.4, 0.42), (0.35, 0.41), (0.3, 0.5)], "overfitting"),
        ([(1.0, 1.02), (0.9, 0.95), (0.8, 0.85), (0.7, 0.75)], "underfitting"),
        ([(1.0, 1.0)], "unknown"),
    ],
)
def test_fit_diagnosis(pairs, label: str) -> None:
    got, text = diagnose_fit(rows(pairs))
    assert got == label, text
    assert text.startswith("fit diagnosis")


def test_fit_diagnosis_reports_the_gap_in_loss_units_and_why_one_epoch_is_not_enough() -> None:
    pairs = [(1.0, 1.0), (0.1, 0.05), (0.0036, 0.0231)]  # a near-zero train loss
    got, text = diagnose_fit(rows(pairs))
    assert got == "healthy" and "val - train +0.0195" in text and "%" not in text
    assert diagnose_fit(rows([(1.0, 1.0)]))[1].endswith(
        "needs at least 2 epochs of validation loss"
    )
    assert "no validation loss" in diagnose_fit([{"train_loss": 1.0}])[1]


def test_training_logs_monitor_columns_and_prints_the_fit_diagnosis(tmp_path, capsys) -> None:
    import csv
    from pathlib import Path

    import nnspec

    spec = Path(__file__).parent / "planted" / "healthy_digits_mlp.yaml"
    overrides = ["train.epochs=2", "train.progress=plain", f"train.output_dir={tmp_path}",
                 "train.monitors={grad_norms: true, dead_units: true}"]  # fmt: skip
    result = nnspec.train(spec, overrides)
    with open(result.run_dir / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2
    assert {"grad_norm/layers.0.op", "grad_norm/layers.2.op", "dead/layers.0.act"} <= set(rows[0])
    assert float(rows[1]["grad_norm/layers.0.op"]) > 0
    captured = capsys.readouterr()
    assert "fit diagnosis:" in captured.out + captured.err
