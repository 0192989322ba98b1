"""The shape-inference machinery: per-kind shape functions walked over a layer list.

A shape function takes ``(layer, in_shape, site)`` and returns a :class:`ShapeResult` (output shape,
exact parameter count, labels for the summary), or ``None`` when the layer cannot accept its input
(the problem is recorded on ``site`` and the walk stops, since later shapes are unknown). Problems
that leave the output shape known (groups not dividing channels, a zeros init on a hidden layer) are
recorded and the walk goes on, so one run reports everything it can find.

Shapes are per sample (no batch dim) and are plain tuples: nothing is allocated, so a width of
10**9 is checked in microseconds. Topology kinds (blocks, residuals) reuse :func:`walk_layers` for
their nested lists.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from nnspec.compile.settings import WeightSettings
from nnspec.errors import Problem
from nnspec.registry import Registry
from nnspec.spec.layers import LayerBase
from nnspec.spec.model import LayerDefaults

__all__ = [
    "Shape",
    "LayerInfo",
    "ShapeResult",
    "LayerSite",
    "ShapeFn",
    "SHAPE_FNS",
    "walk_layers",
    "fmt_shape",
]

Shape = tuple[int, ...]


def fmt_shape(shape: Sequence[int]) -> str:
    """``(128,)``, ``(1, 8, 8)``: the tuple form used in every shape message."""
    return repr(tuple(shape))


@dataclass(frozen=True)
class LayerInfo:
    """What shape inference knows about one layer, before any weight exists.

    ``init`` is the resolved rule (``he_normal(scale=2)``), ``init_reason`` why it was chosen
    (``auto: relu -> He (INIT-2)``); both are None for layers without a weight.
    """

    path: tuple[str | int, ...]
    name: str
    kind: str
    in_shape: Shape
    out_shape: Shape
    params: int
    trainable: bool
    activation: str | None = None
    init: str | None = None
    init_reason: str | None = None
    norm: str | None = None
    depth: int = 0
    dropout: float | None = None
    bias: bool | None = None
    settings: WeightSettings | None = field(default=None, compare=False, repr=False)
    children: tuple[LayerInfo, ...] = ()

    @property
    def module_path(self) -> str:
        """Where the layer's module lives in the built model (``layers.3`` or ``layers.fc1``)."""
        return f"layers.{self.name}"


@dataclass(frozen=True)
class ShapeResult:
    """A shape function's answer; the walker adds path, name, in_shape and depth."""

    out_shape: Shape
    params: int = 0
    activation: str | None = None
    init: str | None = None
    init_reason: str | None = None
    norm: str | None = None
    dropout: float | None = None
    bias: bool | None = None
    settings: WeightSettings | None = None
    children: tuple[LayerInfo, ...] = ()


@dataclass
class LayerSite:
    """Where a layer sits: its spec path, what feeds it, and the shared problem list."""

    path: tuple[str | int, ...]
    kind: str
    prev: str  # "layers.2 (linear)" or "model.input_shape"
    is_head: bool
    defaults: LayerDefaults
    problems: list[Problem]
    depth: int = 0
    earlier_kinds: frozenset[str] = frozenset()  # kinds before this one in its list

    def error(
        self,
        fld: str | None,
        message: str,
        *,
        expected: str | None = None,
        found: str | None = None,
        fix: str | None = None,
        path: tuple[str | int, ...] | None = None,
    ) -> None:
        """Record a problem at this layer (or at ``fld`` of it, or at an explicit ``path``)."""
        where = path if path is not None else (self.path + ((fld,) if fld else ()))
        problem = Problem(where, message, expected=expected, found=found, fix=fix)
        if problem not in self.problems:  # an inherited default is reported once
            self.problems.append(problem)

    def from_prev(self, shape: Shape) -> str:
        """``(128,) from layers.2 (linear)``: a found-shape text naming where it came from."""
        return f"{fmt_shape(shape)} from {self.prev}"


ShapeFn = Callable[[LayerBase, Shape, LayerSite], ShapeResult | None]

SHAPE_FNS: Registry[ShapeFn] = Registry("layer shape function")
"""layer kind -> shape function; built-ins register in :mod:`nnspec.compile.shapes`."""


def _check_names(layers: Sequence[LayerBase], prefix: tuple, problems: list[Problem]) -> None:
    seen: dict[str, int] = {}
    for i, layer in enumerate(layers):
        if layer.name is None:
            continue
        if layer.name in seen:
            problems.append(
                Problem(
                    (*prefix, i, "name"),
                    f"duplicate layer name '{layer.name}'",
                    expected="a name used once per layer list",
                    found=f"'{layer.name}' also at {'.'.join(map(str, prefix))}.{seen[layer.name]}",
                    fix="rename one of them (names become state_dict keys)",
                )
            )
        seen[layer.name] = i


def walk_layers(
    layers: Sequence[LayerBase],
    in_shape: Shape,
    *,
    prefix: tuple[str | int, ...],
    defaults: LayerDefaults,
    problems: list[Problem],
    head: int | None = None,
    depth: int = 0,
    prev: str = "model.input_shape",
) -> tuple[list[LayerInfo], Shape | None]:
    """Infer every layer of ``layers`` in turn; returns the infos and the final shape (None once a
    layer could not accept its input). Problems are appended to ``problems``."""
    _check_names(layers, prefix, problems)
    infos: list[LayerInfo] = []
    shape: Shape | None = in_shape
    seen: frozenset[str] = frozenset()
    where = ".".join(map(str, prefix[1:] or prefix))  # "layers": errors name "layers.2 (linear)"
    for i, layer in enumerate(layers):
        if shape is None:
            break
        site = LayerSite(
            path=(*prefix, i),
            kind=layer.kind,
            prev=prev,
            is_head=i == head,
            defaults=defaults,
            problems=problems,
            depth=depth,
            earlier_kinds=seen,
        )
        result = SHAPE_FNS[layer.kind](layer, shape, site)
        if result is None:
            return infos, None
        name = layer.name or str(i)
        infos.append(_info(layer, site, name, shape, result))
        shape = result.out_shape
        if layer.kind not in seen:
            seen = seen | {layer.kind}
        prev = f"{where}.{i} ({layer.kind})"
    return infos, shape


def _info(layer: LayerBase, site: LayerSite, name: str, shape: Shape, r: ShapeResult) -> LayerInfo:
    return LayerInfo(
        path=site.path,
        name=name,
        kind=layer.kind,
        in_shape=shape,
        out_shape=r.out_shape,
        params=r.params,
        trainable=layer.trainable,
        activation=r.activation,
        init=r.init,
        init_reason=r.init_reason,
        norm=r.norm,
        depth=site.depth,
        dropout=r.dropout,
        bias=r.bias,
        settings=r.settings,
        children=r.children,
    )
