"""What a weight layer actually gets after inheritance: ``model.defaults`` for hidden layers, the
head rules for the last weight layer (pure Python; shared by shape inference and the builders, so
the summary and the built module can never disagree)."""

from __future__ import annotations

from dataclasses import dataclass

from nnspec.compile.rules import ResolvedInit, resolve_init
from nnspec.spec.activations import Activation, Identity
from nnspec.spec.layers import NormName, WeightLayer
from nnspec.spec.model import LayerDefaults

IDENTITY = Identity()  # frozen spec: one shared instance for every head

__all__ = ["WeightSettings", "resolve_weight", "group_count", "MAX_GROUPS"]

MAX_GROUPS = 32
"""``norm: group`` inside a weight layer uses the largest divisor of the channels <= 32 (Wu & He's
default of 32 groups, lowered until it divides the channel count)."""


def group_count(channels: int) -> int:
    """Largest divisor of ``channels`` that is <= :data:`MAX_GROUPS`.

    Example:
        >>> group_count(64), group_count(48), group_count(7)
        (32, 24, 7)
    """
    return next(g for g in range(min(channels, MAX_GROUPS), 0, -1) if channels % g == 0)


@dataclass(frozen=True)
class WeightSettings:
    """Resolved fields of one weight layer."""

    activation: Activation
    norm: NormName
    dropout: float
    bias: bool
    init: ResolvedInit
    is_head: bool
    init_inherited: bool  # the init came from model.defaults (error paths point there)


def resolve_weight(layer: WeightLayer, defaults: LayerDefaults, *, is_head: bool) -> WeightSettings:
    """Apply inheritance: a field set on the layer wins; hidden layers fall back to
    ``model.defaults``; the head falls back to identity, no norm, no dropout, Glorot x0.1 (INIT-9).

    The bias is dropped when batch norm follows (its shift makes the bias redundant, NORM-2) unless
    ``bias`` is set explicitly (on the layer, or for hidden layers in ``model.defaults``).
    """
    if is_head:
        act = layer.activation or IDENTITY
        norm: NormName = layer.norm or "none"
        dropout = layer.dropout or 0.0
        explicit_bias = layer.bias
        init_spec = layer.init
    else:
        act = layer.activation or defaults.activation
        norm = layer.norm or defaults.norm
        dropout = defaults.dropout if layer.dropout is None else layer.dropout
        explicit_bias = defaults.bias if layer.bias is None else layer.bias
        init_spec = layer.init or defaults.init
    bias = (norm != "batch") if explicit_bias is None else explicit_bias
    return WeightSettings(
        activation=act,
        norm=norm,
        dropout=dropout,
        bias=bias,
        init=resolve_init(init_spec, act, is_head=is_head),
        is_head=is_head,
        init_inherited=not is_head and layer.init is None,
    )
