"""Acceptance: planted bugs are caught by ``nnspec check``; healthy specs pass every check.

The planted specs live in tests/check/planted/ (one bug each, see the comment at their top).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
import torch
from torch import nn

import nnspec
from nnspec.check.runner import run_checks
from nnspec.cli.main import main as nnspec_main
from nnspec.spec import LayerBase


def main(argv: list[str]) -> int:
    return nnspec_main(["check", *argv])


PLANTED = Path(__file__).parent / "planted"
EXAMPLES = Path(__file__).parents[2] / "examples"


def test_healthy_mlp_passes_every_check() -> None:
    report = run_checks(nnspec.load(PLANTED / "healthy_digits_mlp.yaml"))
    assert [r.status for r in report.results] == ["pass"] * 6, report.results
    assert report.ok


def test_a_permuted_labels_fail_the_input_independent_baseline(tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    y = np.random.default_rng(0).permutation(digits.target)  # labels no longer match inputs
    np.savez(tmp_path / "permuted_digits.npz", x=digits.data.astype(np.float32), y=y)
    shutil.copy(PLANTED / "permuted_labels.yaml", tmp_path)
    spec = nnspec.load(tmp_path / "permuted_labels.yaml")
    result = run_checks(spec, only=["input-independent"], base=tmp_path)["input-independent"]
    assert result.status == "fail"
    assert result.numbers["relative_gain"] < 0.02
    assert "labels not aligned" in result.meaning


def test_a_the_same_spec_with_true_labels_passes(tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    np.savez(tmp_path / "permuted_digits.npz", x=digits.data.astype(np.float32), y=digits.target)
    shutil.copy(PLANTED / "permuted_labels.yaml", tmp_path)
    spec = nnspec.load(tmp_path / "permuted_labels.yaml")
    result = run_checks(spec, only=["input-independent"], base=tmp_path)["input-independent"]
    assert result.status == "pass", result.summary


def test_b_softmax_with_logits_loss_is_flagged_before_training(capsys) -> None:
    assert main([str(PLANTED / "softmax_head.yaml")]) == 2
    err = capsys.readouterr().err
    assert "softmax_head.yaml:11" in err and "double activation" in err


def test_c_sgd_lr_10_fails_overfit_one_batch() -> None:
    spec = nnspec.load(PLANTED / "sgd_lr10.yaml")
    result = run_checks(spec, only=["overfit-batch"])["overfit-batch"]
    assert result.status == "fail"
    assert result.tries[0].startswith("lower the learning rate")
    healthy = nnspec.load(PLANTED / "sgd_lr10.yaml").model_copy(
        update={"optim": spec.optim.model_copy(update={"lr": 0.05})}
    )
    assert run_checks(healthy, only=["overfit-batch"])["overfit-batch"].status == "pass"


class BatchMixingView(LayerBase):
    kind: Literal["batch_mixing_view"] = "batch_mixing_view"


class _MixView(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[:2]
        # The planted bug: view() reinterprets memory, so "channels first" swaps samples.
        return x.view(c, n, *x.shape[2:]).transpose(0, 1)


@pytest.fixture
def mixing_layer():
    from nnspec.compile import register_layer, unregister_layer

    register_layer("batch_mixing_view", BatchMixingView, lambda spec, info: _MixView(),
                   shape_fn=lambda spec, shape: shape)  # fmt: skip
    yield
    unregister_layer("batch_mixing_view")


def test_d_batch_mixing_view_fails_batch_independence_and_is_named(mixing_layer) -> None:
    spec = nnspec.load(PLANTED / "batch_mixing.yaml")
    result = run_checks(spec, only=["batch-independence"])["batch-independence"]
    assert result.status == "fail"
    assert result.numbers["max_cross_sample_grad"] > 0
    assert result.numbers["first_mixing_layer"] == "layers.mix"


def test_batch_independence_passes_with_batch_norm_in_eval_mode() -> None:
    spec = one_thread(nnspec.load(EXAMPLES / "digits_cnn.yaml"))
    result = run_checks(spec, only=["batch-independence"])["batch-independence"]
    assert result.status == "pass" and result.numbers["max_cross_sample_grad"] == 0.0


def one_thread(spec: nnspec.ExperimentSpec) -> nnspec.ExperimentSpec:
    """The same spec on one torch thread (2 cores shared by parallel test workers)."""
    return spec.model_copy(update={"train": spec.train.model_copy(update={"num_threads": 1})})


@pytest.mark.parametrize("name", ["breast_cancer_mlp", "iris_mlp"])
def test_healthy_examples_pass(name: str) -> None:
    report = run_checks(one_thread(nnspec.load(EXAMPLES / f"{name}.yaml")))
    assert report.ok, [(r.name, r.status, r.summary) for r in report.results]


@pytest.mark.slow
def test_digits_cnn_example_passes_every_check() -> None:
    report = run_checks(one_thread(nnspec.load(EXAMPLES / "digits_cnn.yaml")))
    assert all(r.status == "pass" for r in report.results), report.results
