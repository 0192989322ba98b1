"""Shape functions of the core layer kinds (pure arithmetic, no tensors), registered in
:data:`~nnspec.compile.infer.SHAPE_FNS` on import; :func:`weight_result` is shared with the
topology kinds (:mod:`nnspec.compile.blocks`). The entry point is
:func:`nnspec.compile.inference.infer_shapes`; the window arithmetic and rank checks live in
:mod:`nnspec.compile.windows`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from nnspec.compile.infer import (
    SHAPE_FNS,
    LayerSite,
    Shape,
    ShapeFn,
    ShapeResult,
    fmt_shape,
)
from nnspec.compile.rules import EMBEDDING_STD, NormalRule, activation_label, resolve_init
from nnspec.compile.settings import WeightSettings, group_count, resolve_weight
from nnspec.compile.windows import RANK_NAMES, reshape_hint
from nnspec.compile.windows import divisors as _divisors
from nnspec.compile.windows import per_dim as _per_dim
from nnspec.compile.windows import rank_ok as _rank_ok
from nnspec.compile.windows import window as _window
from nnspec.spec import layers as L
from nnspec.spec.activations import Activation, Identity

if TYPE_CHECKING:
    pass

__all__ = ["weight_result", "RANK_NAMES", "reshape_hint"]

# ---- weight layers ---------------------------------------------------------------------------


def _channels_ok(layer: L.WeightLayer, out: Shape, site: LayerSite, what: str, fld: str) -> bool:
    # Per-channel ops (batch/group/instance norm, per-channel PReLU) use dim 1 of the batch, which
    # is the features only when a linear layer's output is 1-D.
    if isinstance(layer, L.Linear) and len(out) > 1:
        site.error(
            fld,
            f"{site.kind}: {what} needs a 1-D (features,) output",
            expected="linear on a 1-D input",
            found=f"output {fmt_shape(out)}",
            fix="use norm: layer (normalises the last dim), or flatten before the linear layer",
        )
        return False
    return True


def _norm_params(layer: L.WeightLayer, norm: str, out: Shape, site: LayerSite) -> int:
    channels = out[-1] if isinstance(layer, L.Linear) else out[0]
    if norm == "none":
        return 0
    if norm == "instance" and len(out) < 2:
        site.error(
            "norm",
            f"{site.kind}: norm 'instance' needs spatial dims",
            expected="a conv output (C, L) or (C, H, W)",
            found=f"output {fmt_shape(out)}",
            fix="use norm: layer or norm: batch after a linear layer",
        )
        return 0
    if norm != "layer" and not _channels_ok(layer, out, site, f"norm '{norm}'", "norm"):
        return 0
    if norm == "instance":
        _instance_spatial_ok(out, site, "norm")
    return 2 * channels  # every built-in norm has a per-channel (or per-feature) scale and shift


def _activation_params(act: Activation, channels: int) -> int:
    if act.kind == "prelu":
        return channels if act.num_parameters == "channel" else 1  # type: ignore[attr-defined]
    return 0


def _hidden_init_check(settings: WeightSettings, site: LayerSite) -> None:
    if settings.init.symmetric and not site.is_head:
        path = ("model", "defaults", "init") if settings.init_inherited else None
        site.error(
            "init",
            f"init '{settings.init.rule.label}' on a hidden weight layer "
            "never breaks symmetry (INIT-6)",
            expected="a random init (auto, he_normal, glorot_uniform, ...)",
            found=settings.init.rule.label,
            fix="remove the init field (auto picks by activation); "
            "zeros/constant are allowed on the head only",
            path=path,
        )


def weight_result(layer: L.WeightLayer, out: Shape, op_params: int, site: LayerSite) -> ShapeResult:
    """Shape result of op -> norm -> activation -> dropout for a weight layer (NORM-2)."""
    s = resolve_weight(layer, site.defaults, is_head=site.is_head)
    _hidden_init_check(s, site)
    channels = out[-1] if isinstance(layer, L.Linear) else out[0]
    params = op_params + (channels if s.bias else 0) + _norm_params(layer, s.norm, out, site)
    if s.activation.kind == "prelu" and s.activation.num_parameters == "channel":  # type: ignore[attr-defined]
        _channels_ok(layer, out, site, "per-channel prelu", "activation")
    params += _activation_params(s.activation, channels)
    return ShapeResult(
        out_shape=out,
        params=params,
        activation=activation_label(s.activation),
        init=s.init.rule.label,
        init_reason=s.init.reason,
        norm=s.norm,
        dropout=s.dropout,
        bias=s.bias,
        settings=s,
    )


def _linear(layer: L.Linear, shape: Shape, site: LayerSite) -> ShapeResult | None:
    # torch's Linear maps the last dim of any input; on a (C, H, W) feature map that is almost
    # always a forgotten flatten, so only (features,) and sequences (T, features) are accepted.
    if not _rank_ok(shape, site, (1, 2)):
        return None
    out = (*shape[:-1], layer.out_features)
    return weight_result(layer, out, shape[-1] * layer.out_features, site)


def _conv(nd: int) -> ShapeFn:
    def shape_fn(layer: L._ConvBase, shape: Shape, site: LayerSite) -> ShapeResult | None:
        if not _rank_ok(shape, site, (nd + 1,)):
            return None
        c_in = shape[0]
        for what, channels in (("in_channels", c_in), ("out_channels", layer.out_channels)):
            if channels % layer.groups:
                site.error(
                    "groups",
                    f"{site.kind}: groups must divide {what}",
                    expected=f"a divisor of {what} {channels}",
                    found=f"groups {layer.groups} (input {site.from_prev(shape)})",
                    fix=f"use groups in {_divisors(channels)[:8]}",
                )
        spatial = _window(layer, shape, site, nd, dilation=layer.dilation, stride=layer.stride)
        if spatial is None:
            return None
        k = (layer.kernel_size,) * nd if isinstance(layer.kernel_size, int) else layer.kernel_size
        weights = layer.out_channels * (c_in // layer.groups) * math.prod(k)
        return weight_result(layer, (layer.out_channels, *spatial), weights, site)

    return shape_fn


# ---- layers without a weight op --------------------------------------------------------------


def _pool(nd: int) -> ShapeFn:
    def shape_fn(layer: L._PoolBase, shape: Shape, site: LayerSite) -> ShapeResult | None:
        if not _rank_ok(shape, site, (nd + 1,)):
            return None
        k = _per_dim(layer.kernel_size, nd, site, "kernel_size")
        p = _per_dim(layer.padding, nd, site, "padding")
        if k and p and any(pp * 2 > kk for pp, kk in zip(p, k, strict=True)):
            site.error(
                "padding",
                f"{site.kind}: padding larger than half the kernel",
                expected=f"padding <= kernel_size / 2 (kernel {layer.kernel_size})",
                found=f"padding {layer.padding}",
                fix="reduce padding",
            )
            return None
        spatial = _window(layer, shape, site, nd, stride=layer.stride)
        return None if spatial is None else ShapeResult((shape[0], *spatial))

    return shape_fn


def _adaptive(nd: int) -> ShapeFn:
    def shape_fn(layer: L.LayerBase, shape: Shape, site: LayerSite) -> ShapeResult | None:
        if not _rank_ok(shape, site, (nd + 1,)):
            return None
        size = _per_dim(layer.output_size, nd, site, "output_size")  # type: ignore[attr-defined]
        return None if size is None else ShapeResult((shape[0], *size))

    return shape_fn


def _flatten(layer: L.Flatten, shape: Shape, site: LayerSite) -> ShapeResult:
    return ShapeResult((math.prod(shape),))


def _reshape(layer: L.Reshape, shape: Shape, site: LayerSite) -> ShapeResult | None:
    numel, target = math.prod(shape), list(layer.shape)
    bad = [x for x in target if x == 0 or x < -1] or ([-1] if target.count(-1) > 1 else [])
    bad = bad or ([] if target else [0])  # a per-sample shape needs at least one dim
    known = math.prod(x for x in target if x != -1)
    if not bad and -1 in target and numel % known == 0:
        target[target.index(-1)] = numel // known
    if bad or math.prod(target) != numel:
        site.error(
            "shape",
            f"reshape: cannot reshape {site.from_prev(shape)} ({numel} elements) "
            f"to {list(layer.shape)}",
            expected=f"positive sizes (at most one -1) whose product is {numel}",
            found=f"{list(layer.shape)}",
            fix=f"for example shape: {reshape_hint(numel, min(max(len(target), 2), 3))}",
        )
        return None
    return ShapeResult(tuple(target))


def _same(layer: L.LayerBase, shape: Shape, site: LayerSite) -> ShapeResult:
    return ShapeResult(shape)


def _dropout2d(layer: L.Dropout2d, shape: Shape, site: LayerSite) -> ShapeResult | None:
    return ShapeResult(shape) if _rank_ok(shape, site, (3,)) else None


def _batch_norm(layer: L.BatchNorm, shape: Shape, site: LayerSite) -> ShapeResult | None:
    return ShapeResult(shape, 2 * shape[0]) if _rank_ok(shape, site, (1, 2, 3)) else None


def _instance_spatial_ok(shape: Shape, site: LayerSite, fld: str | None) -> None:
    # Instance statistics over a single element are undefined: torch refuses at run time.
    if math.prod(shape[1:]) == 1:
        site.error(
            fld,
            f"{site.kind}: instance norm needs more than one spatial element",
            expected="a spatial size > 1",
            found=f"{fmt_shape(shape)}" if fld else site.from_prev(shape),
            fix="use norm: batch or layer here, or downsample less before it",
        )


def _instance_norm(layer: L.InstanceNorm, shape: Shape, site: LayerSite) -> ShapeResult | None:
    if not _rank_ok(shape, site, (2, 3)):
        return None
    _instance_spatial_ok(shape, site, None)
    return ShapeResult(shape, 2 * shape[0] if layer.affine else 0)


def _layer_norm(layer: L.LayerNorm, shape: Shape, site: LayerSite) -> ShapeResult | None:
    if layer.ndim > len(shape):
        site.error(
            "ndim",
            "layer_norm: ndim larger than the input rank",
            expected=f"ndim <= {len(shape)}",
            found=f"ndim {layer.ndim} on input {site.from_prev(shape)}",
            fix=f"use ndim: {len(shape)}",
        )
        return None
    return ShapeResult(
        shape, 2 * math.prod(shape[-layer.ndim :]) if layer.elementwise_affine else 0
    )


def _group_norm(layer: L.GroupNorm, shape: Shape, site: LayerSite) -> ShapeResult:
    if shape[0] % layer.num_groups:
        site.error(
            "num_groups",
            "group_norm: num_groups must divide the channels",
            expected=f"a divisor of {shape[0]} channels",
            found=f"num_groups {layer.num_groups} (input {site.from_prev(shape)})",
            fix=f"use num_groups: {group_count(shape[0])}",
        )
    return ShapeResult(shape, 2 * shape[0])


def _activation(layer: L.ActivationLayer, shape: Shape, site: LayerSite) -> ShapeResult:
    act = layer.activation
    return ShapeResult(shape, _activation_params(act, shape[0]), activation=activation_label(act))


def _embedding(layer: L.Embedding, shape: Shape, site: LayerSite) -> ShapeResult:
    r = resolve_init(layer.init, Identity(), is_head=False)
    init, reason = r.rule.label, r.reason
    if layer.init is None:
        init, reason = NormalRule(EMBEDDING_STD).label, "embedding: N(0, 1) as torch (constant)"
    elif r.symmetric:
        site.error("init", "embedding: a constant init makes every vector equal (INIT-6)",
                   expected="a random init", found=init, fix="remove the init field")  # fmt: skip
    out = (*shape, layer.embedding_dim)
    return ShapeResult(
        out, layer.num_embeddings * layer.embedding_dim, init=init, init_reason=reason
    )


for _kind, _fn in {
    "linear": _linear,
    "conv1d": _conv(1),
    "conv2d": _conv(2),
    "max_pool1d": _pool(1),
    "max_pool2d": _pool(2),
    "avg_pool1d": _pool(1),
    "avg_pool2d": _pool(2),
    "adaptive_avg_pool1d": _adaptive(1),
    "adaptive_avg_pool2d": _adaptive(2),
    "flatten": _flatten,
    "reshape": _reshape,
    "dropout": _same,
    "dropout2d": _dropout2d,
    "alpha_dropout": _same,
    "batch_norm": _batch_norm,
    "layer_norm": _layer_norm,
    "group_norm": _group_norm,
    "instance_norm": _instance_norm,
    "activation": _activation,
    "embedding": _embedding,
    "identity": _same,
}.items():
    SHAPE_FNS.register(_kind, _fn)  # type: ignore[arg-type]
