"""Builders: one function per layer kind, reading top to bottom (STYLE §5).

A builder takes ``(layer_spec, info)`` (``info`` is the layer's :class:`LayerInfo` from shape
inference: input/output shapes and, for weight layers, the resolved settings) and returns an
``nn.Module``. Builders only construct; :mod:`nnspec.compile.initialize` sets every parameter.

A weight layer compiles to a :class:`WeightBlock` whose children are, in order (NORM-2),
``op`` (Linear/Conv) -> ``norm`` -> ``act`` -> ``drop``; children that would do nothing (no norm,
identity activation, dropout 0) are left out, so the head is ``WeightBlock(op=Linear)``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from types import MappingProxyType

import torch
from torch import nn

from nnspec.compile.infer import LayerInfo
from nnspec.compile.settings import WeightSettings, group_count
from nnspec.registry import Registry
from nnspec.spec import layers as L
from nnspec.spec.activations import Activation, ActivationName
from nnspec.spec.layers import LayerBase

__all__ = [
    "Builder",
    "LAYER_BUILDERS",
    "ACTIVATION_BUILDERS",
    "NORM_BUILDERS",
    "WeightBlock",
    "Reshape",
    "build_activation",
]

Builder = Callable[[LayerBase, LayerInfo], nn.Module]
LAYER_BUILDERS: Registry[Builder] = Registry("layer builder")
"""layer kind -> builder; user kinds are added by :func:`nnspec.compile.register_layer`."""


class WeightBlock(nn.Sequential):
    """``op -> norm -> act -> drop`` of one weight layer (NORM-2); ``.op`` is the weight op."""


class Reshape(nn.Module):
    """Reshape every sample to ``shape`` (the batch dim is kept)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


# ---- activations: one builder per ActivationName (a drift test checks the key set) -----------

ACTIVATION_BUILDERS: Mapping[ActivationName, Callable[[Activation, int], nn.Module]] = (
    MappingProxyType(
        {
            "relu": lambda a, c: nn.ReLU(),
            "leaky_relu": lambda a, c: nn.LeakyReLU(a.negative_slope),
            # ACT-4: "channel" = one learnt slope per channel; "shared" = one for the layer (torch).
            "prelu": lambda a, c: nn.PReLU(c if a.num_parameters == "channel" else 1, init=a.init),
            "rrelu": lambda a, c: nn.RReLU(a.lower, a.upper),
            "elu": lambda a, c: nn.ELU(a.alpha),
            "selu": lambda a, c: nn.SELU(),
            "gelu": lambda a, c: nn.GELU(approximate=a.approximate),
            "silu": lambda a, c: nn.SiLU(),
            "mish": lambda a, c: nn.Mish(),
            "tanh": lambda a, c: nn.Tanh(),
            "sigmoid": lambda a, c: nn.Sigmoid(),
            "softplus": lambda a, c: nn.Softplus(a.beta, a.threshold),
            "softmax": lambda a, c: nn.Softmax(a.dim),
            "log_softmax": lambda a, c: nn.LogSoftmax(a.dim),
            "identity": lambda a, c: nn.Identity(),
        }
    )
)


def build_activation(act: Activation, channels: int) -> nn.Module:
    """The module for an activation spec; ``channels`` sizes a per-channel PReLU."""
    return ACTIVATION_BUILDERS[act.kind](act, channels)  # type: ignore[index]


# ---- norms inside a weight layer --------------------------------------------------------------


def _batch(channels: int, rank: int, is_linear: bool) -> nn.Module:
    return nn.BatchNorm2d(channels) if rank == 3 else nn.BatchNorm1d(channels)


def _layer(channels: int, rank: int, is_linear: bool) -> nn.Module:
    # After a linear layer: LayerNorm over the features. After a conv: GroupNorm(1, C), i.e. layer
    # norm over (C, *spatial) with a per-channel scale and shift (the usual conv convention).
    return nn.LayerNorm(channels) if is_linear else nn.GroupNorm(1, channels)


def _group(channels: int, rank: int, is_linear: bool) -> nn.Module:
    return nn.GroupNorm(group_count(channels), channels)


def _instance(channels: int, rank: int, is_linear: bool) -> nn.Module:
    return (
        nn.InstanceNorm2d(channels, affine=True)
        if rank == 3
        else nn.InstanceNorm1d(channels, affine=True)
    )


NORM_BUILDERS: Mapping[str, Callable[[int, int, bool], nn.Module]] = MappingProxyType(
    {"batch": _batch, "layer": _layer, "group": _group, "instance": _instance}
)
"""``norm`` name -> builder(channels, output rank, after_linear); ``none`` adds no module."""


def _dropout(s: WeightSettings, kind: str) -> nn.Module:
    if s.activation.kind == "selu":
        return nn.AlphaDropout(s.dropout)  # REG-6: keeps SELU's self-normalisation
    # REG-5: spatial dropout (whole channels) after convolutions.
    spatial = {"conv1d": nn.Dropout1d, "conv2d": nn.Dropout2d}
    return spatial.get(kind, nn.Dropout)(s.dropout)


