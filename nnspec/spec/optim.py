"""Loss and optimizer sections."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Discriminator, Field, model_validator

from nnspec.spec.base import NonNegFloat, PosFloat, Prob, Spec, field_error

__all__ = ["LossKind", "LossSpec", "OptimKind", "OptimSpec", "OPTIM_CLASSES"]

LossKind = Literal["auto", "cross_entropy", "bce_with_logits", "mse", "mae", "huber", "smooth_l1"]


class LossSpec(Spec):
    """The loss; ``auto`` picks by task (LOSS-1..3): classification -> cross_entropy,
    binary/multilabel -> bce_with_logits, regression -> mse."""

    kind: LossKind = Field(default="auto", description="Loss function; auto = from the task.")
    label_smoothing: Prob = Field(default=0.0, description="cross_entropy only.")
    class_weights: Literal["none", "balanced"] | tuple[PosFloat, ...] = Field(
        default="none",
        description="cross_entropy: per-class weights, or 'balanced' from training counts.",
    )
    pos_weight: Literal["none", "balanced"] | PosFloat | tuple[PosFloat, ...] = Field(
        default="none",
        description="bce_with_logits: weight of positives ('balanced' = neg/pos counts).",
    )
    delta: PosFloat = Field(default=1.0, description="huber / smooth_l1 threshold (beta).")


LR = Union[PosFloat, Literal["auto"]]
Betas = tuple[Prob, Prob]


class _Optim(Spec):
    lr: LR = Field(default=1e-3, description="Learning rate; 'auto' runs the LR range test first.")
    weight_decay: NonNegFloat = Field(
        default=0.0, description="L2 / decoupled weight decay (REG-8)."
    )
    l1: NonNegFloat = Field(
        default=0.0, description="L1 penalty on weights added to the loss (REG-9)."
    )
    decay_norm_and_bias: bool = Field(
        default=False,
        description="Apply weight decay to biases and norm parameters too (default: no).",
    )


class SGD(_Optim):
    kind: Literal["sgd"] = "sgd"
    lr: LR = Field(default=0.01, description="Learning rate.")
    momentum: Prob = Field(default=0.9, description="Momentum (OPT-7).")
    nesterov: bool = Field(default=False, description="Nesterov momentum (OPT-8).")
    dampening: Prob = Field(default=0.0, description="Dampening for momentum.")

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> SGD:
        # OPT-8: torch raises at construction; report it at spec time, on the field.
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise field_error(
                ("nesterov",),
                "nesterov momentum needs momentum > 0 and dampening = 0 (OPT-8); "
                f"found momentum={self.momentum}, dampening={self.dampening}",
                self.nesterov,
            )
        return self


class Adam(_Optim):
    kind: Literal["adam"] = "adam"
    betas: Betas = Field(default=(0.9, 0.999), description="Adam betas (OPT-2).")
    eps: PosFloat = Field(default=1e-8, description="Denominator epsilon.")
    amsgrad: bool = Field(default=False, description="AMSGrad variant.")


class AdamW(Adam):
    kind: Literal["adamw"] = "adamw"  # type: ignore[assignment]
    weight_decay: NonNegFloat = Field(default=0.01, description="Decoupled weight decay (OPT-9).")


class NAdam(_Optim):
    kind: Literal["nadam"] = "nadam"
    lr: LR = Field(default=2e-3, description="Learning rate.")
    betas: Betas = Field(default=(0.9, 0.999), description="Betas.")
    eps: PosFloat = Field(default=1e-8, description="Denominator epsilon.")
    momentum_decay: NonNegFloat = Field(default=4e-3, description="Momentum decay.")


class RAdam(_Optim):
    kind: Literal["radam"] = "radam"
    betas: Betas = Field(default=(0.9, 0.999), description="Betas.")
    eps: PosFloat = Field(default=1e-8, description="Denominator epsilon.")


class RMSprop(_Optim):
    kind: Literal["rmsprop"] = "rmsprop"
    lr: LR = Field(default=1e-2, description="Learning rate.")
    alpha: Prob = Field(default=0.99, description="Smoothing constant.")
    eps: PosFloat = Field(default=1e-8, description="Denominator epsilon.")
    momentum: Prob = Field(default=0.0, description="Momentum.")
    centered: bool = Field(default=False, description="Centred RMSprop.")


class Adamax(_Optim):
    kind: Literal["adamax"] = "adamax"
    lr: LR = Field(default=2e-3, description="Learning rate.")
    betas: Betas = Field(default=(0.9, 0.999), description="Betas.")
    eps: PosFloat = Field(default=1e-8, description="Denominator epsilon.")


class Adagrad(_Optim):
    kind: Literal["adagrad"] = "adagrad"
    lr: LR = Field(default=1e-2, description="Learning rate.")
    lr_decay: NonNegFloat = Field(default=0.0, description="Learning-rate decay.")
    eps: PosFloat = Field(default=1e-10, description="Denominator epsilon.")


OPTIM_CLASSES = {
    c.model_fields["kind"].default: c
    for c in (SGD, Adam, AdamW, NAdam, RAdam, RMSprop, Adamax, Adagrad)
}
OptimKind = Literal["sgd", "adam", "adamw", "nadam", "radam", "rmsprop", "adamax", "adagrad"]
OptimSpec = Annotated[
    Union[SGD, Adam, AdamW, NAdam, RAdam, RMSprop, Adamax, Adagrad], Discriminator("kind")
]
"""The optimizer (OPT-1: AdamW by default)."""

__all__ += [c.__name__ for c in OPTIM_CLASSES.values()]

# ---- task-keyed losses (LOSS-1..3, OUT-3/4): pure data, read by the spec rules and the plan ----

DEFAULT_LOSS: dict[str, LossKind] = {
    "classification": "cross_entropy",  # LOSS-2, OUT-4: C logits
    "binary": "bce_with_logits",  # LOSS-2, OUT-3: one logit
    "multilabel": "bce_with_logits",  # one logit per label
    "regression": "mse",  # LOSS-3
}
LOSS_TASKS: dict[LossKind, frozenset[str]] = {
    "cross_entropy": frozenset({"classification"}),
    "bce_with_logits": frozenset({"binary", "multilabel"}),
    "mse": frozenset({"regression"}),
    "mae": frozenset({"regression"}),
    "huber": frozenset({"regression"}),
    "smooth_l1": frozenset({"regression"}),
}
"""Which tasks each loss fits (LOSS-1): e.g. ``mse`` with ``task: classification`` is refused."""
LOGIT_LOSSES: frozenset[str] = frozenset({"cross_entropy", "bce_with_logits"})
"""Losses that apply softmax/sigmoid themselves (CONF-20): the model must output raw logits."""


def resolve_loss_kind(task: str, loss: LossSpec) -> LossKind:
    """The loss a task uses: ``loss.kind`` unless it is ``auto``.

    Example:
        >>> resolve_loss_kind("binary", LossSpec())
        'bce_with_logits'
    """
    return DEFAULT_LOSS[task] if loss.kind == "auto" else loss.kind


__all__ += ["DEFAULT_LOSS", "LOSS_TASKS", "LOGIT_LOSSES", "resolve_loss_kind"]
