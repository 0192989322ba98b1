"""Streamed metric states agree with scikit-learn on the same outputs, merge, and report.

``REFERENCE`` is the whole-split computation with scikit-learn: for the metrics nnspec had
before states existed it is that code path verbatim (sklearn on concatenated outputs), for the
others the matching sklearn function.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import sklearn.metrics as skm
import torch

from nnspec.run.data import DataInfo
from nnspec.run.metric_table import METRIC_IMPLS
from nnspec.run.metrics import MetricSet, compute_metrics, loss_weight
from nnspec.run.tasks import TASKS
from nnspec.spec.metrics import METRIC_INFO

Ref = Callable[[np.ndarray, np.ndarray], float]


def _ovr(y: np.ndarray, p: np.ndarray) -> float:
    return skm.roc_auc_score(y, p, multi_class="ovr", labels=list(range(p.shape[1])))


REFERENCE: dict[str, Ref] = {
    "classification/accuracy": lambda y, p: skm.accuracy_score(y, p.argmax(1)),
    "classification/macro_f1": lambda y, p: skm.f1_score(
        y, p.argmax(1), average="macro", zero_division=0
    ),
    "classification/weighted_f1": lambda y, p: skm.f1_score(
        y, p.argmax(1), average="weighted", zero_division=0
    ),
    "classification/macro_precision": lambda y, p: skm.precision_score(
        y, p.argmax(1), average="macro", zero_division=0
    ),
    "classification/macro_recall": lambda y, p: skm.recall_score(
        y, p.argmax(1), average="macro", zero_division=0
    ),
    "classification/balanced_accuracy": lambda y, p: skm.balanced_accuracy_score(y, p.argmax(1)),
    "classification/auroc": _ovr,
    "binary/accuracy": lambda y, p: skm.accuracy_score(y, p[:, 0] > 0.5),
    "binary/balanced_accuracy": lambda y, p: skm.balanced_accuracy_score(y, p[:, 0] > 0.5),
    "binary/f1": lambda y, p: skm.f1_score(y, p[:, 0] > 0.5, zero_division=0),
    "binary/precision": lambda y, p: skm.precision_score(y, p[:, 0] > 0.5, zero_division=0),
    "binary/recall": lambda y, p: skm.recall_score(y, p[:, 0] > 0.5, zero_division=0),
    "binary/auroc": lambda y, p: skm.roc_auc_score(y, p[:, 0]),
    "binary/pr_auc": lambda y, p: skm.average_precision_score(y, p[:, 0]),
    "multilabel/accuracy": lambda y, p: skm.accuracy_score(y, p > 0.5),
    "multilabel/micro_f1": lambda y, p: skm.f1_score(y, p > 0.5, average="micro", zero_division=0),
    "multilabel/macro_f1": lambda y, p: skm.f1_score(y, p > 0.5, average="macro", zero_division=0),
    "multilabel/auroc": lambda y, p: skm.roc_auc_score(y, p, average="macro"),
    "multilabel/pr_auc": lambda y, p: skm.average_precision_score(y, p, average="macro"),
    "regression/mae": lambda y, p: skm.mean_absolute_error(y, p),
    "regression/mse": lambda y, p: skm.mean_squared_error(y, p),
    "regression/rmse": lambda y, p: float(np.sqrt(skm.mean_squared_error(y, p))),
    "regression/r2": lambda y, p: skm.r2_score(y, p),
}


def case(
    task: str, seed: int, n: int = 97, k: int = 5
) -> tuple[torch.Tensor, torch.Tensor, DataInfo]:
    g = torch.Generator().manual_seed(seed)
    if task == "classification":
        # few samples, classes missing from the predictions exercise sklearn's label set
        out = torch.randn(n, k, generator=g) * 3
        y = torch.randint(0, k, (n,), generator=g)
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
        std, mean = torch.tensor([2.0, 0.5]), torch.tensor([1e3, -1.0])
        info = DataInfo(task=task, input_shape=(3,), n_outputs=2, y_mean=mean, y_std=std)
    return out, y, info


def reference(out: torch.Tensor, y: torch.Tensor, info: DataInfo, name: str) -> float:
    """The whole-split scikit-learn value (what nnspec computed before states existed)."""
    kind = TASKS[info.task]
    if kind.probabilities is not None:
        p = kind.probabilities(out.float()).double().numpy()
        yy = y.numpy()
    else:
        p = (out * info.y_std + info.y_mean).double().numpy()
        yy = (y * info.y_std + info.y_mean).double().numpy()
    yy = yy[:, 0] if kind.squeeze_targets else yy
    return float(REFERENCE[f"{info.task}/{name}"](yy, p))


def streamed(out: torch.Tensor, y: torch.Tensor, info: DataInfo, names: tuple[str, ...],
             sizes: tuple[int, ...] = (10, 1, 40)) -> dict[str, float]:  # fmt: skip
    """Uneven batches over two sets (two 'ranks'), merged."""
    a, b = MetricSet(names, info), MetricSet(names, info)
    i = 0
    for j, size in enumerate((*sizes, len(y))):
        (a if j % 2 else b).update(out[i : i + size], y[i : i + size])
        i += size
    a.merge(b)
    return a.compute()


def test_every_builtin_metric_has_a_reference_and_a_name() -> None:
    assert set(METRIC_IMPLS) == set(REFERENCE)
    for key in METRIC_IMPLS:
        task, name = key.split("/")
        assert task in METRIC_INFO[name].tasks
    named = {(t, n) for n, info in METRIC_INFO.items() for t in info.tasks}
    assert named == {tuple(k.split("/")) for k in METRIC_IMPLS}


@pytest.mark.parametrize("key", sorted(REFERENCE))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_streamed_metric_equals_sklearn(key: str, seed: int) -> None:
    task, name = key.split("/")
    out, y, info = case(task, seed)
    got = streamed(out, y, info, (name,))[name]
    assert math.isclose(got, reference(out, y, info, name), rel_tol=1e-6, abs_tol=1e-9)


@pytest.mark.parametrize("k", [2, 3, 5])
def test_top_k_accuracy_equals_sklearn(k: int) -> None:
    out, y, info = case("classification", 3, k=7)
    name = f"top_{k}_accuracy"
    p = torch.softmax(out, 1).double().numpy()
    expected = skm.top_k_accuracy_score(y.numpy(), p, k=k, labels=list(range(7)))
    assert streamed(out, y, info, (name,))[name] == pytest.approx(expected, abs=1e-12)


def test_merged_sets_equal_one_set_over_every_batch() -> None:
    names = ("accuracy", "macro_f1", "auroc", "top_2_accuracy")
    out, y, info = case("classification", 4)
    whole = compute_metrics(out, y, info, names)
    assert streamed(out, y, info, names) == pytest.approx(whole, abs=1e-12)


def test_macro_f1_with_an_absent_class_and_zero_division() -> None:
    info = DataInfo(task="classification", input_shape=(1,), n_outputs=3)
    out = torch.tensor(
        [[5.0, 0, 0], [5.0, 0, 0], [0, 5.0, 0]]
    )  # class 2 neither true nor predicted
    y = torch.tensor([0, 1, 1])
    got = compute_metrics(out, y, info, ("accuracy", "macro_f1"))
    assert got["macro_f1"] == pytest.approx((2 / 3 + 2 / 3) / 2)


def test_constant_regression_target_r2_follows_sklearn() -> None:
    info = DataInfo(task="regression", input_shape=(1,), n_outputs=1)
    y = torch.ones(5, 1)
    for out, expected in ((torch.ones(5, 1), 1.0), (torch.zeros(5, 1), 0.0)):
        assert compute_metrics(out, y, info, ("r2",)) == {"r2": expected}
        assert skm.r2_score(y.numpy(), out.numpy()) == expected


def test_ranking_metrics_are_nan_where_undefined() -> None:
    info = DataInfo(task="binary", input_shape=(1,), n_outputs=1)
    got = compute_metrics(torch.randn(6, 1), torch.ones(6, 1), info, ("auroc", "pr_auc"))
    assert all(math.isnan(v) for v in got.values())
    # multilabel: labels with one class are left out of the macro mean
    out, y, info = case("multilabel", 0)
    y[:, 0] = 1.0
    got = compute_metrics(out, y, info, ("auroc",))["auroc"]
    p = torch.sigmoid(out).double().numpy()
    assert got == pytest.approx(skm.roc_auc_score(y[:, 1:].numpy(), p[:, 1:], average="macro"))


def test_threshold_moves_binary_decisions() -> None:
    out, y, info = case("binary", 5)
    p = torch.sigmoid(out)[:, 0].numpy()
    for threshold in (0.3, 0.5, 0.8):
        metrics = MetricSet(("f1", "precision", "recall"), info, threshold)
        metrics.update(out, y)
        pred = p > threshold
        assert metrics.compute() == pytest.approx({
            "f1": skm.f1_score(y[:, 0], pred, zero_division=0),
            "precision": skm.precision_score(y[:, 0], pred, zero_division=0),
            "recall": skm.recall_score(y[:, 0], pred, zero_division=0),
        })  # fmt: skip


@pytest.mark.parametrize(
    "loss_fn",
    [
        torch.nn.CrossEntropyLoss(),
        torch.nn.CrossEntropyLoss(weight=torch.tensor([0.5, 2.0, 1.0, 3.0, 0.1])),
        torch.nn.CrossEntropyLoss(
            weight=torch.tensor([0.5, 2.0, 1.0, 3.0, 0.1]), label_smoothing=0.1
        ),
    ],
)
def test_streamed_loss_equals_the_whole_split_loss(loss_fn: torch.nn.Module) -> None:
    out, y, info = case("classification", 6)
    metrics = MetricSet((), info)
    for i in range(0, len(y), 13):
        ob, yb = out[i : i + 13], y[i : i + 13]
        metrics.update(ob, yb, loss_fn(ob, yb), loss_weight(loss_fn, yb))
    assert metrics.compute_loss() == pytest.approx(float(loss_fn(out, y)), rel=1e-6)


def test_streamed_loss_of_elementwise_losses() -> None:
    out, y, info = case("multilabel", 7)
    for loss_fn in (
        torch.nn.BCEWithLogitsLoss(pos_weight=torch.full((5,), 3.0)),
        torch.nn.MSELoss(),
    ):
        metrics = MetricSet((), info)
        for i in range(0, len(y), 20):
            ob, yb = out[i : i + 20], y[i : i + 20]
            metrics.update(ob, yb, loss_fn(ob, yb), loss_weight(loss_fn, yb))
        assert metrics.compute_loss() == pytest.approx(float(loss_fn(out, y)), rel=1e-6)


def test_class_report_equals_sklearn() -> None:
    out, y, info = case("classification", 8)
    info = DataInfo(task="classification", input_shape=(3,), n_outputs=5,
                    class_names=tuple("abcde"))  # fmt: skip
    metrics = MetricSet((), info, report=True)
    metrics.update(out, y)
    report = metrics.report()
    pred = out.argmax(1).numpy()
    prec, rec, f1, support = skm.precision_recall_fscore_support(
        y.numpy(), pred, labels=list(range(5)), zero_division=0
    )
    for i, name in enumerate("abcde"):
        row = report["per_class"][name]
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx(
            (prec[i], rec[i], f1[i])
        )
        assert row["support"] == support[i]
    expected = skm.confusion_matrix(y.numpy(), pred, labels=list(range(5)))
    assert report["confusion_matrix"] == expected.tolist()


def test_multilabel_report_equals_sklearn() -> None:
    out, y, _ = case("multilabel", 9)
    info = DataInfo(task="multilabel", input_shape=(3,), n_outputs=5, class_names=tuple("vwxyz"))
    metrics = MetricSet(("micro_f1",), info, 0.4, report=True)
    for i in range(0, len(y), 30):
        metrics.update(out[i : i + 30], y[i : i + 30])
    report = metrics.report()
    pred = torch.sigmoid(out).numpy() > 0.4
    prec, rec, f1, support = skm.precision_recall_fscore_support(y.numpy(), pred, zero_division=0)
    assert [report["per_label"][c]["f1"] for c in "vwxyz"] == pytest.approx(f1)
    assert [report["per_label"][c]["precision"] for c in "vwxyz"] == pytest.approx(prec)
    assert [report["per_label"][c]["recall"] for c in "vwxyz"] == pytest.approx(rec)
    assert [report["per_label"][c]["support"] for c in "vwxyz"] == support.tolist()
    assert report["micro_f1"] == pytest.approx(skm.f1_score(y, pred, average="micro"))
    assert report["macro_f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert report["threshold"] == 0.4


def test_regression_has_no_report() -> None:
    out, y, info = case("regression", 0)
    metrics = MetricSet(("mae",), info, report=True)
    metrics.update(out, y)
    assert metrics.report() == {}


def test_top_k_with_k_at_least_the_classes_warns() -> None:
    out, y, info = case("classification", 0, k=3)
    with pytest.warns(UserWarning, match="top_3_accuracy with 3 classes is always 1"):
        assert compute_metrics(out, y, info, ("top_3_accuracy",)) == {"top_3_accuracy": 1.0}
