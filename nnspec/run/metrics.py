"""Metrics by task (DATA-14), computed on whole splits (MON-5).

Model outputs are raw logits (classification) or standardised predictions (regression); the
functions here turn them into labels/probabilities/original units first.

Two tables with the same keys and the same definitions (zero_division=0, sklearn's macro average
over the labels present in the targets or predictions, uniform average over regression outputs):
``METRICS`` calls scikit-learn and gives the final report (``summary.json``, ``nnspec eval``);
``TENSOR_METRICS`` computes the same numbers with a few torch ops for the per-epoch validation
rows, where scikit-learn's per-call input checks are slow next to a few torch ops (bench W2).
A metric without a tensor version falls back to scikit-learn (binary AUROC). Tests check that
both tables agree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from nnspec.registry import Registry
from nnspec.run.data import DataInfo
from nnspec.run.tasks import TASKS

__all__ = [
    "METRICS",
    "TENSOR_METRICS",
    "compute_metrics",
    "epoch_metrics",
    "class_report",
    "to_numpy_outputs",
    "sklearn_metrics",
]

Metric = Callable[[np.ndarray, np.ndarray], float]
METRICS: Registry[Metric] = Registry("metric")
"""``task/name`` -> fn(y_true, prediction); prediction = labels, probabilities or values."""


def sklearn_metrics() -> Any:
    """scikit-learn's metrics module (the loop calls this at set-up, not inside an epoch)."""
    import sklearn.metrics as skm  # heavy: imported on first evaluation only

    return skm


METRICS.register(
    "classification/accuracy", lambda y, p: sklearn_metrics().accuracy_score(y, p.argmax(1))
)
METRICS.register(
    "classification/macro_f1",
    lambda y, p: sklearn_metrics().f1_score(y, p.argmax(1), average="macro", zero_division=0),
)
METRICS.register("binary/accuracy", lambda y, p: sklearn_metrics().accuracy_score(y, p[:, 0] > 0.5))
METRICS.register(
    "binary/f1", lambda y, p: sklearn_metrics().f1_score(y, p[:, 0] > 0.5, zero_division=0)
)


def _auroc(y: np.ndarray, p: np.ndarray) -> float:
    if len(np.unique(y)) < 2:
        return float("nan")  # undefined on a one-class split
    return float(sklearn_metrics().roc_auc_score(y, p[:, 0]))


METRICS.register("binary/auroc", _auroc)
METRICS.register("multilabel/accuracy", lambda y, p: sklearn_metrics().accuracy_score(y, p > 0.5))
METRICS.register(
    "multilabel/micro_f1",
    lambda y, p: sklearn_metrics().f1_score(y, p > 0.5, average="micro", zero_division=0),
)
METRICS.register("regression/mae", lambda y, p: sklearn_metrics().mean_absolute_error(y, p))
METRICS.register(
    "regression/rmse", lambda y, p: float(np.sqrt(sklearn_metrics().mean_squared_error(y, p)))
)
METRICS.register("regression/r2", lambda y, p: sklearn_metrics().r2_score(y, p))


TensorMetric = Callable[[torch.Tensor, torch.Tensor], float]
TENSOR_METRICS: Registry[TensorMetric] = Registry("tensor metric")
"""``task/name`` -> fn(y_true, prediction) on float64 tensors; same definitions as ``METRICS``."""


def _f1(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor) -> torch.Tensor:
    denom = 2 * tp + fp + fn
    return torch.where(denom > 0, 2 * tp / denom.clamp(min=1), torch.zeros_like(denom))


def _macro_f1(y: torch.Tensor, p: torch.Tensor) -> float:
    n = p.shape[1]
    pred, true = p.argmax(1), y.long()
    cm = torch.bincount(true * n + pred, minlength=n * n).reshape(n, n).double()
    tp = cm.diagonal()
    fp, fn = cm.sum(0) - tp, cm.sum(1) - tp
    present = (tp + fp + fn) > 0  # sklearn averages over labels seen in y_true or y_pred
    return float(_f1(tp, fp, fn)[present].mean()) if present.any() else 0.0


def _binary_f1(y: torch.Tensor, pred: torch.Tensor) -> float:
    true = y > 0.5
    tp = (pred & true).sum().double()
    fp, fn = (pred & ~true).sum().double(), (~pred & true).sum().double()
    return float(_f1(tp, fp, fn))


def _r2(y: torch.Tensor, p: torch.Tensor) -> float:
    y2, p2 = y.reshape(len(y), -1), p.reshape(len(p), -1)
    num = ((y2 - p2) ** 2).sum(0)
    den = ((y2 - y2.mean(0)) ** 2).sum(0)
    # sklearn's force_finite: a constant target scores 1 when predicted exactly, else 0
    r2 = torch.where(den > 0, 1 - num / den.clamp(min=1e-300), (num == 0).double())
    return float(r2.mean())


