"""Branch/merge layers and the expansion of a model spec into a flat graph of nodes.

:func:`nnspec.spec.expand.expand_model` turns ``model.layers`` (block uses, residual blocks, named
``inputs``) into a :class:`Graph`: one :class:`Node` per primitive layer, in topological order,
each knowing its producers, its spec path (for errors and YAML lines) and the block repetition it
came from. The compiler only ever sees primitive layers, so shape inference, init rules and the
summary work the same inside blocks as outside. This module holds the node types; the expansion is
in :mod:`nnspec.spec.expand`. Pure data: no torch.
"""

# No `from __future__ import annotations` in the schema modules on the model's build path: pydantic
# would eval every field's annotation string one by one at import (bench/bench_import.py);
# forward references are quoted where needed.

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from nnspec.spec.layers import LayerBase, NormName, register_layer_spec

__all__ = [
    "Add",
    "Multiply",
    "Concat",
    "MERGE_KINDS",
    "Shortcut",
    "Node",
    "Graph",
    "raise_problems",
]

Loc = tuple[str | int, ...]
Issue = tuple[Loc, str, Any]  # (location relative to the model section, message, found value)


class _Merge(LayerBase):
    """Merges two or more named inputs (``inputs: [a, b]``)."""


class Add(_Merge):
    """Elementwise sum of inputs of equal shape."""

    kind: Literal["add"] = "add"


class Multiply(_Merge):
    """Elementwise product of inputs of equal shape (gating)."""

    kind: Literal["multiply"] = "multiply"


class Concat(_Merge):
    """Concatenation along ``dim``; the other dims must agree."""

    kind: Literal["concat"] = "concat"
    dim: int = Field(
        default=1, description="Dim as in torch.cat, counting the batch dim: 1 = features/channels."
    )
    shorthand_field: ClassVar[str | None] = "dim"


MERGE_KINDS: tuple[type[LayerBase], ...] = (Add, Multiply, Concat)
for _cls in MERGE_KINDS:
    register_layer_spec(_cls)


class Shortcut(LayerBase):
    """The shortcut of a residual block (internal: created by expansion, not written by users).

    ``auto`` is the identity when the body keeps the shape, else a projection (1x1 conv or linear,
    then ``norm``); ``identity`` never projects; ``projection`` always does.
    """

    kind: Literal["shortcut"] = "shortcut"
    mode: Literal["auto", "identity", "projection"] = Field(
        default="auto", description="See the class."
    )
    norm: NormName = Field(default="none", description="Norm after the projection.")


@dataclass(frozen=True)
class Node:
    """One primitive layer of the expanded graph.

    Attributes:
        id: dotted module path, also the state_dict prefix (``layers.4.0.body.1``).
        layer: the validated layer spec (block parameters substituted).
        inputs: ids of the nodes (or model inputs) whose outputs feed this node, in order.
        refs: ids whose *shape* the node needs but not their value (a shortcut needs the body's
            output shape to pick its projection).
        path: spec path of the layer's definition (``model.blocks.basic.layers.1``), for errors.
        context: where the definition was used, for messages ("" at top level).
        depth: block nesting level (summary indentation).
        block: (block name, repetition) of the innermost block, or None.
        head: True for an output layer (identity activation, Glorot x0.1; INIT-9).
        zero_init_scale: initialise this node's norm scale to 0 (residual option).
    """

    id: str
    layer: LayerBase
    inputs: tuple[str, ...]
    path: Loc
    refs: tuple[str, ...] = ()
    context: str = ""
    depth: int = 0
    block: tuple[str, int] | None = None
    head: bool = False
    zero_init_scale: bool = False


@dataclass(frozen=True)
class Graph:
    """A model as a DAG: named inputs -> nodes (topological order) -> named outputs."""

    inputs: Mapping[str, tuple[int, ...]]
    nodes: tuple[Node, ...]
    outputs: Mapping[str, str]  # output name -> node id
    dict_inputs: bool = False  # forward takes a dict (model.inputs was given)
    dict_outputs: bool = False  # forward returns a dict (model.outputs was given)
    by_id: Mapping[str, Node] = field(default_factory=dict, compare=False)


def raise_problems(issues: Sequence[Issue]) -> None:
    """Raise one pydantic ValidationError holding every issue (collect, then raise once)."""
    unique = {(loc, msg): found for loc, msg, found in issues}  # a block repeated N times
    details = [
        InitErrorDetails(
            type=PydanticCustomError("nnspec_rule", msg),
            loc=loc,
            input=found,
        )
        for (loc, msg), found in unique.items()
    ]
    raise ValidationError.from_exception_data("spec", details)
