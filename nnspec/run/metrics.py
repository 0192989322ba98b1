"""Metrics by task (DATA-14), computed with scikit-learn on whole splits (MON-5).

Model outputs are raw logits (classification) or standardised predictions (regression); the
functions here turn them into labels/probabilities/original units first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from nnspec.registry import Registry
from nnspec.run.data import DataInfo

__all__ = ["METRICS", "compute_metrics", "class_report", "to_numpy_outputs"]

Metric = Callable[[np.ndarray, np.ndarray], float]
METRICS: Registry[Metric] = Registry("metric")
"""``task/name`` -> fn(y_true, prediction); prediction = labels, probabilities or values."""


def _sk() -> Any:
    import sklearn.metrics as skm  # heavy: imported on first evaluation only

    return skm


METRICS.register("classification/accuracy", lambda y, p: _sk().accuracy_score(y, p.argmax(1)))
METRICS.register(
    "classification/macro_f1",
    lambda y, p: _sk().f1_score(y, p.argmax(1), average="macro", zero_division=0),
)
METRICS.register("binary/accuracy", lambda y, p: _sk().accuracy_score(y, p[:, 0] > 0.5))
METRICS.register("binary/f1", lambda y, p: _sk().f1_score(y, p[:, 0] > 0.5, zero_division=0))


def _auroc(y: np.ndarray, p: np.ndarray) -> float:
    if len(np.unique(y)) < 2:
        return float("nan")  # undefined on a one-class split
    return float(_sk().roc_auc_score(y, p[:, 0]))


METRICS.register("binary/auroc", _auroc)
METRICS.register("multilabel/accuracy", lambda y, p: _sk().accuracy_score(y, p > 0.5))
METRICS.register(
    "multilabel/micro_f1", lambda y, p: _sk().f1_score(y, p > 0.5, average="micro", zero_division=0)
)
METRICS.register("regression/mae", lambda y, p: _sk().mean_absolute_error(y, p))
METRICS.register("regression/rmse", lambda y, p: float(np.sqrt(_sk().mean_squared_error(y, p))))
METRICS.register("regression/r2", lambda y, p: _sk().r2_score(y, p))


def to_numpy_outputs(
    outputs: torch.Tensor, targets: torch.Tensor, info: DataInfo
) -> tuple[np.ndarray, np.ndarray]:
    """(y_true, prediction) as numpy: probabilities for classification, original units otherwise."""
    out = outputs.detach().float().cpu()
    y = targets.detach().cpu()
    if info.task == "classification":
        return y.numpy(), torch.softmax(out, dim=1).numpy()
    if info.task in ("binary", "multilabel"):
        return y.numpy(), torch.sigmoid(out).numpy()
    if info.y_mean is not None and info.y_std is not None:  # back to the user's units
        out = out * info.y_std + info.y_mean
        y = y * info.y_std + info.y_mean
    return y.numpy(), out.numpy()


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
    if info.task == "binary":
        y = y[:, 0]
    return {name: float(METRICS[f"{info.task}/{name}"](y, p)) for name in names}


def class_report(outputs: torch.Tensor, targets: torch.Tensor, info: DataInfo) -> dict[str, Any]:
    """Per-class precision/recall/F1 and the confusion matrix (classification and binary)."""
    if info.task not in ("classification", "binary"):
        return {}
    skm = _sk()
    y, p = to_numpy_outputs(outputs, targets, info)
    pred = p.argmax(1) if info.task == "classification" else (p[:, 0] > 0.5).astype(int)
    y = y if info.task == "classification" else y[:, 0].astype(int)
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
