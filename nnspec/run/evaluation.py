"""Evaluation of the training loop: the one loop that scores batches into metric states (shared
with ``nnspec eval``), the targets' class counts for balanced loss weights, and the trainer's
evaluation methods (:class:`Evaluation`, mixed into :class:`nnspec.run.loop.Trainer`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from nnspec.compile.losses import TargetStats
from nnspec.run.batches import INPUT, Batch, batch_targets, model_inputs
from nnspec.run.data import DataBundle
from nnspec.run.heads import OutputMetrics, as_float
from nnspec.run.metrics import MetricSet, loss_weight
from nnspec.run.tasks import TASKS

__all__ = ["Evaluation", "evaluate_batches", "target_stats"]


def evaluate_batches(
    forward: Callable[..., torch.Tensor], loss_fn: nn.Module, batches: Iterable[Batch],
    metrics: MetricSet, inputs: tuple[str, ...] = (INPUT,), outputs: tuple[str, ...] = (),
) -> MetricSet:  # fmt: skip
    """Update ``metrics`` and its loss with ``forward``'s outputs on each batch (no grad; the
    caller sets eval mode and autocast). The one evaluation loop of training and ``nnspec eval``;
    ``outputs``: the output names of a model with several (:mod:`nnspec.run.heads`)."""
    with torch.inference_mode():
        for data in batches:
            out, yb = as_float(forward(model_inputs(data, inputs))), batch_targets(data, outputs)
            metrics.update(out, yb, loss_fn(out, yb), loss_weight(loss_fn, yb))
    return metrics


def target_stats(bundle: DataBundle) -> TargetStats:
    """Class (or positive) counts of the training split, for 'balanced' loss weights."""
    count = TASKS[bundle.info.task].counts
    y = bundle.train.y
    counts = count(y, bundle.info.n_outputs) if count is not None else torch.zeros(1)
    return TargetStats(counts, len(bundle.train))


class Evaluation:
    """The trainer's evaluation: metric sets, scoring batches, and which network scores them
    (the averaged one under ``train.ema`` / ``train.swa``). The attributes it reads (``plan``,
    ``bundle``, ``model``, ``forward``, ``loss_fn``, ``parallel``, ``averaging``, ``inputs``,
    ``outputs``) are :class:`~nnspec.run.loop.Trainer`'s."""

    plan: Any
    bundle: DataBundle
    model: nn.Module
    forward: Callable[..., torch.Tensor]
    loss_fn: nn.Module
    parallel: Any
    averaging: Any
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    _autocast: Callable[[], Any]

    def metric_set(self, *, report: bool = False) -> MetricSet:
        """Empty states for the plan's metrics (and the loss) of one split."""
        if self.plan.outputs:  # several outputs: one set each, and the weighted total loss
            return OutputMetrics(self.plan, self.bundle.info, self.loss_fn, report=report)  # type: ignore[return-value]
        return MetricSet(self.plan.metrics, self.bundle.info, self.plan.train.threshold,
                         report=report)  # fmt: skip

    def evaluate(self, batches: Iterable[Batch], metrics: MetricSet) -> MetricSet:
        """Update ``metrics`` (and its loss) with the model's outputs on each batch (eval mode,
        no grad), e.g. ``evaluate(self.eval_batches(split), self.metric_set())``; nothing of the
        split is kept but the metric states."""
        self.model.eval()
        forward, par = self._eval_forward(), self.parallel
        with self._autocast():  # a data-parallel rank scores its rows of each batch
            shards = par.eval_shards(batches, forward, self.inputs)
            evaluate_batches(forward, self.loss_fn, shards, metrics, self.inputs, self.outputs)
        return metrics  # this rank's share: the caller syncs it across ranks (MetricSet.sync)

    def _averaged(self) -> nn.Module | None:
        """The averaged network once it holds an update (train.ema / train.swa)."""
        averaging = self.averaging
        return averaging.module if averaging is not None and averaging.active else None

    def _eval_forward(self) -> Callable[..., torch.Tensor]:
        """What validation runs: the averaged weights once they exist, else the model."""
        averaged = self._averaged()
        if averaged is not None:
            return averaged.eval()
        # DDP's wrapper is for training steps (it syncs gradients and buffers); the plain module
        # scores a rank's rows. One process keeps the (maybe compiled) forward.
        return self.forward if self.parallel.world_size == 1 else self.model
