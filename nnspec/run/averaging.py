"""Averaged weights: ``train.ema`` (an exponential moving average updated after optimizer steps)
and ``train.swa`` (stochastic weight averaging of the weights at the end of each epoch from
``start_epoch``, with ``SWALR``), both computed by ``torch.optim.swa_utils`` (``AveragedModel``,
``get_ema_multi_avg_fn``, ``SWALR``, ``update_bn``), never by hand.

Once the average holds at least one update, the trainer validates it (so early stopping, the best
epoch and ``best.pt`` follow the averaged weights) and the run's ``model.pt`` and test metrics are
the average's. Batch-norm statistics: EMA averages the buffers with the weights; SWA recomputes
them over the training data (``update_bn``) before each validation of the averaging phase and at
the end, because an average of weights has no statistics of its own. The average, its update
count and the SWALR state are part of every checkpoint, so a resumed run continues the same
average.

On CUDA, ``AveragedModel.update_parameters`` reads its update count on the host once per update
(torch's code); an EMA updated every step costs that one read per step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn
from torch.optim import swa_utils

from nnspec.spec.train import TrainSpec

__all__ = ["Averaging", "PausedSchedule", "make_averaging"]

_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


class Averaging:
    """The averaged copy of a model and when it is updated.

    Args:
        model: the trained model (the average starts as a copy of it).
        train: the run's ``train`` section (``ema`` or ``swa`` set).
        optimizer: the run's optimizer (SWALR sets its learning rates).
    """

    def __init__(self, model: nn.Module, train: TrainSpec, optimizer: torch.optim.Optimizer):
        self.ema, self.swa, self.optimizer = train.ema, train.swa, optimizer
        if self.ema is not None:
            avg_fn = swa_utils.get_ema_multi_avg_fn(self.ema.decay)
            self.averaged = swa_utils.AveragedModel(model, multi_avg_fn=avg_fn, use_buffers=True)
        else:  # SWA: an equal average of the parameters; BN statistics come from update_bn
            self.averaged = swa_utils.AveragedModel(model)
        self.updates = 0  # counted here too, so deciding needs no read of a device tensor
        self.swalr: swa_utils.SWALR | None = None
        self.has_bn = any(isinstance(m, _BATCH_NORMS) for m in model.modules())

    # ---- when it changes ----

    def in_swa_phase(self, epoch: int) -> bool:
        """True from SWA's ``start_epoch`` on (the base schedule then stops stepping)."""
        return self.swa is not None and epoch >= self.swa.start_epoch

    def begin_epoch(self, epoch: int) -> None:
        """At SWA's first averaged epoch, SWALR takes over the learning rate."""
        if self.in_swa_phase(epoch) and self.swalr is None:
            self.swalr = self._swalr()

    def _swalr(self) -> swa_utils.SWALR:
        swa = self.swa
        assert swa is not None
        return swa_utils.SWALR(
            self.optimizer, swa_lr=swa.lr, anneal_epochs=swa.anneal_epochs,
            anneal_strategy=swa.anneal_strategy,
        )  # fmt: skip

    def after_step(self, model: nn.Module, step: int) -> None:
        """EMA: fold the new weights in every ``every_n_steps`` steps."""
        if self.ema is not None and step % self.ema.every_n_steps == 0:
            self.averaged.update_parameters(model)
            self.updates += 1

    def end_epoch(self, model: nn.Module, epoch: int, batches: Callable[[], Iterable[Any]]) -> None:
        """SWA: average this epoch's weights, advance SWALR, refresh BN statistics."""
        if not self.in_swa_phase(epoch):
            return
        self.averaged.update_parameters(model)
        self.updates += 1
        assert self.swalr is not None  # created by begin_epoch of this epoch
        self.swalr.step()
        self.refresh_bn(batches)

    def refresh_bn(self, batches: Callable[[], Iterable[Any]]) -> None:
        """Recompute the SWA average's batch-norm statistics over the training inputs."""
        if self.swa is not None and self.has_bn and self.updates:
            swa_utils.update_bn(batches(), self.averaged)

    # ---- what is evaluated ----

    @property
    def active(self) -> bool:
        """The average holds at least one update (before that, the model itself is evaluated)."""
        return self.updates > 0

    @property
    def module(self) -> nn.Module:
        """The averaged network (same ``state_dict`` keys as the model)."""
        return self.averaged.module

    # ---- checkpoints ----

    def state_dict(self) -> dict[str, Any]:
        return {
            "averaged": self.averaged.state_dict(),
            "updates": self.updates,
            "swalr": self.swalr.state_dict() if self.swalr is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the average (call after the optimizer's state is loaded)."""
        self.averaged.load_state_dict(state["averaged"])
        self.updates = int(state["updates"])
        if state.get("swalr") is not None:
            # SWALR's constructor steps once and so sets the LRs; the checkpoint's stand
            lrs = [group["lr"] for group in self.optimizer.param_groups]
            self.swalr = self._swalr()
            self.swalr.load_state_dict(state["swalr"])
            for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
                group["lr"] = lr


class PausedSchedule:
    """The run's LR schedule, paused while SWALR sets the learning rate (the SWA phase)."""

    def __init__(self, schedule: Any, averaging: Averaging) -> None:
        self.schedule, self.averaging = schedule, averaging

    def step_batch(self) -> None:
        if self.averaging.swalr is None:
            self.schedule.step_batch()

    def step_epoch(self, metrics: dict[str, float], *, warmup_done: bool) -> None:
        if self.averaging.swalr is None:
            self.schedule.step_epoch(metrics, warmup_done=warmup_done)

    def state_dict(self) -> dict[str, Any]:
        return dict(self.schedule.state_dict())

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.schedule.load_state_dict(state)


def make_averaging(
    model: nn.Module, train: TrainSpec, optimizer: torch.optim.Optimizer
) -> Averaging | None:
    """The run's :class:`Averaging`, or None when neither ``ema`` nor ``swa`` is set."""
    if train.ema is None and train.swa is None:
        return None
    return Averaging(model, train, optimizer)
