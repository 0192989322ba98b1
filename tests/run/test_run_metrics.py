"""The per-epoch tensor metrics agree with scikit-learn's (the final report's) on every task."""

from __future__ import annotations

import math

import pytest
import torch

from nnspec.run.data import DataInfo
from nnspec.run.metrics import METRICS, TENSOR_METRICS, compute_metrics, epoch_metrics


def _case(
    task: str, seed: int, n: int = 97, k: int = 5
) -> tuple[torch.Tensor, torch.Tensor, DataInfo]:
    g = torch.Generator().manual_seed(seed)
    if task == "classification":
        # few samples and classes missing from targets/predictions exercise sklearn's label set
        out = torch.randn(n, k, generator=g) * 3
        y = torch.randint(0, k - 1, (n,), generator=g)
        info = DataInfo(task=task, input_shape=(3,), n_outputs=k)
    elif task == "binary":
        out = torch.randn(n, 1, generator=g)
        y = torch.randint(0, 2, (n, 1), generator=g).float()
        info = DataInfo(task=task, input_shape=(3,), n_outputs=1)
    elif task == "multilabel":
        out = torch.randn(n, k, generator=g) * 2
        y = torch.randint(0, 2, (n, k), generator=g).float()
        info = DataInfo(task=task, input_shape=(3,), n_outputs=k)
    else:
        out = torch.randn(n, 2, generator=g)
        y = out + 0.5 * torch.randn(n, 2, generator=g)
        std, mean = torch.tensor([2.0, 0.5]), torch.tensor([10.0, -1.0])
        info = DataInfo(task=task, input_shape=(3,), n_outputs=2, y_mean=mean, y_std=std)
    return out, y, info


@pytest.mark.parametrize("key", sorted(TENSOR_METRICS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tensor_metric_equals_sklearn(key: str, seed: int) -> None:
    task, name = key.split("/")
    out, y, info = _case(task, seed)
    fast = epoch_metrics(out, y, info, (name,))[name]
    exact = compute_metrics(out, y, info, (name,))[name]
    assert math.isclose(fast, exact, rel_tol=1e-5, abs_tol=1e-9), (fast, exact)


def test_every_tensor_metric_has_a_sklearn_twin() -> None:
    assert set(TENSOR_METRICS) <= set(METRICS)


def test_macro_f1_with_an_absent_class_and_zero_division() -> None:
    info = DataInfo(task="classification", input_shape=(1,), n_outputs=3)
    out = torch.tensor(
        [[5.0, 0, 0], [5.0, 0, 0], [0, 5.0, 0]]
    )  # class 2 neither true nor predicted
    y = torch.tensor([0, 1, 1])
    fast = epoch_metrics(out, y, info, ("accuracy", "macro_f1"))
    assert fast == pytest.approx(compute_metrics(out, y, info, ("accuracy", "macro_f1")))
    assert fast["macro_f1"] == pytest.approx((2 / 3 + 2 / 3) / 2)


def test_constant_regression_target_r2_follows_sklearn() -> None:
    info = DataInfo(task="regression", input_shape=(1,), n_outputs=1)
    y = torch.ones(5, 1)
    for out in (torch.ones(5, 1), torch.zeros(5, 1)):
        assert epoch_metrics(out, y, info, ("r2",)) == compute_metrics(out, y, info, ("r2",))


def test_metrics_without_a_tensor_version_fall_back_in_order() -> None:
    out, y, info = _case("binary", 0)
    names = ("auroc", "accuracy", "f1")
    fast = epoch_metrics(out, y, info, names)
    assert list(fast) == list(names)
    assert fast == pytest.approx(compute_metrics(out, y, info, names))
