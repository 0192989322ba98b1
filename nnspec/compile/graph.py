"""Shape inference of an expanded model graph (blocks, residuals, branches, several inputs/outputs).

:func:`infer_graph_shapes` runs the per-kind shape functions over the nodes of
:meth:`ModelSpec.graph` in topological order (pure Python, no torch); merges (add/multiply/concat)
and residual shortcuts have their shape rules here. A problem inside a block names the block use,
the repetition and the module path, and points at the layer's definition in ``model.blocks`` (so
the YAML line is the template's). The module side is :mod:`nnspec.compile.graph_model`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# importing these registers the shape functions of the core, CNN-extra and sequence kinds
from nnspec.compile import blocks as _blocks  # noqa: F401
from nnspec.compile import sequence as _sequence  # noqa: F401
from nnspec.compile import shapes as _shapes  # noqa: F401
from nnspec.compile.infer import SHAPE_FNS, LayerInfo, LayerSite, Shape, ShapeResult, fmt_shape
from nnspec.compile.rules import resolve_init
from nnspec.errors import Problem, ShapeError, SpecError
from nnspec.spec.activations import Identity
from nnspec.spec.graph import Add, Concat, Multiply, Node, Shortcut
from nnspec.spec.model import ModelSpec

__all__ = ["infer_graph_shapes", "infer_graph_nodes", "projection_stride", "NodeInfo"]


@dataclass(frozen=True)
class NodeInfo:
    """A node with its inferred shapes: what the builder and the forward plan need."""

    node: Node
    info: LayerInfo
    in_shapes: tuple[Shape, ...]


# ---- shape inference ----------------------------------------------------------------------------


def _label(node_id: str, nodes: Mapping[str, Node]) -> str:
    if node_id.startswith("inputs."):
        return f"model input '{node_id[7:]}'"
    node = nodes[node_id]
    return f"{node.layer.name or node.id} ({node.layer.kind})"


def _merge_shape(
    node: Node, shapes: Sequence[Shape], site: LayerSite, srcs: str
) -> ShapeResult | None:
    layer = node.layer
    if isinstance(layer, Concat):
        return _concat_shape(layer, shapes, site, srcs)
    if len(set(shapes)) > 1:
        site.error(
            None,
            f"{layer.kind}: inputs must have the same shape",
            expected="equal shapes",
            found=srcs,
            fix="project one branch to the other's shape (a linear or 1x1 conv"
            " layer), or merge with concat",
        )
        return None
    return ShapeResult(shapes[0])


def _concat_shape(
    layer: Concat, shapes: Sequence[Shape], site: LayerSite, srcs: str
) -> ShapeResult | None:
    rank = len(shapes[0])
    dim = layer.dim - 1 if layer.dim > 0 else rank + layer.dim  # per-sample index (no batch dim)
    ok = all(len(s) == rank for s in shapes) and 0 <= dim < rank
    ok = ok and all(
        s[:dim] + s[dim + 1 :] == shapes[0][:dim] + shapes[0][dim + 1 :] for s in shapes
    )
    if not ok:
        site.error(
            "dim",
            f"concat: cannot concatenate along dim {layer.dim}",
            expected=f"inputs of equal rank whose sizes agree except in dim {layer.dim}",
            found=srcs,
            fix="flatten the inputs first, or concatenate along another dim",
        )
        return None
    total = sum(s[dim] for s in shapes)
    return ShapeResult((*shapes[0][:dim], total, *shapes[0][dim + 1 :]))


def projection_stride(src: Shape, dst: Shape) -> tuple[int, ...] | None:
    """Stride of a 1x1 conv mapping the spatial dims of ``src`` onto ``dst``, or None.

    Example:
        >>> projection_stride((64, 56, 56), (128, 28, 28))
        (2, 2)
        >>> projection_stride((64, 7, 7), (64, 5, 5)) is None
        True
    """
    if len(src) != len(dst):
        return None
    strides = []
    for a, b in zip(src[1:], dst[1:], strict=True):
        s = next((s for s in range(1, a + 1) if (a - 1) // s + 1 == b), None)
        if s is None:
            return None
        strides.append(s)
    return tuple(strides)


def _shortcut_shape(layer: Shortcut, src: Shape, dst: Shape, site: LayerSite) -> ShapeResult | None:
    if (layer.mode == "auto" and src == dst) or layer.mode == "identity":
        if src != dst:
            site.error(
                None,
                "residual add: the body changes the shape and the shortcut is identity",
                expected=f"the body to keep the shape {fmt_shape(src)}",
                found=f"body output {fmt_shape(dst)}",
                fix="set residual.shortcut: auto (projection), or keep the shape",
            )
            return None
        return ShapeResult(src)
    stride = projection_stride(src, dst) if len(src) in (1, 2, 3) else None
    if stride is None:
        site.error(
            None,
            "residual add: no 1x1 projection maps the block input onto the body output",
            expected=f"a body output of rank {len(src)} whose spatial size a strided 1x1 "
            f"conv can reach from {fmt_shape(src)}",
            found=f"body output {fmt_shape(dst)}",
            fix="pad the body's convs to keep the size (padding: k // 2), or give an "
            "explicit residual.shortcut",
        )
        return None
    # A bias unless batch norm follows (its shift makes the bias redundant, NORM-2).
    bias = dst[0] if layer.norm != "batch" else 0
    params = src[0] * dst[0] + bias + (2 * dst[0] if layer.norm != "none" else 0)
    init = resolve_init(None, Identity(), is_head=False)
    return ShapeResult(
        dst,
        params,
        init=init.rule.label,
        norm=layer.norm,
        init_reason=f"projection shortcut: {init.reason}",
    )


def _node_shape(
    node: Node, shapes: Sequence[Shape], refs: Sequence[Shape], site: LayerSite, srcs: str
) -> ShapeResult | None:
    if isinstance(node.layer, (Add, Multiply, Concat)):
        return _merge_shape(node, shapes, site, srcs)
    if isinstance(node.layer, Shortcut):
        return _shortcut_shape(node.layer, shapes[0], refs[0], site)
    return SHAPE_FNS[node.layer.kind](node.layer, shapes[0], site)


def _with_context(problems: list[Problem], start: int, node: Node) -> None:
    # Shape functions know only the layer; add which block use and repetition this node came from.
    if not node.context:
        return
    for k in range(start, len(problems)):
        p = problems[k]
        problems[k] = Problem(
            p.path, f"{p.message} (in {node.context})", p.expected, p.found, p.fix
        )


def _site(node: Node, model: ModelSpec, srcs: str, problems: list[Problem]) -> LayerSite:
    return LayerSite(
        path=("model", *node.path),
        kind=node.layer.kind,
        prev=srcs,
        is_head=node.head,
        defaults=model.defaults,
        problems=problems,
        depth=node.depth,
    )


def infer_graph_nodes(model: ModelSpec) -> list[NodeInfo]:
    """Shapes of every node in topological order; raises ShapeError/SpecError with every problem."""
    graph = model.graph()
    shapes: dict[str, Shape] = {f"inputs.{k}": tuple(v) for k, v in graph.inputs.items()}
    problems: list[Problem] = []
    out: list[NodeInfo] = []
    for node in graph.nodes:
        if any(i not in shapes for i in (*node.inputs, *node.refs)):
            continue  # a producer failed: its problem is already recorded
        ins = tuple(shapes[i] for i in node.inputs)
        srcs = " and ".join(
            f"{fmt_shape(shapes[i])} from {_label(i, graph.by_id)}" for i in node.inputs
        )
        start = len(problems)
        site = _site(
            node,
            model,
            srcs if len(node.inputs) > 1 else _label(node.inputs[0], graph.by_id),
            problems,
        )
        result = _node_shape(node, ins, [shapes[r] for r in node.refs], site, srcs)
        _with_context(problems, start, node)
        if result is None:
            continue
        shapes[node.id] = result.out_shape
        out.append(NodeInfo(node, _info(node, ins[0], result), ins))
    if problems:
        shape_problem = any(p.path[-1] not in ("init", "name") for p in problems)
        raise (ShapeError if shape_problem else SpecError)(problems)
    return out


def _info(node: Node, in_shape: Shape, r: ShapeResult) -> LayerInfo:
    return LayerInfo(
        path=("model", *node.path),
        name=node.id.removeprefix("layers."),
        kind=node.layer.kind,
        in_shape=in_shape,
        out_shape=r.out_shape,
        params=r.params,
        trainable=node.layer.trainable,
        activation=r.activation,
        init=r.init,
        init_reason=r.init_reason,
        norm=r.norm,
        depth=node.depth,
        dropout=r.dropout,
        bias=r.bias,
        settings=r.settings,
    )


def infer_graph_shapes(model: ModelSpec) -> list[LayerInfo]:
    """:func:`nnspec.compile.infer_shapes` for graph models: one LayerInfo per expanded node."""
    return [n.info for n in infer_graph_nodes(model)]
