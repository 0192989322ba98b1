"""The training loop: in-memory batches by tensor slicing, guards, early stopping, checkpoints,
and the calls of the training callbacks (:mod:`nnspec.run.callbacks`).

Per step the loop does what a minimal hand-written loop does (forward, loss, backward, optional
clipping, optimizer and scheduler step) and reads nothing back to the host: the losses stay on the
device and are read every ``train.log_every_steps`` steps, when the NaN and divergence guards
check them (:mod:`nnspec.run.guards`, the loop's own, not callbacks). Precision, device transfers
and the memory format are :mod:`nnspec.run.step`'s. An epoch's batches are drawn one at a time.
Callbacks' per-step hooks run only for callbacks that implement them, every ``every_n_steps``
steps. Metrics are computed once per epoch on whole splits, with torch ops
(``epoch_metrics``; scikit-learn only for the final report). The per-epoch checkpoint is pickled
in the loop (CPU work under the GIL) and written on the writer's thread, as are the metric files,
so the next epoch does not wait for the disk; ``fit`` flushes them before ``on_fit_end``.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from nnspec.compile.losses import TargetStats
from nnspec.compile.plan import TrainingPlan, steps_per_epoch
from nnspec.run.callbacks import (
    HOOKS,
    STEP_HOOKS,
    Callback,
    EarlyStopping,
    FitState,
    StepHooks,
    next_due,
    overrides,
    step_hooks,
)
from nnspec.run.checkpoint import checkpoint_paths, rng_state, set_rng_state
from nnspec.run.data import DataBundle, Split, epoch_order, iter_batches, loader_batches
from nnspec.run.guards import LoopState, LossLog
from nnspec.run.metrics import epoch_metrics, sklearn_metrics
from nnspec.run.outputs import RunWriter
from nnspec.run.step import MixedPrecision, to_device, use_channels_last
from nnspec.run.tasks import TASKS

__all__ = ["Trainer", "LoopState", "target_stats"]


def target_stats(bundle: DataBundle) -> TargetStats:
    """Class (or positive) counts of the training split, for 'balanced' loss weights."""
    count = TASKS[bundle.info.task].counts
    y = bundle.train.y
    counts = count(y, bundle.info.n_outputs) if count is not None else torch.zeros(1)
    return TargetStats(counts, len(bundle.train))


class Trainer:
    """Runs the epochs of one experiment; the caller owns setup (seeding, run dir) and teardown.

    Args:
        callbacks: Called in order at each hook (:mod:`nnspec.run.callbacks`).
        message: Prints a line through the run's progress display (``FitState.message``).
        spec_meta: The spec's hash and fields, stored in every checkpoint.
    """

    def __init__(
        self,
        model: nn.Module,
        plan: TrainingPlan,
        bundle: DataBundle,
        writer: RunWriter,
        *,
        callbacks: Sequence[Callback] = (),
        message: Callable[[str], None] = print,
        spec_meta: dict[str, Any],
        device: torch.device,
    ) -> None:
        self.model, self.plan, self.bundle = model, plan, bundle
        self.writer, self.device, self.spec_meta = writer, device, spec_meta
        train = plan.train
        self.channels_last = use_channels_last(train, model, bundle.train.x[0], device)
        if self.channels_last:  # 4-D weights in NHWC, before the optimizer sees the parameters
            model.to(memory_format=torch.channels_last)
        self.forward = torch.compile(model) if plan.train.compile else model
        self.loss_fn = plan.make_loss(bundle.info.n_outputs, target_stats(bundle)).to(device)
        self.optimizer = plan.make_optimizer(model)
        self.accumulate = train.accumulate
        self.steps_per_epoch = steps_per_epoch(len(bundle.train), plan.data.batch_size,
                                               train.accumulate)  # fmt: skip
        self.total_steps = plan.horizon(self.steps_per_epoch).total_steps
        self.schedule = plan.make_schedule(self.optimizer, self.steps_per_epoch)
        self.warmup = plan.warmup_steps(self.steps_per_epoch)
        stopping = train.early_stopping
        self.early_stopping = EarlyStopping(plan.monitor, plan.mode, stopping.patience,
                                            stopping.min_delta, stopping.enabled)  # fmt: skip
        self.state = LoopState()
        self.fit_time = 0.0
        # per-step settings read once (the loop's per-step overhead must stay tiny)
        self.clip = train.clip_grad if train.clip_grad.kind != "none" else None
        self.losses = LossLog(train.log_every_steps, train.divergence_factor,
                              train.divergence_steps)  # fmt: skip
        # batches move (asynchronously) when they are not already on the device in its format
        self.move_batches = device.type != "cpu" or self.channels_last
        self.saved_epochs: list[int] = []  # epochs with a checkpoint on disk (keep_last pruning)
        self.best_state: dict[str, torch.Tensor] | None = None
        self.l1_params = plan.penalty(model)
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.precision = MixedPrecision(train.precision, device, self.params)
        sklearn_metrics()  # import scikit-learn's metrics now (set-up), not inside the first epoch
        self._set_callbacks(callbacks, message)

    def _set_callbacks(self, callbacks: Sequence[Callback], message: Callable[[str], None]) -> None:
        """The state callbacks see and, per hook, the methods to call (only overridden ones)."""
        self.fit_state = FitState(
            self.model, self.optimizer, self.writer.run_dir, self.plan.train.epochs,
            self.steps_per_epoch, is_main_process=self.writer.enabled,
            probe=self.bundle.train.x[:256].to(self.device), message=message,
        )  # fmt: skip
        self.hooks = {name: [getattr(c, name) for c in callbacks if overrides(c, name)]
                      for name in HOOKS if name not in STEP_HOOKS}  # fmt: skip
        self.before_step_hooks = step_hooks(callbacks, "on_before_optimizer_step")
        self.step_end_hooks = step_hooks(callbacks, "on_step_end")
        # the steps at which a per-step hook is next due (inf: never); set again by fit()
        self.before_step_due = self.step_end_due = math.inf

    # ---- checkpoints ----

    def checkpoint(self) -> dict[str, Any]:
        """Everything needed to resume, as weights_only-loadable data (CKPT-1)."""
        return {
            "format": 1,
            **self.spec_meta,
            "epoch": self.state.epoch,
            "step": self.state.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "early_stopping": self.early_stopping.state_dict(),
            "loop": self.state.payload(),
            "scaler": self.precision.state_dict(),  # fp16's loss scale; None otherwise
            "rng": rng_state(),
        }

    def restore(self, ckpt: dict[str, Any], best: dict[str, Any] | None) -> None:
        """Continue from a checkpoint (and the best weights so far, when saved)."""
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.schedule.load_state_dict(ckpt["schedule"])
        self.early_stopping.load_state_dict(ckpt["early_stopping"])
        self.precision.load_state_dict(ckpt.get("scaler"))  # absent from older checkpoints
        self.state = LoopState.from_checkpoint(ckpt)
        if best is not None:
            self.best_state = best["model"]
        on_disk = sorted(int(p.stem.split("-")[1]) for p in checkpoint_paths(self.writer.run_dir))
        self.saved_epochs = [e for e in on_disk if e <= ckpt["epoch"]]
        set_rng_state(ckpt["rng"])

    def _save(self, is_best: bool, last_epoch: bool) -> list[Path]:
        """Queue this epoch's checkpoint files; returns their paths (none when not due)."""
        policy = self.plan.train.checkpoint
        if not policy.enabled:
            return []
        epoch = self.state.epoch
        periodic = epoch % policy.every_epochs == 0 or last_epoch
        if not (periodic or (is_best and policy.keep_best)):
            return []
        rels = ["checkpoints/best.pt"] if is_best and policy.keep_best else []
        prune: list[str] = []
        if periodic:
            rels.append(f"checkpoints/epoch-{epoch:04d}.pt")
            self.saved_epochs.append(epoch)
            keep = policy.keep_last
            prune = [f"checkpoints/epoch-{e:04d}.pt" for e in self.saved_epochs[:-keep]]
            self.saved_epochs = self.saved_epochs[-keep:]
        # Pickled once, now (a consistent copy); written (temp + fsync + rename) on the writer's
        # thread while the next epoch trains.
        self.writer.save_torch_background(rels, self.checkpoint(), prune)
        return [self.writer.path(rel) for rel in rels]

    # ---- the epoch ----

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        return self.precision.autocast()

    def _optimizer_step(self, loss: torch.Tensor, batch: int) -> None:
        skipped = self.precision.unscale(self.optimizer)  # fp16: true gradients from here on
        if self.state.step >= self.before_step_due:  # e.g. monitors: pre-clip gradients (MON-2)
            self.before_step_due = self._step_hooks(self.before_step_hooks, batch, loss)
        clip = self.clip
        if clip is None:
            pass
        elif clip.kind == "norm":  # TRAIN-6: one global L2 norm keeps the update's direction
            torch.nn.utils.clip_grad_norm_(self.params, clip.max_norm)
        else:
            torch.nn.utils.clip_grad_value_(self.params, clip.value)
        state, step = self.state, self.state.step + 1
        self.losses.end_step(skipped)
        if self.losses.due(step):  # the guards read before this step's update
            self.losses.read(self.model, state, step, before_update=True)
        self.precision.step(self.optimizer, self.schedule, first=step == 1)
        state.step = step
        state.lrs.append(self.optimizer.param_groups[0]["lr"])
        if step >= self.step_end_due:
            self.step_end_due = self._step_hooks(self.step_end_hooks, batch, loss)

    def _step_hooks(self, hooks: StepHooks, batch: int, loss: torch.Tensor) -> float:
        """Call the per-step hooks due at this step; returns the step the next one is due at.

        The loop compares one integer per step and calls Python only when a hook is due; a hook
        that reads ``state.loss`` reads it from the device then (and only then).
        """
        fit_state, step = self.fit_state, self.state.step
        fit_state.step, fit_state.batch, fit_state._loss = step, batch, loss.detach()
        for every, hook in hooks:
            if step % every == 0:
                hook(fit_state)
        fit_state._loss = math.nan
        return next_due(hooks, step + 1)

    def train_epoch(self, epoch: int) -> float:
        """One pass over the training split; returns the mean training loss.

        Batches are drawn one at a time (an epoch is never collected); a last group of fewer than
        ``accumulate`` batches still makes an optimizer step. The losses are read (and guarded)
        every ``log_every_steps`` steps and once at the end.
        """
        self.model.train()
        n = len(self.bundle.train)
        order = epoch_order(self.plan.seed, epoch, n) if self.plan.data.shuffle else None
        losses, accumulate, device = self.losses, self.accumulate, self.device
        losses.start_epoch()
        fit_state, batch, loss = self.fit_state, 0, torch.zeros(())
        for batch, (xb, yb) in enumerate(self._batches(order), start=1):
            if self.move_batches:
                xb, yb = to_device(xb, device, self.channels_last), to_device(yb, device)
            with self.precision.autocast():
                loss = self.loss_fn(self.forward(xb), yb)
                if self.l1_params:
                    loss = loss + self.plan.regularization(self.l1_params)
            self.precision.backward(loss / accumulate if accumulate > 1 else loss)
            losses.add(loss, len(xb))
            if batch % accumulate == 0:
                self._optimizer_step(loss, batch)
                if self.state.step >= self.total_steps or fit_state.should_stop:
                    break
        else:
            if batch % accumulate:  # the epoch's last, partial group of batches
                self._optimizer_step(loss, batch)
        losses.read(self.model, self.state, self.state.step, before_update=False)
        return losses.mean()

    def _batches(self, order: torch.Tensor | None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        data = self.plan.data
        split, pin = self.bundle.train, self.device.type == "cuda"
        if data.in_memory == "no":  # the DataLoader path: same order, collated by workers
            return loader_batches(split, data.batch_size, order, data.num_workers, pin)
        if order is not None:  # to the data's device without a blocking copy
            order = order.to(split.x.device, non_blocking=True)
        return iter_batches(split, data.batch_size, order)

    def evaluate(self, split: Split) -> tuple[float, torch.Tensor]:
        """Loss and outputs on a whole split (eval mode, no grad)."""
        self.model.eval()
        size = self.plan.data.eval_batch_size
        with torch.inference_mode(), self._autocast():
            outs = [self.forward(split.x[i : i + size]) for i in range(0, len(split), size)]
            out = torch.cat(outs).float()
            loss = float(self.loss_fn(out, split.y))
        return loss, out

    def _epoch_row(self, epoch: int, train_loss: float, started: float) -> dict[str, Any]:
        row: dict[str, Any] = {"epoch": epoch, "epochs": self.plan.train.epochs}
        row["step"] = self.state.step
        row["lr"] = self.optimizer.param_groups[0]["lr"]
        row["train_loss"] = train_loss
        val = self.bundle.val
        if val is not None:
            val_loss, out = self.evaluate(val)
            row["val_loss"] = val_loss
            metrics = epoch_metrics(out, val.y, self.bundle.info, self.plan.metrics)
            row.update({f"val_{k}": v for k, v in metrics.items()})
        row["time"] = time.perf_counter() - started
        return row

    def _call(self, hook: str) -> None:
        for method in self.hooks[hook]:
            method(self.fit_state)

    def fit(self) -> LoopState:
        """Train until max epochs / max steps / early stopping / a callback's stop; returns the
        final state.

        Background checkpoint writes are flushed before it returns or raises, so a guard's error
        leaves the last good epoch's checkpoint complete on disk; ``on_exception`` hooks see the
        error before it propagates.
        """
        fit_state = self.fit_state
        fit_state.epoch, fit_state.step = self.state.epoch, self.state.step
        fit_state.history = self.state.rows
        self.before_step_due = next_due(self.before_step_hooks, self.state.step)
        self.step_end_due = next_due(self.step_end_hooks, self.state.step + 1)
        try:
            try:
                self._call("on_fit_start")
                for epoch in range(self.state.epoch + 1, self.plan.train.epochs + 1):
                    if fit_state.should_stop:  # asked in on_fit_start or on_checkpoint
                        self._stop_between_epochs()
                        break
                    if self._run_epoch(epoch):
                        break
            finally:
                self.writer.flush()
        except BaseException as error:
            for method in self.hooks["on_exception"]:
                method(fit_state, error)
            raise
        self._call("on_fit_end")
        return self.state

    def _run_epoch(self, epoch: int) -> bool:
        """Train, validate and close one epoch; True = stop (also when a callback stopped the
        run in ``on_epoch_start``: the epoch then ends before its first step)."""
        started = time.perf_counter()
        fit_state = self.fit_state
        fit_state.epoch, fit_state.batch, fit_state.metrics = epoch, 0, MappingProxyType({})
        self._call("on_epoch_start")
        if fit_state.should_stop:
            self._stop_between_epochs()
            return True
        skipped = self.state.skipped_steps
        train_loss = self.train_epoch(epoch)
        fit_state.step = self.state.step
        row = self._epoch_row(epoch, train_loss, started)
        if self.precision.scaler is not None:  # fp16: the loss scaler's account of the epoch
            row["skipped_steps"] = self.state.skipped_steps - skipped
            row["loss_scale"] = self.precision.scale()
        return self._end_epoch(epoch, row)

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
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.schedule.step_epoch(row, warmup_done=state.step >= self.warmup)
        state.rows.append(row)
        self._call("on_epoch_end")
        done = (
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

    def _checkpoint_hooks(self, paths: list[Path]) -> None:
        if paths:
            for method in self.hooks["on_checkpoint"]:
                method(self.fit_state, paths)

    def _stop_reason(self) -> str:
        if self.fit_state.should_stop:
            return self.fit_state.stop_reason or "callback"
        return "early_stopping" if self.early_stopping.should_stop else "max_steps"

    def restore_best(self) -> None:
        """Load the best epoch's weights (TRAIN-4 ``restore_best``)."""
        if self.plan.train.early_stopping.restore_best and self.best_state is not None:
            self.model.load_state_dict(self.best_state)
