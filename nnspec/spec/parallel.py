"""Data-parallel settings of ``train`` (strategy, LR scaling): names, the rule and its check.

The fields live on :class:`~nnspec.spec.train.TrainSpec`; this module holds what they are made of,
so the training spec stays one concern per file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic_core import InitErrorDetails, PydanticCustomError

if TYPE_CHECKING:
    from nnspec.spec.train import TrainSpec

__all__ = ["Strategy", "LRScaling", "scaled_lr", "scaling_needs_lr"]

Strategy = Literal["auto", "none", "ddp", "fsdp"]
LRScaling = Literal["none", "linear", "sqrt"]


def scaled_lr(lr: float, batch_size: int, train: TrainSpec) -> float:
    """``optim.lr`` after ``train.lr_scaling`` for a global batch of ``batch_size``.

    linear: ``lr * b / ref`` (Goyal et al., the rule for SGD); sqrt: ``lr * sqrt(b / ref)``
    (the usual rule for Adam-type optimizers); none: ``lr``.

    Example:
        >>> from nnspec.spec.train import TrainSpec
        >>> t = TrainSpec(lr_scaling="linear", lr_reference_batch_size=64)
        >>> scaled_lr(0.1, 256, t)
        0.4
    """
    ref = train.lr_reference_batch_size
    if train.lr_scaling == "none" or ref is None:
        return lr
    ratio = batch_size / ref
    return lr * (ratio if train.lr_scaling == "linear" else ratio**0.5)


def scaling_needs_lr(exp: Any) -> list[InitErrorDetails]:
    """lr_scaling needs a number to scale: the LR range test (``optim.lr: auto``) already measures
    at the run's own batch size, so scaling its result would count the batch twice."""
    if exp.train.lr_scaling == "none" or exp.optim.lr != "auto":
        return []
    message = (
        f"lr_scaling '{exp.train.lr_scaling}' scales a learning rate chosen for "
        "train.lr_reference_batch_size, and optim.lr is auto (the LR range test already runs at "
        "data.batch_size); fix: give optim.lr a number, or set train.lr_scaling: none"
    )
    error = PydanticCustomError("nnspec_rule", message)
    return [InitErrorDetails(type=error, loc=("train", "lr_scaling"), input=exp.train.lr_scaling)]
