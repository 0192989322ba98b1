"""Learning-rate schedules (LR-5..9).

Durations are given either in epochs (``*_epochs``) or as a fraction of the whole run
(``*_fraction``); the plan resolves them to optimizer steps. Every schedule may be preceded by a
linear ``warmup`` (LR-6).
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Discriminator, Field, model_validator

from nnspec.registry import Registry
from nnspec.spec.base import (
    Fraction,
    NonNegFloat,
    NonNegInt,
    PosFloat,
    PosInt,
    Prob,
    Spec,
    field_error,
)
from nnspec.spec.kinds import registered

__all__ = [
    "WarmupSpec",
    "ScheduleBase",
    "ScheduleSpec",
    "SCHEDULE_CLASSES",
    "SCHEDULE_SPECS",
    "ScheduleKind",
]


class WarmupSpec(Spec):
    """Linear warmup from ``start_factor * lr`` to ``lr`` (LR-6); 0 epochs and 0 fraction = off."""

    epochs: NonNegFloat = Field(default=0.0, description="Warmup length in epochs.")
    fraction: float = Field(
        default=0.0, ge=0, lt=1, description="Warmup length as a fraction of the run."
    )
    start_factor: PosFloat = Field(default=0.01, le=1, description="LR multiplier at step 0.")

    @model_validator(mode="after")
    def _one_length(self) -> WarmupSpec:
        if self.epochs and self.fraction:
            raise field_error(
                ("fraction",),
                "give the warmup length either in epochs or as a fraction, not both",
                self.fraction,
            )
        return self

    @property
    def enabled(self) -> bool:
        """Whether any warmup is configured."""
        return bool(self.epochs or self.fraction)


class ScheduleBase(Spec):
    """Fields every schedule has; user-registered schedule specs subclass it
    (``nnspec.register_schedule``)."""

    warmup: WarmupSpec = Field(default_factory=WarmupSpec, description="Linear warmup.")


class Constant(ScheduleBase):
    kind: Literal["constant"] = "constant"


class Step(ScheduleBase):
    kind: Literal["step"] = "step"
    step_epochs: PosFloat = Field(
        default=10, description="Multiply the LR by gamma every this many epochs."
    )
    gamma: PosFloat = Field(default=0.1, le=1, description="Decay factor.")


class MultiStep(ScheduleBase):
    kind: Literal["multistep"] = "multistep"
    milestones: tuple[Fraction, ...] = Field(
        default=(0.5, 0.75),
        description="Fractions of the run at which the LR is multiplied by gamma.",
    )
    gamma: PosFloat = Field(default=0.1, le=1, description="Decay factor.")


class Exponential(ScheduleBase):
    kind: Literal["exponential"] = "exponential"
    gamma: PosFloat = Field(default=0.95, le=1, description="Per-epoch decay factor.")


class Cosine(ScheduleBase):
    kind: Literal["cosine"] = "cosine"
    min_lr_ratio: Prob = Field(default=0.0, description="Final LR as a fraction of the peak LR.")
    restarts: NonNegInt = Field(
        default=0, description="Warm restarts (SGDR); 0 = one cosine over the run."
    )
    restart_mult: PosInt = Field(
        default=1, description="Each cycle is this many times longer than the last."
    )


class OneCycle(ScheduleBase):
    kind: Literal["one_cycle"] = "one_cycle"
    pct_start: Fraction = Field(
        default=0.3, description="Fraction of the run spent increasing the LR."
    )
    div_factor: PosFloat = Field(default=25.0, description="Initial LR = lr / div_factor.")
    final_div_factor: PosFloat = Field(
        default=1e4, description="Final LR = initial LR / final_div_factor."
    )
    anneal: Literal["cos", "linear"] = Field(default="cos", description="Annealing shape.")

    @model_validator(mode="after")
    def _no_extra_warmup(self) -> OneCycle:
        # one_cycle already warms up for pct_start of the run (LR-7); a second ramp in front of it
        # would make the cycle's own start LR jump.
        if self.warmup.enabled:
            raise field_error(
                ("warmup",),
                "one_cycle has its own warm-up phase (pct_start); remove schedule.warmup "
                "and set pct_start instead",
                self.warmup.model_dump(),
            )
        return self


class ReduceOnPlateau(ScheduleBase):
    kind: Literal["reduce_on_plateau"] = "reduce_on_plateau"
    monitor: str = Field(default="val_loss", description="Metric watched (per epoch).")
    mode: Literal["min", "max", "auto"] = Field(
        default="auto", description="auto: from the metric name."
    )
    factor: PosFloat = Field(default=0.1, lt=1, description="LR multiplier on a plateau.")
    patience: NonNegInt = Field(
        default=5, description="Epochs without improvement before reducing."
    )
    threshold: NonNegFloat = Field(default=1e-4, description="Relative improvement that counts.")
    min_lr: NonNegFloat = Field(default=0.0, description="Lower bound of the LR.")


SCHEDULE_CLASSES = {
    c.model_fields["kind"].default: c
    for c in (Constant, Step, MultiStep, Exponential, Cosine, OneCycle, ReduceOnPlateau)
}
ScheduleKind = Literal[
    "constant", "step", "multistep", "exponential", "cosine", "one_cycle", "reduce_on_plateau"
]
SCHEDULE_SPECS: Registry[type[ScheduleBase]] = Registry("schedule")
"""Schedule kind -> spec class: nnspec's (sealed) and those registered by user code."""
for _kind, _cls in SCHEDULE_CLASSES.items():
    SCHEDULE_SPECS.register(_kind, _cls)
SCHEDULE_SPECS.seal()

ScheduleSpec = Annotated[
    Union[Constant, Step, MultiStep, Exponential, Cosine, OneCycle, ReduceOnPlateau],
    Discriminator("kind"),
    *registered(SCHEDULE_SPECS, "schedule"),
]
"""The LR schedule, or a kind registered with ``register_schedule``."""
