"""Opt-in training monitors (MON-1/2/3, ``train.monitors``): a training callback.

:class:`TrainingMonitor` samples the per-layer gradient norms before every ``SAMPLE_EVERY``-th
optimizer step (before clipping; kept on tensors, no host sync), adds its columns to each epoch's
row at ``on_validation_end`` (gradient norms, dead-unit fractions) with its warnings, and prints
the fit diagnosis (:func:`diagnose_fit`) at the end. ``nnspec.train`` adds it when a monitor is
on; with every monitor off there is none (:func:`make_monitor` returns ``None``) and the loop
makes no call for it.

The loop's NaN and divergence guards are not here: they are the loop's own behaviour (a run that
diverges stops with a TrainError), not a diagnosis.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import torch
from torch import nn

from nnspec.check.gradflow import activation_stats
from nnspec.run.callbacks import Callback, FitState
from nnspec.spec.train import MonitorsSpec

__all__ = ["TrainingMonitor", "make_monitor", "diagnose_fit", "SAMPLE_EVERY"]

SAMPLE_EVERY: Final = 10  # steps between gradient-norm samples
VANISHING_RATIO: Final = 1e-4  # MON-2 [nnspec choice]: first / last layer gradient norm
EXPLODING_NORM: Final = 1e3  # MON-2 [nnspec choice]: global gradient norm
EXPLODING_GROWTH: Final = 10.0  # MON-2: global norm grew 10x since the previous epoch
DEAD_ALARM: Final = 0.5  # MON-3 [nnspec choice]
RISING_EPOCHS: Final = 3  # LR-1 / MON-1: evaluations in a row
OVERFIT_RISE: Final = 1.2  # MON-1: final val loss >= 1.2 x its best
UNDERFIT_LEFT: Final = 0.5  # train loss still >= half of the first epoch's
UNDERFIT_GAP: Final = 0.2  # ... and val within 20 % of train


class TrainingMonitor(Callback):
    """Per-layer gradient norms, dead-unit fractions and runtime warnings for one run.

    Args:
        grad_norms: Log ``grad_norm/<layer>`` (epoch mean of the sampled norms).
        dead_units: Log ``dead/<layer>`` on a fixed probe batch (MON-3).
        warn: Emit warnings on vanishing/exploding gradients and a rising loss (and on dead
            layers when ``dead_units`` is on), and the fit diagnosis at the end.

    The model, the warnings' printer and the probe batch come from the run at ``on_fit_start``
    (or :meth:`bind`).
    """

    every_n_steps = SAMPLE_EVERY

    def __init__(self, *, grad_norms: bool, dead_units: bool, warn: bool) -> None:
        self.grad_norms, self.dead_units, self.warn = grad_norms, dead_units, warn
        self.model: nn.Module | None = None
        self.message: Callable[[str], None] = print
        self.probe: torch.Tensor | None = None
        self.names: list[str] = []
        self.params: list[nn.Parameter] = []
        self._sum: torch.Tensor | None = None
        self._samples = 0
        self._last_global: float | None = None
        self._train_losses: list[float] = []

    def bind(
        self, model: nn.Module, message: Callable[[str], None], probe: torch.Tensor | None
    ) -> None:
        """Watch ``model``; warnings go to ``message``; ``probe``: inputs for dead units."""
        self.model, self.message, self.probe = model, message, probe
        self.names = [n.removesuffix(".weight") for n, p in model.named_parameters() if p.ndim > 1]
        self.params = [p for p in model.parameters() if p.ndim > 1]

    def on_fit_start(self, state: FitState) -> None:
        self.bind(state.model, state.message, state.probe)

    def on_before_optimizer_step(self, state: FitState) -> None:
        self.sample_gradients()

    def on_validation_end(self, state: FitState) -> None:
        state.log(self.end_epoch(state.metrics))

    def on_fit_end(self, state: FitState) -> None:
        if self.warn:
            state.message(diagnose_fit(state.history)[1])  # MON-1: train/val gap report

    def sample_gradients(self) -> None:
        """Add the current per-layer gradient norms to the epoch's sums."""
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        if not grads:
            return
        norms = torch.stack([g.detach().norm() for g in grads]).float()
        self._sum = norms if self._sum is None else self._sum + norms
        self._samples += 1

    def end_epoch(self, row: Mapping[str, Any]) -> dict[str, float]:
        """Metrics to log with this epoch's row; warnings go to ``message``."""
        out: dict[str, float] = {}
        if self._sum is not None and self._samples:
            mean = (self._sum / self._samples).tolist()
            if self.grad_norms:
                out.update({f"grad_norm/{n}": v for n, v in zip(self.names, mean, strict=True)})
            if self.warn:
                self._gradient_warnings(row["epoch"], mean)
        self._sum, self._samples = None, 0
        if self.dead_units and self.probe is not None:  # a probe forward: only when asked for
            out.update(self._dead(row["epoch"]))
        if self.warn:
            self._loss_warning(row)
        return out

    def _gradient_warnings(self, epoch: int, mean: list[float]) -> None:
        total = math.sqrt(sum(v * v for v in mean))
        if not math.isfinite(total) or total > EXPLODING_NORM:
            self.message(f"monitor: epoch {epoch}: exploding gradients (global norm {total:.3g}, "
                         "MON-2); fix: lower the learning rate or clip by norm")  # fmt: skip
        elif self._last_global and total > EXPLODING_GROWTH * self._last_global:
            growth = total / self._last_global
            self.message(f"monitor: epoch {epoch}: gradient norm grew {growth:.0f}x in one epoch "
                         "(MON-2); fix: lower the learning rate or clip by norm")  # fmt: skip
        if mean[-1] > 0 and mean[0] / mean[-1] < VANISHING_RATIO:
            self.message(f"monitor: epoch {epoch}: vanishing gradients (first/last layer ratio "
                         f"{mean[0] / mean[-1]:.2g}, MON-2); fix: check input scaling and init "
                         "first (DATA-4, INIT-1), then add normalization or residuals")  # fmt: skip
        self._last_global = total

    def _dead(self, epoch: int) -> dict[str, float]:
        assert self.model is not None and self.probe is not None  # bound at on_fit_start
        was = self.model.training
        self.model.eval()  # running statistics untouched, no dropout draws: training unchanged
        try:
            rows = activation_stats(self.model, self.probe)
        finally:
            self.model.train(was)
        out = {f"{r['stat']}/{r['layer']}": float(r["fraction"]) for r in rows}
        for r in rows:
            if self.warn and r["fraction"] > DEAD_ALARM:
                self.message(f"monitor: epoch {epoch}: {r['fraction']:.0%} of {r['layer']}'s units "
                             f"{r['stat']} (MON-3); fix: lower the learning rate first, then "
                             "leaky_relu / prelu")  # fmt: skip
        return out

    def _loss_warning(self, row: Mapping[str, Any]) -> None:
        self._train_losses.append(float(row.get("train_loss", math.nan)))
        if _rose(self._train_losses):
            self.message(f"monitor: epoch {row['epoch']}: training loss rose {RISING_EPOCHS} "
                         "epochs in a row: the learning rate is likely too high (LR-1); fix: "
                         "run `nnspec lr-find SPEC`")  # fmt: skip


