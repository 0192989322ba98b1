"""The training loop: batches (mappings of named tensors, :mod:`nnspec.run.batches`, sliced from
memory or streamed), guards, early stopping, checkpoints, and the calls of the training callbacks
(:mod:`nnspec.run.callbacks`).

Per step the loop does what a minimal hand-written loop does (forward, loss, backward, optional
clipping, optimizer and scheduler step) and reads nothing back to the host: the losses stay on the
device and are read every ``train.log_every_steps`` steps, when the NaN and divergence guards
check them (:mod:`nnspec.run.guards`, the loop's own, not callbacks). Precision, device transfers
and the memory format are :mod:`nnspec.run.step`'s. An epoch's batches are drawn one at a time.
Callbacks' per-step hooks run only for callbacks that implement them, every ``every_n_steps``
steps. Validation streams a split's batches into mergeable metric states
(:mod:`nnspec.run.metrics`), reduced across ranks when a process group is set up. The per-epoch
checkpoint is pickled in the loop (CPU work under the GIL) and written on the writer's thread, as
are the metric files, so the next epoch does not wait for the disk; ``fit`` flushes them before
``on_fit_end``. The checkpoint, evaluation and end-of-epoch methods are mixed in from
:mod:`nnspec.run.trainer_checkpoints`, :mod:`nnspec.run.evaluation` and :mod:`nnspec.run.epoch_end`.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from nnspec.compile.plan import Segment, TrainingPlan, restart_lrs, steps_per_epoch
from nnspec.run.augment import make_augment
from nnspec.run.averaging import PausedSchedule, make_averaging
from nnspec.run.batches import (
    INPUT,
    Batch,
    EpochBatches,
    Split,
    batch_len,
    batch_targets,
    model_inputs,
)
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
from nnspec.run.data import DataBundle, DataSplit
from nnspec.run.distributed import SingleProcess
from nnspec.run.epoch_end import EpochEnd
from nnspec.run.evaluation import Evaluation, evaluate_batches, target_stats
from nnspec.run.guards import LoopState, LossLog, Sigterm, stop_on_sigterm
from nnspec.run.heads import output_loss
from nnspec.run.metrics import sklearn_metrics
from nnspec.run.named import NamedSplit
from nnspec.run.named_streams import NamedStreamSplit
from nnspec.run.outputs import RunWriter
from nnspec.run.step import MixedPrecision, to_device, use_channels_last
from nnspec.run.streams import StreamSplit
from nnspec.run.trainer_checkpoints import Checkpoints

# splits read through a batch sampler (positions): a data-parallel rank samples its own rows
MAP_SPLITS = (Split, StreamSplit, NamedSplit, NamedStreamSplit)

__all__ = ["Trainer", "LoopState", "target_stats", "evaluate_batches"]


class Trainer(Checkpoints, Evaluation, EpochEnd):
    """Runs the epochs of one experiment; the caller owns setup (seeding, run dir) and teardown.

    Args:
        callbacks: Called in order at each hook (:mod:`nnspec.run.callbacks`).
        message: Prints a line through the run's progress display (``FitState.message``).
        spec_meta: The spec's hash and fields, stored in every checkpoint.
        parallel: This process's part of a data-parallel run (:mod:`nnspec.run.distributed`).
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
        parallel: SingleProcess | None = None,
    ) -> None:
        self.model, self.plan, self.bundle = model, plan, bundle
        self.writer, self.device, self.spec_meta = writer, device, spec_meta
        self.sigterm = Sigterm()  # fit's (stop_on_sigterm)
        train = plan.train
        # channels_last: 4-D weights in NHWC, before the optimizer sees the parameters
        sample = torch.empty(bundle.info.input_shape, device="meta")
        self.channels_last = use_channels_last(train, model, sample, device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        self.parallel = parallel = parallel or SingleProcess()
        wrapped = parallel.wrap(model)  # DDP's wrapper; checkpoints keep the plain module's keys
        self.forward = torch.compile(wrapped) if train.compile else wrapped
        self.loss_fn = (
            output_loss(plan, bundle.info, bundle.train) if plan.outputs  # several outputs
            else plan.make_loss(bundle.info.n_outputs, target_stats(bundle))
        ).to(device)  # fmt: skip
        self.optimizer = plan.make_optimizer(model)
        self.accumulate = train.accumulate
        self.steps_per_epoch = steps_per_epoch(len(bundle.train), plan.data.batch_size,
                                               train.accumulate)  # fmt: skip
        self.total_steps = plan.horizon(self.steps_per_epoch).total_steps
        # each schedule segment (train.extensions) restarts from these LRs
        self.base_lrs = [group["lr"] for group in self.optimizer.param_groups]
        # train.ema / train.swa: an averaged copy validated, tested and saved instead
        self.averaging = make_averaging(model, train, self.optimizer)
        self._set_schedule(plan.segments()[0])
        stopping = train.early_stopping
        self.early_stopping = EarlyStopping(plan.monitor, plan.mode, stopping.patience,
                                            stopping.min_delta, stopping.enabled)  # fmt: skip
        self.state = LoopState()
        self._set_batches()
        self.fit_time = 0.0
        # per-step settings read once (the loop's per-step overhead must stay tiny)
        self.clip = train.clip_grad if train.clip_grad.kind != "none" else None
        self.losses = LossLog(train.log_every_steps, train.divergence_factor,
                              train.divergence_steps)  # fmt: skip
        self.saved_epochs: list[int] = []  # epochs with a checkpoint on disk (keep_last pruning)
        self.best_state: dict[str, torch.Tensor] | None = None
        self.l1_params = plan.penalty(model)
        self.params = [p for p in model.parameters() if p.requires_grad]
        # DATA-10: data.augment transforms training batches only (train_epoch), never evaluation's
        self.augment = make_augment(plan.data, plan.seed, bundle.info.input_shape,
                                    (bundle.info.x_mean, bundle.info.x_std), device)  # fmt: skip
        self.precision = MixedPrecision(train.precision, device, self.params)
        sklearn_metrics()  # import scikit-learn's metrics now (set-up), not inside the first epoch
        self._set_callbacks(callbacks, message)

    def _set_schedule(self, segment: Segment) -> None:
        """The LR schedule of ``segment``, built on the optimizer's current LRs; ``warmup`` is the
        step its warmup ends at (ReduceLROnPlateau waits for it)."""
        spe = self.steps_per_epoch
        schedule = self.plan.make_schedule(self.optimizer, spe, segment)
        averaging = self.averaging
        self.schedule = PausedSchedule(schedule, averaging) if averaging is not None else schedule
        self.warmup = segment.start * spe + self.plan.warmup_steps(spe, segment)

    def _start_segment(self, segment: Segment) -> None:
        """An extension's first epoch: its schedule starts afresh from the base LRs (a warm
        restart) and early stopping's patience restarts (the best epoch so far is kept). In
        SWA's phase, SWALR keeps setting the LR."""
        swalr = self.averaging is not None and self.averaging.swalr is not None
        lrs = [group["lr"] for group in self.optimizer.param_groups]
        restart_lrs(self.optimizer, self.base_lrs)
        self._set_schedule(segment)
        if swalr:
            for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
                group["lr"] = lr
        self.early_stopping.bad_epochs = 0

    def _set_batches(self) -> None:
        """The training batches (re-iterable: each pass is the sampler's current epoch) and the
        model's input names, the keys :func:`model_inputs` takes from a batch."""
        data = self.plan.data
        self.inputs: tuple[str, ...] = tuple(self.bundle.info.inputs) or (INPUT,)
        self.outputs: tuple[str, ...] = tuple(self.plan.outputs)  # () for one output
        # Under DDP a map-style split (in memory or streamed) is read per rank: the sampler
        # gives this rank its rows of each global batch, so no rank loads the others' rows. An
        # iterable source is read whole by every rank and sliced (DataParallel.shard).
        par = self.parallel
        self.rank_sampled = par.world_size > 1 and isinstance(self.bundle.train, MAP_SPLITS)
        rank, world = (par.rank, par.world_size) if self.rank_sampled else (0, 1)
        self.train_sampler = EpochBatches(len(self.bundle.train), data.batch_size,
                                          seed=self.plan.seed, shuffle=data.shuffle, rank=rank,
                                          world_size=world)  # fmt: skip
        self.train_batches = self._split_batches(self.bundle.train, self.train_sampler)
        self._eval_batches: dict[int, Iterable[Batch]] = {}

    def _split_batches(self, split: DataSplit, sampler: EpochBatches) -> Iterable[Batch]:
        data = self.plan.data
        return split.batches(sampler, self.device, workers=data.num_workers)

    def eval_batches(self, split: DataSplit) -> Iterable[Batch]:
        """A split's batches in split order (``eval_batch_size``, every sample kept)."""
        if id(split) not in self._eval_batches:  # one loader per split
            size = self.plan.data.eval_batch_size
            sampler = EpochBatches(len(split), size, seed=self.plan.seed, shuffle=False,
                                   drop_last_single=False)  # fmt: skip
            self._eval_batches[id(split)] = self._split_batches(split, sampler)
        return self._eval_batches[id(split)]

    def _set_callbacks(self, callbacks: Sequence[Callback], message: Callable[[str], None]) -> None:
        """The state callbacks see and, per hook, the methods to call (only overridden ones)."""
        self.fit_state = FitState(
            self.model, self.optimizer, self.writer.run_dir, self.plan.train.epochs,
            self.steps_per_epoch, is_main_process=self.writer.enabled,
            probe=self.bundle.train.head(256).get(INPUT), message=message,
        )  # fmt: skip
        self.hooks = {name: [getattr(c, name) for c in callbacks if overrides(c, name)]
                      for name in HOOKS if name not in STEP_HOOKS}  # fmt: skip
        self.before_step_hooks = step_hooks(callbacks, "on_before_optimizer_step")
        self.step_end_hooks = step_hooks(callbacks, "on_step_end")
        # the steps at which a per-step hook is next due (inf: never); set again by fit()
        self.before_step_due = self.step_end_due = math.inf

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
        if self.averaging is not None:
            self.averaging.after_step(self.model, step)
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
        self.train_sampler.set_epoch(epoch)
        losses, accumulate, inputs, par = self.losses, self.accumulate, self.inputs, self.parallel
        outputs = self.outputs  # () for one output
        losses.start_epoch()
        fit_state, batch, value = self.fit_state, 0, torch.zeros(())
        if self.rank_sampled:  # this rank's rows already: weigh each by its global batch
            batches = par.weigh(self._augmented(epoch), self.train_sampler.global_sizes())
        else:
            batches = par.shard(self._augmented(epoch))
        for batch, data in enumerate(batches, start=1):
            self.sigterm.check()  # a SIGTERM whose exception was lost (guards.stop_on_sigterm)
            xb, yb = model_inputs(data, inputs), batch_targets(data, outputs)
            if self.channels_last:  # image inputs in NHWC, copied without waiting
                xb = to_device(xb, self.device, channels_last=True)  # type: ignore[arg-type]
            with self.precision.autocast():
                loss = self.loss_fn(self.forward(xb), yb)
                if self.l1_params:
                    loss = loss + self.plan.regularization(self.l1_params)
            self.precision.backward(loss / accumulate if accumulate > 1 else loss)
            # on the device: the global batch's loss (an all_reduce under DDP) and its rows; the
            # guards and the per-step hooks see that loss on every rank
            value = par.reduce_loss(loss)
            losses.add(value, par.batch_len(batch_len(yb)))
            if batch % accumulate == 0:
                self._optimizer_step(value, batch)
                if self.state.step >= self.total_steps or fit_state.should_stop:
                    break
        else:
            if batch % accumulate:  # the epoch's last, partial group of batches
                self._optimizer_step(value, batch)
        losses.read(self.model, self.state, self.state.step, before_update=False)
        return losses.mean()

    def _augmented(self, epoch: int) -> Iterator[Batch]:
        """The epoch's global training batches, augmented (DATA-10: training batches only) before
        a data-parallel rank takes its rows, so every world size sees the same augmented data."""
        augment = self.augment
        for batch, data in enumerate(self.train_batches, start=1):
            yield data if augment is None else augment(data, epoch, batch)

    def _bn_inputs(self) -> Iterator[Any]:
        """The training split's model inputs, for SWA's batch-norm statistics."""
        return (model_inputs(data, self.inputs) for data in self.train_batches)

    def _call(self, hook: str) -> None:
        for method in self.hooks[hook]:
            method(self.fit_state)

    def fit(self) -> LoopState:
        """Train until max epochs / max steps / early stopping / a callback's stop; returns the
        final state.

        Background checkpoint writes are flushed before it returns or raises, so a guard's error
        leaves the last good epoch's checkpoint complete on disk; ``on_exception`` hooks see the
        error before it propagates. SIGTERM is such an error here
        (:func:`~nnspec.run.guards.stop_on_sigterm`).
        """
        fit_state = self.fit_state
        fit_state.epoch, fit_state.step = self.state.epoch, self.state.step
        fit_state.history = self.state.rows
        self.before_step_due = next_due(self.before_step_hooks, self.state.step)
        self.step_end_due = next_due(self.step_end_hooks, self.state.step + 1)
        try:
            with stop_on_sigterm() as self.sigterm:
                self._fit_epochs()
        except BaseException as error:
            for method in self.hooks["on_exception"]:
                method(fit_state, error)
            raise
        self._call("on_fit_end")
        return self.state

    def _fit_epochs(self) -> None:
        """The epochs of :meth:`fit`; the writer is flushed however they end."""
        fit_state = self.fit_state
        try:
            self._call("on_fit_start")
            starts = {s.start: s for s in self.plan.segments()[1:]}
            for epoch in range(self.state.epoch + 1, self.plan.train.epochs + 1):
                if fit_state.should_stop:  # asked in on_fit_start or on_checkpoint
                    self._stop_between_epochs()
                    break
                if epoch - 1 in starts:
                    self._start_segment(starts[epoch - 1])
                if self._run_epoch(epoch):
                    break
        finally:
            self.writer.flush()

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
        if self.averaging is not None:
            self.averaging.begin_epoch(epoch)
        skipped = self.state.skipped_steps
        train_loss = self.train_epoch(epoch)
        if self.averaging is not None:
            self.averaging.end_epoch(self.model, epoch, self._bn_inputs)
        fit_state.step = self.state.step
        row = self._epoch_row(epoch, train_loss, started)
        if self.precision.scaler is not None:  # fp16: the loss scaler's account of the epoch
            row["skipped_steps"] = self.state.skipped_steps - skipped
            row["loss_scale"] = self.precision.scale()
        # rank 0's row on every rank: early stopping, the schedule and callbacks decide alike
        return self._end_epoch(epoch, self.parallel.broadcast_row(row))
