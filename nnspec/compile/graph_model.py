"""Build an expanded model graph into a :class:`~nnspec.compile.network.GraphModel` (blocks,
residuals, branches).

Modules sit in a tree mirroring the node ids, so state_dict keys read
``layers.4.0.body.1.op.weight`` (block use 4, repetition 0, body layer 1),
``layers.4.0.shortcut.op.weight`` (an automatic projection) or ``layers.fc1.op.weight``; without a
residual a block's layers are ``layers.4.0.1.op.weight``. Building is pure, as in
:func:`nnspec.compile.model.build_model` (which calls :func:`build_graph_model`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from nnspec.compile.graph import NodeInfo, infer_graph_nodes, projection_stride
from nnspec.compile.infer import Shape
from nnspec.compile.inference import check_param_memory
from nnspec.compile.initialize import (
    LAYER_INITIALIZERS,
    ONE_SCALE,
    ZERO_BIAS,
    InitRecord,
    Records,
    global_rng_from,
    init_tensor,
    initialize_layer,
)
from nnspec.compile.layers import BUILTIN_KINDS, LAYER_BUILDERS, NORM_BUILDERS
from nnspec.compile.network import GraphModel
from nnspec.compile.rules import PRESETS, ConstantRule, resolve_init
from nnspec.compile.topology_modules import Merge
from nnspec.errors import CompileError, Problem
from nnspec.spec.activations import Identity
from nnspec.spec.graph import Add, Concat, Multiply, Shortcut
from nnspec.spec.model import ModelSpec

__all__ = ["build_graph_model"]


def _projection(layer: Shortcut, src: Shape, dst: Shape) -> nn.Module:
    stride = projection_stride(src, dst)
    if len(src) == 1:
        op: nn.Module = nn.Linear(src[0], dst[0], bias=layer.norm != "batch")
    else:
        conv = nn.Conv2d if len(src) == 3 else nn.Conv1d
        op = conv(src[0], dst[0], 1, stride=stride, bias=layer.norm != "batch")
    parts = nn.Sequential()
    parts.add_module("op", op)
    if layer.norm != "none":
        parts.add_module("norm", NORM_BUILDERS[layer.norm](dst[0], len(dst), len(src) == 1))
    return parts


def _build_node(ni: NodeInfo, refs: Sequence[Shape]) -> nn.Module:
    layer = ni.node.layer
    if isinstance(layer, (Add, Multiply, Concat)):
        return Merge(layer.kind, getattr(layer, "dim", 1))
    if isinstance(layer, Shortcut):
        src, dst = ni.in_shapes[0], refs[0]
        return (
            nn.Identity()
            if src == dst and layer.mode != "projection"
            else _projection(layer, src, dst)
        )
    return LAYER_BUILDERS[layer.kind](layer, ni.info)


def _init_node(module: nn.Module, ni: NodeInfo, g: torch.Generator) -> Records:
    layer = ni.node.layer
    if next(module.parameters(), None) is None:
        return {}
    if isinstance(layer, Shortcut):
        rule = resolve_init(None, Identity(), is_head=False)
        rec: Records = {}
        init_tensor(
            rec,
            "op.weight",
            module.op.weight,
            rule.rule,
            f"projection shortcut: {rule.reason}",
            g,
            "auto",
        )
        rest = {n: p for n, p in module.named_parameters() if n != "op.weight"}
        for name, p in rest.items():
            value = 1.0 if name == "norm.weight" else 0.0
            why = ONE_SCALE if value else ZERO_BIAS
            init_tensor(rec, name, p, ConstantRule(value), why, g, "constant")
        return rec
    if layer.kind in BUILTIN_KINDS:
        return initialize_layer(module, layer, ni.info, g)
    if layer.kind in LAYER_INITIALIZERS:
        return LAYER_INITIALIZERS[layer.kind](module, layer, ni.info, g)
    why = f"set by the '{layer.kind}' builder under nnspec's seeded RNG"
    return {n: InitRecord("builder", why, "builder") for n, _ in module.named_parameters()}


def _zero_scale(module: nn.Module, records: Records, g: torch.Generator) -> None:
    # zero_init_last_norm: the weight layer's norm (or the norm layer itself) starts at scale 0.
    name = "norm.weight" if isinstance(getattr(module, "norm", None), nn.Module) else "weight"
    param = dict(module.named_parameters()).get(name)
    if param is not None:
        init_tensor(
            records,
            name,
            param,
            PRESETS["zeros"],
            "residual zero_init_last_norm: scale 0, the block starts as identity",
            g,
            "explicit",
        )


def _built(ni: NodeInfo, refs: Sequence[Shape], g: torch.Generator) -> tuple[nn.Module, Records]:
    layer = ni.node.layer
    try:
        module = _build_node(ni, refs)
    except Exception as e:  # a user builder failed: say where, keep the cause
        if layer.kind in BUILTIN_KINDS or layer.kind in LAYER_INITIALIZERS:
            raise
        msg = f"the builder of layer kind '{layer.kind}' failed: {e}"
        fix = "check the builder registered with nnspec.register_layer"
        raise CompileError(Problem(ni.info.path, msg, fix=fix)) from e
    records = _init_node(module, ni, g)
    if ni.node.zero_init_scale:
        _zero_scale(module, records, g)
    if not layer.trainable:
        module.requires_grad_(False)
    return module, records


def build_graph_model(spec: ModelSpec, generator: torch.Generator) -> GraphModel:
    """Build and initialise a graph model from ``generator``; pure (the global RNG is left
    untouched). Called by :func:`~nnspec.compile.model.build_model`, which picks the generator.

    Example:
        >>> from nnspec.compile.initialize import seeded_generator
        >>> spec = ModelSpec(input_shape=(4,), layers=[
        ...     {"linear": 8, "name": "a"}, {"linear": 8, "inputs": ["input"], "name": "b"},
        ...     {"concat": 1, "inputs": ["a", "b"]}, {"linear": 2}])
        >>> build_graph_model(spec, seeded_generator(0))(torch.zeros(3, 4)).shape
        torch.Size([3, 2])
    """
    infos = infer_graph_nodes(spec)
    check_param_memory([ni.info for ni in infos])  # before any allocation
    graph = spec.graph()
    shapes = {ni.node.id: ni.info.out_shape for ni in infos}
    modules: dict[str, nn.Module] = {}
    records: dict[str, InitRecord] = {}
    with global_rng_from(generator):  # torch's default init and user builders draw from it
        for ni in infos:
            module, recs = _built(ni, [shapes[r] for r in ni.node.refs], generator)
            modules[ni.node.id] = module
            records.update({f"{ni.node.id}.{k}": v for k, v in recs.items()})
    return GraphModel(spec, graph, [ni.info for ni in infos], modules, records, shapes)
