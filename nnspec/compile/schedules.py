"""LR schedules (LR-5..10) built from torch's own schedulers.

Durations in the spec are epochs or fractions of the run; here they become optimizer steps.
Every schedule except ``reduce_on_plateau`` is stepped once per optimizer step (so warmup can
precede any of them through ``SequentialLR``); ``reduce_on_plateau`` is stepped once per epoch
with the monitored metric. ``exponential`` decays once per epoch (``StepLR`` with
``step_size = steps_per_epoch``, which is exactly torch's per-epoch ``ExponentialLR``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.optim import lr_scheduler as sch

from nnspec.registry import Registry
from nnspec.spec.schedule import ScheduleSpec, WarmupSpec
from nnspec.spec.train import resolve_mode

__all__ = ["Horizon", "LRSchedule", "SCHEDULES", "build_schedule", "warmup_steps"]


@dataclass(frozen=True)
class Horizon:
    """How long a run is, in optimizer steps."""

    steps_per_epoch: int
    total_steps: int


Builder = Callable[[Any, torch.optim.Optimizer, Horizon, int], Any]
SCHEDULES: Registry[Builder] = Registry("schedule")
"""Schedule kind -> builder(spec, optimizer, horizon, warmup_steps) of the main torch scheduler."""


def warmup_steps(warmup: WarmupSpec, horizon: Horizon) -> int:
    """Warmup length in optimizer steps (0 = no warmup)."""
    if warmup.epochs:
        return min(horizon.total_steps, round(warmup.epochs * horizon.steps_per_epoch))
    return min(horizon.total_steps, round(warmup.fraction * horizon.total_steps))


def _remaining(h: Horizon, w: int) -> int:
    return max(1, h.total_steps - w)


def _cosine(spec: Any, opt: torch.optim.Optimizer, h: Horizon, w: int) -> Any:
    eta_min = spec.min_lr_ratio * opt.defaults["lr"]
    if spec.restarts == 0:
        return sch.CosineAnnealingLR(opt, T_max=_remaining(h, w), eta_min=eta_min)
    # SGDR: restarts+1 cycles whose lengths grow by restart_mult and together fill the run.
    cycles = sum(spec.restart_mult**k for k in range(spec.restarts + 1))
    t0 = max(1, _remaining(h, w) // cycles)
    return sch.CosineAnnealingWarmRestarts(opt, T_0=t0, T_mult=spec.restart_mult, eta_min=eta_min)


def _multistep(spec: Any, opt: torch.optim.Optimizer, h: Horizon, w: int) -> Any:
    # LR-10: milestones are fractions of the whole run, so they never fall past its end.
    milestones = sorted({max(1, round(f * h.total_steps) - w) for f in spec.milestones})
    return sch.MultiStepLR(opt, milestones=milestones, gamma=spec.gamma)


def _one_cycle(spec: Any, opt: torch.optim.Optimizer, h: Horizon, w: int) -> Any:
    cycle_momentum = "momentum" in opt.defaults and opt.defaults["momentum"] > 0
    cycle_momentum = cycle_momentum or "betas" in opt.defaults
    return sch.OneCycleLR(
        opt,
        max_lr=[g["lr"] for g in opt.param_groups],
        total_steps=max(2, h.total_steps),
        pct_start=spec.pct_start,
        div_factor=spec.div_factor,
        final_div_factor=spec.final_div_factor,
        anneal_strategy=spec.anneal,
        cycle_momentum=cycle_momentum,
    )


def _plateau(spec: Any, opt: torch.optim.Optimizer, h: Horizon, w: int) -> Any:
    return sch.ReduceLROnPlateau(
        opt,
        mode=resolve_mode(spec.monitor, spec.mode),
        factor=spec.factor,
        patience=spec.patience,
        threshold=spec.threshold,
        min_lr=spec.min_lr,
    )


SCHEDULES.register("constant", lambda spec, opt, h, w: sch.ConstantLR(opt, 1.0, total_iters=0))
SCHEDULES.register(
    "step",
    lambda spec, opt, h, w: sch.StepLR(
        opt, step_size=max(1, round(spec.step_epochs * h.steps_per_epoch)), gamma=spec.gamma
    ),
)
SCHEDULES.register("multistep", _multistep)
SCHEDULES.register(
    "exponential",
    lambda spec, opt, h, w: sch.StepLR(opt, step_size=h.steps_per_epoch, gamma=spec.gamma),
)
SCHEDULES.register("cosine", _cosine)
SCHEDULES.register("one_cycle", _one_cycle)
SCHEDULES.register("reduce_on_plateau", _plateau)
SCHEDULES.seal()  # user kinds: nnspec.register_schedule (nnspec.compile.components)


class LRSchedule:
    """The run's LR schedule: ``step_batch()`` after every optimizer step, ``step_epoch(metrics)``
    after every validation. Holds at most two torch schedulers and checkpoints like one.
    """

    def __init__(self, per_step: Any | None, per_epoch: Any | None, monitor: str | None):
        self.per_step = per_step
        self.per_epoch = per_epoch
        self.monitor = monitor

    def step_batch(self) -> None:
        """Advance the per-step scheduler (warmup, cosine, one-cycle, ...)."""
        if self.per_step is not None:
            self.per_step.step()

    def step_epoch(self, metrics: dict[str, float], *, warmup_done: bool) -> None:
        """Advance ReduceLROnPlateau with the monitored metric (after warmup only)."""
        if self.per_epoch is not None and warmup_done and self.monitor in metrics:
            self.per_epoch.step(metrics[self.monitor])

    def state_dict(self) -> dict[str, Any]:
        """Scheduler states as plain data (loads with ``weights_only=True``)."""
        return {
            "per_step": self.per_step.state_dict() if self.per_step is not None else None,
            "per_epoch": self.per_epoch.state_dict() if self.per_epoch is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the states written by :meth:`state_dict`."""
        if self.per_step is not None and state.get("per_step") is not None:
            self.per_step.load_state_dict(state["per_step"])
        if self.per_epoch is not None and state.get("per_epoch") is not None:
            self.per_epoch.load_state_dict(state["per_epoch"])


def build_schedule(
    spec: ScheduleSpec, optimizer: torch.optim.Optimizer, horizon: Horizon
) -> LRSchedule:
    """Build the LR schedule of a run.

    Args:
        spec: the ``schedule`` section.
        optimizer: the optimizer whose groups' ``lr`` are the peak LRs.
        horizon: steps per epoch and total optimizer steps of the run.

    Example:
        >>> import torch
        >>> from nnspec.spec.schedule import Cosine
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        >>> s = build_schedule(Cosine(), opt, Horizon(10, 100))
        >>> opt.step(); s.step_batch(); round(opt.param_groups[0]["lr"], 6)
        0.999753
    """
    w = warmup_steps(spec.warmup, horizon)
    if spec.kind == "constant" and not w:
        return LRSchedule(None, None, None)  # nothing to step: no per-step scheduler cost
    main = SCHEDULES[spec.kind](spec, optimizer, horizon, w)
    if spec.kind == "reduce_on_plateau":
        warm = sch.LinearLR(optimizer, spec.warmup.start_factor, 1.0, total_iters=w) if w else None
        return LRSchedule(warm, main, spec.monitor)
    if w:
        warm = sch.LinearLR(optimizer, spec.warmup.start_factor, 1.0, total_iters=w)
        main = sch.SequentialLR(optimizer, [warm, main], milestones=[w])
    return LRSchedule(main, None, None)
