"""The end of an epoch of the training loop: the epoch's row (training loss, validation metrics,
step, LR, time), the ``on_validation_end`` and ``on_epoch_end`` callbacks, early stopping and the
best weights, the plateau schedule's step, the epoch's checkpoint, and why a run stopped
(:class:`EpochEnd`, mixed into :class:`nnspec.run.loop.Trainer`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import torch

from nnspec.run.guards import LoopState
from nnspec.spec.metrics import metric_column

__all__ = ["EpochEnd"]


class EpochEnd:
    """The trainer's end-of-epoch methods; the attributes and methods they use (``plan``,
    ``state``, ``fit_state``, ``bundle``, ``model``, ``optimizer``, ``schedule``,
    ``early_stopping``, ``parallel``, ``evaluate``, ``_save``, ...) are
    :class:`~nnspec.run.loop.Trainer`'s."""

    plan: Any
    state: LoopState
    fit_state: Any
    bundle: Any
    model: Any
    optimizer: Any
    schedule: Any
    early_stopping: Any
    parallel: Any
    saved_epochs: list[int]
    best_state: dict[str, torch.Tensor] | None
    total_steps: int
    warmup: int
    evaluate: Callable[..., Any]
    eval_batches: Callable[..., Any]
    metric_set: Callable[..., Any]
    _averaged: Callable[[], Any]
    _call: Callable[[str], None]
    _save: Callable[..., Any]
    _checkpoint_hooks: Callable[..., None]

    def _epoch_row(self, epoch: int, train_loss: float, started: float) -> dict[str, Any]:
        row: dict[str, Any] = {"epoch": epoch, "epochs": self.plan.train.epochs}
        row["step"] = self.state.step
        row["lr"] = self.optimizer.param_groups[0]["lr"]
        row["train_loss"] = train_loss
        val = self.bundle.val
        if val is not None:
            metrics = self.evaluate(self.eval_batches(val), self.metric_set())
            metrics.sync()  # across ranks, when a process group is set up
            row[metric_column("val", "loss")] = metrics.compute_loss()
            row.update({metric_column("val", k): v for k, v in metrics.compute().items()})
        row["time"] = time.perf_counter() - started
        return row

    def _end_epoch(self, epoch: int, row: dict[str, Any]) -> bool:
        """Callbacks, early stopping, plateau schedule, checkpoints; True = stop."""
        state, fit_state = self.state, self.fit_state
        fit_state.metrics = MappingProxyType(row)
        fit_state._row = row  # FitState.log's target, only during on_validation_end
        try:
            self._call("on_validation_end")
        finally:
            fit_state._row = None
        state.epoch = epoch
        is_best = self.early_stopping.update(row[self.plan.monitor], epoch)
        if is_best:
            weights = self._averaged() or self.model
            self.best_state = {k: v.detach().clone() for k, v in weights.state_dict().items()}
        self.schedule.step_epoch(row, warmup_done=state.step >= self.warmup)
        state.rows.append(row)
        self._call("on_epoch_end")
        done = self.parallel.any_rank(
            fit_state.should_stop or self.early_stopping.should_stop
            or state.step >= self.total_steps
        )  # fmt: skip
        self._checkpoint_hooks(self._save(is_best, done or epoch == self.plan.train.epochs))
        if done:
            state.stopped = self._stop_reason()
        return done

    def _stop_between_epochs(self) -> None:
        """A stop asked for outside an epoch's steps (``on_fit_start``, ``on_epoch_start``,
        ``on_checkpoint`` of an epoch before the last): no further step runs; the last finished
        epoch gets its checkpoint when its periodic one was not due, and the reason is
        recorded."""
        state = self.state
        self.fit_state.epoch = state.epoch
        if state.epoch and state.epoch not in self.saved_epochs:
            self._checkpoint_hooks(self._save(False, last_epoch=True))
        state.stopped = self._stop_reason()

    def _stop_reason(self) -> str:
        if self.fit_state.should_stop:
            return self.fit_state.stop_reason or "callback"
        return "early_stopping" if self.early_stopping.should_stop else "max_steps"
