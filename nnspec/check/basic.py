"""Loss at init (CHECK-2), input-independent baseline (CHECK-3) and overfit one batch (CHECK-1).

Thresholds marked [nnspec choice] are numbers the rules leave open (docs/rules.md).
"""

from __future__ import annotations

import math
from typing import Final

import torch
from torch import nn

from nnspec.check.context import CheckContext, CheckResult, cycle_batches, train_steps

__all__ = ["init_loss", "input_independent", "overfit_batch"]

INIT_LOSS_TOL_NATS: Final = 0.1  # CHECK-2, classification [nnspec choice]
INIT_LOSS_TOL_REL: Final = 0.2  # CHECK-2, regression [nnspec choice]
INIT_BATCH: Final = 512  # samples the initial loss is averaged over
INPUT_MARGIN: Final = 0.02  # CHECK-3: real inputs must beat zeros by >= 2 % [nnspec choice]
OVERFIT_MAX_STEPS: Final = 1000  # CHECK-1 step budget [nnspec choice]
OVERFIT_REG_SAMPLES: Final = 8  # CHECK-1: samples for regression
OVERFIT_LOSS_RATIO: Final = 0.01  # CHECK-1: pass at <= 1 % of the initial loss (near zero)


def _constant_output(model: nn.Module, out: torch.Tensor) -> torch.Tensor:
    # CHECK-2's reasoning: a well-initialised net starts with near-constant outputs equal to the
    # head bias, so the loss of that constant predictor is the value to expect.
    bias = getattr(getattr(model, "head", None), "bias", None)
    if bias is None:
        return torch.zeros_like(out)
    try:
        return torch.broadcast_to(bias.detach().to(out.dtype), out.shape)
    except RuntimeError:
        return torch.zeros_like(out)


def init_loss(ctx: CheckContext) -> CheckResult:
    """CHECK-2: the loss right after initialisation equals its analytic value."""
    model = ctx.model()
    model.eval()  # dropout off; batch norm uses its initial running statistics
    x, y = ctx.bundle.train.x[:INIT_BATCH], ctx.bundle.train.y[:INIT_BATCH]
    with torch.no_grad():
        out = model(x)
        loss = float(ctx.loss_fn(out, y))
        expected = float(ctx.loss_fn(_constant_output(model, out), y))
    numbers: dict[str, object] = {"loss": loss, "expected": expected}
    if ctx.task == "classification":
        numbers["ln_C"] = math.log(ctx.bundle.info.n_outputs)
    if ctx.classification:
        off, tol, unit = loss - expected, INIT_LOSS_TOL_NATS, "nats"
    else:
        off, tol, unit = (loss - expected) / max(expected, 1e-12), INIT_LOSS_TOL_REL, "relative"
    numbers["excess"] = off
    summary = f"loss at init {loss:.4f}, expected {expected:.4f} ({off:+.3f} {unit})"
    if math.isfinite(loss) and abs(off) <= tol:
        return CheckResult("init-loss", "CHECK-2", "pass", summary, numbers)
    return CheckResult(
        "init-loss", "CHECK-2", "warn", summary, numbers,
        meaning="the untrained model's outputs are not near-constant, so training first spends "
        "its steps undoing the initialisation (a 'hockey-stick' loss curve)",
        tries=(
            "keep the head's default init (Glorot x0.1, INIT-9) instead of an explicit one",
            "check that the loss fits the outputs: raw logits for cross_entropy/bce_with_logits",
            "standardise inputs (data.standardize: true) so activations start at unit scale",
        ),
    )  # fmt: skip


