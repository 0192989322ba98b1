"""``build_model``: spec -> a fully initialised :class:`NNSpecModel`, purely.

State-dict keys follow the spec: layer ``i`` lives at ``layers.<name>`` where ``<name>`` is the
layer's ``name:`` or its index, so keys read ``layers.3.op.weight`` (a weight layer's op),
``layers.3.norm.weight`` (its norm), ``layers.3.act.weight`` (a PReLU slope) or, with
``name: fc1``, ``layers.fc1.op.weight``; layers without sub-parts hold their parameters directly
(``layers.2.weight`` for a standalone ``batch_norm``). Summary rows and errors use the same names.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch
from torch import nn

from nnspec.compile.infer import LayerInfo, Shape
from nnspec.compile.initialize import InitRecord, initialize_layer
from nnspec.compile.layers import BUILTIN_KINDS, LAYER_BUILDERS
from nnspec.compile.shapes import infer_sequential, model_spec_of
from nnspec.compile.topology_modules import LAYER_INITIALIZERS  # topology kinds (issue 5)
from nnspec.errors import CompileError, Problem, SpecError
from nnspec.spec.layers import LayerBase
from nnspec.spec.model import ModelSpec, head_index
from nnspec.spec.reserved import name_clash

if TYPE_CHECKING:  # building needs only the model-level schemas (import time: bench_import)
    from nnspec.spec.experiment import ExperimentSpec

__all__ = ["NNSpecModel", "build_model"]

Records = dict[str, InitRecord]


class NNSpecModel(nn.Module):
    """The compiled network: ``layers`` run in order; carries its spec and per-layer records.

    Attributes:
        spec: the :class:`ModelSpec` it was built from.
        input_shape / output_shape: per-sample shapes (no batch dim).
        layer_info: one :class:`LayerInfo` per top-level layer (from shape inference).
        init_records: full parameter name -> :class:`InitRecord` (rule, reason, source).
    """

    def __init__(
        self,
        spec: ModelSpec,
        layers: OrderedDict[str, nn.Module],
        layer_info: tuple[LayerInfo, ...],
        init_records: Mapping[str, InitRecord],
        head_name: str | None,
    ) -> None:
        super().__init__()
        self.layers = nn.Sequential(layers)  # add_module checks user names (e.g. 'training')
        self.spec: ModelSpec
        self.layer_info: tuple[LayerInfo, ...]
        self.init_records: dict[str, InitRecord]
        self.input_shape: Shape
        self.output_shape: Shape
        self.head_name: str | None
        # Plain attributes (no tensors or modules) go straight into __dict__: Module.__setattr__
        # checks each against parameters/buffers/modules, a measurable share of a small build.
        self.__dict__.update(
            spec=spec,
            layer_info=layer_info,
            # A plain dict (not a mappingproxy): the model must deepcopy and pickle (checkpoints).
            init_records=dict(init_records),
            input_shape=tuple(spec.input_shape),
            output_shape=layer_info[-1].out_shape,
            head_name=head_name,
        )

    @property
    def head(self) -> nn.Module | None:
        """The head's weight op (the last weight layer's Linear/Conv), e.g. for the trainer to set
        its bias from the data (INIT-7/8); None when the model has no weight layer."""
        return None if self.head_name is None else self.layers.get_submodule(self.head_name).op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def _construct(layer: LayerBase, info: LayerInfo) -> nn.Module:
    # Built-in builders skip torch's default init (layers._without_default_init); user builders
    # run theirs under the forked, seeded global RNG (build_model).
    return LAYER_BUILDERS[layer.kind](layer, info)


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
        module = _construct(layer, info)
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


@functools.cache
def torch_attributes() -> frozenset[str]:
    """Attribute names of this torch's ``nn.Sequential`` (read once: ``dir`` costs ~30 us, a
    sixth of building a small MLP; bench_build)."""
    return frozenset(dir(nn.Sequential()))


def check_layer_names(spec: ModelSpec) -> None:
    """Refuse layer names that this torch's ``nn.Sequential`` already uses as attributes.

    The spec refuses the names of the torch it was written against (nnspec/spec/reserved.py);
    this repeats the check against the torch that runs, whose attributes may differ, so a clash
    is a SpecError at ``model.layers.<i>.name``, never torch's bare ``KeyError``.
    """
    named = [(i, layer.name) for i, layer in enumerate(spec.layers) if layer.name is not None]
    if not named:
        return
    taken = torch_attributes()
    problems = [
        Problem(("model", "layers", i, "name"), name_clash(name), found=name)
        for i, name in named
        if name in taken
    ]
    if problems:
        raise SpecError(problems)


def build_model(
    spec: ModelSpec | ExperimentSpec,
    *,
    generator: torch.Generator | None = None,
    seed: int = 0,
) -> NNSpecModel:
    """Build and initialise the network of ``spec``; pure: the global RNG is left untouched.

    Args:
        spec: a :class:`ModelSpec` (``experiment.model``); an ExperimentSpec means its ``model``.
        generator: the only source of randomness; default ``torch.Generator().manual_seed(seed)``.
        seed: seed of the default generator.

    Returns:
        An :class:`NNSpecModel`; same spec and seed give an identical ``state_dict``.

    Raises:
        ShapeError / SpecError: from shape inference (nothing is built then).

    Example:
        >>> from nnspec.spec import ModelSpec
        >>> m = build_model(ModelSpec(input_shape=(4,), layers=[{"linear": 8}, {"linear": 2}]))
        >>> m(torch.zeros(5, 4)).shape, sorted(m.state_dict())[:2]
        (torch.Size([5, 2]), ['layers.0.op.bias', 'layers.0.op.weight'])
    """
    model_spec = model_spec_of(spec)
    check_layer_names(model_spec)
    if model_spec.is_graph:  # blocks, residuals, branches, named inputs/outputs (issue 5)
        from nnspec.compile.graph_model import build_graph_model

        return build_graph_model(model_spec, generator=generator, seed=seed)
    infos = infer_sequential(model_spec)
    g = generator if generator is not None else torch.Generator().manual_seed(seed)
    modules: OrderedDict[str, nn.Module] = OrderedDict()
    records: dict[str, InitRecord] = {}
    # Kinds outside BUILTIN_KINDS (user builders, topology and sequence kinds) may draw from the
    # global RNG (torch's default init): fork it (restored on exit) and seed it from our generator,
    # so building is pure and reproducible. Built-in kinds never touch it (they skip torch's
    # default init), so they need no fork; the seed is drawn either way, so g's stream is the same.
    global_seed = int(torch.randint(0, 2**62, (1,), generator=g))
    needs_fork = any(layer.kind not in BUILTIN_KINDS for layer in model_spec.layers)
    with torch.random.fork_rng(devices=[], enabled=needs_fork):
        if needs_fork:  # only the CPU generator (torch.manual_seed would queue CUDA/XPU seeds too)
            torch.default_generator.manual_seed(global_seed)
        for layer, info in zip(model_spec.layers, infos, strict=True):
            module, recs = _build_one(layer, info, g)
            modules[info.name] = module
            records.update({f"{info.module_path}.{k}": v for k, v in recs.items()})
    head = head_index(model_spec.layers)
    head_name = None if head is None else infos[head].name
    return NNSpecModel(model_spec, modules, tuple(infos), records, head_name)
