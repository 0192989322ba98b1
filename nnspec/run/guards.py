"""The loop's state (:class:`LoopState`, plain data in every checkpoint) and its NaN and
divergence guards: a run whose loss is non-finite or keeps rising stops with a
:class:`~nnspec.errors.TrainError` (its last good epoch's checkpoint stays on disk).

The guards are the loop's own contract rather than callbacks: they need the loss of every step,
and a callback call per step would cost what they save. Their state (the initial and smoothed
loss, the count of steps above the limit) is part of :class:`LoopState`, so it is checkpointed
and resumed with the rest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from nnspec.errors import Problem, TrainError

__all__ = ["LoopState", "nan_error", "check_divergence"]


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

    def payload(self) -> dict[str, Any]:
        """The checkpoint's ``loop`` entry (epoch and step are stored at its top level)."""
        return {
            # one string and one tensor instead of thousands of small objects to pickle
            "rows": json.dumps(self.rows),
            "lrs": torch.tensor(self.lrs, dtype=torch.float64),
            "initial_loss": self.initial_loss,
            "smoothed_loss": self.smoothed_loss,
            "high_steps": self.high_steps,
        }

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any]) -> LoopState:
        """The state a checkpoint holds (the inverse of :meth:`payload`)."""
        loop = ckpt["loop"]
        return cls(
            ckpt["epoch"], ckpt["step"], json.loads(loop["rows"]), loop["lrs"].tolist(),
            loop["initial_loss"], loop["smoothed_loss"], loop["high_steps"],
        )  # fmt: skip


def nan_error(model: nn.Module, loss: float, state: LoopState) -> TrainError:
    """The NaN guard's error for a non-finite ``loss`` at the coming step, naming the first
    parameter whose gradient is non-finite."""
    bad = next(
        (
            n
            for n, p in model.named_parameters()
            if p.grad is not None and not torch.isfinite(p.grad).all()
        ),
        None,
    )
    last = state.epoch
    return TrainError(
        Problem(
            ("optim", "lr"),
            f"NaN guard: non-finite loss {loss} at step {state.step + 1} "
            f"(epoch {last + 1}); first parameter with a non-finite gradient: "
            f"{bad or 'none (the loss itself overflowed)'}",
            fix="lower optim.lr (LR-1), check the inputs for NaN/Inf, or enable "
            "train.clip_grad; the checkpoints of the last good epoch are kept"
            + (f" (epoch {last})" if last else ""),
        )
    )


def check_divergence(state: LoopState, loss: float, factor: float, steps: int) -> None:
    """Track the step's ``loss``; raise when its smoothed value stayed above ``factor`` times the
    first loss for ``steps`` consecutive steps."""
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
                f"consecutive steps (step {state.step})",
                fix="lower optim.lr (LR-1) or add warmup (schedule.warmup); raise "
                "train.divergence_factor if such a rise is expected",
            )
        )