def _budget(ctx: CheckContext) -> int:
    """Steps for the short trainings: about 5 epochs, between 100 and 400 steps."""
    per_epoch = max(1, len(ctx.bundle.train) // ctx.spec.data.batch_size)
    return min(400, max(100, 5 * per_epoch))


def _val_loss_after_training(ctx: CheckContext, zero_inputs: bool, steps: int) -> float:
    model = ctx.model()
    x, y = ctx.bundle.train.x, ctx.bundle.train.y
    if zero_inputs:
        x = torch.zeros_like(x)
    train_steps(model, ctx.optimizer(model), ctx.loss_fn, cycle_batches(ctx, x, y), steps)
    vx, vy = ctx.eval_split()
    model.eval()
    with torch.no_grad():
        return float(ctx.loss_fn(model(torch.zeros_like(vx) if zero_inputs else vx), vy))


def input_independent(ctx: CheckContext) -> CheckResult:
    """CHECK-3: a copy trained on all-zero inputs must end clearly worse than the real one."""
    steps = _budget(ctx)
    real = _val_loss_after_training(ctx, False, steps)
    zero = _val_loss_after_training(ctx, True, steps)
    numbers = {"val_loss_real": real, "val_loss_zero_inputs": zero, "steps": steps}
    gain = (zero - real) / max(abs(zero), 1e-12) if math.isfinite(real) else -math.inf
    numbers["relative_gain"] = gain
    summary = (
        f"after {steps} steps: val loss {real:.4f} with real inputs vs {zero:.4f} with zeroed "
        f"inputs ({gain:+.1%}; needs >= {INPUT_MARGIN:.0%})"
    )
    if gain >= INPUT_MARGIN:
        return CheckResult("input-independent", "CHECK-3", "pass", summary, numbers)
    return CheckResult(
        "input-independent", "CHECK-3", "fail", summary, numbers,
        meaning="the model does no better with the real inputs than with zeros: it extracts no "
        "information from x (labels not aligned with inputs, inputs erased, or no learning)",
        tries=(
            "check that inputs and labels stay aligned (a shuffle or sort applied to only one)",
            "look at a batch as the model sees it: inputs may be constant after preprocessing",
            "if both losses barely moved, the model is not learning: raise the LR or capacity",
        ),
    )  # fmt: skip


def _overfit_subset(ctx: CheckContext) -> tuple[torch.Tensor, torch.Tensor]:
    if ctx.classification:
        c = max(2, ctx.bundle.info.n_outputs)
        n = max(2, min(2 * c, 16))  # CHECK-1: a few samples per class
    else:
        n = OVERFIT_REG_SAMPLES
    return ctx.bundle.train.x[:n], ctx.bundle.train.y[:n]


def _no_regularisation(model: nn.Module, opt: torch.optim.Optimizer) -> None:
    # CHECK-1: memorising must not be fought by dropout or weight decay.
    for m in model.modules():
        if isinstance(m, (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout)):
            m.p = 0.0
    for group in opt.param_groups:
        group["weight_decay"] = 0.0


def _memorised(ctx: CheckContext, out: torch.Tensor, y: torch.Tensor, loss: float, first: float):
    # Near-zero loss for every task; classification also needs every sample right.
    if loss > OVERFIT_LOSS_RATIO * first:
        return False
    return not ctx.classification or ctx.accuracy(out, y) == 1.0


def _fit_tiny(
    ctx: CheckContext,
    model: nn.Module,
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
) -> tuple[int, float, float, bool]:
    """Train on (x, y) until memorised; returns (steps, first loss, last loss, memorised)."""
    model.train()
    first = loss = math.nan
    step = 0
    for step in range(1, OVERFIT_MAX_STEPS + 1):
        opt.zero_grad(set_to_none=True)
        out = model(x)
        value = ctx.loss_fn(out, y)
        loss = float(value.detach())
        first = loss if step == 1 else first
        if not math.isfinite(loss):
            return step, first, loss, False
        if _memorised(ctx, out, y, loss, first):
            return step, first, loss, True
        value.backward()
        opt.step()
    return step, first, loss, False


def overfit_batch(ctx: CheckContext) -> CheckResult:
    """CHECK-1: the model memorises one small batch within the step budget."""
    x, y = _overfit_subset(ctx)
    model = ctx.model()
    opt = ctx.optimizer(model)
    _no_regularisation(model, opt)
    step, first, loss, done = _fit_tiny(ctx, model, opt, x, y)
    what = f"loss <= {OVERFIT_LOSS_RATIO:.0%} of initial" + (
        ", 100 % accuracy" if ctx.classification else ""
    )
    numbers = {"samples": len(x), "steps": step, "initial_loss": first, "final_loss": loss}
    if done:
        summary = (
            f"{len(x)} samples memorised ({what}) in {step} steps, loss {first:.3g} -> {loss:.3g}"
        )
        return CheckResult("overfit-batch", "CHECK-1", "pass", summary, numbers)
    end = "the loss became NaN/inf" if not math.isfinite(loss) else f"final loss {loss:.3g}"
    summary = f"{len(x)} samples not memorised after {step} steps ({end}; initial {first:.3g})"
    return CheckResult(
        "overfit-batch", "CHECK-1", "fail", summary, numbers,
        meaning="a model that cannot memorise a handful of samples has a bug, too little "
        "capacity or a broken optimiser setup; do not scale up before this passes",
        tries=(
            "lower the learning rate (try `nnspec lr-find SPEC`), especially if the loss is NaN",
            "check the loss fits the outputs and targets (logits, class indices, target scale)",
            "check no layer is frozen by mistake (trainable: false, lr_scale) and add capacity",
        ),
    )  # fmt: skip
