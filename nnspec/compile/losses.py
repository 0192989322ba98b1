"""Task-keyed losses (LOSS-1..3, OUT-3/4): one builder per loss kind, dispatched by a registry.

Every classification loss works on raw logits (LOSS-6, CONF-20); softmax/sigmoid are applied only
at inference (:mod:`nnspec.run.predict`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from nnspec.errors import Problem, SpecError
from nnspec.registry import Registry
from nnspec.spec.optim import LossBase, LossKind, LossSpec

__all__ = ["TargetStats", "LOSSES", "build_loss"]


@dataclass(frozen=True)
class TargetStats:
    """What a loss needs to know about the training targets ('balanced' weights).

    Attributes:
        class_counts: classification: samples per class; binary/multilabel: positives per output.
        n: number of training samples.
    """

    class_counts: torch.Tensor
    n: int


LossBuilder = Callable[[Any, "TargetStats | None", int], nn.Module]
LOSSES: Registry[LossBuilder] = Registry("loss")


def _explicit_weights(values: tuple[float, ...], n_out: int, field: str) -> torch.Tensor:
    if len(values) != n_out:
        raise SpecError(
            Problem(
                path=("loss", field),
                message=f"{field} needs one weight per output",
                expected=f"{n_out} values",
                found=f"{len(values)} values",
                fix=f"give {n_out} weights or 'balanced'",
            )
        )
    return torch.tensor(values, dtype=torch.float32)


def _cross_entropy(spec: LossSpec, stats: TargetStats | None, n_out: int) -> nn.Module:
    weight = None
    if isinstance(spec.class_weights, tuple):
        weight = _explicit_weights(spec.class_weights, n_out, "class_weights")
    elif spec.class_weights == "balanced" and stats is not None:
        # sklearn's 'balanced' formula n / (C * count_c); empty classes get weight 0.
        counts = stats.class_counts.to(torch.float32)
        weight = torch.where(counts > 0, stats.n / (len(counts) * counts.clamp(min=1)), 0.0)
    return nn.CrossEntropyLoss(weight=weight, label_smoothing=spec.label_smoothing)


def _bce_with_logits(spec: LossSpec, stats: TargetStats | None, n_out: int) -> nn.Module:
    # `class_weights: balanced` means the same as `pos_weight: balanced` here: a BCE loss weighs
    # the two classes of each output by one factor on the positives. Explicit class weights, or
    # both fields set, are refused at validation (spec/train.py).
    balanced = "balanced" in (spec.pos_weight, spec.class_weights)
    pos_weight = None
    if isinstance(spec.pos_weight, tuple):
        pos_weight = _explicit_weights(spec.pos_weight, n_out, "pos_weight")
    elif isinstance(spec.pos_weight, float):
        pos_weight = torch.full((n_out,), spec.pos_weight)
    elif balanced and stats is not None:
        pos = stats.class_counts.to(torch.float32).clamp(min=1)
        pos_weight = (stats.n - pos).clamp(min=1) / pos  # neg / pos per output
    return nn.BCEWithLogitsLoss(pos_weight=pos_weight)


LOSSES.register("cross_entropy", _cross_entropy)
LOSSES.register("bce_with_logits", _bce_with_logits)
LOSSES.register("mse", lambda spec, stats, n: nn.MSELoss())
LOSSES.register("mae", lambda spec, stats, n: nn.L1Loss())
LOSSES.register("huber", lambda spec, stats, n: nn.HuberLoss(delta=spec.delta))
LOSSES.register("smooth_l1", lambda spec, stats, n: nn.SmoothL1Loss(beta=spec.delta))
LOSSES.seal()  # user kinds: nnspec.register_loss (nnspec.compile.components)


def build_loss(
    kind: LossKind | str, spec: LossBase, n_out: int, stats: TargetStats | None = None
) -> nn.Module:
    """Build the loss module for a resolved loss kind.

    Args:
        kind: resolved loss kind (never ``auto``).
        spec: the loss section (label smoothing, weights, delta).
        n_out: output width (classes or targets), for per-output weights.
        stats: training-target statistics; needed only for ``balanced`` weights.

    Example:
        >>> build_loss("huber", LossSpec(delta=2.0), 1).delta
        2.0
    """
    return LOSSES[kind](spec, stats, n_out)
