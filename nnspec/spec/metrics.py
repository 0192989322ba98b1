"""Metric names: which metrics exist, for which tasks, and which direction is better.

Pure data (no torch), so ``nnspec validate`` checks ``train.metrics`` and every monitor without
building anything. The computations live in :mod:`nnspec.run.metrics`; a metric registered from
Python with ``nnspec.register_metric`` adds its name here too, so specs naming it validate in the
process that registered it.

``top_<k>_accuracy`` (k >= 2) is a family, not a table entry: any k is valid for classification.

Example:
    >>> metric_info("pr_auc").tasks
    frozenset({'binary', 'multilabel'})
    >>> metric_column("val", "accuracy")
    'val_accuracy'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from nnspec.errors import did_you_mean
from nnspec.registry import Registry

__all__ = [
    "MetricInfo",
    "METRIC_INFO",
    "TASK_METRICS",
    "LOWER_IS_BETTER",
    "metric_info",
    "metric_names",
    "metric_column",
    "register_metric_name",
    "suggest",
    "unregister_metric_name",
]

TASK_NAMES = ("classification", "binary", "multilabel", "regression")


@dataclass(frozen=True)
class MetricInfo:
    """What the spec layer knows of a metric.

    Attributes:
        tasks: the tasks it is defined for.
        higher_is_better: ``auto`` monitor mode: max when True, min when False.
        description: one line for ``nnspec list metrics`` and the docs.
    """

    tasks: frozenset[str]
    higher_is_better: bool
    description: str


def _info(tasks: str, higher: bool, description: str) -> MetricInfo:
    return MetricInfo(frozenset(tasks.split()), higher, description)


# Definitions follow scikit-learn's (zero_division=0; a macro average runs over the labels seen in
# the targets or the predictions, as sklearn's does without `labels=`), and tests compare every
# entry with sklearn on the same outputs.
METRIC_INFO: Registry[MetricInfo] = Registry("metric")
"""Every metric name a spec may use (built-ins and user-registered ones)."""
for _name, _entry in {
    "accuracy": _info(
        "classification binary multilabel", True,
        "share of correct predictions (multilabel: every label right)",
    ),
    "balanced_accuracy": _info("classification binary", True, "mean recall over classes"),
    "precision": _info("binary", True, "tp / (tp + fp) at train.threshold"),
    "recall": _info("binary", True, "tp / (tp + fn) at train.threshold"),
    "f1": _info("binary", True, "F1 of the positive class at train.threshold"),
    "macro_f1": _info("classification multilabel", True, "unweighted mean of per-class F1"),
    "micro_f1": _info("multilabel", True, "F1 over every (sample, label) decision"),
    "weighted_f1": _info("classification", True, "per-class F1 weighted by support"),
    "macro_precision": _info("classification", True, "unweighted mean of per-class precision"),
    "macro_recall": _info("classification", True, "unweighted mean of per-class recall"),
    "auroc": _info(
        "classification binary multilabel", True,
        "area under the ROC curve (classification: one-vs-rest; multilabel: macro), exact",
    ),
    "pr_auc": _info(
        "binary multilabel", True,
        "area under the precision-recall curve as average precision (multilabel: macro), exact",
    ),
    "mae": _info("regression", False, "mean absolute error, original units"),
    "mse": _info("regression", False, "mean squared error, original units"),
    "rmse": _info("regression", False, "root mean squared error, original units"),
    "r2": _info("regression", True, "coefficient of determination (mean over outputs)"),
}.items():  # fmt: skip
    METRIC_INFO.register(_name, _entry)

TOP_K = re.compile(r"top_([1-9][0-9]*)_accuracy")
"""``top_<k>_accuracy``: the target is among the k most probable classes (classification)."""
_TOP_K_INFO = _info("classification", True, "target among the k most probable classes")

TASK_METRICS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "classification": ("accuracy", "macro_f1"),
        "binary": ("accuracy", "f1", "auroc"),
        "multilabel": ("accuracy", "micro_f1"),
        "regression": ("mae", "rmse", "r2"),
    }
)
"""Each task's metrics when ``train.metrics`` is not given."""

LOWER_IS_BETTER: frozenset[str] = frozenset(
    {"loss", *(name for name, info in METRIC_INFO.items() if not info.higher_is_better)}
)
"""Built-in names whose smaller values are better (``loss`` included)."""


def metric_info(name: str) -> MetricInfo | None:
    """The entry of ``name`` (a registered metric or ``top_<k>_accuracy``), or None."""
    if name in METRIC_INFO:
        return METRIC_INFO[name]
    match = TOP_K.fullmatch(name)
    return _TOP_K_INFO if match and int(match.group(1)) >= 2 else None


def metric_names(task: str | None = None) -> tuple[str, ...]:
    """Registered metric names (for ``task`` only, when given), sorted, plus the top-k family."""
    names = sorted(n for n, info in METRIC_INFO.items() if task is None or task in info.tasks)
    if task is None or task in _TOP_K_INFO.tasks:
        names.append("top_<k>_accuracy")
    return tuple(names)


def suggest(found: str, choices: Iterable[str]) -> str | None:
    """``did you mean ...?`` preferring a choice that ``found`` abbreviates (acc -> accuracy).

    Example:
        >>> suggest("val_acc", ["val_auroc", "val_accuracy"])
        "did you mean 'val_accuracy'?"
    """
    names = [c for c in choices if "<" not in c]
    prefixed = [c for c in names if c.startswith(found)]
    if prefixed:
        return f"did you mean '{min(prefixed, key=len)}'?"
    return did_you_mean(found, names)


def metric_column(split: str, metric: str, output: str | None = None) -> str:
    """The column of a metric in ``metrics.csv``/``summary.json``: ``<split>_[<output>_]<metric>``.

    The one place metric columns are named (monitors, epoch rows, reports).

    Example:
        >>> metric_column("val", "pr_auc"), metric_column("test", "mae", "price")
        ('val_pr_auc', 'test_price_mae')
    """
    return f"{split}_{output}_{metric}" if output else f"{split}_{metric}"


def register_metric_name(
    name: str, tasks: Iterable[str], higher_is_better: bool, description: str = ""
) -> MetricInfo:
    """Add a user metric's name (``nnspec.register_metric`` calls this; duplicates raise)."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or TOP_K.fullmatch(name):
        raise ValueError(
            f"metric name '{name}' must be snake_case (a-z, 0-9, _) and not top_<k>_accuracy"
        )
    chosen = frozenset(tasks)
    unknown = sorted(chosen - set(TASK_NAMES))
    if not chosen or unknown:
        raise ValueError(
            f"metric '{name}': tasks must be some of {', '.join(TASK_NAMES)}; found "
            + (", ".join(unknown) if unknown else "none")
        )
    return METRIC_INFO.register(name, MetricInfo(chosen, higher_is_better, description))


def unregister_metric_name(name: str) -> None:
    """Remove a user metric's name (tests; a built-in stays)."""
    if name not in BUILTIN_METRICS:
        METRIC_INFO.unregister(name)


BUILTIN_METRICS: frozenset[str] = frozenset(METRIC_INFO)
"""The names nnspec defines itself."""
__all__ += ["BUILTIN_METRICS", "TOP_K", "TASK_NAMES"]
