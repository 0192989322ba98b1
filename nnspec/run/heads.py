"""Training a model with several outputs: the weighted loss and the per-output metrics.

The loop stays the one-output loop: :class:`OutputLoss` takes the model's dict of outputs and
the batch's dict of targets (:func:`~nnspec.run.batches.batch_targets`) and returns the
weighted total ``sum(weight * loss)``; :class:`OutputMetrics` has
:class:`~nnspec.run.metrics.MetricSet`'s interface, holds one set per output, and names its
values ``<output>_<metric>`` and ``<output>_loss`` (``val_<output>_<metric>`` in the epoch rows),
the total's mean being its :meth:`OutputMetrics.compute_loss` (``val_loss``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from nnspec.compile.losses import TargetStats, build_loss
from nnspec.compile.plan import TrainingPlan
from nnspec.run.batches import target_key
from nnspec.run.data import DataBundle, DataInfo, DataSplit
from nnspec.run.metric_states import MeanLoss
from nnspec.run.metrics import MetricSet, loss_weight
from nnspec.run.named_streams import NamedStreamSplit
from nnspec.run.tasks import TASKS
from nnspec.spec.heads import declared_outputs
from nnspec.spec.metrics import metric_column
from nnspec.spec.optim import resolve_loss_kind

__all__ = [
    "OutputLoss",
    "OutputMetrics",
    "output_loss",
    "as_float",
    "split_targets",
    "train_targets",
]

Outputs = torch.Tensor | Mapping[str, torch.Tensor]


def as_float(out: Outputs) -> Outputs:
    """The model's output(s) in float32 (evaluation under autocast)."""
    if isinstance(out, torch.Tensor):
        return out.float()
    return {name: t.float() for name, t in out.items()}


class OutputLoss(nn.Module):
    """``sum(weight * loss)`` over the outputs of a model with several.

    Example:
        >>> loss = OutputLoss({"a": nn.MSELoss(), "b": nn.L1Loss()}, {"a": 1.0, "b": 0.5})
        >>> out = {"a": torch.zeros(2, 1), "b": torch.zeros(2, 1)}
        >>> float(loss(out, {"a": torch.ones(2, 1), "b": torch.full((2, 1), 2.0)}))
        2.0
    """

    def __init__(self, losses: Mapping[str, nn.Module], weights: Mapping[str, float]) -> None:
        super().__init__()
        self.losses = nn.ModuleDict(dict(losses))
        self.weights = dict(weights)

    def forward(
        self, outputs: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        total: torch.Tensor | None = None
        for name, loss in self.losses.items():
            part = self.weights[name] * loss(outputs[name], targets[name])
            total = part if total is None else total + part
        assert total is not None  # a declared outputs mapping is never empty
        return total


def split_targets(split: DataSplit, name: str) -> torch.Tensor:
    """A split's encoded targets of output ``name``."""
    if isinstance(split, NamedStreamSplit):  # inputs streamed, targets in memory
        return split.targets[target_key(name)]
    return split.tensors[target_key(name)]  # type: ignore[union-attr]


def train_targets(bundle: DataBundle) -> dict[str, torch.Tensor] | None:
    """Each output's training targets (a model with several outputs; else None)."""
    if not bundle.info.outputs:
        return None
    return {name: split_targets(bundle.train, name) for name in bundle.info.outputs}


def output_loss(plan: TrainingPlan, info: DataInfo, train: DataSplit) -> OutputLoss:
    """Each declared output's loss (class weights from its own training targets), weighted."""
    outputs = declared_outputs(plan.model_spec)
    assert outputs is not None
    losses, weights = {}, {}
    for name, out in outputs.items():
        head, y = info.outputs[name], split_targets(train, name)
        count = TASKS[head.task].counts
        counts = count(y, head.n_outputs) if count is not None else torch.zeros(1)
        kind = resolve_loss_kind(out.task, out.loss)
        losses[name] = build_loss(kind, out.loss, head.n_outputs, TargetStats(counts, len(y)))
        weights[name] = out.weight
    return OutputLoss(losses, weights)


class OutputMetrics:
    """Per-output :class:`MetricSet` s and the mean weighted total loss of one split."""

    def __init__(
        self, plan: TrainingPlan, info: DataInfo, loss: OutputLoss, *, report: bool = False
    ) -> None:
        threshold = plan.train.threshold
        self.sets = {name: MetricSet(names, info.outputs[name], threshold, report=report)
                     for name, names in plan.outputs.items()}  # fmt: skip
        self.loss_fn, self.loss = loss, MeanLoss()

    def update(
        self, outputs: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor],
        loss: torch.Tensor | None = None, weight: torch.Tensor | None = None,
    ) -> None:  # fmt: skip
        """Add one batch: each output's metrics and loss, and the weighted total ``loss``."""
        for name, metrics in self.sets.items():
            fn, out, y = self.loss_fn.losses[name], outputs[name].float(), targets[name]
            metrics.update(out, y, fn(out, y), loss_weight(fn, y))
        if loss is not None:
            device = next(iter(self.sets.values())).device or loss.device
            w = weight if weight is not None else torch.tensor(len(next(iter(targets.values()))))
            self.loss.to(device)
            self.loss.update(w.to(device), loss.detach().to(device))

    def merge(self, other: OutputMetrics) -> None:
        for name, metrics in self.sets.items():
            metrics.merge(other.sets[name])
        self.loss.merge(other.loss)

    def sync(self, group: Any = None) -> None:
        for metrics in self.sets.values():
            metrics.sync(group)
        self.loss.sync(group)

    def compute(self) -> dict[str, float]:
        """``<output>_loss`` and ``<output>_<metric>`` of every output."""
        values: dict[str, float] = {}
        for name, metrics in self.sets.items():
            values[metric_column(name, "loss")] = metrics.compute_loss()
            values.update({metric_column(name, k): v for k, v in metrics.compute().items()})
        return values

    def compute_loss(self) -> float:
        """The split's mean weighted total loss (NaN when no batch gave one)."""
        return self.loss.compute() if float(self.loss.weight) > 0 else float("nan")

    def report(self) -> dict[str, Any]:
        """Each output's test report, by output name (outputs without one left out)."""
        reports = {name: metrics.report() for name, metrics in self.sets.items()}
        return {name: r for name, r in reports.items() if r}
