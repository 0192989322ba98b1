"""Shape functions of the CNN building-block kinds (pure Python, no torch).

``conv_transpose2d`` and ``depthwise_separable_conv2d`` are weight layers (op -> norm -> activation
-> dropout, NORM-2) and reuse the core weight-layer accounting (:func:`weight_result`);
``squeeze_excitation`` has its own documented init. Builders and initialisers live in
:mod:`nnspec.compile.topology_modules`.
"""

from __future__ import annotations

from nnspec.compile.infer import SHAPE_FNS, LayerSite, Shape, ShapeResult
from nnspec.compile.shapes import weight_result
from nnspec.compile.windows import require_rank
from nnspec.spec import blocks as B
from nnspec.spec.layers import Conv2d, LayerBase

__all__ = ["se_hidden", "conv_transpose_size", "pair"]


def pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    """An int or per-dim tuple as (height, width)."""
    return (value, value) if isinstance(value, int) else (value[0], value[-1])


def _need_image(shape: Shape, site: LayerSite, fix: str) -> bool:
    return require_rank(shape, site, 3, "a 3-D input (C, H, W)", fix)


def conv_transpose_size(size: int, k: int, s: int, p: int, op: int, d: int) -> int:
    """torch's ConvTranspose output size: ``(L - 1) s - 2 p + d (k - 1) + op + 1``.

    Example:
        >>> conv_transpose_size(7, k=4, s=2, p=1, op=0, d=1)
        14
    """
    return (size - 1) * s - 2 * p + d * (k - 1) + op + 1


def _transpose_ok(layer: B.ConvTranspose2d, shape: Shape, site: LayerSite) -> bool:
    s, op, d = pair(layer.stride), pair(layer.output_padding), pair(layer.dilation)
    if any(o >= max(ss, dd) for o, ss, dd in zip(op, s, d, strict=True)):
        site.error(
            "output_padding",
            "conv_transpose2d: output_padding must be < stride or dilation",
            expected=f"output_padding < {max(s)}",
            found=str(layer.output_padding),
            fix="use output_padding: 0 or raise the stride",
        )
        return False
    if shape[0] % layer.groups or layer.out_channels % layer.groups:
        site.error(
            "groups",
            "conv_transpose2d: groups must divide in and out channels",
            expected=f"a divisor of {shape[0]} and {layer.out_channels}",
            found=f"groups {layer.groups}",
            fix="use groups: 1",
        )
        return False
    return True


def _conv_transpose(layer: B.ConvTranspose2d, shape: Shape, site: LayerSite) -> ShapeResult | None:
    fix = "insert {kind: reshape, shape: [C, H, W]} before it"
    if not (_need_image(shape, site, fix) and _transpose_ok(layer, shape, site)):
        return None
    k, s, p = pair(layer.kernel_size), pair(layer.stride), pair(layer.padding)
    op, d = pair(layer.output_padding), pair(layer.dilation)
    sizes = [conv_transpose_size(shape[1 + i], k[i], s[i], p[i], op[i], d[i]) for i in range(2)]
    if min(sizes) < 1:
        site.error(
            "padding",
            "conv_transpose2d: padding leaves no output",
            expected="a positive output size",
            found=f"output {sizes}",
            fix="reduce padding",
        )
        return None
    weights = shape[0] * (layer.out_channels // layer.groups) * k[0] * k[1]
    return weight_result(layer, (layer.out_channels, *sizes), weights, site)  # type: ignore[arg-type]


def depthwise_part(layer: B.DepthwiseSeparableConv2d, channels: int) -> Conv2d:
    """The depthwise conv of a separable conv, as a conv2d spec (groups = input channels)."""
    fields = ("kernel_size", "stride", "padding", "dilation")
    values = {f: getattr(layer, f) for f in fields}
    return Conv2d(out_channels=channels * layer.depth_multiplier, groups=channels, **values)


def _separable(
    layer: B.DepthwiseSeparableConv2d, shape: Shape, site: LayerSite
) -> ShapeResult | None:
    if not _need_image(shape, site, "insert {kind: reshape, shape: [C, H, W]} before it"):
        return None
    # Reuse conv2d's window arithmetic and messages for the depthwise part (on a scratch site, so
    # its init/bias accounting is not recorded twice), then count both convs' weights.
    depthwise = depthwise_part(layer, shape[0])
    scratch = LayerSite(site.path, site.kind, site.prev, False, site.defaults, site.problems)
    spatial = SHAPE_FNS["conv2d"](depthwise, shape, scratch)
    if spatial is None:
        return None
    k = pair(layer.kernel_size)
    mid = depthwise.out_channels
    weights = mid * k[0] * k[1] + mid * layer.out_channels
    out = (layer.out_channels, *spatial.out_shape[1:])
    return weight_result(layer, out, weights, site)  # type: ignore[arg-type]


def se_hidden(channels: int, layer: B.SqueezeExcitation) -> int:
    """Hidden width: ``channels // reduction``, at least ``min_hidden``, at most ``channels``.

    Example:
        >>> se_hidden(256, B.SqueezeExcitation()), se_hidden(16, B.SqueezeExcitation())
        (16, 8)
    """
    return max(1, min(channels, max(layer.min_hidden, channels // layer.reduction)))


def _squeeze_excitation(
    layer: B.SqueezeExcitation, shape: Shape, site: LayerSite
) -> ShapeResult | None:
    if not _need_image(shape, site, "place it after a conv2d layer"):
        return None
    c, h = shape[0], se_hidden(shape[0], layer)
    return ShapeResult(
        shape,
        2 * c * h + h + c,
        init="he_normal / glorot_uniform",
        init_reason="fc1 -> relu: He (INIT-2); fc2 -> sigmoid: Glorot (INIT-4)",
    )


def _graph_only(layer: LayerBase, shape: Shape, site: LayerSite) -> ShapeResult | None:
    # Block uses and merges never reach the sequential walk: ModelSpec.is_graph routes every
    # model holding one to nnspec.compile.graph. Kept so every kind has a shape function.
    site.error(
        None,
        f"{layer.kind}: needs the graph compiler",
        fix="call nnspec.compile.infer_shapes on the whole ModelSpec",
    )
    return None


for _kind, _fn in {
    "conv_transpose2d": _conv_transpose,
    "depthwise_separable_conv2d": _separable,
    "squeeze_excitation": _squeeze_excitation,
    "block": _graph_only,
    "add": _graph_only,
    "multiply": _graph_only,
    "concat": _graph_only,
}.items():
    SHAPE_FNS.register(_kind, _fn)  # type: ignore[arg-type]
