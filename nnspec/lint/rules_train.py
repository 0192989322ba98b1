"""Lint rules on optimizer, schedule, training loop and data (OPT, LR, TRAIN, DATA, INIT-8)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Final

from nnspec.lint.engine import Hit, LintContext, rule
from nnspec.lint.view import model_kinds
from nnspec.spec.optim import SGD, OptimKind
from nnspec.spec.schedule import ReduceOnPlateau

# LR-1: the learning rates each optimizer family usually trains well with [nnspec choice: wide on
# purpose, so a finding means "far outside", not "not tuned"].
USUAL_LR: Final[Mapping[OptimKind, tuple[float, float]]] = MappingProxyType(
    {
        "sgd": (1e-4, 1.0),
        "asgd": (1e-4, 1.0),
        "adagrad": (1e-4, 1.0),
        "adadelta": (1e-2, 10.0),  # its lr scales a self-normalised step; 1.0 is torch's default
        "rmsprop": (1e-5, 1e-1),
        "rprop": (1e-5, 1e-1),
        "adafactor": (1e-5, 1e-1),
        **dict.fromkeys(("adam", "adamw", "nadam", "radam", "adamax"), (1e-5, 1e-2)),
    }
)
MAX_MOMENTUM: Final = 0.99  # OPT-7 [nnspec choice]
LONG_RUN_EPOCHS: Final = 50  # TRAIN-3: "max_epochs > 50 with no early stopping"
# TRAIN-6: layer kinds whose gradients are prone to explode (added by the sequence-layer module).
RECURRENT_KINDS: Final = frozenset(
    {
        "rnn", "lstm", "gru", "multihead_attention", "self_attention",
        "transformer_encoder_layer", "transformer_decoder_layer", "transformer",
    }
)  # fmt: skip
IMBALANCE_RATIO: Final = 1.5  # INIT-8 [nnspec choice]: largest / smallest class frequency
# DATA-4 [nnspec choice] thresholds for a feature the model sees unscaled.
SCALE_MEAN_OVER_STD: Final = 3.0
SCALE_MAX_STD: Final = 100.0
SCALE_MIN_STD: Final = 1e-3


@rule("OPT-9", "adam-coupled-weight-decay", "warning")
def adam_weight_decay(ctx: LintContext) -> Iterator[Hit]:
    """Adam with weight decay (coupled L2 that the adaptive scaling distorts)."""
    optim = ctx.spec.optim
    if optim.kind == "adam" and optim.weight_decay > 0:
        yield Hit(
            ("optim", "weight_decay"),
            "Adam adds weight decay to the gradient, where its adaptive scaling weakens it for "
            "exactly the weights that move most, so it is not the decay you asked for.",
            f"use kind: adamw (decoupled decay) with weight_decay: {optim.weight_decay:g}",
        )


@rule("OPT-4", "sgd-without-momentum", "warning")
def sgd_without_momentum(ctx: LintContext) -> Iterator[Hit]:
    """Plain SGD without momentum."""
    optim = ctx.spec.optim
    if isinstance(optim, SGD) and optim.momentum == 0:
        yield Hit(
            ("optim", "momentum"),
            "SGD without momentum converges slowly and stalls in ravines of the loss surface.",
            "set momentum: 0.9 (and nesterov: true)",
        )


@rule("OPT-7", "very-high-momentum", "warning")
def very_high_momentum(ctx: LintContext) -> Iterator[Hit]:
    """SGD momentum above 0.99."""
    optim = ctx.spec.optim
    if not isinstance(optim, SGD):
        return
    m = optim.momentum
    if m > MAX_MOMENTUM and isinstance(optim.lr, float):
        eff = optim.lr / (1 - m)
        yield Hit(
            ("optim", "momentum"),
            f"momentum {m:g} multiplies the step by {1 / (1 - m):.0f}: the effective learning "
            f"rate is lr/(1-m) = {eff:.3g}, which oscillates or diverges.",
            f"use momentum: 0.9, or lower lr to about {optim.lr * (1 - m) / 0.1:.3g} to keep it",
        )


@rule("LR-1", "lr-out-of-range", "warning")
def lr_out_of_range(ctx: LintContext) -> Iterator[Hit]:
    """A learning rate far outside the optimizer's usual range."""
    optim = ctx.spec.optim
    if optim.kind not in USUAL_LR:
        return  # a user-registered optimizer: nnspec knows no usual range (built-ins: drift-tested)
    low, high = USUAL_LR[optim.kind]
    lr = optim.lr
    if isinstance(lr, float) and not low <= lr <= high:
        effect = "will diverge or bounce around" if lr > high else "will barely move the weights"
        yield Hit(
            ("optim", "lr"),
            f"lr {lr:g} is far outside {optim.kind}'s usual range {low:g}-{high:g}; training "
            f"{effect}.",
            "run `nnspec lr-find SPEC` (or set lr: auto), or start from "
            f"{'3e-4' if optim.kind != 'sgd' else '0.01-0.1'}",
        )


