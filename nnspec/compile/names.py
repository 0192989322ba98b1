"""Layer names against the torch that runs: a clash is a CompileError at the layer's name.

The spec refuses a short, stable list of names without torch (:mod:`nnspec.spec.reserved`); the
attributes of ``nn.Module`` grow from one torch to the next, so before building, every name a
module will be registered under is checked against this torch's attributes. Without the check, a
clash is torch's bare ``KeyError`` from ``add_module``.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from nnspec.errors import CompileError, Problem
from nnspec.spec.model import ModelSpec

__all__ = ["torch_attributes", "check_layer_names"]


@functools.cache
def torch_attributes() -> frozenset[str]:
    """Attribute names of this torch's ``nn.Sequential`` (a superset of ``nn.Module``'s)."""
    return frozenset(dir(nn.Sequential()))


def _named(spec: ModelSpec) -> list[tuple[tuple[str | int, ...], str]]:
    """(spec path of the layer's definition, name) for every name a module is registered under."""
    if not spec.is_graph:
        return [(("layers", i), layer.name) for i, layer in enumerate(spec.layers) if layer.name]
    # graph node ids are module paths (``layers.4.0.fc``); their parts are the registered names
    named = {(node.path, part) for node in spec.graph().nodes for part in node.id.split(".")[1:]}
    return sorted(named, key=lambda item: (tuple(map(str, item[0])), item[1]))


def check_layer_names(spec: ModelSpec) -> None:
    """Refuse layer names that this torch's modules use as attributes, all at once.

    Raises:
        CompileError: one problem per clashing name, at ``model.<path>.name``, with the fix.

    Example:
        >>> spec = ModelSpec(input_shape=(4,), layers=[{"linear": 2, "name": "out"}])
        >>> check_layer_names(spec)  # no clash: returns None
    """
    taken = torch_attributes()
    problems = [
        Problem(
            ("model", *path, "name"),
            f"layer name {name!r} is an attribute of nn.Module in torch {torch.__version__}, "
            "which cannot hold a layer under it",
            found=name,
            fix=f"rename the layer, e.g. name: {name.strip('_')}_layer",
        )
        for path, name in _named(spec)
        if name in taken
    ]
    if problems:
        raise CompileError(problems)
