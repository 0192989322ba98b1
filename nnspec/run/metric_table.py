"""The metric table: each metric of each task as (the state it reads, its value from that state).

States are shared by key (accuracy and macro F1 read one confusion matrix). Definitions follow
scikit-learn's (``zero_division=0``; a macro average over the labels seen in the targets or the
predictions; a uniform average over regression outputs), and the tests compare each metric with
scikit-learn on the same outputs.

A user metric is registered from Python with :func:`register_metric`: a function of a whole
split's NumPy arrays, or a :class:`~nnspec.run.metric_states.Metric` subclass that streams.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import numpy as np
import torch

from nnspec.registry import Registry
from nnspec.run.data import DataInfo
from nnspec.run.metric_states import (
    ConfusionMatrix,
    FunctionMetric,
    LabelCounts,
    Metric,
    MetricContext,
    Moments,
    Scores,
    TopK,
)
from nnspec.spec.metrics import TOP_K, register_metric_name, unregister_metric_name

__all__ = [
    "MetricImpl",
    "METRIC_IMPLS",
    "impl",
    "context_for",
    "register_metric",
    "unregister_metric",
    "sklearn_metrics",
]


def sklearn_metrics() -> Any:
    """scikit-learn's metrics module (the loop calls this at set-up, not inside an epoch)."""
    import sklearn.metrics as skm  # heavy: imported on first evaluation only

    return skm


@dataclass(frozen=True)
class MetricImpl:
    """How a metric is computed: the state it reads (shared by key) and its value from it."""

    key: str
    state: Callable[[MetricContext], Metric]
    value: Callable[[Any], float]


METRIC_IMPLS: Registry[MetricImpl] = Registry("metric")
"""``task/name`` -> implementation (built-ins); user metrics are registered under ``*/name``."""


# ---- from a confusion matrix (classification, and binary at the threshold) ----


def _per_class(m: torch.Tensor) -> tuple[torch.Tensor, ...]:
    cm = m.double()
    tp = cm.diagonal()
    return tp, cm.sum(0) - tp, cm.sum(1) - tp  # tp, fp, fn


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    return torch.where(den > 0, num / den.clamp(min=1), torch.zeros_like(num))  # zero_division=0


def _macro(m: torch.Tensor, score: Callable[..., torch.Tensor]) -> float:
    tp, fp, fn = _per_class(m)
    seen = (tp + fp + fn) > 0  # sklearn averages over labels seen in y_true or y_pred
    return float(score(tp, fp, fn)[seen].mean()) if seen.any() else 0.0


def _f1(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor) -> torch.Tensor:
    return _ratio(2 * tp, 2 * tp + fp + fn)


def _precision(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor) -> torch.Tensor:
    return _ratio(tp, tp + fp)


def _recall(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor) -> torch.Tensor:
    return _ratio(tp, tp + fn)


def _weighted_f1(m: torch.Tensor) -> float:
    tp, fp, fn = _per_class(m)
    support = tp + fn
    return float((_f1(tp, fp, fn) * support).sum() / support.sum()) if support.sum() else 0.0


def _balanced_accuracy(m: torch.Tensor) -> float:
    tp, _, fn = _per_class(m)
    present = (tp + fn) > 0  # sklearn: classes absent from y_true are left out
    return float((tp / (tp + fn).clamp(min=1))[present].mean()) if present.any() else 0.0


def _positive(score: Callable[..., torch.Tensor]) -> Callable[[ConfusionMatrix], float]:
    return lambda s: float(score(*(t[1] for t in _per_class(s.matrix))))


# ---- from scores (exact ranking metrics) ----


def _binary_ranking(fn: str) -> Callable[[Scores], float]:
    def value(state: Scores) -> float:
        y, p = state.arrays()
        if len(np.unique(y)) < 2:
            return math.nan  # undefined on a one-class split
        return float(getattr(sklearn_metrics(), fn)(y, p))

    return value


def _macro_ranking(fn: str) -> Callable[[Scores], float]:
    """Multilabel: the mean over labels with both classes present (NaN when none has)."""

    def value(state: Scores) -> float:
        y, p = state.arrays()
        both = [j for j in range(y.shape[1]) if len(np.unique(y[:, j])) == 2] if y.size else []
        if not both:
            return math.nan
        score = getattr(sklearn_metrics(), fn)
        return float(np.mean([score(y[:, j], p[:, j]) for j in both]))

    return value


def _ovr_auroc(state: Scores) -> float:
    """Classification: one-vs-rest macro AUROC; NaN unless every class occurs in the split."""
    y, p = state.arrays()
    n = p.shape[1] if p.ndim == 2 else 0
    if n < 2 or len(np.unique(y)) < n:
        return math.nan
    if n == 2:
        return float(sklearn_metrics().roc_auc_score(y, p[:, 1]))
    return float(sklearn_metrics().roc_auc_score(y, p, multi_class="ovr", labels=list(range(n))))


# ---- regression ----


def _sum_of_squares(s: Moments) -> torch.Tensor:
    return s.yy - s.y * s.y / s.count.clamp(min=1)


def _r2(s: Moments) -> float:
    den = _sum_of_squares(s)
    # sklearn's force_finite: a constant target scores 1 when predicted exactly, else 0
    r2 = torch.where(den > 0, 1 - s.sq_err / den.clamp(min=1e-300), (s.sq_err == 0).double())
    return float(r2.mean())


def _mse(s: Moments) -> float:
    return float((s.sq_err / s.count.clamp(min=1)).mean())


