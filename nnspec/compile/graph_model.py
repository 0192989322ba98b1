"""Build an expanded model graph into a :class:`GraphModel` (blocks, residuals, branches).

Modules sit in a tree mirroring the node ids, so state_dict keys read
``layers.4.0.body.1.op.weight`` (block use 4, repetition 0, body layer 1),
``layers.4.0.shortcut.op.weight`` (an automatic projection) or ``layers.fc1.op.weight``; without a
residual a block's layers are
``layers.4.0.1.op.weight``. The ``forward`` follows the declared graph: with ``model.inputs`` it
takes a dict of tensors, with ``model.outputs`` it returns one. It is a fixed sequence of module
calls, so ``torch.fx.symbolic_trace`` traces it. Building is pure, as in
:func:`nnspec.compile.model.build_model`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

import torch
from torch import nn

from nnspec.compile.graph import NodeInfo, infer_graph_nodes, projection_stride
from nnspec.compile.infer import Shape
from nnspec.compile.initialize import ONE_SCALE, ZERO_BIAS, InitRecord, initialize_layer
from nnspec.compile.layers import BUILTIN_KINDS, LAYER_BUILDERS, NORM_BUILDERS
from nnspec.compile.model import NNSpecModel
from nnspec.compile.rules import PRESETS, ConstantRule, resolve_init
from nnspec.compile.topology_modules import (
    LAYER_INITIALIZERS,
    Merge,
    Records,
    init_tensor,
)
from nnspec.errors import CompileError, Problem
from nnspec.spec.activations import Identity
from nnspec.spec.graph import Add, Concat, Graph, Multiply, Shortcut
from nnspec.spec.model import ModelSpec

__all__ = ["GraphModel", "build_graph_model"]


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


def _mount(root: nn.Module, node_id: str, module: nn.Module) -> None:
    parent = root
    *parents, leaf = node_id.split(".")
    for part in parents:
        if part not in parent._modules:
            parent.add_module(part, nn.Module())
        parent = parent._modules[part]  # type: ignore[assignment]
    parent.add_module(leaf, module)


class GraphModel(NNSpecModel):
    """A compiled graph model: an :class:`NNSpecModel` whose forward follows the expanded graph.

    Attributes:
        spec: the ModelSpec; layer_info: one LayerInfo per expanded node (topological order);
        init_records: parameter name -> InitRecord; input_shape / output_shape: per-sample shapes
        (dicts keyed by name when the model has named inputs / outputs); head_names: module paths
        of the output heads.
    """

    def __init__(
        self,
        spec: ModelSpec,
        graph: Graph,
        infos: Sequence[NodeInfo],
        modules: Mapping[str, nn.Module],
        records: Mapping[str, InitRecord],
    ) -> None:
        nn.Module.__init__(self)  # not NNSpecModel's: the modules form a tree, not a Sequential
        for node_id, module in modules.items():
            _mount(self, node_id, module)
        shapes = {ni.node.id: ni.info.out_shape for ni in infos}
        self.spec = spec
        self.layer_info = tuple(ni.info for ni in infos)
        self.init_records = MappingProxyType(dict(records))
        self.input_names = tuple(graph.inputs)
        self.output_names = tuple(graph.outputs)
        self.dict_inputs, self.dict_outputs = graph.dict_inputs, graph.dict_outputs
        ins = {k: tuple(v) for k, v in graph.inputs.items()}
        outs = {k: shapes[v] for k, v in graph.outputs.items()}
        self.input_shape = ins if graph.dict_inputs else ins["input"]
        self.output_shape = outs if graph.dict_outputs else outs["output"]
        self.head_names = tuple(n.id for n in graph.nodes if n.head)
        # Relative to `layers`, as NNSpecModel's (its `head` property reads layers.<head_name>.op).
        single = self.head_names[0].removeprefix("layers.") if len(self.head_names) == 1 else None
        self.head_name = single
        self._outputs = dict(graph.outputs)
        self._steps = _plan(graph, modules)

    def forward(
        self, x: torch.Tensor | Mapping[str, torch.Tensor]
    ) -> torch.Tensor | dict[str, torch.Tensor]:
        if self.dict_inputs:
            values = {f"inputs.{k}": x[k] for k in self.input_names}  # type: ignore[index]
        else:
            values = {"inputs.input": x}
        for node_id, module, inputs, free in self._steps:
            values[node_id] = module(*[values[i] for i in inputs])
            for dead in free:  # drop intermediates after their last use (ResNet-sized memory)
                del values[dead]
        if self.dict_outputs:
            return {name: values[node_id] for name, node_id in self._outputs.items()}
        return values[self._outputs["output"]]


Step = tuple[str, nn.Module, tuple[str, ...], tuple[str, ...]]


def _plan(graph: Graph, modules: Mapping[str, nn.Module]) -> list[Step]:
    keep = set(graph.outputs.values())
    last_use: dict[str, int] = {}
    for k, node in enumerate(graph.nodes):
        for i in node.inputs:
            last_use[i] = k
    steps: list[Step] = []
    for k, node in enumerate(graph.nodes):
        free = tuple(i for i in dict.fromkeys(node.inputs) if last_use[i] == k and i not in keep)
        steps.append((node.id, modules[node.id], node.inputs, free))
    return steps


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


def build_graph_model(
    spec: ModelSpec, *, generator: torch.Generator | None = None, seed: int = 0
) -> GraphModel:
    """Build and initialise a graph model; pure (the global RNG is left untouched).

    Example:
        >>> spec = ModelSpec(input_shape=(4,), layers=[
        ...     {"linear": 8, "name": "a"}, {"linear": 8, "inputs": ["input"], "name": "b"},
        ...     {"concat": 1, "inputs": ["a", "b"]}, {"linear": 2}])
        >>> build_graph_model(spec)(torch.zeros(3, 4)).shape
        torch.Size([3, 2])
    """
    infos = infer_graph_nodes(spec)
    graph = spec.graph()
    shapes = {ni.node.id: ni.info.out_shape for ni in infos}
    g = generator if generator is not None else torch.Generator().manual_seed(seed)
    modules: dict[str, nn.Module] = {}
    records: dict[str, InitRecord] = {}
    # Module constructors draw torch's default init from the global RNG: fork it and seed it from
    # our generator, as the sequential compiler does, so building stays pure and reproducible.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=g)))
        for ni in infos:
            module, recs = _built(ni, [shapes[r] for r in ni.node.refs], g)
            modules[ni.node.id] = module
            records.update({f"{ni.node.id}.{k}": v for k, v in recs.items()})
    return GraphModel(spec, graph, infos, modules, records)