TENSOR_METRICS.register(
    "classification/accuracy", lambda y, p: float((p.argmax(1) == y.long()).double().mean())
)
TENSOR_METRICS.register("classification/macro_f1", _macro_f1)
TENSOR_METRICS.register(
    "binary/accuracy", lambda y, p: float(((p[:, 0] > 0.5) == (y > 0.5)).double().mean())
)
TENSOR_METRICS.register("binary/f1", lambda y, p: _binary_f1(y, p[:, 0] > 0.5))
TENSOR_METRICS.register(
    "multilabel/accuracy", lambda y, p: float(((p > 0.5) == (y > 0.5)).all(1).double().mean())
)
TENSOR_METRICS.register(
    "multilabel/micro_f1", lambda y, p: _binary_f1(y.flatten(), (p > 0.5).flatten())
)
TENSOR_METRICS.register(
    "regression/mae",
    lambda y, p: float((y - p).abs().reshape(len(y), -1).mean(0).mean()),
)
TENSOR_METRICS.register(
    "regression/rmse",
    lambda y, p: float(((y - p) ** 2).reshape(len(y), -1).mean(0).mean().sqrt()),
)
TENSOR_METRICS.register("regression/r2", _r2)


def _tensor_outputs(
    outputs: torch.Tensor, targets: torch.Tensor, info: DataInfo
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`to_numpy_outputs` on tensors (float64, CPU): what ``TENSOR_METRICS`` receives."""
    out = outputs.detach().float().cpu()
    y = targets.detach().cpu()
    kind = TASKS[info.task]
    if kind.probabilities is not None:  # class indices stay integers; 0/1 targets become floats
        labels = kind.single_label and not kind.squeeze_targets
        return (y if labels else y.double()), kind.probabilities(out).double()
    if info.y_mean is not None and info.y_std is not None:  # back to the user's units
        out = out * info.y_std + info.y_mean
        y = y * info.y_std + info.y_mean
    return y.double(), out.double()


def to_numpy_outputs(
    outputs: torch.Tensor, targets: torch.Tensor, info: DataInfo
) -> tuple[np.ndarray, np.ndarray]:
    """(y_true, prediction) as numpy: probabilities for classification, original units otherwise."""
    y, prediction = _tensor_outputs(outputs, targets, info)
    return y.numpy(), prediction.numpy()


def compute_metrics(
    outputs: torch.Tensor, targets: torch.Tensor, info: DataInfo, names: tuple[str, ...]
) -> dict[str, float]:
    """Every metric in ``names`` for one split.

    Example:
        >>> info = DataInfo(task="regression", input_shape=(1,), n_outputs=1)
        >>> compute_metrics(torch.ones(4, 1), torch.ones(4, 1), info, ("mae",))
        {'mae': 0.0}
    """
    y, p = to_numpy_outputs(outputs, targets, info)
    if TASKS[info.task].squeeze_targets:
        y = y[:, 0]
    return {name: float(METRICS[f"{info.task}/{name}"](y, p)) for name in names}


def epoch_metrics(
    outputs: torch.Tensor, targets: torch.Tensor, info: DataInfo, names: tuple[str, ...]
) -> dict[str, float]:
    """:func:`compute_metrics` for the per-epoch rows: tensor versions where they exist.

    Example:
        >>> info = DataInfo(task="classification", input_shape=(2,), n_outputs=2)
        >>> epoch_metrics(torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0]), info,
        ...               ("accuracy",))
        {'accuracy': 0.5}
    """
    fast = tuple(n for n in names if f"{info.task}/{n}" in TENSOR_METRICS)
    slow = tuple(n for n in names if n not in fast)
    result = compute_metrics(outputs, targets, info, slow) if slow else {}
    if fast:
        y, p = _tensor_outputs(outputs, targets, info)
        y = y[:, 0] if TASKS[info.task].squeeze_targets else y
        result.update({n: TENSOR_METRICS[f"{info.task}/{n}"](y, p) for n in fast})
    return {n: result[n] for n in names}  # the order of ``names``, as compute_metrics


def class_report(outputs: torch.Tensor, targets: torch.Tensor, info: DataInfo) -> dict[str, Any]:
    """Per-class precision/recall/F1 and the confusion matrix (classification and binary)."""
    kind = TASKS[info.task]
    if not kind.single_label or kind.labels is None:
        return {}
    skm = sklearn_metrics()
    y, p = to_numpy_outputs(outputs, targets, info)
    pred = kind.labels(torch.from_numpy(p)).numpy()
    y = (y[:, 0] if kind.squeeze_targets else y).astype(int)
    labels = list(range(len(info.class_names)))
    prec, rec, f1, support = skm.precision_recall_fscore_support(
        y, pred, labels=labels, zero_division=0
    )
    return {
        "per_class": {
            name: {"precision": float(a), "recall": float(b), "f1": float(c), "support": int(d)}
            for name, a, b, c, d in zip(info.class_names, prec, rec, f1, support, strict=True)
        },
        "confusion_matrix": skm.confusion_matrix(y, pred, labels=labels).tolist(),
    }
