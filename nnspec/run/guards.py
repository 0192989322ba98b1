"""The loop's state (:class:`LoopState`, plain data in every checkpoint), the training losses
held on the device between reads (:class:`LossLog`) and the NaN and divergence guards: a run
whose loss is non-finite or keeps rising stops with a :class:`~nnspec.errors.TrainError` (its
last good epoch's checkpoint stays on disk).

The loss never leaves the device inside a step: each batch's loss tensor is kept, and every
``train.log_every_steps`` optimizer steps (and at the end of each epoch) they are read in one
transfer. The guards then replay those steps on the host, so they name the first non-finite step
and the step the divergence limit was reached at exactly, as if they had read every step; they
only act up to ``log_every_steps - 1`` steps later. A read due at a step happens before that
step's update, so ``log_every_steps: 1`` stops a run before a non-finite loss reaches the
weights.

The guards are the loop's own contract rather than callbacks: they need the loss of every step.
Their state (the initial and smoothed loss, the count of steps above the limit, fp16's skipped
steps) is part of :class:`LoopState`, so it is checkpointed and resumed with the rest.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from nnspec.errors import Problem, Terminated, TrainError

__all__ = [
    "LoopState",
    "LossLog",
    "nan_error",
    "check_divergence",
    "stop_on_sigterm",
    "Sigterm",
    "SKIP_LIMIT",
]

SKIP_LIMIT = 40
"""Consecutive fp16 steps the loss scaler may skip before the NaN guard stops the run: each skip
halves the scale, and 40 halvings take the default initial scale (2^16) below fp16's smallest
subnormal (2^-24), where no gradient is representable any more [nnspec choice]."""


@dataclass
class LoopState:
    """Counters and history of a run (all plain data, stored in every checkpoint)."""

    epoch: int = 0
    step: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    initial_loss: float | None = None
    smoothed_loss: float = 0.0
    high_steps: int = 0
    stopped: str = "max_epochs"
    skipped_steps: int = 0  # fp16: optimizer steps the loss scaler skipped (non-finite gradients)
    skipped_run: int = 0  # fp16: the current run of consecutive skipped steps

    def payload(self) -> dict[str, Any]:
        """The checkpoint's ``loop`` entry (epoch and step are stored at its top level)."""
        return {
            # one string and one tensor instead of thousands of small objects to pickle
            "rows": json.dumps(self.rows),
            "lrs": torch.tensor(self.lrs, dtype=torch.float64),
            "initial_loss": self.initial_loss,
            "smoothed_loss": self.smoothed_loss,
            "high_steps": self.high_steps,
            "skipped_steps": self.skipped_steps,
            "skipped_run": self.skipped_run,
        }

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any]) -> LoopState:
        """The state a checkpoint holds (the inverse of :meth:`payload`)."""
        loop = ckpt["loop"]
        return cls(
            ckpt["epoch"], ckpt["step"], json.loads(loop["rows"]), loop["lrs"].tolist(),
            loop["initial_loss"], loop["smoothed_loss"], loop["high_steps"],
            skipped_steps=loop.get("skipped_steps", 0), skipped_run=loop.get("skipped_run", 0),
        )  # fmt: skip


