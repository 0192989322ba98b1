"""Loss and optimizer sections."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Final, Literal, Union, get_args

from pydantic import Discriminator, Field, model_validator

from nnspec.registry import Registry
from nnspec.spec.base import NonNegFloat, PosFloat, Prob, Spec, field_error
from nnspec.spec.kinds import registered

__all__ = [
    "LossKind",
    "LossBase",
    "LossSpec",
    "LossField",
    "LOSS_SPECS",
    "OptimKind",
    "OptimBase",
    "OptimSpec",
    "OPTIM_CLASSES",
    "OPTIM_SPECS",
    "UNSUPPORTED_OPTIMIZERS",
]

LossKind = Literal["auto", "cross_entropy", "bce_with_logits", "mse", "mae", "huber", "smooth_l1"]


class LossBase(Spec):
    """Base of user-registered loss specs (``nnspec.register_loss``): declare
    ``kind: Literal["<name>"] = "<name>"`` and the loss's own fields."""


class LossSpec(LossBase):
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


class OptimBase(Spec):
    """Fields every optimizer has; user-registered optimizer specs subclass it
    (``nnspec.register_optimizer``)."""

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


class SGD(OptimBase):
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


class Adam(OptimBase):
    kind: Literal["adam"] = "adam"
    betas: Betas = Field(default=(0.9, 0.999), description="Adam betas (OPT-2).")
    eps: PosFloat = Field(default=1e-8, description="Denominator epsilon.")
    amsgrad: bool = Field(default=False, description="AMSGrad variant.")


class AdamW(Adam):
    kind: Literal["adamw"] = "adamw"  # type: ignore[assignment]
    weight_decay: NonNegFloat = Field(default=0.01, description="Decoupled weight decay (OPT-9).")


class NAdam(OptimBase):
    kind: Literal["nadam"] = "nadam"
    lr: LR = Field(default=2e-3, description="Learning rate.")
    betas: Betas = Field(default=(0.9, 0.999), description="Betas.")
    eps: PosFloat = Field(default=1e-8, description="Denominator epsilon.")
    momentum_decay: NonNegFloat = Field(default=4e-3, description="Momentum decay.")


class RAdam(OptimBase):
    kind: Literal["radam"] = "radam"
    betas: Betas = Field(default=(0.9, 0.999), description="Betas.")
    eps: PosFloat = Field(default=1e-8, description="Denominator epsilon.")


class RMSprop(OptimBase):
    kind: Literal["rmsprop"] = "rmsprop"
    lr: LR = Field(default=1e-2, description="Learning rate.")
    alpha: Prob = Field(default=0.99, description="Smoothing constant.")
    eps: PosFloat = Field(default=1e-8, description="Denominator epsilon.")
    momentum: Prob = Field(default=0.0, description="Momentum.")
    centered: bool = Field(default=False, description="Centred RMSprop.")


class Adamax(OptimBase):
    kind: Literal["adamax"] = "adamax"
    lr: LR = Field(default=2e-3, description="Learning rate.")
    betas: Betas = Field(default=(0.9, 0.999), description="Betas.")
    eps: PosFloat = Field(default=1e-8, description="Denominator epsilon.")


class Adagrad(OptimBase):
    kind: Literal["adagrad"] = "adagrad"
    lr: LR = Field(default=1e-2, description="Learning rate.")
    lr_decay: NonNegFloat = Field(default=0.0, description="Learning-rate decay.")
    eps: PosFloat = Field(default=1e-10, description="Denominator epsilon.")


class Adadelta(OptimBase):
    kind: Literal["adadelta"] = "adadelta"
    lr: LR = Field(default=1.0, description="Learning rate (scales the delta).")
    rho: Prob = Field(default=0.9, description="Running-average coefficient.")
    eps: PosFloat = Field(default=1e-6, description="Denominator epsilon.")


class ASGD(OptimBase):
    kind: Literal["asgd"] = "asgd"
    lr: LR = Field(default=1e-2, description="Learning rate.")
    lambd: NonNegFloat = Field(default=1e-4, description="Decay term.")
    alpha: NonNegFloat = Field(default=0.75, description="Power for the eta update.")
    t0: NonNegFloat = Field(default=1e6, description="Step at which averaging starts.")


class Rprop(OptimBase):
    kind: Literal["rprop"] = "rprop"
    lr: LR = Field(default=1e-2, description="Initial step size.")
    etas: tuple[PosFloat, PosFloat] = Field(
        default=(0.5, 1.2), description="Multiplicative decrease and increase factors."
    )
    step_sizes: tuple[PosFloat, PosFloat] = Field(
        default=(1e-6, 50.0), description="Minimal and maximal step sizes."
    )

    @model_validator(mode="after")
    def _no_decay(self) -> Rprop:
        # torch's Rprop has no weight decay: a value here would be silently ignored
        if self.weight_decay:
            raise field_error(
                ("weight_decay",),
                "rprop has no weight decay (torch.optim.Rprop takes none); fix: remove "
                "optim.weight_decay, or use optim.l1",
                self.weight_decay,
            )
        return self


