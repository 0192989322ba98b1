"""Metrics by task (DATA-14), accumulated over a split's batches (MON-5).

Model outputs are raw logits (classification) or standardised predictions (regression);
:class:`MetricSet` turns each batch into class ids/probabilities/original units once and updates
the states the chosen metrics read (:mod:`nnspec.run.metric_table`, whose states are in
:mod:`nnspec.run.metric_states`): nothing of a split is concatenated but the scores of ranking
metrics. Sets of several workers or ranks merge (:meth:`MetricSet.merge`, :meth:`MetricSet.sync`).

Example:
    >>> info = DataInfo(task="classification", input_shape=(2,), n_outputs=2)
    >>> metrics = MetricSet(("accuracy",), info)
    >>> metrics.update(torch.tensor([[2.0, 0.0]]), torch.tensor([0]))
    >>> metrics.update(torch.tensor([[0.0, 1.0]]), torch.tensor([0]))
    >>> metrics.compute()
    {'accuracy': 0.5}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from nnspec.run.data import DataInfo
from nnspec.run.metric_states import (
    ConfusionMatrix,
    LabelCounts,
    MeanLoss,
    Metric,
    MetricContext,
)
from nnspec.run.metric_table import (
    METRIC_IMPLS,
    context_for,
    impl,
    register_metric,
    sklearn_metrics,
    unregister_metric,
)
from nnspec.run.tasks import TASKS

__all__ = [
    "MetricSet",
    "Metric",
    "MetricContext",
    "METRIC_IMPLS",
    "compute_metrics",
    "loss_weight",
    "register_metric",
    "unregister_metric",
    "sklearn_metrics",
]

# the state a split's test report reads, by task (regression has no per-class report)
_REPORT_STATES = {"classification": "confusion", "binary": "confusion", "multilabel": "labels"}
_REPORT_FACTORIES: dict[str, type[ConfusionMatrix | LabelCounts]] = {
    "confusion": ConfusionMatrix,  # the keys the metric table shares these states under
    "labels": LabelCounts,
}


def loss_weight(
    loss_fn: nn.Module, targets: torch.Tensor | Mapping[str, torch.Tensor]
) -> torch.Tensor:
    """A batch's weight in its split's mean loss: what the loss function's ``mean`` divides by.

    Cross-entropy with class weights divides by the weights of the batch's targets; torch's
    other built-in losses (and nnspec's default for a user loss) by the number of target
    elements.
    """
    if not isinstance(targets, torch.Tensor):  # several outputs: the weighted total per sample
        return torch.tensor(len(next(iter(targets.values()))))
    weight = getattr(loss_fn, "weight", None)
    if isinstance(loss_fn, nn.CrossEntropyLoss) and weight is not None:
        return weight[targets.long()].sum()
    return torch.tensor(targets.numel(), device=targets.device)


class MetricSet:
    """The chosen metrics (and optionally the loss) of one split, updated batch by batch.

    Args:
        names: metric names (``train.metrics`` resolved by the plan).
        info: the run's data description (task, classes, target scaling).
        threshold: binary/multilabel decision threshold (``train.threshold``).
        report: also keep what :meth:`report` needs (per-class or per-label counts).
    """

    def __init__(
        self, names: Iterable[str], info: DataInfo, threshold: float = 0.5, *,
        report: bool = False,
    ) -> None:  # fmt: skip
        self.names, self.info = tuple(names), info
        self.kind = TASKS[info.task]
        self.context = context_for(info, threshold)
        self.impls = {name: impl(info.task, name) for name in self.names}
        self.states: dict[str, Metric] = {}
        for m in self.impls.values():
            self.states.setdefault(m.key, m.state(self.context))
        key = _REPORT_STATES.get(info.task) if report else None
        if key is not None and key not in self.states:
            self.states[key] = _REPORT_FACTORIES[key](self.context)
        self.report_key = key
        self.loss = MeanLoss()
        self.device: torch.device | None = None

    def prepare(
        self, outputs: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(target, prediction) as metrics see them: class ids or 0/1 targets or values in the
        user's units; probabilities (binary: the positive one) or values."""
        out, y = outputs.detach().float(), targets.detach()
        kind = self.kind
        if kind.probabilities is not None:
            p = kind.probabilities(out).double()
            if kind.squeeze_targets:  # binary: one column
                return y[:, 0].double(), p[:, 0]
            return (y if kind.single_label else y.double()), p
        info = self.info
        if info.y_mean is not None and info.y_std is not None:  # back to the user's units
            std, mean = info.y_std.to(out.device), info.y_mean.to(out.device)
            out, y = out * std + mean, y * std + mean
        return y.double(), out.double()

    def update(
        self, outputs: torch.Tensor, targets: torch.Tensor, loss: torch.Tensor | None = None,
        weight: torch.Tensor | None = None,
    ) -> None:  # fmt: skip
        """Add one batch: the model's raw outputs, the encoded targets and, optionally, the
        batch's mean loss with its :func:`loss_weight`."""
        if self.device is None:  # states live where the outputs are (float64 needs no MPS)
            device = outputs.device if outputs.device.type != "mps" else torch.device("cpu")
            self.device = device
            for state in (*self.states.values(), self.loss):
                state.to(device)
        y, p = self.prepare(outputs.to(self.device), targets.to(self.device))
        for state in self.states.values():
            state.update(y, p)
        if loss is not None:
            w = weight if weight is not None else torch.tensor(len(targets))
            self.loss.update(w.to(self.device), loss.detach().to(self.device))

    def merge(self, other: MetricSet) -> None:
        """Add another set's batches (the same metrics over another share of the split)."""
        for key, state in self.states.items():
            state.merge(other.states[key])
        self.loss.merge(other.loss)

    def sync(self, group: Any = None) -> None:
        """Reduce every state across the ranks of ``group`` (a collective: every rank calls it,
        in the same order, after its last update). A no-op without ``torch.distributed``."""
        for state in (*self.states.values(), self.loss):
            state.sync(group)

    def compute(self) -> dict[str, float]:
        """Each metric's value, in the order of ``names``."""
        return {name: float(m.value(self.states[m.key])) for name, m in self.impls.items()}

    def compute_loss(self) -> float:
        """The split's mean loss (NaN when no batch gave one)."""
        return self.loss.compute() if float(self.loss.weight) > 0 else float("nan")

    def report(self) -> dict[str, Any]:
        """The test report (``summary.json``'s ``test_report``); empty for regression."""
        from nnspec.run.metric_report import class_report, label_report

        state = self.states.get(self.report_key or "")
        if isinstance(state, ConfusionMatrix):
            return class_report(state, self.info, self.context)
        if isinstance(state, LabelCounts):
            return label_report(state, self.info, self.context)
        return {}


def compute_metrics(
    outputs: torch.Tensor, targets: torch.Tensor, info: DataInfo, names: tuple[str, ...],
    threshold: float = 0.5,
) -> dict[str, float]:  # fmt: skip
    """Every metric in ``names`` for whole-split tensors (one batch of a :class:`MetricSet`).

    Example:
        >>> info = DataInfo(task="regression", input_shape=(1,), n_outputs=1)
        >>> compute_metrics(torch.ones(4, 1), torch.ones(4, 1), info, ("mae",))
        {'mae': 0.0}
    """
    metrics = MetricSet(names, info, threshold)
    metrics.update(outputs, targets)
    return metrics.compute()