class LossLog:
    """The training losses since the last read, kept on the device, and the epoch's running mean.

    Per batch the loop hands over the loss tensor (:meth:`add`); per optimizer step, the step's
    end and, in fp16, the scaler's skip flag (:meth:`end_step`). :meth:`read` moves them to the
    host in one transfer and runs the guards over every step since the previous read.

    Args:
        every: ``train.log_every_steps``.
        factor: ``train.divergence_factor``.
        limit: ``train.divergence_steps``.
    """

    def __init__(self, every: int, factor: float, limit: int) -> None:
        self.every, self.factor, self.limit = every, factor, limit
        self.losses: list[torch.Tensor] = []  # each batch's loss since the last read
        self.sizes: list[int] = []  # their batch sizes
        self.ends: list[int] = []  # per step: the index in `losses` after its last batch
        self.skipped: list[torch.Tensor] = []  # fp16, per step: True when the scaler skipped it
        self.total, self.seen = 0.0, 0  # this epoch's loss x batch size, and samples, read so far

    def add(self, loss: torch.Tensor, size: int) -> None:
        """One batch's loss (kept on its device) and batch size."""
        self.losses.append(loss.detach())
        self.sizes.append(size)

    def end_step(self, skipped: torch.Tensor | None) -> None:
        """The batches added since the previous step make one optimizer step."""
        self.ends.append(len(self.losses))
        if skipped is not None:
            self.skipped.append(skipped)

    def due(self, step: int) -> bool:
        """Whether the losses are read at optimizer step ``step`` (counted from 1)."""
        return step % self.every == 0

    def start_epoch(self) -> None:
        """Reset the epoch's running mean (nothing is pending between epochs)."""
        self.total, self.seen = 0.0, 0

    def mean(self) -> float:
        """The epoch's mean training loss over the batches read so far (weighted by size)."""
        return self.total / max(self.seen, 1)

    def read(self, model: nn.Module, state: LoopState, last: int, before_update: bool) -> None:
        """Read the pending losses and run the guards over their steps.

        Args:
            last: The number of the last pending step (counted from 1).
            before_update: Whether that step's optimizer update is still to come.

        Raises:
            TrainError: a non-finite loss (NaN guard), a rise above the limit (divergence
                guard) or, in fp16, :data:`SKIP_LIMIT` consecutive skipped steps.
        """
        if not self.losses:
            return
        values = torch.stack([v.float() for v in self.losses]).tolist()  # the one transfer
        flags = torch.stack(self.skipped).tolist() if self.skipped else None
        sizes, ends = self.sizes, self.ends
        self.losses, self.sizes, self.ends, self.skipped = [], [], [], []
        for value, size in zip(values, sizes, strict=True):
            if math.isfinite(value):  # fp16: a skipped step's non-finite loss is not averaged
                self.total += value * size
                self.seen += size
        start, first = 0, last - len(ends) + 1
        for j, end in enumerate(ends):
            step, group = first + j, values[start:end]
            start = end
            if flags is not None and _skipped(state, bool(flags[j]), step):
                continue
            bad = next((v for v in group if not math.isfinite(v)), None)
            if bad is not None:
                raise nan_error(model, bad, state, step, last, before_update and step == last)
            check_divergence(state, group[-1], self.factor, self.limit, step)


def _skipped(state: LoopState, skipped: bool, step: int) -> bool:
    """Count an fp16 step the scaler skipped; stop the run after :data:`SKIP_LIMIT` in a row."""
    if not skipped:
        state.skipped_run = 0
        return False
    state.skipped_steps += 1
    state.skipped_run += 1
    if state.skipped_run >= SKIP_LIMIT:
        raise TrainError(
            Problem(
                ("train", "precision"),
                f"NaN guard: the fp16 loss scaler skipped {SKIP_LIMIT} consecutive steps "
                f"(steps {step - SKIP_LIMIT + 1} to {step}, epoch {state.epoch + 1}): the "
                "gradients are non-finite at every loss scale",
                fix="check the inputs for NaN/Inf, lower optim.lr (LR-1), or train in bf16 or "
                "fp32 (train.precision); the checkpoints of the last good epoch are kept",
            )
        )
    return True


def _first_non_finite(model: nn.Module, grads: bool) -> str | None:
    """The first parameter whose gradient (or value) is not finite."""
    for name, p in model.named_parameters():
        t = p.grad if grads else p.detach()
        if t is not None and not bool(torch.isfinite(t).all()):
            return name
    return None


def nan_error(
    model: nn.Module, loss: float, state: LoopState, step: int, read_at: int, grads: bool
) -> TrainError:
    """The NaN guard's error for a non-finite ``loss`` at ``step``, found when the losses were
    read at step ``read_at``. ``grads``: the step's gradients are still there (its update has
    not happened): the error names the first parameter whose gradient is non-finite; otherwise
    the first whose value is."""
    last = state.epoch
    if grads:
        bad = _first_non_finite(model, grads=True) or "none (the loss itself overflowed)"
        where = f"first parameter with a non-finite gradient: {bad}"
    else:
        bad = _first_non_finite(model, grads=False)
        where = (
            f"read at step {read_at} (the loss is read every train.log_every_steps steps; 1 "
            "stops at the bad step, before its update, and names the parameter with the bad "
            f"gradient); first parameter with a non-finite value now: {bad or 'none'}"
        )
    return TrainError(
        Problem(
            ("optim", "lr"),
            f"NaN guard: non-finite loss {loss} at step {step} (epoch {last + 1}); {where}",
            fix="lower optim.lr (LR-1), check the inputs for NaN/Inf, or enable "
            "train.clip_grad; the checkpoints of the last good epoch are kept"
            + (f" (epoch {last})" if last else ""),
        )
    )


