"""Lint rules on the model section (INIT, ACT, ARCH, OUT, NORM, REG rules of docs/rules.md).

Each rule is a small generator registered with :func:`nnspec.lint.engine.rule`; thresholds that
the catalog marks as nnspec choices are module constants with the catalog section they come from.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Final

from pydantic import BaseModel

from nnspec.errors import format_path
from nnspec.lint.engine import Hit, LintContext, rule
from nnspec.lint.view import DROPOUT_KINDS, LayerView, Op, feeds, model_kinds
from nnspec.spec.init import Preset, VarianceScaling

# INIT-1: the init family each activation calls for (He: ReLU family and, by convention, GELU/SiLU/
# Mish; LeCun: SELU/ELU; Glorot: saturating and linear outputs).
EXPECTED_INIT: Final[Mapping[str, str]] = MappingProxyType(
    {
        **dict.fromkeys(("relu", "leaky_relu", "prelu", "rrelu", "gelu", "silu", "mish"), "he"),
        **dict.fromkeys(("selu", "elu"), "lecun"),
        **dict.fromkeys(("tanh", "sigmoid", "softmax", "log_softmax", "identity"), "glorot"),
    }
)
# Explicit rules -> family. Orthogonal/zeros/constant have no family and are never flagged.
PRESET_FAMILY: Final[Mapping[str, str]] = MappingProxyType(
    {
        f"{family}_{dist}": family
        for family in ("he", "lecun", "glorot")
        for dist in ("normal", "uniform", "truncated_normal")
    }
)
# (scale, mode) of a VarianceScaling rule -> family (INIT-2..4).
SCALING_FAMILY: Final[Mapping[tuple[float, str], str]] = MappingProxyType(
    {(2.0, "fan_in"): "he", (1.0, "fan_in"): "lecun", (1.0, "fan_avg"): "glorot"}
)
SATURATING: Final = frozenset({"sigmoid", "tanh"})
SATURATING_MIN_WEIGHT_LAYERS: Final = 3  # ACT-2: ">= 3 weight layers"
DEEP_PLAIN_MIN_WEIGHT_LAYERS: Final = 11  # ARCH-9: "> 10 weight layers on a skip-free path"
NORM_KINDS: Final = frozenset({"batch_norm", "layer_norm", "group_norm", "instance_norm"})
RESIDUAL_KINDS: Final = frozenset({"residual", "add"})
BN_MIN_BATCH: Final = 8  # NORM-5 [nnspec choice]: batch statistics are unreliable below 8 samples
DROPOUT_RANGE: Final = (0.1, 0.5)  # REG-4
# Ops that pass dropout's variance shift straight on to a following batch norm (NORM-6).
TRANSPARENT_OPS: Final = frozenset({"flatten", "reshape", "identity"})
RECURRENT_KINDS: Final = frozenset({"rnn", "lstm", "gru"})  # NORM-3


def _family(init: object) -> str | None:
    if isinstance(init, Preset):
        return PRESET_FAMILY.get(init.kind)
    if isinstance(init, VarianceScaling):
        return SCALING_FAMILY.get((init.scale, init.mode))
    return None


@rule("INIT-1", "init-activation-mismatch", "warning")
def init_activation_mismatch(ctx: LintContext) -> Iterator[Hit]:
    """An explicit init contradicts the activation that follows the layer."""
    for v in ctx.weight_views:
        if v.is_head or v.init is None or not v.init.explicit:
            continue
        family, act = _family(v.init.value), v.activation_name or "identity"
        wanted = EXPECTED_INIT.get(act)
        if family is None or wanted is None or family == wanted:
            continue
        yield Hit(
            v.init.path,
            f"{format_path(v.path[1:])} uses {family} init before {act}, which calls for {wanted} "
            "init, so "
            "activations shrink or grow with depth and training starts slowly.",
            f"set init: auto (picks {wanted} for {act}), or {wanted}_normal explicitly",
        )


@rule("ACT-2", "saturating-hidden-activation", "info")
def saturating_hidden(ctx: LintContext) -> Iterator[Hit]:
    """Sigmoid/tanh as hidden activations of a feed-forward stack of 3 or more weight layers."""
    if len(ctx.weight_views) < SATURATING_MIN_WEIGHT_LAYERS:
        return
    for op in ctx.ops:
        name = op.op.removeprefix("act:")
        if op.op.startswith("act:") and name in SATURATING and not _after_head(ctx, op):
            yield Hit(
                op.path,
                f"{name} saturates and shrinks gradients layer after layer in a stack of "
                f"{len(ctx.weight_views)} weight layers (ranking: sigmoid < tanh < ReLU < ELU).",
                "use relu (or leaky_relu / gelu) for hidden layers",
            )


def _after_head(ctx: LintContext, op: Op) -> bool:
    head = next((v.index for v in ctx.weight_views if v.is_head), None)
    return head is not None and op.view.index >= head


def _has_residual(node: object) -> bool:
    # Generic: a `residual: true` field or a merge layer anywhere (blocks come from other modules).
    if isinstance(node, BaseModel):
        residual = getattr(node, "residual", None)  # True, or a ResidualSpec on a block
        if residual not in (None, False) or getattr(node, "kind", None) in RESIDUAL_KINDS:
            return True
        return any(_has_residual(getattr(node, n)) for n in type(node).model_fields)
    if isinstance(node, (list, tuple)):
        return any(_has_residual(x) for x in node)
    if isinstance(node, dict):
        return any(_has_residual(x) for x in node.values())
    return False


@rule("ARCH-9", "deep-plain-stack", "warning")
def deep_plain_stack(ctx: LintContext) -> Iterator[Hit]:
    """A deep stack with neither residual connections nor normalization."""
    n = len(ctx.weight_views)
    if n < DEEP_PLAIN_MIN_WEIGHT_LAYERS or _has_residual(ctx.spec.model):
        return
    has_norm = any(op.op.startswith("norm:") for op in ctx.ops) or any(
        kind in NORM_KINDS for kind, _ in model_kinds(ctx.spec)
    )
    if not has_norm:
        yield Hit(
            ("model", "layers"),
            f"{n} weight layers in a row with no skip connection and no normalization tend to "
            "suffer vanishing or exploding gradients.",
            "add residual blocks, or norm: batch (conv) / layer (MLP) in model.defaults",
        )


# OUT-3/4 (softmax/sigmoid before a logits loss) is not a lint rule: the spec refuses it at
# validation (nnspec/spec/train.py, "double activation"), so `nnspec lint` exits 2 with the error
# and `nnspec check` reports it as its first, failed step.


@rule("OUT-5", "dropout-on-output", "error")
def dropout_on_output(ctx: LintContext) -> Iterator[Hit]:
    """Dropout applied to the output layer's result."""
    head = next((v for v in ctx.weight_views if v.is_head), None)
    if head is None:
        return
    for op in ctx.ops:
        if op.op == "dropout" and op.view.index >= head.index:
            yield Hit(
                op.path,
                "dropout after the output layer randomly zeroes predictions during training.",
                "remove it; put dropout before the last layer (on the last hidden layer) instead",
            )


