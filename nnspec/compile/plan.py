"""The training plan: everything the runner needs besides the model, as frozen data + factories.

``compile_plan(spec)`` is pure (no I/O, no RNG). The runner consumes the plan and never re-reads
the spec; the same pieces (loss, optimizer factory, schedule factory) work in a user's own loop::

    compiled = nnspec.compile(spec)
    opt = compiled.plan.make_optimizer(compiled.model)
    sched = compiled.plan.make_schedule(opt, steps_per_epoch=len(my_loader))
    loss_fn = compiled.plan.make_loss()
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

import torch
from torch import nn

from nnspec.compile.losses import TargetStats, build_loss
from nnspec.compile.model import build_model
from nnspec.compile.optim import build_optimizer, l1_penalty, param_layers
from nnspec.compile.schedules import Horizon, LRSchedule, build_schedule, warmup_steps
from nnspec.io import as_spec
from nnspec.spec.data import DataSpec
from nnspec.spec.experiment import ExperimentSpec, Task
from nnspec.spec.heads import declared_outputs, output_metrics, output_mode
from nnspec.spec.model import ModelSpec
from nnspec.spec.optim import LossBase, resolve_loss_kind
from nnspec.spec.train import TrainSpec, chosen_metrics, resolve_mode

__all__ = [
    "TrainingPlan",
    "Segment",
    "Compiled",
    "compile_plan",
    "compile_spec",
    "steps_per_epoch",
    "restart_lrs",
]


def steps_per_epoch(n_train: int, batch_size: int, accumulate: int = 1) -> int:
    """Optimizer steps per epoch: batches (a last batch of one sample is dropped, since batch norm
    cannot train on it) grouped by ``accumulate``.

    Example:
        >>> steps_per_epoch(1000, 64)
        16
    """
    batches = max(1, n_train // batch_size + (1 if n_train % batch_size > 1 else 0))
    return math.ceil(batches / accumulate)


@dataclass(frozen=True)
class Segment:
    """Epochs ``start + 1 .. stop`` trained under one LR schedule whose horizon is ``planned``
    epochs from ``start`` (a run cut short by an extension stops before its horizon)."""

    start: int
    stop: int
    planned: int
    schedule: Any


@dataclass(frozen=True)
class TrainingPlan:
    """Frozen training plan of one experiment (STYLE §5).

    Attributes:
        task: the task (decides head width, loss and metrics).
        loss_kind: resolved loss (never ``auto``).
        metrics: per-epoch metric names, logged as ``val_<name>`` (several outputs:
            ``<output>_<metric>``).
        monitor / mode: what early stopping watches and which direction is better.
        outputs: a model with several outputs: each output's metrics (empty for one output).
    """

    task: Task
    loss_kind: str
    loss: LossBase
    optim: Any
    schedule: Any
    train: TrainSpec
    data: DataSpec
    model_spec: ModelSpec
    seed: int
    metrics: tuple[str, ...]
    monitor: str
    mode: Literal["min", "max"]
    outputs: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))

    def make_loss(self, n_out: int = 1, stats: TargetStats | None = None) -> nn.Module:
        """The loss module; ``stats`` (training targets) is needed for ``balanced`` weights."""
        return build_loss(self.loss_kind, self.loss, n_out, stats)

    def make_optimizer(self, model: nn.Module, *, lr: float | None = None) -> torch.optim.Optimizer:
        """The optimizer over ``model``'s parameter groups (decay / frozen / lr_scale)."""
        return build_optimizer(self.optim, model, self.model_spec, lr=lr)

    def horizon(self, steps_per_epoch: int) -> Horizon:
        """Steps per epoch and total optimizer steps (``train.max_steps`` caps the run)."""
        total = steps_per_epoch * self.train.epochs
        if self.train.max_steps is not None:
            total = min(total, self.train.max_steps)
        return Horizon(steps_per_epoch, max(1, total))

    def segments(self) -> tuple[Segment, ...]:
        """The run's schedule segments: one, plus one per ``train.extensions`` entry."""
        exts = self.train.extensions
        starts = [0, *(e.from_epoch for e in exts)]
        stops = [*(e.from_epoch for e in exts), self.train.epochs]
        ends = [*(e.previous_epochs for e in exts), self.train.epochs]
        schedules = [self.schedule, *(e.schedule for e in exts)]
        parts = zip(starts, stops, ends, schedules, strict=True)
        return tuple(Segment(a, b, c - a, s) for a, b, c, s in parts)

    def segment_at(self, epoch: int) -> Segment:
        """The segment epoch ``epoch`` (1-based) is trained in."""
        return next(s for s in reversed(self.segments()) if s.start < epoch or s.start == 0)

    def segment_horizon(self, segment: Segment, steps_per_epoch: int) -> Horizon:
        """Steps per epoch and the optimizer steps of ``segment``'s schedule (``max_steps``
        caps the run, so also its last segment)."""
        total = steps_per_epoch * segment.planned
        if self.train.max_steps is not None:
            total = min(total, self.train.max_steps - steps_per_epoch * segment.start)
        return Horizon(steps_per_epoch, max(1, total))

    def make_schedule(
        self, optimizer: torch.optim.Optimizer, steps_per_epoch: int, segment: Segment | None = None
    ) -> LRSchedule:
        """The LR schedule for a run with ``steps_per_epoch`` optimizer steps per epoch (of
        ``segment``, default the first; the optimizer's ``lr`` are the peak LRs)."""
        segment = segment or self.segments()[0]
        return build_schedule(segment.schedule, optimizer,
                              self.segment_horizon(segment, steps_per_epoch))  # fmt: skip

    def warmup_steps(self, steps_per_epoch: int, segment: Segment | None = None) -> int:
        """Length of the linear warmup in optimizer steps (of ``segment``, default the first)."""
        segment = segment or self.segments()[0]
        horizon = self.segment_horizon(segment, steps_per_epoch)
        return warmup_steps(segment.schedule.warmup, horizon)

    def penalty(self, model: nn.Module) -> list[torch.Tensor]:
        """Weights the L1 term (``optim.l1``, REG-9) applies to: trainable matrices/kernels."""
        if not self.optim.l1:
            return []
        owners = param_layers(model, self.model_spec)
        return [
            p
            for name, p in model.named_parameters()
            if p.ndim > 1 and p.requires_grad and getattr(owners.get(name), "trainable", True)
        ]

    def regularization(self, params: list[torch.Tensor]) -> torch.Tensor | None:
        """The L1 loss term over ``params`` (None when ``optim.l1`` is 0)."""
        return self.optim.l1 * l1_penalty(params) if params else None

    def lr_curve(self, steps_per_epoch: int) -> list[float]:
        """LR of the first param group at every optimizer step (plateau: as if never triggered;
        each segment restarts from the base LR, as :func:`restart_lrs` does in training)."""
        dummy = nn.Linear(1, 1)
        opt = build_optimizer(
            self.optim, dummy, ModelSpec(input_shape=(1,), layers=({"linear": 1},))
        )
        base = [g["lr"] for g in opt.param_groups]
        curve: list[float] = []
        total = self.horizon(steps_per_epoch).total_steps
        for segment in self.segments():
            restart_lrs(opt, base)
            schedule = self.make_schedule(opt, steps_per_epoch, segment)
            stop = min(total, segment.stop * steps_per_epoch)
            while len(curve) < stop:
                curve.append(opt.param_groups[0]["lr"])
                opt.step()  # no gradients: a no-op, but torch expects it before scheduler.step()
                schedule.step_batch()
        return curve