class Adafactor(OptimBase):
    kind: Literal["adafactor"] = "adafactor"
    lr: LR = Field(default=1e-2, description="Learning rate.")
    beta2_decay: float = Field(default=-0.8, le=0, description="Decay rate of beta2.")
    eps: tuple[PosFloat | None, PosFloat] = Field(
        default=(None, 1e-3), description="Epsilons of the denominator and of the update."
    )
    d: PosFloat = Field(default=1.0, description="Clipping threshold of the update's RMS.")


_OPTIMS = (
    SGD, Adam, AdamW, NAdam, RAdam, RMSprop, Adamax, Adagrad, Adadelta, ASGD, Rprop, Adafactor,
)  # fmt: skip
OPTIM_CLASSES = {c.model_fields["kind"].default: c for c in _OPTIMS}
"""nnspec's own optimizer kinds -> spec class: every ``torch.optim`` optimizer the loop can drive
(a test checks this table against ``torch.optim``)."""
OptimKind = Literal[
    "sgd", "adam", "adamw", "nadam", "radam", "rmsprop", "adamax", "adagrad", "adadelta", "asgd",
    "rprop", "adafactor",
]  # fmt: skip

UNSUPPORTED_OPTIMIZERS: Final[Mapping[str, str]] = MappingProxyType({
    "lbfgs": "torch.optim.LBFGS re-evaluates the loss through a closure in step(), which "
    "nnspec's loop does not pass; fix: use another optimizer, e.g. adamw",
    "sparseadam": "torch.optim.SparseAdam needs sparse gradients, which no nnspec layer "
    "produces; fix: use adam",
    "muon": "torch.optim.Muon only takes 2-D parameters, and biases and norms need a second "
    "optimizer; fix: register one that splits the groups (nnspec.register_optimizer)",
})  # fmt: skip
"""``torch.optim`` optimizers nnspec does not offer (lower-case class name) -> why; the table
test checks ``OPTIM_CLASSES`` plus these against ``torch.optim``."""

OPTIM_SPECS: Registry[type[OptimBase]] = Registry("optimizer")
"""Optimizer kind -> spec class: nnspec's (sealed) and those registered by user code."""
for _kind, _cls in OPTIM_CLASSES.items():
    OPTIM_SPECS.register(_kind, _cls)
OPTIM_SPECS.seal()

OptimSpec = Annotated[
    Union[SGD, Adam, AdamW, NAdam, RAdam, RMSprop, Adamax, Adagrad, Adadelta, ASGD, Rprop,
          Adafactor],
    Discriminator("kind"),
    *registered(OPTIM_SPECS, "optimizer", refused=UNSUPPORTED_OPTIMIZERS),
]  # fmt: skip
"""The optimizer (OPT-1: AdamW by default), or a kind registered with ``register_optimizer``."""

__all__ += [c.__name__ for c in OPTIM_CLASSES.values()]

# ---- task-keyed losses (LOSS-1..3, OUT-3/4): pure data, read by the spec rules and the plan ----

DEFAULT_LOSS: dict[str, LossKind] = {
    "classification": "cross_entropy",  # LOSS-2, OUT-4: C logits
    "binary": "bce_with_logits",  # LOSS-2, OUT-3: one logit
    "multilabel": "bce_with_logits",  # one logit per label
    "regression": "mse",  # LOSS-3
}
LOSS_TASKS: Registry[frozenset[str]] = Registry("loss")
"""Which tasks each loss fits (LOSS-1): e.g. ``mse`` with ``task: classification`` is refused."""
LOGIT_LOSSES: Registry[bool] = Registry("logit loss")
"""Losses that apply softmax/sigmoid themselves (CONF-20): the model must output raw logits."""
LOSS_SPECS: Registry[type[LossBase]] = Registry("loss")
"""Loss kind -> spec class: every built-in kind is :class:`LossSpec`; user kinds their own."""
for _kind, _tasks in (
    ("cross_entropy", {"classification"}),
    ("bce_with_logits", {"binary", "multilabel"}),
    ("mse", {"regression"}),
    ("mae", {"regression"}),
    ("huber", {"regression"}),
    ("smooth_l1", {"regression"}),
):
    LOSS_TASKS.register(_kind, frozenset(_tasks))
for _kind in ("cross_entropy", "bce_with_logits"):
    LOGIT_LOSSES.register(_kind, True)
for _kind in get_args(LossKind):
    LOSS_SPECS.register(_kind, LossSpec)
for _table in (LOSS_TASKS, LOGIT_LOSSES, LOSS_SPECS):
    _table.seal()

LossField = Annotated[LossSpec, *registered(LOSS_SPECS, "loss", default="auto")]
"""The ``loss`` section: :class:`LossSpec` for nnspec's kinds, or a user-registered loss spec."""


def resolve_loss_kind(task: str, loss: LossBase) -> str:
    """The loss a task uses: ``loss.kind`` unless it is ``auto``.

    Example:
        >>> resolve_loss_kind("binary", LossSpec())
        'bce_with_logits'
    """
    kind: str = getattr(loss, "kind", "auto")
    return DEFAULT_LOSS[task] if kind == "auto" else kind


__all__ += ["DEFAULT_LOSS", "LOSS_TASKS", "LOGIT_LOSSES", "resolve_loss_kind"]
