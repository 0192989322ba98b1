"""LR range test (LR-3/4): sequence, restored state, divergence on least squares, suggestion."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

import nnspec
from nnspec.check.lrfind import lr_find, lr_range_test, resolve_auto_lr, suggest
from nnspec.cli.main import main as nnspec_main


def main(argv: list[str]) -> int:
    return nnspec_main(["lr-find", *argv])


PLANTED = Path(__file__).parent / "planted"


def least_squares(n: int = 1024, d: int = 8, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g) * torch.linspace(0.5, 2.0, d)  # uneven curvature
    y = x @ torch.randn(d, 1, generator=g) + 0.1 * torch.randn(n, 1, generator=g)
    return x, y


def batches(x: torch.Tensor, y: torch.Tensor, size: int = 32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    for _ in itertools.count():
        order = torch.randperm(len(x), generator=g)
        for i in range(0, len(x) - size + 1, size):
            yield x[order[i : i + size]], y[order[i : i + size]]


class HalfMSE(nn.Module):
    """0.5 * mean squared error: its Hessian is X^T X / n."""

    def forward(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((out - y) ** 2).mean()


def test_lr_sequence_is_geometric_and_states_are_restored() -> None:
    x, y = least_squares()
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model(x).pow(2).mean().backward()
    opt.step()  # populate the momentum buffers: they must come back too
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt_before = {k: v["momentum_buffer"].clone() for k, v in opt.state_dict()["state"].items()}
    result = lr_range_test(model, opt, HalfMSE(), batches(x, y), start=1e-6, end=1e-3, steps=50)
    ratio = (1e-3 / 1e-6) ** (1 / 49)
    assert len(result.lrs) == 50 and result.divergence_lr is None
    assert all(math.isclose(lr, 1e-6 * ratio**i, rel_tol=1e-9) for i, lr in enumerate(result.lrs))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    state = opt.state_dict()["state"]
    assert all(torch.equal(opt_before[k], state[k]["momentum_buffer"]) for k in opt_before)
    assert opt.param_groups[0]["lr"] == 0.01


@pytest.mark.parametrize("steps", [100, 200, 400])
def test_divergence_on_least_squares_is_near_the_stability_limit(steps: int) -> None:
    x, y = least_squares()
    limit = 2 / float(torch.linalg.eigvalsh(x.T @ x / len(x)).max())  # plain SGD on 0.5*MSE
    model = nn.Linear(8, 1, bias=False)
    nn.init.zeros_(model.weight)
    opt = torch.optim.SGD(model.parameters(), lr=1e-6)
    result = lr_range_test(model, opt, HalfMSE(), batches(x, y), steps=steps)
    assert result.divergence_lr is not None
    # Growing out of the converged state takes a few steps past the limit, so a coarse 100-step
    # sweep reads 1.5x-3.5x late (finer sweeps come closer).
    assert limit <= result.divergence_lr <= 3.5 * limit, (result.divergence_lr, limit)
    assert result.suggested_lr <= result.divergence_lr / 2


def test_suggestion_is_min_of_steepest_and_half_divergence() -> None:
    lrs = [10 ** (k / 4) for k in range(-24, 1)]  # 1e-6 .. 1
    curve = [2.0 - 1.5 / (1 + math.exp(-(math.log10(lr) + 3) * 3)) for lr in lrs]  # drop at 1e-3
    steepest, _, suggested = suggest(lrs, curve, divergence_lr=1.0)
    assert math.isclose(steepest, 1e-3, rel_tol=0.5) and suggested == steepest
    _, _, capped = suggest(lrs, curve, divergence_lr=1e-3)
    assert capped == 5e-4  # half the divergence LR is lower than the steepest point


def one_thread(spec: nnspec.ExperimentSpec) -> nnspec.ExperimentSpec:
    return spec.model_copy(update={"train": spec.train.model_copy(update={"num_threads": 1})})


def test_lr_auto_resolves_to_the_suggestion_and_leaves_global_rng_alone() -> None:
    spec = one_thread(nnspec.load(PLANTED / "healthy_digits_mlp.yaml"))
    auto = spec.model_copy(update={"optim": spec.optim.model_copy(update={"lr": "auto"})})
    state = torch.random.get_rng_state()
    resolved = resolve_auto_lr(auto)
    assert torch.equal(state, torch.random.get_rng_state())
    assert isinstance(resolved.optim.lr, float) and 1e-5 < resolved.optim.lr < 1.0
    assert resolved.optim.lr == float(f"{lr_find(spec).suggested_lr:.3g}")  # deterministic
    assert resolve_auto_lr(spec) is spec  # a numeric lr is left alone


def test_cli_apply_prints_only_the_override_and_writes_plot_and_json(tmp_path, capsys) -> None:
    out = tmp_path / "plots" / "lr.png"
    spec = str(PLANTED / "healthy_digits_mlp.yaml")
    assert main([spec, "--steps", "40", "--out", str(out), "--apply"]) == 0
    stdout = capsys.readouterr().out.strip()
    assert stdout.startswith("optim.lr=") and "\n" not in stdout
    lr = float(stdout.removeprefix("optim.lr="))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(out.with_suffix(".json").read_text())
    assert math.isclose(data["suggested_lr"], lr, rel_tol=1e-2) and len(data["lrs"]) <= 40
    assert not list(out.parent.glob(".*.tmp"))


def test_cli_bad_spec_exits_2(tmp_path) -> None:
    assert main([str(PLANTED / "softmax_head.yaml"), "--out", str(tmp_path / "x.png")]) == 2
    assert not (tmp_path / "x.png").exists()


@pytest.mark.slow
def test_digits_cnn_adamw_suggestion_trains_to_097_over_3_seeds(tmp_path) -> None:
    spec = one_thread(nnspec.load(Path(__file__).parents[2] / "examples" / "digits_cnn.yaml"))
    assert spec.optim.kind == "adamw"
    lr = float(f"{lr_find(spec).suggested_lr:.3g}")
    assert 1e-4 <= lr <= 3e-2
    accuracies = []
    for seed in (0, 1, 2):
        overrides = [f"optim.lr={lr}", f"seed={seed}", "train.progress=none",
                     "train.num_threads=1", f"train.output_dir={tmp_path}"]  # fmt: skip
        result = nnspec.train(spec, overrides)
        accuracies.append(result.test_metrics["accuracy"])
    assert sum(accuracies) / 3 >= 0.97, accuracies


def test_training_with_lr_auto_runs_the_finder_first(tmp_path) -> None:
    spec = one_thread(nnspec.load(PLANTED / "healthy_digits_mlp.yaml"))
    overrides = ["optim.lr=auto", "train.epochs=1", "train.progress=none",
                 f"train.output_dir={tmp_path}"]  # fmt: skip
    result = nnspec.train(spec, overrides)
    written = nnspec.load(result.run_dir / "spec.yaml")
    assert written.optim.lr == float(f"{lr_find(spec).suggested_lr:.3g}")