def weight_block(op: nn.Module, layer: L.WeightLayer, info: LayerInfo) -> WeightBlock:
    """Wrap a weight op with its norm, activation and dropout (NORM-2 order)."""
    s = info.settings
    if s is None:  # pragma: no cover - shape inference always resolves weight layers
        raise RuntimeError(f"no resolved settings for {info.path}")
    is_linear = isinstance(layer, L.Linear)
    out = info.out_shape
    channels = out[-1] if is_linear else out[0]
    parts: OrderedDict[str, nn.Module] = OrderedDict(op=op)
    if s.norm != "none":
        parts["norm"] = NORM_BUILDERS[s.norm](channels, len(out), is_linear)
    if s.activation.kind != "identity":
        parts["act"] = build_activation(s.activation, channels)
    if s.dropout > 0:
        parts["drop"] = _dropout(s, layer.kind)
    return WeightBlock(parts)


# ---- one builder per built-in kind ---------------------------------------------------------


def _linear(layer: L.Linear, info: LayerInfo) -> nn.Module:
    bias = bool(info.settings and info.settings.bias)
    # torch fills the weights, then nnspec sets every parameter again (INIT-11): plain
    # construction, because skipping torch's fill (meta device + to_empty) imports ~500 more torch
    # and sympy modules in every process that builds a model.
    op = nn.Linear(info.in_shape[-1], layer.out_features, bias=bias)
    return weight_block(op, layer, info)


def _padding(layer: L._ConvBase, nd: int) -> object:
    if layer.padding == "valid":
        return 0
    if layer.padding != "same":
        return layer.padding
    k = (layer.kernel_size,) * nd if isinstance(layer.kernel_size, int) else layer.kernel_size
    d = (layer.dilation,) * nd if isinstance(layer.dilation, int) else layer.dilation
    spans = [dd * (kk - 1) for kk, dd in zip(k, d, strict=True)]
    # Odd spans pad symmetrically: give torch the ints (no padded copy). Even spans need torch's
    # asymmetric 'same' (it warns that it copies the input: a real cost the user should see).
    return "same" if any(x % 2 for x in spans) else tuple(x // 2 for x in spans)


def _conv(conv: type[nn.Module], nd: int) -> Builder:
    def build(layer: L._ConvBase, info: LayerInfo) -> nn.Module:  # type: ignore[override]
        op = conv(
            info.in_shape[0],
            layer.out_channels,
            layer.kernel_size,
            stride=layer.stride,
            padding=_padding(layer, nd),
            dilation=layer.dilation,
            groups=layer.groups,
            bias=bool(info.settings and info.settings.bias),
        )
        return weight_block(op, layer, info)

    return build  # type: ignore[return-value]


def _pool(pool: type[nn.Module]) -> Builder:
    def build(layer: L._PoolBase, info: LayerInfo) -> nn.Module:  # type: ignore[override]
        return pool(layer.kernel_size, stride=layer.stride, padding=layer.padding)

    return build  # type: ignore[return-value]


def _norm_layer(layer: LayerBase, info: LayerInfo) -> nn.Module:
    rank, c = len(info.in_shape), info.in_shape[0]
    match layer:
        case L.BatchNorm():
            bn = nn.BatchNorm2d if rank == 3 else nn.BatchNorm1d
            return bn(c, eps=layer.eps, momentum=layer.momentum)
        case L.LayerNorm():
            shape = info.in_shape[-layer.ndim :]
            return nn.LayerNorm(shape, eps=layer.eps, elementwise_affine=layer.elementwise_affine)
        case L.GroupNorm():
            return nn.GroupNorm(layer.num_groups, c, eps=layer.eps)
        case L.InstanceNorm():
            inorm = nn.InstanceNorm2d if rank == 3 else nn.InstanceNorm1d
            return inorm(c, eps=layer.eps, affine=layer.affine)
    raise TypeError(f"not a norm layer: {type(layer).__name__}")  # pragma: no cover


def _embedding(layer: L.Embedding, info: LayerInfo) -> nn.Module:
    return nn.Embedding(layer.num_embeddings, layer.embedding_dim, padding_idx=layer.padding_idx)


for _kind, _builder in {
    "linear": _linear,
    "conv1d": _conv(nn.Conv1d, 1),
    "conv2d": _conv(nn.Conv2d, 2),
    "max_pool1d": _pool(nn.MaxPool1d),
    "max_pool2d": _pool(nn.MaxPool2d),
    "avg_pool1d": _pool(nn.AvgPool1d),
    "avg_pool2d": _pool(nn.AvgPool2d),
    "adaptive_avg_pool1d": lambda layer, info: nn.AdaptiveAvgPool1d(layer.output_size),
    "adaptive_avg_pool2d": lambda layer, info: nn.AdaptiveAvgPool2d(layer.output_size),
    "flatten": lambda layer, info: nn.Flatten(),
    "reshape": lambda layer, info: Reshape(info.out_shape),
    "dropout": lambda layer, info: nn.Dropout(layer.p),
    "dropout2d": lambda layer, info: nn.Dropout2d(layer.p),
    "alpha_dropout": lambda layer, info: nn.AlphaDropout(layer.p),
    "batch_norm": _norm_layer,
    "layer_norm": _norm_layer,
    "group_norm": _norm_layer,
    "instance_norm": _norm_layer,
    "activation": lambda layer, info: build_activation(layer.activation, info.in_shape[0]),
    "embedding": _embedding,
    "identity": lambda layer, info: nn.Identity(),
}.items():
    LAYER_BUILDERS.register(_kind, _builder)  # type: ignore[arg-type]

BUILTIN_KINDS: frozenset[str] = frozenset(LAYER_BUILDERS)
"""Kinds whose every parameter nnspec initialises by its own rules (not a user builder's)."""
