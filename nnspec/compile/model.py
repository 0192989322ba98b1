"""``build_model``: spec -> a fully initialised :class:`NNSpecModel`, purely.

State-dict keys follow the spec: layer ``i`` lives at ``layers.<name>`` where ``<name>`` is the
layer's ``name:`` or its index, so keys read ``layers.3.op.weight`` (a weight layer's op),
``layers.3.norm.weight`` (its norm), ``layers.3.act.weight`` (a PReLU slope) or, with
``name: fc1``, ``layers.fc1.op.weight``; layers without sub-parts hold their parameters directly
(``layers.2.weight`` for a standalone ``batch_norm``). Summary rows and errors use the same names.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

import torch
from torch import nn

from nnspec.compile import sequence_modules, topology_modules  # noqa: F401  (register their kinds)
from nnspec.compile.graph_model import build_graph_model
from nnspec.compile.infer import LayerInfo
from nnspec.compile.inference import check_param_memory, infer_sequential, model_spec_of
from nnspec.compile.initialize import (
    LAYER_INITIALIZERS,
    InitRecord,
    Records,
    global_rng_from,
    initialize_layer,
    seeded_generator,
)
from nnspec.compile.layers import BUILTIN_KINDS, LAYER_BUILDERS
from nnspec.compile.names import check_layer_names
from nnspec.compile.network import NNSpecModel
from nnspec.errors import CompileError, Problem
from nnspec.spec.layers import LayerBase
from nnspec.spec.model import ModelSpec, head_index

if TYPE_CHECKING:  # building needs only the model-level schemas (import time: bench_import)
    from nnspec.spec.experiment import ExperimentSpec

__all__ = ["NNSpecModel", "build_model"]


def _records(module: nn.Module, layer: LayerBase, info: LayerInfo, g: torch.Generator) -> Records:
    if layer.kind in BUILTIN_KINDS:
        return initialize_layer(module, layer, info, g)
    if layer.kind in LAYER_INITIALIZERS:  # topology kinds set their own documented rules
        return LAYER_INITIALIZERS[layer.kind](module, layer, info, g)
    # user builders initialise their own parameters, under nnspec's seeded RNG
    why = f"set by the '{layer.kind}' builder under nnspec's seeded RNG"
    return {n: InitRecord("builder", why, "builder") for n, _ in module.named_parameters()}


def _build_one(layer: LayerBase, info: LayerInfo, g: torch.Generator) -> tuple[nn.Module, Records]:
    try:
        module = LAYER_BUILDERS[layer.kind](layer, info)
    except Exception as e:  # a user builder failed: say where, keep the cause
        if layer.kind in BUILTIN_KINDS:
            raise
        raise CompileError(
            Problem(
                info.path,
                f"the builder of layer kind '{layer.kind}' failed: {e}",
                fix="check the builder registered with nnspec.register_layer",
            )
        ) from e
    records = _records(module, layer, info, g)
    if not layer.trainable:
        module.requires_grad_(False)
    return module, records


def build_model(
    spec: ModelSpec | ExperimentSpec,
    *,
    generator: torch.Generator | None = None,
    seed: int | None = None,
) -> NNSpecModel:
    """Build and initialise the network of ``spec``; pure: the global RNG is left untouched.

    Args:
        spec: a :class:`ModelSpec`, or an ExperimentSpec (its ``model``, seeded by its ``seed``).
        generator: the only source of randomness; default ``seeded_generator(seed)``.
        seed: seed of the default generator; default the experiment's ``seed``, 0 for a
            ModelSpec. ``nnspec.compile(spec).model`` and the model ``nnspec.train`` starts from
            are built the same way, so they equal ``build_model(spec)``.

    Returns:
        An :class:`NNSpecModel`; same spec and seed give an identical ``state_dict``.

    Raises:
        ShapeError / SpecError: from shape inference (nothing is built then).
        CompileError: a layer name this torch's modules use as an attribute.

    Example:
        >>> from nnspec.spec import ModelSpec
        >>> m = build_model(ModelSpec(input_shape=(4,), layers=[{"linear": 8}, {"linear": 2}]))
        >>> m(torch.zeros(5, 4)).shape, sorted(m.state_dict())[:2]
        (torch.Size([5, 2]), ['layers.0.op.bias', 'layers.0.op.weight'])
    """
    model_spec = model_spec_of(spec)
    if generator is None:
        if seed is None:
            seed = 0 if model_spec is spec else spec.seed  # type: ignore[union-attr]
        generator = seeded_generator(seed)
    check_layer_names(model_spec)
    if model_spec.is_graph:  # blocks, residuals, branches, named inputs/outputs
        return build_graph_model(model_spec, generator)
    return _build_sequential(model_spec, generator)


def _build_sequential(spec: ModelSpec, g: torch.Generator) -> NNSpecModel:
    infos = check_param_memory(infer_sequential(spec))  # before any allocation
    modules: OrderedDict[str, nn.Module] = OrderedDict()
    records: dict[str, InitRecord] = {}
    with global_rng_from(g):  # torch's default init and user builders draw from it
        for layer, info in zip(spec.layers, infos, strict=True):
            module, recs = _build_one(layer, info, g)
            modules[info.name] = module
            records.update({f"{info.module_path}.{k}": v for k, v in recs.items()})
    head = head_index(spec.layers)
    return NNSpecModel(
        spec,
        nn.Sequential(modules),  # add_module checks user names (e.g. 'training')
        infos,
        records,
        head_name=None if head is None else infos[head].name,
    )
