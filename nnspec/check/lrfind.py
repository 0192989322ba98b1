"""LR range test (Leslie Smith's LR finder, LR-3/4): ``nnspec lr-find`` and ``optim.lr: auto``.

The learning rate grows geometrically from ``start`` to ``end`` (one optimizer step per batch);
the loss is smoothed by a bias-corrected EMA and the sweep stops once the smoothed loss exceeds
``diverge`` times its minimum. The suggestion is ``min(steepest-descent LR, divergence LR / 2)``
(LR-4: the two readings of the curve, reconciled conservatively). Model and optimizer states are
restored afterwards, so the finder can run on the very objects a training then uses.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch
from torch import nn

from nnspec.check.lr_range import END, START, STEPS
from nnspec.files import atomic_write_bytes
from nnspec.spec.experiment import ExperimentSpec

__all__ = ["LRFindResult", "lr_range_test", "lr_find", "resolve_auto_lr", "suggest", "save_plot"]

BETA: Final = 0.98  # long sweeps; shorter ones average over a tenth of the sweep (see _beta)
DIVERGE: Final = 4.0


@dataclass(frozen=True)
class LRFindResult:
    """The sweep and its readings (all LRs are those of the first parameter group)."""

    lrs: tuple[float, ...]
    losses: tuple[float, ...]
    smoothed: tuple[float, ...]
    steepest_lr: float
    min_loss_lr: float
    divergence_lr: float | None
    suggested_lr: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def suggest(
    lrs: list[float], smoothed: list[float], divergence_lr: float | None
) -> tuple[float, float, float]:
    """(steepest, min-loss, suggested) from a smoothed curve.

    The steepest point is where d(smoothed loss)/d(log lr) is most negative before the minimum.

    Example:
        >>> lrs = [1e-4, 1e-3, 1e-2, 1e-1]
        >>> suggest(lrs, [2.0, 1.0, 0.9, 5.0], divergence_lr=0.1)
        (0.0001, 0.01, 0.0001)
    """
    low = int(np.argmin(smoothed))
    # The first points are averages of very few batches: their batch-to-batch noise over a tiny
    # log-lr step looks like a steep slope, so the search starts a tenth into the sweep.
    skip = min(len(lrs) // 10, max(low - 1, 0))
    if low - skip < 1:
        return lrs[0], lrs[low], lrs[0]
    slope = np.gradient(np.asarray(smoothed[skip : low + 1]), np.log10(lrs[skip : low + 1]))
    steepest = lrs[skip + int(np.argmin(slope))]
    suggested = steepest if divergence_lr is None else min(steepest, divergence_lr / 2)
    return steepest, lrs[low], suggested


def default_beta(steps: int) -> float:
    """EMA factor: the usual 0.98 for long sweeps, ``1 - 10/steps`` for short ones.

    With 0.98 the smoothed loss remembers ~50 steps, half of a 100-step sweep, so its minimum
    and the divergence are read several LR steps late; a window of a tenth of the sweep is not.

    Example:
        >>> default_beta(100), default_beta(1000)
        (0.9, 0.98)
    """
    return min(BETA, 1 - 10 / max(steps, 20))


def _set_lr(opt: torch.optim.Optimizer, lr: float, scales: list[float]) -> None:
    for group, scale in zip(opt.param_groups, scales, strict=True):
        group["lr"] = lr * scale  # keeps per-layer lr_scale ratios


@dataclass
class _Sweep:
    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    divergence: float | None = None


def _sweep(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
    schedule: list[float],
    beta: float,
    diverge: float,
    clip_norm: float | None,
) -> _Sweep:
    base = optimizer.param_groups[0]["lr"] or 1.0
    scales = [g["lr"] / base for g in optimizer.param_groups]
    out, avg = _Sweep([], [], []), 0.0
    model.train()
    for i, (lr, (xb, yb)) in enumerate(zip(schedule, batches, strict=False)):
        _set_lr(optimizer, lr, scales)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        value = float(loss.detach())
        if not math.isfinite(value):
            out.divergence = lr
            return out
        avg = beta * avg + (1 - beta) * value
        out.lrs.append(lr)
        out.losses.append(value)
        out.smoothed.append(avg / (1 - beta ** (i + 1)))  # bias-corrected EMA
        if i > 0 and out.smoothed[-1] > diverge * min(out.smoothed):
            out.divergence = lr
            return out
        loss.backward()
        if clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
        optimizer.step()
    return out


def lr_range_test(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
    *,
    start: float = START,
    end: float = END,
    steps: int = STEPS,
    beta: float | None = None,
    diverge: float = DIVERGE,
    clip_norm: float | None = None,
) -> LRFindResult:
    """Run the LR range test on ``model``/``optimizer``; both are restored afterwards.

    Args:
        batches: Training batches; at least ``steps`` of them (cycle epochs for more).
        start, end, steps: Geometric LR sequence, ratio ``(end/start) ** (1/(steps-1))``.
        beta: EMA factor of the smoothed loss (bias-corrected); None: :func:`default_beta`.
        diverge: Stop once the smoothed loss exceeds this many times its minimum.
        clip_norm: Clip the global gradient norm as the training would (None: no clipping).
    """
    beta = default_beta(steps) if beta is None else beta
    ratio = (end / start) ** (1 / max(steps - 1, 1))
    schedule = [start * ratio**i for i in range(steps)]
    saved = copy.deepcopy(model.state_dict()), copy.deepcopy(optimizer.state_dict())
    try:
        sweep = _sweep(model, optimizer, loss_fn, batches, schedule, beta, diverge, clip_norm)
    finally:
        model.load_state_dict(saved[0])
        optimizer.load_state_dict(saved[1])
    if not sweep.lrs:  # diverged on the very first step
        sweep.lrs, sweep.losses, sweep.smoothed = [start], [math.inf], [math.inf]
    steepest, min_loss, suggested = suggest(sweep.lrs, sweep.smoothed, sweep.divergence)
    return LRFindResult(
        tuple(sweep.lrs), tuple(sweep.losses), tuple(sweep.smoothed),
        steepest, min_loss, sweep.divergence, suggested,
    )  # fmt: skip


def lr_find(
    spec: ExperimentSpec,
    *,
    data: object | None = None,
    raw: object | None = None,
    base: Path | None = None,
    start: float = START,
    end: float = END,
    steps: int = STEPS,
) -> LRFindResult:
    """The LR range test for a spec: its model, data, loss and optimizer (trainer's code).

    ``data`` is a prepared ``DataBundle`` and ``raw`` the user's arrays; default: ``spec.data``.

    Example:
        >>> result = lr_find(nnspec.load("examples/digits_cnn.yaml"))  # doctest: +SKIP
        >>> 1e-4 <= result.suggested_lr <= 3e-2  # doctest: +SKIP
        True
    """
    from nnspec.check.context import CheckContext, cycle_batches, cycle_named
    from nnspec.check.sandbox import seeded_sandbox

    with seeded_sandbox(spec):  # dropout draws stay off the caller's RNG
        ctx = CheckContext(spec, data, base=base, raw=raw, named_ok=True)
        model = ctx.model()
        opt = ctx.optimizer(model, lr=start)
        clip = spec.train.clip_grad
        batches = (cycle_named(ctx) if ctx.named  # named inputs, several outputs
                   else cycle_batches(ctx, ctx.bundle.train.x, ctx.bundle.train.y))  # fmt: skip
        return lr_range_test(
            model, opt, ctx.loss_fn, batches, start=start, end=end, steps=steps,
            clip_norm=clip.max_norm if clip.kind == "norm" else None,
        )  # fmt: skip


def resolve_auto_lr(
    spec: ExperimentSpec,
    *,
    data: object | None = None,
    raw: object | None = None,
    base: Path | None = None,
) -> ExperimentSpec:
    """``optim.lr: auto`` -> the same spec with the LR finder's suggestion (others unchanged).

    Args:
        spec: The experiment; returned as is when its lr is a number.
        data: A prepared ``DataBundle``; or ``raw``: the user's arrays (``nnspec.train(data=)``).
        base: Folder that relative data paths resolve against.
    """
    if spec.optim.lr != "auto":
        return spec
    lr = float(f"{lr_find(spec, data=data, raw=raw, base=base).suggested_lr:.3g}")
    return spec.model_copy(update={"optim": spec.optim.model_copy(update={"lr": lr})})


def save_plot(result: LRFindResult, path: Path) -> Path:
    """Write the loss-vs-LR plot as PNG, atomically (temp file + rename)."""
    from nnspec.figures import new_figure, png_bytes

    fig, (ax,) = new_figure(width=6.0, height=4.0)
    ax.plot(result.lrs, result.losses, color="0.75", lw=1, label="loss")
    ax.plot(result.lrs, result.smoothed, color="C0", lw=2, label="smoothed loss")
    marks = [("steepest", result.steepest_lr, "C2"), ("suggested", result.suggested_lr, "C3")]
    if result.divergence_lr is not None:
        marks.append(("divergence", result.divergence_lr, "C1"))
    for name, lr, color in marks:
        ax.axvline(lr, color=color, ls="--", lw=1, label=f"{name} {lr:.2g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    finite = [v for v in result.smoothed if math.isfinite(v)]
    if finite:  # from the lowest raw loss up to the divergence threshold
        low = min(v for v in (*result.losses, *finite) if math.isfinite(v))
        ax.set_ylim(low * 0.9, min(max(finite), DIVERGE * min(finite)) * 1.1)
    ax.legend(fontsize=8)
    atomic_write_bytes(path, png_bytes(fig))
    return path