def _rose(values: Sequence[float]) -> bool:
    """True when the last ``RISING_EPOCHS`` values each rose above the one before."""
    tail = values[-(RISING_EPOCHS + 1) :]
    return len(tail) == RISING_EPOCHS + 1 and all(b > a for a, b in itertools.pairwise(tail))


def make_monitor(monitors: MonitorsSpec) -> TrainingMonitor | None:
    """The monitor for ``train.monitors`` (a ``MonitorsSpec``), or ``None`` when all are off."""
    if not (monitors.grad_norms or monitors.dead_units or monitors.warn):
        return None
    return TrainingMonitor(
        grad_norms=monitors.grad_norms, dead_units=monitors.dead_units, warn=monitors.warn
    )


def diagnose_fit(rows: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """Train/val gap diagnosis at the end of a run (MON-1): (label, one-line report).

    Labels: ``overfitting`` (val loss rose 3 evaluations in a row while train loss fell, or ends
    >= 1.2x its best), ``underfitting`` (train loss still >= half its first value and val within
    20 % of it), ``healthy``, or ``unknown`` (no validation loss, or fewer than 2 epochs of it).

    Example:
        >>> rows = [{"train_loss": t, "val_loss": v} for t, v in [(1, 1), (.5, .6), (.3, .5)]]
        >>> diagnose_fit(rows)[0]
        'healthy'
    """
    train = [float(r["train_loss"]) for r in rows if "train_loss" in r]
    val = [float(r["val_loss"]) for r in rows if "val_loss" in r]
    if not val or len(train) != len(val):
        return "unknown", "fit diagnosis: no validation loss to compare with"
    if len(val) < 2:
        return "unknown", "fit diagnosis: needs at least 2 epochs of validation loss"
    best, last, gap = min(val), val[-1], (val[-1] - train[-1]) / max(abs(train[-1]), 1e-12)
    rising = _rose(val)
    falling = _rose([-t for t in train])
    # The gap in loss units: as a ratio it explodes once the train loss nears 0 (a healthy
    # 0.004 vs 0.023 would read "+541%").
    numbers = (
        f"train loss {train[-1]:.4g}, val loss {last:.4g} (best {best:.4g}), "
        f"val - train {last - train[-1]:+.3g}"
    )
    if (rising and falling) or last >= OVERFIT_RISE * best:
        return "overfitting", (
            f"fit diagnosis: overfitting ({numbers}); try, in order: more data, augmentation, "
            "a smaller model, dropout, weight decay, early stopping (REG-2)"
        )
    if train[-1] >= UNDERFIT_LEFT * train[0] and abs(gap) <= UNDERFIT_GAP:
        return "underfitting", (
            f"fit diagnosis: underfitting ({numbers}); try a bigger model, a higher learning "
            "rate (`nnspec lr-find`) or longer training (ARCH-6)"
        )
    return "healthy", f"fit diagnosis: healthy ({numbers})"
