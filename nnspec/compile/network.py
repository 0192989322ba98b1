"""The ``nn.Module`` classes of compiled models: :class:`NNSpecModel` (a layer list) and
:class:`GraphModel` (blocks, residuals, branches, named inputs and outputs).

Both keep their layers under ``layers``, so state_dict keys, summary rows and errors share one
path (``layers.3.op.weight``; ``layers.4.0.body.1.op.weight`` inside block use 4, repetition 0);
the builders are :mod:`nnspec.compile.model` and :mod:`nnspec.compile.graph_model`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from nnspec.compile.infer import LayerInfo, Shape
from nnspec.compile.initialize import InitRecord
from nnspec.spec.graph import Graph
from nnspec.spec.model import ModelSpec

__all__ = ["NNSpecModel", "GraphModel"]


class NNSpecModel(nn.Module):
    """The compiled network: ``layers`` run in order; carries its spec and per-layer records.

    Attributes:
        spec: the :class:`ModelSpec` it was built from.
        input_shape / output_shape: per-sample shapes (no batch dim; dicts keyed by name for a
            graph model with named inputs / outputs).
        layer_info: one :class:`LayerInfo` per layer (per expanded node for a graph model).
        init_records: full parameter name -> :class:`InitRecord` (rule, reason, source).
        head_name: path of the head below ``layers`` (None without a weight layer, or with
            several heads).
    """

    def __init__(
        self,
        spec: ModelSpec,
        layers: nn.Module,
        layer_info: Sequence[LayerInfo],
        init_records: Mapping[str, InitRecord],
        *,
        head_name: str | None,
        input_shape: Any = None,
        output_shape: Any = None,
    ) -> None:
        super().__init__()
        self.layers = layers
        self.spec = spec
        self.layer_info = tuple(layer_info)
        # A plain dict (not a mappingproxy): the model must deepcopy and pickle (checkpoints).
        self.init_records = dict(init_records)
        self.input_shape = tuple(spec.input_shape) if input_shape is None else input_shape
        self.output_shape = self.layer_info[-1].out_shape if output_shape is None else output_shape
        self.head_name = head_name

    @property
    def head(self) -> nn.Module | None:
        """The head's weight op (the last weight layer's Linear/Conv), e.g. for the trainer to set
        its bias from the data (INIT-7/8); None when the model has no single weight-layer head."""
        return None if self.head_name is None else self.layers.get_submodule(self.head_name).op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


Step = tuple[str, nn.Module, tuple[str, ...], tuple[str, ...]]


def _mount(root: nn.Module, path: str, module: nn.Module) -> None:
    """Add ``module`` at dotted ``path`` below ``root``, creating empty parents as needed."""
    parent = root
    *parents, leaf = path.split(".")
    for part in parents:
        try:
            parent = parent.get_submodule(part)
        except AttributeError:
            child = nn.Module()
            parent.add_module(part, child)
            parent = child
    parent.add_module(leaf, module)


def _steps(graph: Graph, modules: Mapping[str, nn.Module]) -> list[Step]:
    """(node id, module, input ids, ids dead after this node) in the graph's order."""
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


class GraphModel(NNSpecModel):
    """A compiled graph model: an :class:`NNSpecModel` whose forward follows the expanded graph.

    With ``model.inputs`` it takes a dict of tensors, with ``model.outputs`` it returns one. The
    forward is a fixed sequence of module calls, so ``torch.fx.symbolic_trace`` traces it.

    Attributes (besides NNSpecModel's): input_names / output_names; head_names: module paths
    of the output heads.
    """

    def __init__(
        self,
        spec: ModelSpec,
        graph: Graph,
        layer_info: Sequence[LayerInfo],
        modules: Mapping[str, nn.Module],
        records: Mapping[str, InitRecord],
        shapes: Mapping[str, Shape],
    ) -> None:
        layers = nn.Module()  # the node modules form a tree mirroring the node ids (layers.*)
        for node_id, module in modules.items():
            _mount(layers, node_id.removeprefix("layers."), module)
        ins = {k: tuple(v) for k, v in graph.inputs.items()}
        outs = {k: shapes[v] for k, v in graph.outputs.items()}
        head_names = tuple(n.id for n in graph.nodes if n.head)
        super().__init__(
            spec,
            layers,
            layer_info,
            records,
            head_name=head_names[0].removeprefix("layers.") if len(head_names) == 1 else None,
            input_shape=ins if graph.dict_inputs else ins["input"],
            output_shape=outs if graph.dict_outputs else outs["output"],
        )
        self.head_names = head_names
        self.input_names = tuple(graph.inputs)
        self.output_names = tuple(graph.outputs)
        self.dict_inputs, self.dict_outputs = graph.dict_inputs, graph.dict_outputs
        self._outputs = dict(graph.outputs)
        self._steps = _steps(graph, modules)

    def forward(  # type: ignore[override]
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