def _batch_norm_after(ops: list[Op], start: int) -> Op | None:
    """The batch norm that the output of ``ops[start]`` reaches before anything reshapes its
    statistics: through activations, dropout, flatten/reshape, and at most one weight op, whose
    own batch norm then sees the shifted inputs (``defaults: {norm: batch, dropout: 0.3}``)."""
    prev, weights = ops[start], 0
    for nxt in ops[start + 1 :]:
        if not feeds(prev.view, nxt.view):
            return None  # another branch of a graph model
        prev = nxt
        if nxt.op == "norm:batch":
            return nxt
        if nxt.op == "weight" and nxt.view.norm is not None and weights == 0:
            weights += 1  # the next layer's own norm comes right after its weights
        elif not (nxt.op.startswith("act:") or nxt.op in TRANSPARENT_OPS or nxt.op == "dropout"):
            return None
    return None


@rule("NORM-6", "dropout-before-bn", "warning")
def dropout_before_bn(ctx: LintContext) -> Iterator[Hit]:
    """Dropout feeding a batch norm: directly, through an activation, or as the input of the next
    layer whose own norm is batch norm."""
    for i, op in enumerate(ctx.ops):
        if op.op == "dropout" and _batch_norm_after(ctx.ops, i) is not None:
            yield Hit(
                op.path,
                "dropout before batch norm shifts the variance its running statistics see "
                "between training and evaluation.",
                "move the dropout after the last batch norm (e.g. into the head)",
            )


@rule("NORM-3", "batchnorm-in-recurrent", "warning")
def batchnorm_in_recurrent(ctx: LintContext) -> Iterator[Hit]:
    """Batch norm on a recurrent layer's sequence output (statistics mixed over time steps)."""
    for i, op in enumerate(ctx.ops):
        layer = op.view.layer
        if op.op not in RECURRENT_KINDS or getattr(layer, "output", None) != "sequence":
            continue
        norm = _batch_norm_after(ctx.ops, i)
        if norm is not None:
            yield Hit(
                norm.path,
                f"batch norm on the {op.op}'s sequence output normalises it with batch "
                "statistics, which do not suit recurrent outputs (one set of weights shared over "
                "the time steps); layer norm normalises each sample over its own features.",
                "use norm: layer (or a layer_norm layer) instead of batch norm after it",
            )


def _uses_batch_norm(ctx: LintContext) -> bool:
    return any(op.op == "norm:batch" for op in ctx.ops) or any(
        kind == "batch_norm" for kind, _ in model_kinds(ctx.spec)
    )


@rule("NORM-5", "bn-tiny-batch", "warning")
def bn_tiny_batch(ctx: LintContext) -> Iterator[Hit]:
    """Batch norm with training batches smaller than 8."""
    size = ctx.spec.data.batch_size
    if size < BN_MIN_BATCH and _uses_batch_norm(ctx):
        yield Hit(
            ("data", "batch_size"),
            f"batch norm estimates its statistics from each batch, and {size} samples make them "
            "too noisy (and evaluation behaves differently from training).",
            f"use batch_size >= {BN_MIN_BATCH}, or norm: group / layer instead of batch",
        )


def _dropout_settings(views: list[LayerView]) -> Iterator[tuple[float, tuple[str | int, ...]]]:
    for v in views:
        if v.is_weight and v.dropout is not None and isinstance(v.dropout.value, float):
            yield v.dropout.value, v.dropout.path
        elif v.layer.kind in DROPOUT_KINDS:
            yield float(getattr(v.layer, "p", 0.0)), (*v.path, "p")


@rule("REG-4", "dropout-out-of-range", "warning")
def dropout_out_of_range(ctx: LintContext) -> Iterator[Hit]:
    """A dropout rate outside the usual 0.1-0.5."""
    low, high = DROPOUT_RANGE
    for p, path in _dropout_settings(ctx.views):
        if 0 < p < low or p > high:
            effect = "barely regularises" if p < low else "throws away most of the signal"
            yield Hit(
                path,
                f"dropout {p:g} {effect}; useful rates lie in {low:g}-{high:g}.",
                f"use a rate in {low:g}-{high:g} (0.5 CNN head, 0.3 RNN, 0.2 MLP) or 0 for none",
            )