def restart_lrs(optimizer: torch.optim.Optimizer, base: list[float]) -> None:
    """Set each group's LR back to its base LR before a segment's schedule is built (a warm
    restart): torch's schedulers take ``initial_lr`` (set by the previous schedule) as given."""
    for group, lr in zip(optimizer.param_groups, base, strict=True):
        group["lr"] = lr
        group.pop("initial_lr", None)


def compile_plan(spec: ExperimentSpec) -> TrainingPlan:
    """Resolve the spec's training sections into a :class:`TrainingPlan` (pure).

    Example:
        >>> from nnspec.spec import ExperimentSpec
        >>> spec = ExperimentSpec(model={"input_shape": [4], "layers": [{"linear": 3}]})
        >>> compile_plan(spec).loss_kind
        'cross_entropy'
    """
    es = spec.train.early_stopping
    monitor = es.monitor if es.enabled else "val_loss"
    if spec.data.split.val == 0 and monitor.startswith("val_"):
        monitor = "train_loss"  # nothing else to select the best epoch with
    plateau = getattr(spec.schedule, "monitor", None)  # reduce_on_plateau's
    watched = (monitor,) if plateau is None else (monitor, plateau)
    declared = declared_outputs(spec.model)
    if declared is not None:  # several outputs: metrics and monitor modes per output
        outputs = {name: output_metrics(name, out, watched) for name, out in declared.items()}
        flat = tuple(f"{name}_{m}" for name, names in outputs.items() for m in names)
        mode = output_mode(monitor, es.mode if es.enabled else "auto", declared)
        return replace(_plan(spec, monitor, watched), metrics=flat, mode=mode,
                       outputs=MappingProxyType(outputs))  # fmt: skip
    return _plan(spec, monitor, watched)


def _plan(spec: ExperimentSpec, monitor: str, watched: tuple[str, ...]) -> TrainingPlan:
    es = spec.train.early_stopping
    return TrainingPlan(
        task=spec.task,
        loss_kind=resolve_loss_kind(spec.task, spec.loss),
        loss=spec.loss,
        optim=spec.optim,
        schedule=spec.schedule,
        train=spec.train,
        data=spec.data,
        model_spec=spec.model,
        seed=spec.seed,
        metrics=chosen_metrics(spec.task, spec.train.metrics, watched),
        monitor=monitor,
        mode=resolve_mode(monitor, es.mode if es.enabled else "auto"),
    )


class Compiled(NamedTuple):
    """A compiled experiment: the initialised model and its training plan."""

    model: nn.Module
    plan: TrainingPlan


def compile_spec(
    spec: ExperimentSpec | Mapping[str, Any], *, generator: torch.Generator | None = None
) -> Compiled:
    """Build the model and the plan of an experiment (``nnspec.compile`` at the top level).

    The model is ``build_model(spec, generator=generator)``: seeded from ``spec.seed`` unless a
    generator is given. A mapping is validated first; its problems raise one ``SpecError`` with
    field paths.

    Example:
        >>> from nnspec.spec import ExperimentSpec
        >>> spec = ExperimentSpec(model={"input_shape": [4], "layers": [{"linear": 3}]})
        >>> compiled = compile_spec(spec)
        >>> type(compiled.plan.make_optimizer(compiled.model)).__name__
        'AdamW'
    """
    spec = as_spec(spec, ExperimentSpec)
    return Compiled(build_model(spec, generator=generator), compile_plan(spec))
