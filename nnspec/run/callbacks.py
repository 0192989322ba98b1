"""The training loop's callback protocol: :class:`Callback`, the :class:`FitState` it receives, and
the run layer's own callbacks (metric files; the trackers are in :mod:`nnspec.run.trackers`).

The loop (:class:`nnspec.run.loop.Trainer`) calls the ``on_*`` methods of a list of callbacks, in
list order, at these points::

    on_fit_start                      after a resume, before the first epoch
      on_epoch_start                  each epoch
        on_before_optimizer_step      every ``every_n_steps`` optimizer steps: gradients are
                                      accumulated, not yet clipped
        on_step_end                   every ``every_n_steps`` optimizer steps, after the step
      on_validation_end               the epoch's row is complete in ``state.metrics`` (with the
                                      ``val_`` columns when there is a validation split; called
                                      every epoch, also without one) and ``state.log`` adds
                                      columns to it; before early stopping and the schedule
      on_epoch_end                    the row is final and in ``state.history``
      on_checkpoint                   a checkpoint of this epoch was queued for writing
    on_fit_end                        the loop ended normally (background writes are on disk)
    on_exception                      the loop raised (then the error propagates)

A callback subclasses :class:`Callback` (every ``callbacks=`` parameter takes its instances) and
overrides only the hooks it needs; the loop calls the per-step hooks only of callbacks that
override them, so a callback without them costs nothing per step. Steps are optimizer steps (with
``train.accumulate: k`` one step takes ``k`` batches).

A callback stops training cleanly with :meth:`FitState.stop`: no optimizer step starts after the
hook that asked (the one an ``on_before_optimizer_step`` precedes still runs), and the reason
lands in ``summary.json`` as ``stopped``, as early stopping's does:

* from a per-step hook, ``on_validation_end`` or ``on_epoch_end``: the current epoch ends (a stop
  during an epoch skips its remaining batches), is validated and recorded, and its checkpoint is
  saved;
* from ``on_fit_start``: no epoch runs (``epochs_run`` stays 0, or the resumed epoch);
* from ``on_epoch_start``: that epoch ends before its first step, with no row, validation or
  ``on_epoch_end``; ``state.epoch`` goes back to the last finished epoch;
* from ``on_checkpoint``: the next epoch does not start (after the last epoch the run ends as
  it would have, and ``stopped`` stays ``max_epochs``).

In the last three cases the last finished epoch gets its checkpoint if its periodic one was not
due, and ``on_fit_end`` follows.

Built for more than one process: ``state.metrics`` are the epoch's values (reduced across ranks
when training is distributed), and a callback that writes files checks ``state.is_main_process``.

Example:
    >>> class StopAt(Callback):
    ...     def __init__(self, epoch: int) -> None:
    ...         self.epoch = epoch
    ...     def on_epoch_end(self, state: FitState) -> None:
    ...         if state.epoch == self.epoch:
    ...             state.stop(f"stopped at epoch {self.epoch}")
    >>> # nnspec.train(spec, callbacks=[StopAt(3)]).epochs_run == 3
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import torch
    from torch import nn

    from nnspec.run.outputs import RunWriter

__all__ = [
    "Callback",
    "FitState",
    "HOOKS",
    "check_callbacks",
    "STEP_HOOKS",
    "EarlyStopping",
    "MetricFiles",
    "overrides",
    "step_hooks",
    "next_due",
    "StepHooks",
]

HOOKS = (
    "on_fit_start",
    "on_epoch_start",
    "on_before_optimizer_step",
    "on_step_end",
    "on_validation_end",
    "on_epoch_end",
    "on_checkpoint",
    "on_fit_end",
    "on_exception",
)
"""Every hook, in the order the loop first calls it."""

STEP_HOOKS = ("on_before_optimizer_step", "on_step_end")
"""The hooks called inside the epoch, every ``every_n_steps`` optimizer steps."""

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(eq=False)
class FitState:
    """What a callback sees of a run. The loop updates it before each hook; callbacks read it,
    may add metrics with :meth:`log` and stop the run with :meth:`stop`.

    Attributes:
        model: The model being trained (in train mode inside an epoch).
        optimizer: Its optimizer (``param_groups[0]["lr"]`` is the current learning rate).
        run_dir: The run directory.
        max_epochs: ``train.epochs``.
        steps_per_epoch: Optimizer steps in a full epoch.
        is_main_process: Whether this process writes files (rank 0).
        probe: Up to 256 training inputs on the model's device, fixed for the run (for statistics
            such as dead-unit fractions).
        message: Prints a line through the run's progress display (a live bar stays intact).
        epoch: The current epoch, from 1 (before the first: the epochs already done, 0 unless
            resumed).
        step: Optimizer steps done since the start of the run (resumes included).
        batch: Batches done in the current epoch.
        loss: The training loss of the last batch (per-step hooks only; NaN elsewhere). It
            stays on the device until a hook reads this attribute: on a GPU each read is a host
            synchronisation, so a callback that needs it should run every few steps.
        metrics: The current epoch's row (``epoch``, ``step``, ``lr``, ``train_loss``,
            ``val_loss``, ``val_<metric>``, ``time``, monitor columns); empty before validation.
        history: Every finished epoch's row, oldest first.
        should_stop: Set by :meth:`stop` (set directly, the reason is ``"callback"``).
        stop_reason: Why (``summary.json``'s ``stopped``).
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    run_dir: Path
    max_epochs: int
    steps_per_epoch: int
    is_main_process: bool = True
    probe: torch.Tensor | None = None
    message: Callable[[str], None] = print
    epoch: int = 0
    step: int = 0
    batch: int = 0
    metrics: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    history: Sequence[Mapping[str, Any]] = ()
    should_stop: bool = False
    stop_reason: str = ""
    # the loop's row that :meth:`log` extends (set during ``on_validation_end`` only)
    _row: dict[str, Any] | None = field(default=None, init=False, repr=False)
    # the last batch's loss as the loop holds it (a device tensor during per-step hooks)
    _loss: Any = field(default=math.nan, init=False, repr=False)

    @property
    def loss(self) -> float:
        """The last batch's training loss (read from the device on access)."""
        return float(self._loss)

    def stop(self, reason: str) -> None:
        """Stop training: no optimizer step starts after the current hook (the module docstring
        says how each hook's stop ends the run); ``reason`` (e.g. ``"pruned"``) goes to
        ``summary.json``."""
        if not self.should_stop:
            self.should_stop, self.stop_reason = True, reason

    def log(self, values: Mapping[str, float]) -> None:
        """Add columns to the current epoch's row (``on_validation_end`` only): they reach the
        metric files, the progress line, the trackers and the checkpoints like the loop's own."""
        if self._row is None:
            raise RuntimeError("FitState.log is only available in on_validation_end")
        self._row.update(values)


class Callback:
    """Base class of training callbacks: every hook is a no-op; override what you need.

    Every ``callbacks=`` parameter takes instances of subclasses of this class (the loop refuses
    other objects with a TypeError before any file is written).

    Attributes:
        every_n_steps: How often the per-step hooks (:data:`STEP_HOOKS`) run, in optimizer steps:
            ``on_before_optimizer_step`` before steps 1, n+1, 2n+1, ... and ``on_step_end`` after
            steps n, 2n, ... (counted from the start of the run). A class attribute or one set in
            ``__init__``; read once, when training starts.
    """

    every_n_steps: int = 1

    def on_fit_start(self, state: FitState) -> None:
        """Training begins (after a resume restored the state)."""

    def on_epoch_start(self, state: FitState) -> None:
        """An epoch begins (``state.epoch`` is its number)."""

    def on_before_optimizer_step(self, state: FitState) -> None:
        """Gradients of this step are complete and not yet clipped."""

    def on_step_end(self, state: FitState) -> None:
        """An optimizer step was taken (``state.step`` counts it)."""

    def on_validation_end(self, state: FitState) -> None:
        """The epoch's row is complete (validated when there is a validation split; called every
        epoch): ``state.metrics`` holds it; :meth:`FitState.log` adds to it."""

    def on_epoch_end(self, state: FitState) -> None:
        """The epoch's row is final (early stopping and the schedule have seen it)."""

    def on_checkpoint(self, state: FitState, paths: Sequence[Path]) -> None:
        """A checkpoint was queued; its files (``paths``) are complete once the next checkpoint
        is queued or training ends."""

    def on_fit_end(self, state: FitState) -> None:
        """Training ended normally; the metric files and checkpoints are on disk."""

    def on_exception(self, state: FitState, error: BaseException) -> None:
        """Training raised ``error`` (it propagates after every callback saw it)."""


def check_callbacks(callbacks: Sequence[object]) -> None:
    """Refuse what the loop cannot call, every problem at once: objects that are not
    :class:`Callback` instances, and an ``every_n_steps`` that is not a positive int.

    Raises:
        TypeError: a wrong type among the problems; ValueError: only ``every_n_steps`` < 1.
    """
    problems: list[str] = []
    wrong_type = False
    for i, callback in enumerate(callbacks):
        name = f"callbacks[{i}] ({type(callback).__name__})"
        if not isinstance(callback, Callback):
            wrong_type = True
            problems.append(
                f"{name}: expected an instance of a nnspec.run.Callback subclass; found "
                f"{callback!r}; fix: subclass Callback and override the hooks you need"
            )
            continue
        every = callback.every_n_steps
        if isinstance(every, int) and not isinstance(every, bool) and every >= 1:
            continue
        wrong_type = wrong_type or not isinstance(every, int) or isinstance(every, bool)
        problems.append(f"{name}.every_n_steps: expected a positive int; found {every!r}")
    if problems:
        raise (TypeError if wrong_type else ValueError)("\n".join(problems))


def overrides(callback: object, hook: str) -> bool:
    """Whether ``callback`` implements ``hook`` (a method other than :class:`Callback`'s no-op)."""
    method = getattr(type(callback), hook, None)
    return method is not None and method is not getattr(Callback, hook)


StepHooks = list[tuple[int, Callable[[FitState], None]]]


def step_hooks(callbacks: Sequence[Callback], hook: str) -> StepHooks:
    """``(every_n_steps, method)`` of the callbacks that implement a per-step ``hook`` (checked
    by :func:`check_callbacks`)."""
    return [(c.every_n_steps, getattr(c, hook)) for c in callbacks if overrides(c, hook)]


def next_due(hooks: StepHooks, step: int) -> float:
    """The first step ``>= step`` at which one of ``hooks`` is due (``inf`` when none)."""
    return min((-(-step // every) * every for every, _ in hooks), default=math.inf)


@dataclass
class EarlyStopping:
    """Tracks the monitored metric (TRAIN-4); state is plain numbers for checkpoints.

    Part of the loop rather than a callback: the best epoch also decides ``best.pt``, the weights
    restored at the end and the summary's ``best_epoch``.
    """

    monitor: str
    mode: Literal["min", "max"]
    patience: int
    min_delta: float
    enabled: bool
    best: float | None = None
    best_epoch: int = 0
    bad_epochs: int = 0

    def improved(self, value: float) -> bool:
        """Whether ``value`` beats the best by more than ``min_delta``."""
        if value != value:  # NaN never improves
            return False
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def update(self, value: float, epoch: int) -> bool:
        """Record an epoch; returns True when it is the new best."""
        if self.improved(value):
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        """Patience exhausted (only when early stopping is enabled)."""
        return self.enabled and self.bad_epochs >= self.patience

    def state_dict(self) -> dict[str, Any]:
        """Plain-number state for checkpoints."""
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.bad_epochs = state["bad_epochs"]


class MetricFiles(Callback):
    """``metrics.csv`` and ``metrics.jsonl``, rewritten with every row at each epoch's end.

    The write is queued on the run writer's thread (after the previous epoch's checkpoint), so the
    next epoch does not wait for the disk; the loop flushes the writer before ``on_fit_end``.
    """

    def __init__(self, writer: RunWriter) -> None:
        self.writer = writer

    def on_epoch_end(self, state: FitState) -> None:
        self.writer.write_metrics(state.history, background=True)