@rule("TRAIN-3", "long-run-no-early-stopping", "warning")
def long_run_no_es(ctx: LintContext) -> Iterator[Hit]:
    """Many epochs without early stopping."""
    train = ctx.spec.train
    if train.epochs > LONG_RUN_EPOCHS and not train.early_stopping.enabled:
        yield Hit(
            ("train", "epochs"),
            f"{train.epochs} epochs without early stopping keeps training after the validation "
            "loss stops improving, which wastes time and overfits.",
            "enable train.early_stopping (patience 10, restore_best: true)",
        )


@rule("LR-8", "plateau-patience-vs-es", "warning")
def plateau_vs_es(ctx: LintContext) -> Iterator[Hit]:
    """ReduceLROnPlateau patience at or above the early-stopping patience."""
    sched, es = ctx.spec.schedule, ctx.spec.train.early_stopping
    if not isinstance(sched, ReduceOnPlateau):
        return
    patience = sched.patience
    if es.enabled and patience >= es.patience:
        yield Hit(
            ("schedule", "patience"),
            f"plateau patience {patience} >= early-stopping patience {es.patience}: training stops "
            "before the learning rate is ever reduced.",
            f"set schedule.patience below {es.patience} (e.g. {max(1, es.patience // 2)})",
        )


@rule("TRAIN-6", "clip-by-value", "info")
def clip_by_value(ctx: LintContext) -> Iterator[Hit]:
    """Gradient clipping by value instead of by norm."""
    if ctx.spec.train.clip_grad.kind == "value":
        yield Hit(
            ("train", "clip_grad", "kind"),
            "clipping each gradient element separately changes the direction of the update.",
            "use kind: norm (one global L2 norm keeps the direction), max_norm 1.0",
        )


@rule("TRAIN-6", "recurrent-without-clipping", "warning")
def recurrent_without_clipping(ctx: LintContext) -> Iterator[Hit]:
    """A recurrent or attention model trained without gradient clipping."""
    if ctx.spec.train.clip_grad.kind != "none":
        return
    for kind, path in model_kinds(ctx.spec):
        if kind in RECURRENT_KINDS:
            yield Hit(
                ("train", "clip_grad"),
                f"{kind} at {'.'.join(map(str, path))} backpropagates through many steps, where "
                "gradients can explode, and no clipping is configured.",
                "set train.clip_grad: {kind: norm, max_norm: 1.0}",
            )
            return


@rule("DATA-4", "unscaled-input", "warning")
def unscaled_input(ctx: LintContext) -> Iterator[Hit]:
    """Tabular inputs fed to the model without standardisation."""
    from nnspec.run.tokens import input_embeddings  # numpy only, no torch

    spec = ctx.spec
    if spec.data.standardize or input_embeddings(spec.model):
        return  # token ids feed an embedding: they are never standardised
    if ctx.stats is not None and ctx.stats.feature_std is not None:
        bad = _badly_scaled(ctx)
        if bad is None:
            return  # the statistics say the inputs are already well scaled
        detail = f" (feature {bad} is far from mean 0 / std 1)"
    elif spec.model.input_shape is not None and len(spec.model.input_shape) == 1:
        detail = ""
    else:
        return  # images/sequences are only flagged with data statistics in hand
    yield Hit(
        ("data", "standardize"),
        f"tabular features go in unscaled{detail}; badly scaled inputs are a common cause of "
        "exploding or vanishing gradients.",
        "set data.standardize: true (statistics from the training split only)",
    )


def _badly_scaled(ctx: LintContext) -> int | None:
    stats = ctx.stats
    if stats is None or stats.feature_std is None or stats.feature_mean is None:
        return None
    for i, (mean, std) in enumerate(zip(stats.feature_mean, stats.feature_std, strict=True)):
        if std > SCALE_MAX_STD or abs(mean) > SCALE_MEAN_OVER_STD * max(std, 1e-12):
            return i
        if 0 < std < SCALE_MIN_STD:
            return i
    return None


def _head_has_bias(ctx: LintContext) -> bool:
    head = next((v for v in ctx.weight_views if v.is_head), None)
    return head is not None and getattr(head.layer, "bias", None) is not False


@rule("INIT-8", "class-imbalance", "warning")
def class_imbalance(ctx: LintContext) -> Iterator[Hit]:
    """Imbalanced classes with neither class weights nor a prior-initialised head bias."""
    stats, loss = ctx.stats, ctx.spec.loss
    if stats is None or not stats.class_counts or ctx.spec.task not in ("classification", "binary"):
        return
    counts = [c for c in stats.class_counts if c > 0]
    if len(counts) < 2 or max(counts) / min(counts) <= IMBALANCE_RATIO:
        return
    weighted = (getattr(loss, f, "none") != "none" for f in ("class_weights", "pos_weight"))
    if any(weighted):  # a user-registered loss has neither field
        return
    if _head_has_bias(ctx):
        return  # the trainer starts a head bias at the log class prior (INIT-8)
    field = "pos_weight" if ctx.spec.task == "binary" else "class_weights"
    yield Hit(
        ("loss", field),
        f"classes are imbalanced ({max(counts)}:{min(counts)} training samples) and the head has "
        "no bias to start at the prior, so training first learns the prior and under-weights "
        "the rare classes.",
        f"set loss.{field}: balanced, or give the last layer a bias (bias: true), which "
        "starts at the log class prior",
    )