def _builtin(task: str, name: str, key: str, state: Callable[..., Metric], value: Any) -> None:
    METRIC_IMPLS.register(f"{task}/{name}", MetricImpl(key, state, value))


_builtin("classification", "accuracy", "confusion", ConfusionMatrix, ConfusionMatrix.compute)
_builtin("binary", "accuracy", "confusion", ConfusionMatrix, ConfusionMatrix.compute)
for _task in ("classification", "binary"):
    _builtin(_task, "balanced_accuracy", "confusion", ConfusionMatrix,
             lambda s: _balanced_accuracy(s.matrix))  # fmt: skip
for _name, _score in (("macro_f1", _f1), ("macro_precision", _precision),
                      ("macro_recall", _recall)):  # fmt: skip
    _builtin("classification", _name, "confusion", ConfusionMatrix,
             lambda s, f=_score: _macro(s.matrix, f))  # fmt: skip
_builtin("classification", "weighted_f1", "confusion", ConfusionMatrix,
         lambda s: _weighted_f1(s.matrix))  # fmt: skip
_builtin("classification", "auroc", "scores", Scores, _ovr_auroc)
for _name, _score in (("f1", _f1), ("precision", _precision), ("recall", _recall)):
    _builtin("binary", _name, "confusion", ConfusionMatrix, _positive(_score))
_builtin("binary", "auroc", "scores", Scores, _binary_ranking("roc_auc_score"))
_builtin("binary", "pr_auc", "scores", Scores, _binary_ranking("average_precision_score"))
_builtin("multilabel", "accuracy", "labels", LabelCounts, LabelCounts.compute)


def _micro_f1(s: LabelCounts) -> float:
    return float(_f1(s.tp.sum().double(), s.fp.sum().double(), s.fn.sum().double()))


def _label_macro_f1(s: LabelCounts) -> float:
    """Multilabel macro F1: every label counts (sklearn's label set is all columns)."""
    return float(_f1(s.tp.double(), s.fp.double(), s.fn.double()).mean())


_builtin("multilabel", "micro_f1", "labels", LabelCounts, _micro_f1)
_builtin("multilabel", "macro_f1", "labels", LabelCounts, _label_macro_f1)
_builtin("multilabel", "auroc", "scores", Scores, _macro_ranking("roc_auc_score"))
_builtin("multilabel", "pr_auc", "scores", Scores, _macro_ranking("average_precision_score"))
_builtin("regression", "mae", "moments", Moments, Moments.compute)
_builtin("regression", "mse", "moments", Moments, _mse)
_builtin("regression", "rmse", "moments", Moments, lambda s: math.sqrt(_mse(s)))
_builtin("regression", "r2", "moments", Moments, _r2)


def impl(task: str, name: str) -> MetricImpl:
    """The implementation of ``name`` for ``task`` (built-in, top-k family or user-registered)."""
    match = TOP_K.fullmatch(name)
    if match and task == "classification" and f"{task}/{name}" not in METRIC_IMPLS:
        k = int(match.group(1))
        return MetricImpl(name, lambda c: TopK(c, k), TopK.compute)
    key = f"{task}/{name}"
    return METRIC_IMPLS[key if key in METRIC_IMPLS else f"*/{name}"]


M = TypeVar("M")


def _own_value(state: Metric) -> float:
    return float(state.compute())


def _factory(name: str, obj: object) -> Callable[[MetricContext], Metric]:
    """The state of a user metric: its own ``Metric`` class, or rows kept for its function."""
    if isinstance(obj, type) and issubclass(obj, Metric):
        metric_cls: type[Metric] = obj
        return lambda context: metric_cls(context)
    if callable(obj):
        fn = cast(Callable[[np.ndarray, np.ndarray], float], obj)
        return lambda context: FunctionMetric(fn)
    raise TypeError(f"register_metric('{name}') needs a function or a Metric subclass")


def register_metric(
    name: str,
    *,
    tasks: Iterable[str],
    higher_is_better: bool = True,
    description: str = "",
) -> Callable[[M], M]:
    """Register a metric usable in ``train.metrics`` and as ``early_stopping.monitor``.

    The decorated object is either a function ``fn(y_true, prediction) -> float`` of a whole
    split's NumPy arrays (class ids or 0/1 targets or values; class probabilities, the positive
    probability for binary, or values in the user's units for regression), or a
    :class:`~nnspec.run.metric_states.Metric` subclass constructed with the
    :class:`~nnspec.run.metric_states.MetricContext`, which streams and merges.

    Example:
        >>> @register_metric("doc_max_error", tasks=["regression"], higher_is_better=False)
        ... def max_error(y, p):
        ...     return float(np.abs(y - p).max())
        >>> unregister_metric("doc_max_error")
    """
    chosen = tuple(tasks)

    def wrap(obj: M) -> M:
        state = _factory(name, obj)
        register_metric_name(name, chosen, higher_is_better, description)
        METRIC_IMPLS.register(f"*/{name}", MetricImpl(f"user:{name}", state, _own_value))
        return obj

    return wrap


def unregister_metric(name: str) -> None:
    """Remove a user metric (tests and notebooks that register again)."""
    METRIC_IMPLS.unregister(f"*/{name}")
    unregister_metric_name(name)


def context_for(info: DataInfo, threshold: float = 0.5) -> MetricContext:
    """The :class:`MetricContext` of a run's data (the training target mean as regression shift)."""
    return MetricContext(info.task, info.n_outputs, threshold, info.y_mean)
