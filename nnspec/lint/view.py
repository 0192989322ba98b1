"""A resolved, read-only view of a model spec for lint rules (no torch).

Weight layers leave ``activation``/``norm``/``dropout``/``init`` as ``None`` to inherit
``model.defaults``; the head (last weight layer) inherits identity / no norm / no dropout instead.
Rules need the *effective* value and the *path where the user wrote it* (so the finding points at
the line to change), which is what :class:`LayerView` holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from pydantic import BaseModel

from nnspec.spec.experiment import ExperimentSpec
from nnspec.spec.layers import ActivationLayer, BatchNorm, LayerBase, WeightLayer
from nnspec.spec.model import ModelSpec, head_index

__all__ = [
    "Path", "LayerView", "Op", "layer_views", "op_sequence", "iter_kinds", "feeds", "DROPOUT_KINDS",
]  # fmt: skip

Path = tuple[str | int, ...]
DROPOUT_KINDS = frozenset({"dropout", "dropout2d", "alpha_dropout"})


@dataclass(frozen=True)
class Setting:
    """An effective setting of a layer and where it was written (``explicit``: by the user)."""

    value: object
    path: Path
    explicit: bool


@dataclass(frozen=True)
class LayerView:
    """One top-level layer with its effective weight-layer settings resolved."""

    index: int
    layer: LayerBase
    path: Path
    is_weight: bool
    is_head: bool
    activation: Setting | None = None
    norm: Setting | None = None
    dropout: Setting | None = None
    init: Setting | None = None
    node: str | None = None  # graph models: the node id ...
    inputs: tuple[str, ...] | None = None  # ... and the ids feeding it (None: the previous)

    @property
    def activation_name(self) -> str | None:
        act = self.activation.value if self.activation else None
        return getattr(act, "kind", None)


_HEAD_DEFAULTS: dict[str, object] = {"norm": "none", "dropout": 0.0}


def _setting(model: ModelSpec, layer: WeightLayer, path: Path, name: str, head: bool) -> Setting:
    own = getattr(layer, name)
    if own is not None:
        return Setting(own, (*path, name), True)
    if head:
        # Head defaults are built in (identity, no norm/dropout, Glorot x0.1: INIT-9), not written.
        value = _HEAD_DEFAULTS.get(name)
        return Setting(value, path, False)
    defaults = model.defaults
    explicit = "defaults" in model.model_fields_set and name in defaults.model_fields_set
    return Setting(getattr(defaults, name), ("model", "defaults", name), explicit)


_FIELDS = ("activation", "norm", "dropout", "init")


def _view(model: ModelSpec, i: int, layer: LayerBase, path: Path, head: bool, **kw) -> LayerView:
    if not isinstance(layer, WeightLayer):
        return LayerView(i, layer, path, False, False, **kw)
    fields = {n: _setting(model, layer, path, n, head) for n in _FIELDS}
    return LayerView(i, layer, path, True, head, **fields, **kw)


def layer_views(model: ModelSpec) -> list[LayerView]:
    """Resolve every layer of ``model`` (paths are rooted at the experiment).

    Models with blocks, branches or named inputs are seen through their expanded graph
    (``ModelSpec.graph()``), so rules look inside blocks and point at the block's YAML lines.
    """
    if getattr(model, "is_graph", False):
        return [
            _view(model, i, n.layer, ("model", *n.path), n.head, node=n.id, inputs=n.inputs)
            for i, n in enumerate(model.graph().nodes)
        ]
    head = head_index(model.layers)
    return [_view(model, i, layer, ("model", "layers", i), i == head)
            for i, layer in enumerate(model.layers)]  # fmt: skip


def feeds(a: LayerView, b: LayerView) -> bool:
    """True when ``a``'s output is ``b``'s input (always, for consecutive plain layers)."""
    return a is b or b.inputs is None or (a.node is not None and a.node in b.inputs)


@dataclass(frozen=True)
class Op:
    """One elementary operation in execution order: ``weight``, ``norm:<name>``, ``act:<name>``,
    ``dropout`` or a standalone layer kind."""

    op: str
    view: LayerView
    path: Path


def _weight_ops(v: LayerView) -> Iterator[Op]:
    # Weight layers run op -> norm -> activation -> dropout (NORM-2).
    yield Op("weight", v, v.path)
    if v.norm and v.norm.value not in (None, "none"):
        yield Op(f"norm:{v.norm.value}", v, v.norm.path)
    name = v.activation_name
    if name and name != "identity":
        yield Op(f"act:{name}", v, v.activation.path if v.activation else v.path)
    if v.dropout and v.dropout.value:
        yield Op("dropout", v, v.dropout.path)


def op_sequence(views: list[LayerView]) -> list[Op]:
    """Flatten the layers into elementary ops in the order they run."""
    ops: list[Op] = []
    for v in views:
        if v.is_weight:
            ops.extend(_weight_ops(v))
        elif isinstance(v.layer, ActivationLayer):
            ops.append(Op(f"act:{v.layer.activation.kind}", v, (*v.path, "activation")))
        elif isinstance(v.layer, BatchNorm):
            ops.append(Op("norm:batch", v, v.path))
        elif v.layer.kind in DROPOUT_KINDS:
            ops.append(Op("dropout", v, v.path))
        else:
            ops.append(Op(v.layer.kind, v, v.path))
    return ops


def iter_kinds(node: object, path: Path = ()) -> Iterator[tuple[str, Path]]:
    """Every ``kind`` value of a layer-like object anywhere under ``node`` (blocks included).

    Generic on purpose: block and sequence layers added by other modules are found without this
    module knowing their classes.
    """
    if isinstance(node, LayerBase):
        yield node.kind, path
    if isinstance(node, BaseModel):
        for name in type(node).model_fields:
            yield from iter_kinds(getattr(node, name), (*path, name))
    elif isinstance(node, (list, tuple)):
        for i, item in enumerate(node):
            yield from iter_kinds(item, (*path, i))
    elif isinstance(node, dict):
        for key, item in node.items():
            yield from iter_kinds(item, (*path, key))


def model_kinds(spec: ExperimentSpec) -> Iterator[tuple[str, Path]]:
    """Every layer kind in ``spec.model`` with its path (rooted at the experiment)."""
    yield from iter_kinds(spec.model, ("model",))
