"""Gradient flow per layer (MON-2/3) and batch independence (CHECK-6)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Final

import torch
from torch import nn

from nnspec.check.context import (
    CheckContext,
    CheckResult,
    cycle_batches,
    input_probe,
    train_steps,
)

__all__ = ["gradient_flow", "batch_independence", "activation_stats"]

WARMIN_STEPS: Final = 20  # steps before measuring, so Adam's first-step artefacts are gone
DEAD_ALARM: Final = 0.5  # MON-3 [nnspec choice]: > 50 % of a layer's units dead
SATURATED_ALARM: Final = 0.5  # MON-3: > 50 % of a layer's outputs saturated
SATURATION: Final = 0.99  # |tanh| > 0.99; sigmoid < 0.01 or > 0.99
VANISHING_RATIO: Final = 1e-4  # MON-2 [nnspec choice]: first / last layer gradient norm
EXPLODING_NORM: Final = 1e3  # MON-2 [nnspec choice]: global gradient norm
UPDATE_RATIO_RANGE: Final = (1e-5, 1e-1)  # around the healthy ~1e-3 [nnspec choice]
INDEPENDENCE_SAMPLES: Final = 8


def _dead_fraction(a: torch.Tensor) -> float:
    # A unit (feature, or channel of a feature map) is dead when it is 0 for every sample/position.
    units = a.transpose(0, 1).reshape(a.shape[1], -1) if a.ndim > 2 else a.T
    return float((units == 0).all(dim=1).float().mean())


def _saturated_fraction(a: torch.Tensor, kind: str) -> float:
    if kind == "tanh":
        return float((a.abs() > SATURATION).float().mean())
    return float(((a < 1 - SATURATION) | (a > SATURATION)).float().mean())


# activation module type -> (kind, statistic); a table, so new activations are one line.
ACTIVATION_STATS: Final[dict[type[nn.Module], tuple[str, Callable[[torch.Tensor], float]]]] = {
    nn.ReLU: ("dead", _dead_fraction),
    nn.ReLU6: ("dead", _dead_fraction),
    nn.Tanh: ("saturated", lambda a: _saturated_fraction(a, "tanh")),
    nn.Sigmoid: ("saturated", lambda a: _saturated_fraction(a, "sigmoid")),
}


def activation_stats(model: nn.Module, x: torch.Tensor) -> list[dict[str, object]]:
    """Dead-unit / saturated fractions of every ReLU, tanh and sigmoid module on batch ``x``."""
    rows: list[dict[str, object]] = []
    hooks = []
    for name, module in model.named_modules():
        entry = ACTIVATION_STATS.get(type(module))
        if entry is None:
            continue
        what, fn = entry

        def hook(_m, _i, out, name=name, what=what, fn=fn):
            rows.append({"layer": name, "stat": what, "fraction": fn(out.detach())})

        hooks.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return rows


def _weight_rows(model: nn.Module, before: dict[str, torch.Tensor]) -> list[dict[str, object]]:
    rows = []
    for name, p in model.named_parameters():
        if p.ndim < 2 or name not in before:
            continue  # matrices and kernels; biases and norm scales follow them
        w = before[name]
        g = p.grad
        rows.append({
            "layer": name.removesuffix(".weight"),
            "grad_norm": float(g.norm()) if g is not None else 0.0,
            "weight_norm": float(w.norm()),
            "update_ratio": float((p.detach() - w).norm() / w.norm().clamp(min=1e-12)),
        })  # fmt: skip
    return rows


def _measure(ctx: CheckContext) -> tuple[list[dict[str, object]], list[dict[str, object]], float]:
    model = ctx.model()
    opt = ctx.optimizer(model)
    x, y = ctx.bundle.train.x, ctx.bundle.train.y
    batches = cycle_batches(ctx, x, y)
    if not math.isfinite(train_steps(model, opt, ctx.loss_fn, batches, WARMIN_STEPS)):
        return [], [], math.nan
    xb, yb = next(batches)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    model.train()
    opt.zero_grad(set_to_none=True)
    ctx.loss_fn(model(xb), yb).backward()
    grads = [p.grad.norm() for p in model.parameters() if p.grad is not None]
    total = float(torch.stack(grads).norm()) if grads else 0.0
    opt.step()
    model.eval()
    return _weight_rows(model, before), activation_stats(model, xb), total


def _problems(rows: list[dict], acts: list[dict], total: float) -> Iterator[tuple[str, str]]:
    """(problem, what to try) pairs, most severe first."""
    if not math.isfinite(total):
        yield "the loss or gradients became NaN/inf", "lower the learning rate"
        return
    if total > EXPLODING_NORM:
        yield f"exploding gradients (global norm {total:.3g})", "lower the LR or clip by norm"
    if rows and rows[-1]["grad_norm"] > 0:
        ratio = rows[0]["grad_norm"] / rows[-1]["grad_norm"]
        if ratio < VANISHING_RATIO:
            yield (
                f"vanishing gradients (first/last layer norm ratio {ratio:.2g})",
                "check input scaling and init first, then add norm layers or residuals",
            )
    for a in acts:
        alarm = DEAD_ALARM if a["stat"] == "dead" else SATURATED_ALARM
        if a["fraction"] > alarm:
            yield (
                f"{a['fraction']:.0%} of {a['layer']}'s units {a['stat']}",
                "lower the LR first, then leaky_relu/PReLU (dead) or relu (saturated)",
            )


def gradient_flow(ctx: CheckContext) -> CheckResult:
    """MON-2/3: per-layer gradient norms, update/weight ratios, dead and saturated units."""
    rows, acts, total = _measure(ctx)
    problems = list(_problems(rows, acts, total))
    ratios = sorted(r["update_ratio"] for r in rows) or [math.nan]
    median = ratios[len(ratios) // 2]
    numbers = {"global_grad_norm": total, "median_update_ratio": median}
    worst = max((a["fraction"] for a in acts if a["stat"] == "dead"), default=0.0)
    numbers["max_dead_fraction"] = worst
    low, high = UPDATE_RATIO_RANGE
    summary = (
        f"after {WARMIN_STEPS} steps: global grad norm {total:.3g}, median update/weight "
        f"{median:.2g} (healthy ~1e-3), max dead ReLU fraction {worst:.0%}"
    )
    table = tuple(rows) + tuple(acts)
    if problems:
        return CheckResult(
            "gradient-flow", "MON-2", "fail", summary, numbers, table=table,
            meaning="gradients do not flow well: " + "; ".join(p for p, _ in problems),
            tries=tuple(dict.fromkeys(t for _, t in problems)),
        )  # fmt: skip
    if not low <= median <= high:
        direction = "lower" if median > high else "raise"
        return CheckResult(
            "gradient-flow", "MON-2", "warn", summary, numbers, table=table,
            meaning=f"updates are {'large' if median > high else 'tiny'} relative to the weights",
            tries=(f"run `nnspec lr-find SPEC` and {direction} the learning rate",),
        )  # fmt: skip
    return CheckResult("gradient-flow", "MON-2", "pass", summary, numbers, table=table)


def _top_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    layers = getattr(model, "layers", None)
    container = layers if isinstance(layers, nn.Module) else model
    prefix = "layers." if container is layers else ""
    return [(prefix + n, m) for n, m in container.named_children()]


def _forward_recording(
    model: nn.Module, x: torch.Tensor
) -> tuple[torch.Tensor, list[tuple[str, torch.Tensor]]]:
    """The model's output and every top-level layer's output (to find the first mixing layer)."""
    outputs: list[tuple[str, torch.Tensor]] = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, o, name=name: outputs.append((name, o)))
        for name, m in _top_layers(model)
    ]
    try:
        return model(x), outputs
    finally:
        for h in hooks:
            h.remove()


def _leaks(out: torch.Tensor, x: torch.Tensor, samples: list[int]) -> float:
    """Largest |d sum(out_i) / d x_j| over j != i for the given samples i."""
    worst = 0.0
    for i in samples:
        (g,) = torch.autograd.grad(out[i].sum(), x, retain_graph=True, allow_unused=True)
        if g is None:
            continue
        others = torch.ones(len(x), dtype=torch.bool)
        others[i] = False
        worst = max(worst, float(g[others].abs().max()))
    return worst


def batch_independence(ctx: CheckContext) -> CheckResult:
    """CHECK-6: in eval mode, sample i's output depends on no other sample's input."""
    model = ctx.model()
    model.eval()  # batch norm uses running statistics, dropout is off
    n = min(INDEPENDENCE_SAMPLES, len(ctx.bundle.train))
    samples = sorted({0, n // 2, n - 1})
    with input_probe(model, ctx.bundle.train.x[:n]) as probe:  # token ids: the embedding output
        out, outputs = _forward_recording(model, probe.x)
    x = probe.leaf if probe.leaf is not None else probe.x
    leak = _leaks(out, x, samples)
    numbers: dict[str, object] = {"samples": n, "max_cross_sample_grad": leak}
    if leak == 0.0:
        summary = f"outputs of samples {samples} depend only on their own inputs ({n} in batch)"
        return CheckResult("batch-independence", "CHECK-6", "pass", summary, numbers)
    culprit = next(
        (name for name, o in outputs if isinstance(o, torch.Tensor) and _leaks(o, x, samples) > 0),
        "?",
    )
    numbers["first_mixing_layer"] = culprit
    return CheckResult(
        "batch-independence", "CHECK-6", "fail",
        f"sample outputs depend on other samples' inputs (max gradient {leak:.3g}); first mixing "
        f"layer: {culprit}",
        numbers,
        meaning="some operation mixes information across the batch (a view/reshape where a "
        "permute/transpose was meant, or a reduction over the batch dimension)",
        tries=(
            f"inspect {culprit}: reshape only the per-sample dims and keep dim 0 as the batch",
            "replace view/reshape that moves the batch axis by permute/transpose",
        ),
    )  # fmt: skip
