"""Find the spec class (and its fields) at a path of the user's data.

Pydantic's errors do not say which model an unknown field was found in; the "did you mean" for
``model.layers.3.activaton`` needs the fields of that layer's class. This walks the annotations
from :class:`~nnspec.spec.ExperimentSpec` down the path, choosing union branches by the data's
``kind`` the same way the discriminators do.
"""

from __future__ import annotations

import types
from collections.abc import Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

__all__ = ["spec_class_at", "field_info_at", "kind_choices", "UNKNOWN"]

UNKNOWN: Any = object()
"""Placeholder for data that the path walked past (a field the user did not write)."""


def _unwrap(tp: Any, node: Any) -> Any:
    """Strip Annotated/Optional/unions down to one type, choosing branches by ``node``'s kind."""
    from nnspec.spec.layers import LAYER_SPECS, LayerBase, normalize_layer

    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            tp = _choose_branch([a for a in get_args(tp) if a is not type(None)], node)
            if tp is None:
                return None
        elif isinstance(tp, type) and issubclass(tp, LayerBase) and tp is LayerBase:
            try:
                node = normalize_layer(node)
            except ValueError:  # pydantic's custom errors for bad shorthands
                return None
            kind = node.get("kind") if isinstance(node, dict) else None
            return LAYER_SPECS[kind] if isinstance(kind, str) and kind in LAYER_SPECS else None
        else:
            return tp


def _choose_branch(options: list[Any], node: Any) -> Any:
    if len(options) == 1:
        return options[0]
    if isinstance(node, str):
        kind = node
    elif isinstance(node, dict):
        kind = node.get("kind")
    else:  # a default value (a spec instance) or nothing
        kind = getattr(node, "kind", None)
    models = []
    for option in options:
        base = option
        while get_origin(base) is Annotated:
            base = get_args(base)[0]
        if isinstance(base, type) and issubclass(base, BaseModel):
            models.append(base)
            default = base.model_fields.get("kind")
            if default is not None and default.default == kind:
                return base
    containers = [o for o in options if get_origin(o) in (tuple, list, dict)]
    if isinstance(node, (list, tuple)) and len(containers) == 1:
        return containers[0]
    if len(models) == 1 and isinstance(node, (dict, BaseModel)):
        return models[0]
    return type(node) if isinstance(node, BaseModel) and type(node) in models else None


def _step(tp: Any, node: Any, item: str | int) -> tuple[Any, Any, FieldInfo | None]:
    """One step down: the type and data at ``item`` below a value of type ``tp``."""
    tp = _unwrap(tp, node)
    if tp is None:
        return None, UNKNOWN, None
    child = UNKNOWN
    if isinstance(node, dict):
        child = node.get(item, UNKNOWN)
    elif isinstance(node, list) and isinstance(item, int) and -len(node) <= item < len(node):
        child = node[item]
    elif isinstance(node, BaseModel) and isinstance(item, str):
        child = getattr(node, item, UNKNOWN)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        info = tp.model_fields.get(item) if isinstance(item, str) else None
        if info is not None and child is UNKNOWN and not info.is_required():
            # The user left the field out: walk on through its default (e.g. schedule: constant).
            child = info.get_default(call_default_factory=True)
        return (info.annotation if info else None), child, info
    args = get_args(tp)
    origin = get_origin(tp)
    if origin in (tuple, list) and isinstance(item, int) and args:
        return args[0], child, None
    if origin is dict and len(args) == 2:
        return args[1], child, None
    return None, UNKNOWN, None


def _walk(
    path: Sequence[str | int], data: Any, root: type[BaseModel]
) -> tuple[Any, Any, FieldInfo | None]:
    tp: Any = root
    node: Any = data
    info: FieldInfo | None = None
    for item in path:
        tp, node, info = _step(tp, node, item)
        if tp is None:
            return None, UNKNOWN, None
    return tp, node, info


def spec_class_at(
    path: Sequence[str | int], data: Any, root: type[BaseModel] | None = None
) -> type[BaseModel] | None:
    """The spec class that validates the mapping at ``path`` of ``data`` (None if unknown).

    Example:
        >>> data = {"model": {"layers": [{"kind": "linear"}]}}
        >>> spec_class_at(("model", "layers", 0), data).__name__
        'Linear'
    """
    if root is None:
        from nnspec.spec.experiment import ExperimentSpec

        root = ExperimentSpec
    tp, node, _ = _walk(path, data, root)
    tp = _unwrap(tp, node) if tp is not None else None
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def field_info_at(
    path: Sequence[str | int], data: Any, root: type[BaseModel] | None = None
) -> FieldInfo | None:
    """Pydantic's field info (description, default) of the field at ``path``, if it is one."""
    if root is None:
        from nnspec.spec.experiment import ExperimentSpec

        root = ExperimentSpec
    return _walk(path, data, root)[2]


def kind_choices(
    path: Sequence[str | int], data: Any, root: type[BaseModel] | None = None
) -> tuple[list[str], str | None]:
    """The ``kind`` values the field at ``path`` accepts, and the kind of its default (if any).

    Example:
        >>> kinds, default = kind_choices(("optim",), {})
        >>> "sgd" in kinds, default
        (True, 'adamw')
    """
    info = field_info_at(path, data, root)
    if info is None:
        return [], None
    kinds: list[str] = []
    pending = [info.annotation]
    while pending:
        tp = pending.pop(0)
        if get_origin(tp) in (Annotated, Union, types.UnionType):
            pending[:0] = get_args(tp)[:1] if get_origin(tp) is Annotated else get_args(tp)
        elif isinstance(tp, type) and issubclass(tp, BaseModel) and "kind" in tp.model_fields:
            default = tp.model_fields["kind"].default
            kinds += [default] if isinstance(default, str) else []
    default = None if info.is_required() else info.get_default(call_default_factory=True)
    return kinds, getattr(default, "kind", None)
