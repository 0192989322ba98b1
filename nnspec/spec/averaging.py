"""Averaged weights: an exponential moving average (``train.ema``) or stochastic weight
averaging (``train.swa``), both computed by ``torch.optim.swa_utils`` in the run layer
(:mod:`nnspec.run.averaging`). Validation, the best epoch, the test metrics and ``model.pt`` use
the averaged weights.
"""

# No `from __future__ import annotations` in the schema modules (see nnspec.spec.base).

from typing import Literal

from pydantic import Field

from nnspec.spec.base import Fraction, PosFloat, PosInt, Spec

__all__ = ["EmaSpec", "SwaSpec"]


class EmaSpec(Spec):
    """An exponential moving average of the weights, updated after optimizer steps:
    ``avg = decay * avg + (1 - decay) * weights`` (``swa_utils.get_ema_multi_avg_fn``); buffers
    (batch-norm statistics) are averaged too."""

    decay: Fraction = Field(
        default=0.999,
        description="Weight of the running average per update; 1 - decay is the new weights' "
        "share (0.999: about the last 1,000 updates count).",
    )
    every_n_steps: PosInt = Field(default=1, description="Update after every this many steps.")


class SwaSpec(Spec):
    """Stochastic weight averaging (Izmailov et al. 2018): from ``start_epoch`` on, the LR follows
    ``swa_utils.SWALR`` to ``lr`` and the weights at the end of every epoch are averaged equally;
    batch-norm statistics of the average are recomputed over the training data at the end
    (``swa_utils.update_bn``)."""

    start_epoch: PosInt = Field(description="First epoch whose weights enter the average.")
    lr: PosFloat = Field(description="The constant LR of the averaging phase (SWALR's swa_lr).")
    anneal_epochs: PosInt = Field(
        default=5, description="Epochs to move from the schedule's LR to `lr`."
    )
    anneal_strategy: Literal["cos", "linear"] = Field(
        default="cos", description="Shape of that move (SWALR's anneal_strategy)."
    )
