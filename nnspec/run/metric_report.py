"""The test report of ``summary.json`` (``test_report``), from a split's accumulated counts.

Classification and binary: per-class precision/recall/F1/support and the confusion matrix (rows:
true class, columns: predicted). Multilabel: per-label precision/recall/F1/support and the micro
and macro F1. Binary and multilabel also record the decision threshold. Definitions are
scikit-learn's ``precision_recall_fscore_support`` with ``zero_division=0`` over every class.
"""

from __future__ import annotations

from typing import Any

import torch

from nnspec.run.data import DataInfo
from nnspec.run.metric_states import ConfusionMatrix, LabelCounts, MetricContext

__all__ = ["class_report", "label_report"]


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    return torch.where(den > 0, num / den.clamp(min=1), torch.zeros_like(num))


def _rows(
    names: tuple[str, ...], tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor
) -> dict[str, dict[str, float | int]]:
    tp, fp, fn = tp.double().cpu(), fp.double().cpu(), fn.double().cpu()
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    return {
        name: {
            "precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
            "support": int(tp[i] + fn[i]),
        }
        for i, name in enumerate(names)
    }  # fmt: skip


def _names(info: DataInfo, n: int) -> tuple[str, ...]:
    names = tuple(str(c) for c in info.class_names)
    return names if len(names) == n else tuple(str(i) for i in range(n))


def class_report(state: ConfusionMatrix, info: DataInfo, context: MetricContext) -> dict[str, Any]:
    """Per-class precision/recall/F1/support and the confusion matrix."""
    cm = state.matrix.cpu()
    tp = cm.diagonal()
    report: dict[str, Any] = {
        "per_class": _rows(_names(info, state.n), tp, cm.sum(0) - tp, cm.sum(1) - tp),
        "confusion_matrix": cm.tolist(),
    }
    if info.task == "binary":
        report["threshold"] = context.threshold
    return report


def label_report(state: LabelCounts, info: DataInfo, context: MetricContext) -> dict[str, Any]:
    """Per-label precision/recall/F1/support, micro and macro F1 (multilabel)."""
    tp, fp, fn = state.tp.double().cpu(), state.fp.double().cpu(), state.fn.double().cpu()
    micro = _ratio(2 * tp.sum(), 2 * tp.sum() + fp.sum() + fn.sum())
    return {
        "per_label": _rows(_names(info, len(tp)), tp, fp, fn),
        "micro_f1": float(micro),
        "macro_f1": float(_ratio(2 * tp, 2 * tp + fp + fn).mean()) if len(tp) else 0.0,
        "threshold": context.threshold,
    }