def check_divergence(state: LoopState, loss: float, factor: float, steps: int, step: int) -> None:
    """Track step ``step``'s ``loss``; raise when its smoothed value stayed above ``factor``
    times the first loss for ``steps`` consecutive steps."""
    if state.initial_loss is None:
        state.initial_loss = state.smoothed_loss = loss
        return
    # An EMA (0.9) of the loss, so one lucky batch does not reset the count.
    state.smoothed_loss = 0.9 * state.smoothed_loss + 0.1 * loss
    too_high = state.smoothed_loss > factor * max(state.initial_loss, 1e-12)
    state.high_steps = state.high_steps + 1 if too_high else 0
    if state.high_steps >= steps:
        raise TrainError(
            Problem(
                ("optim", "lr"),
                f"divergence guard: the smoothed loss ({state.smoothed_loss:.4g}) stayed "
                f"above {factor:g}x its initial value ({state.initial_loss:.4g}) for {steps} "
                f"consecutive steps (step {step})",
                fix="lower optim.lr (LR-1) or add warmup (schedule.warmup); raise "
                "train.divergence_factor if such a rise is expected",
            )
        )


@dataclass
class Sigterm:
    """What :func:`stop_on_sigterm` saw: whether SIGTERM arrived while its block ran."""

    received: bool = False

    def check(self) -> None:
        """Raise :class:`~nnspec.errors.Terminated` once SIGTERM has arrived (the loop asks
        before every batch: the handler's own exception can be lost, see below)."""
        if self.received:
            raise Terminated(signal.SIGTERM)


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[Sigterm]:
    """While the block runs, SIGTERM raises :class:`~nnspec.errors.Terminated` in the training
    thread instead of ending the process at once.

    torchrun sends SIGTERM to every rank when one fails (and SIGKILL 30 s later), a cluster does
    so before pre-emption: the checkpoint still being written on the writer's thread would be
    lost with the process. Raised as an exception, the loop's clean-up runs (the pending write is
    finished, workers shut down) before the process ends. A second SIGTERM during that clean-up
    is ignored. Outside the main thread (Python delivers signals there alone) or when SIGTERM
    already has a handler (the user's, submitit's requeue), nothing is changed. DataLoader
    workers, forked while the block runs, end on it with status 0
    (:func:`~nnspec.run.workers.quiet_sigterm`).

    The handler's exception is lost where Python ignores exceptions (a fork's callbacks, a
    ``__del__``): the loop then stops at its next batch (:meth:`Sigterm.check`), and any other
    error that leaves the block after SIGTERM arrived (a worker that the signal ended) leaves it
    as :class:`~nnspec.errors.Terminated`, chained to that error. Once SIGTERM has arrived, the
    errors of finalizers (``sys.unraisablehook``) are not printed until the process ends: they
    come from objects the signal interrupted half-built.

    A process blocked in C code (a rank waiting in a collective for a peer that is gone) runs
    the handler when that call returns: with gloo's or NCCL's error, or at torchrun's SIGKILL.
    """
    seen = Sigterm()
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL):  # fmt: skip
        yield seen
        return
    state = {"active": True}

    def handler(signum: int, frame: object) -> None:
        if state["active"] and not seen.received:
            seen.received = True
            raise Terminated(signum)

    previous_hook = sys.unraisablehook

    def lost(unraisable: Any) -> None:
        # once SIGTERM has arrived (the handler's own Terminated, dropped, included: Sigterm.check
        # raises it again), finalizers of what it interrupted (a DataLoader iterator stopped
        # while it started its workers) have nothing to tell, until the process ends
        if not seen.received:
            previous_hook(unraisable)

    handler.nnspec_stop = True  # type: ignore[attr-defined]  # see workers.quiet_sigterm
    signal.signal(signal.SIGTERM, handler)
    sys.unraisablehook = lost
    try:
        yield seen
    except Exception as error:
        if seen.received:
            raise Terminated(signal.SIGTERM) from error
        raise
    finally:
        state["active"] = False  # a SIGTERM from here on, before the restore, is ignored
        if signal.getsignal(signal.SIGTERM) is handler:  # a callback's own handler stays
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if sys.unraisablehook is lost and not seen.received:
            sys.unraisablehook = previous_hook
