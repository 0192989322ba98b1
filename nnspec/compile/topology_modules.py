"""Modules, builders and initialisers of the topology kinds (merges, CNN extras; sequence layers in
:mod:`nnspec.compile.sequence_modules`).

Each kind registers a builder in :data:`~nnspec.compile.layers.LAYER_BUILDERS` and an initialiser
in :data:`~nnspec.compile.initialize.LAYER_INITIALIZERS`; shape functions are in
:mod:`nnspec.compile.blocks` and :mod:`nnspec.compile.sequence`. Init choices (every parameter is
set here and recorded):

* sequence layers: see :mod:`nnspec.compile.sequence_modules`;
* squeeze-excitation: fc1 (-> relu) He, fc2 (-> sigmoid) Glorot, biases 0.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

import torch
from torch import nn

from nnspec.compile.blocks import depthwise_part, se_hidden
from nnspec.compile.infer import LayerInfo
from nnspec.compile.initialize import (
    LAYER_INITIALIZERS,
    ZERO_BIAS,
    Records,
    init_tensor,
    initialize_layer,
    no_params,
)
from nnspec.compile.layers import LAYER_BUILDERS, weight_block
from nnspec.compile.rules import PRESETS
from nnspec.spec import blocks as B
from nnspec.spec.layers import LayerBase

__all__ = ["Merge", "MERGES", "SqueezeExcitation"]


# ---- merges -------------------------------------------------------------------------------------


MergeFn = Callable[[Sequence[torch.Tensor], int], torch.Tensor]


def _fold(op: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> MergeFn:
    return lambda xs, dim: functools.reduce(op, xs)


# The merge node kinds (spec/graph.py Add, Multiply, Concat) -> how inputs combine.
MERGES: Mapping[str, MergeFn] = MappingProxyType(
    {
        "add": _fold(torch.add),
        "multiply": _fold(torch.mul),
        "concat": lambda xs, dim: torch.cat(tuple(xs), dim=dim),
    }
)


class Merge(nn.Module):
    """add / multiply / concat of the inputs, in the order named."""

    def __init__(self, kind: str, dim: int = 1) -> None:
        super().__init__()
        self.kind, self.dim = kind, dim

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return MERGES[self.kind](xs, self.dim)

    def extra_repr(self) -> str:
        return self.kind + (f", dim={self.dim}" if self.kind == "concat" else "")


def _graph_only(layer: LayerBase, info: LayerInfo) -> nn.Module:
    raise TypeError("block uses are expanded by nnspec.spec.graph before anything is built")


# ---- CNN extras ---------------------------------------------------------------------------------


def _conv_transpose(layer: B.ConvTranspose2d, info: LayerInfo) -> nn.Module:
    op = nn.ConvTranspose2d(
        info.in_shape[0],
        layer.out_channels,
        layer.kernel_size,
        stride=layer.stride,
        padding=layer.padding,
        output_padding=layer.output_padding,
        groups=layer.groups,
        dilation=layer.dilation,
        bias=bool(info.settings and info.settings.bias),
    )
    return weight_block(op, layer, info)  # type: ignore[arg-type]


def _separable(layer: B.DepthwiseSeparableConv2d, info: LayerInfo) -> nn.Module:
    dw = depthwise_part(layer, info.in_shape[0])
    padding = 0 if dw.padding == "valid" else dw.padding
    op = nn.Sequential()
    op.add_module(
        "depthwise",
        nn.Conv2d(
            info.in_shape[0],
            dw.out_channels,
            dw.kernel_size,
            stride=dw.stride,
            padding=padding,
            dilation=dw.dilation,
            groups=dw.groups,
            bias=False,
        ),
    )
    bias = bool(info.settings and info.settings.bias)
    op.add_module("pointwise", nn.Conv2d(dw.out_channels, layer.out_channels, 1, bias=bias))
    return weight_block(op, layer, info)  # type: ignore[arg-type]


def _weight_layer_init(
    m: nn.Module, layer: LayerBase, info: LayerInfo, g: torch.Generator
) -> Records:
    # These weight layers hold only torch convs and norms, which the core initialiser knows.
    return initialize_layer(m, layer, info, g)


class SqueezeExcitation(nn.Module):
    """``x * sigmoid(fc2(relu(fc1(mean_hw(x)))))``, the two small layers as 1x1 convs (ARCH-10)."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """The per-channel weights in (0, 1), shape (B, C, 1, 1)."""
        squeezed = x.mean(dim=(2, 3), keepdim=True)
        return torch.sigmoid(self.fc2(torch.relu(self.fc1(squeezed))))


def _se_init(
    m: SqueezeExcitation, layer: LayerBase, info: LayerInfo, g: torch.Generator
) -> Records:
    rec: Records = {}
    init_tensor(
        rec, "fc1.weight", m.fc1.weight, PRESETS["he_normal"], "fc1 -> relu: He (INIT-2)", g
    )
    init_tensor(
        rec,
        "fc2.weight",
        m.fc2.weight,
        PRESETS["glorot_uniform"],
        "fc2 -> sigmoid: Glorot (INIT-4)",
        g,
    )
    for name in ("fc1.bias", "fc2.bias"):
        init_tensor(rec, name, m.get_parameter(name), PRESETS["zeros"], ZERO_BIAS, g, "constant")
    return rec


_TABLE: dict[str, tuple[Callable[..., nn.Module], Callable[..., Records]]] = {
    "conv_transpose2d": (_conv_transpose, _weight_layer_init),
    "depthwise_separable_conv2d": (_separable, _weight_layer_init),
    "squeeze_excitation": (
        lambda layer, info: SqueezeExcitation(info.in_shape[0], se_hidden(info.in_shape[0], layer)),
        _se_init,
    ),
    "add": (lambda layer, info: Merge("add"), no_params),
    "multiply": (lambda layer, info: Merge("multiply"), no_params),
    "concat": (lambda layer, info: Merge("concat", layer.dim), no_params),
    "block": (_graph_only, no_params),
}

for _kind, (_build, _init) in _TABLE.items():
    LAYER_BUILDERS.register(_kind, _build)
    LAYER_INITIALIZERS.register(_kind, _init)  # type: ignore[arg-type]
