"""User-registered layer kinds (``nnspec.register_layer``).

A custom kind is a pydantic spec class (a :class:`~nnspec.spec.layers.LayerBase` subclass
whose ``kind`` is a ``Literal`` default) plus a builder ``(spec, info) -> nn.Module``
(``info.in_shape`` is the per-sample input shape). Registering adds the spec class to
``LAYER_SPECS`` (so YAML using the kind validates, but only after the user's own code registered
it: YAML never imports anything), the builder to ``LAYER_BUILDERS`` and a shape function to
``SHAPE_FNS``.

Shapes come from ``shape_fn(spec, in_shape) -> out_shape`` when given, else from a dry run of the
builder's module on the ``meta`` device (no memory is allocated); the parameter count always comes
from the meta-built module. The builder initialises its own parameters; nnspec builds it under a
forked, seeded RNG so the result is reproducible and the caller's RNG untouched.

Example (tested in tests/compile/test_compile_custom.py)::

    from typing import Literal
    import torch
    from nnspec.spec import LayerBase, ModelSpec
    class Scale(LayerBase):
        kind: Literal["doc_scale"] = "doc_scale"
        value: float = 2.0
    class ScaleOp(torch.nn.Module):
        def __init__(self, value: float) -> None:
            super().__init__()
            self.value = value
        def forward(self, x):
            return x * self.value
    _ = register_layer("doc_scale", Scale, lambda spec, info: ScaleOp(spec.value))
    spec = ModelSpec(input_shape=(3,), layers=[{"kind": "doc_scale"}, {"linear": 1}])
    from nnspec.compile import infer_shapes
    infer_shapes(spec)[0].out_shape
    # -> (3,)
    unregister_layer("doc_scale")
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from nnspec.compile.infer import SHAPE_FNS, LayerInfo, LayerSite, Shape, ShapeResult
from nnspec.compile.layers import BUILTIN_KINDS, LAYER_BUILDERS, Builder
from nnspec.registry import RegistryError
from nnspec.spec.layers import LAYER_SPECS, LayerBase

__all__ = ["register_layer", "unregister_layer", "UserShapeFn"]

UserShapeFn = Callable[[Any, tuple[int, ...]], Sequence[int]]


def _meta_module(builder: Builder, layer: LayerBase, site: LayerSite, shape: Shape) -> nn.Module:
    info = LayerInfo(site.path, layer.name or str(site.path[-1]), layer.kind, shape, shape, 0, True)
    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        return builder(layer, info)


def _custom_shape_fn(
    builder: Builder, shape_fn: UserShapeFn | None
) -> Callable[..., ShapeResult | None]:
    def infer(layer: LayerBase, shape: Shape, site: LayerSite) -> ShapeResult | None:
        try:
            module = _meta_module(builder, layer, site, shape)
            if shape_fn is not None:
                out = tuple(int(x) for x in shape_fn(layer, shape))
            else:
                with torch.no_grad():
                    out = tuple(module(torch.empty((1, *shape), device="meta")).shape[1:])
        except Exception as e:  # the user's code rejected this input: report it like a shape error
            site.error(
                None,
                f"{layer.kind}: the custom layer rejected its input: {type(e).__name__}: {e}",
                expected="an input its builder/shape_fn accepts",
                found=site.from_prev(shape),
                fix="check the layer's fields, or the shape_fn given to nnspec.register_layer",
            )
            return None
        params = sum(p.numel() for p in module.parameters())
        return ShapeResult(out, params)

    return infer


def register_layer(
    kind: str,
    spec_class: type[LayerBase],
    builder: Builder | None = None,
    shape_fn: UserShapeFn | None = None,
) -> Any:
    """Add a layer kind from Python: ``register_layer(kind, SpecClass, builder, shape_fn=None)``,
    or as a decorator ``@register_layer(kind, SpecClass)`` on the builder.

    Args:
        kind: the YAML ``kind``; must equal ``spec_class``'s ``kind`` default.
        spec_class: a ``LayerBase`` subclass with ``kind: Literal["<kind>"] = "<kind>"``.
        builder: ``(spec, info) -> nn.Module``; ``info.in_shape`` is the per-sample input shape.
        shape_fn: optional ``(spec, in_shape) -> out_shape``; default: a dry run on ``meta``.

    Raises:
        RegistryError: the kind exists already (built-in or user), or the class does not fit.
    """
    if builder is None:
        return lambda fn: (register_layer(kind, spec_class, fn, shape_fn), fn)[1]
    for table in (LAYER_SPECS, LAYER_BUILDERS, SHAPE_FNS):  # check all first: all or nothing
        if kind in table:
            raise RegistryError(f"layer kind '{kind}' is already registered; choose another name")
    if not (isinstance(spec_class, type) and issubclass(spec_class, LayerBase)):
        raise RegistryError(f"register_layer('{kind}'): spec_class must subclass nnspec.LayerBase")
    declared = (
        spec_class.model_fields["kind"].default if "kind" in spec_class.model_fields else None
    )
    if declared != kind:
        raise RegistryError(
            f"register_layer('{kind}'): {spec_class.__name__}.kind must default to '{kind}' "
            f"(write kind: Literal['{kind}'] = '{kind}'), found {declared!r}"
        )
    LAYER_SPECS.register(kind, spec_class)
    LAYER_BUILDERS.register(kind, builder)
    SHAPE_FNS.register(kind, _custom_shape_fn(builder, shape_fn))
    return builder


def unregister_layer(kind: str) -> None:
    """Remove a user-registered kind (tests, notebooks); built-in kinds cannot be removed."""
    if kind in BUILTIN_KINDS:
        raise RegistryError(f"layer kind '{kind}' is built in and cannot be unregistered")
    for table in (LAYER_SPECS, LAYER_BUILDERS, SHAPE_FNS):
        table.unregister(kind)
