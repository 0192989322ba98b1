"""Shape inference's entry point: :func:`infer_shapes` of a layer list or of a graph.

The shape functions register on import of :mod:`nnspec.compile.shapes` (core kinds),
:mod:`nnspec.compile.blocks` and :mod:`nnspec.compile.sequence` (topology kinds), all imported by
:mod:`nnspec.compile.graph`; the walk over a layer list is :func:`nnspec.compile.infer.walk_layers`.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from nnspec.compile.graph import infer_graph_shapes
from nnspec.compile.infer import LayerInfo, walk_layers
from nnspec.errors import Problem, ShapeError, SpecError
from nnspec.spec.model import ModelSpec, auto_sizes, head_index

if TYPE_CHECKING:
    from nnspec.spec.experiment import ExperimentSpec

__all__ = [
    "MAX_PARAM_BYTES",
    "check_param_memory",
    "infer_shapes",
    "infer_sequential",
    "model_spec_of",
]


def model_spec_of(spec: object) -> ModelSpec:
    """The :class:`ModelSpec` to compile: the spec itself, or an experiment's ``model``."""
    if isinstance(spec, ModelSpec):
        return spec
    # An ExperimentSpec exists only once its module is loaded; a model-only caller never loads it.
    experiment = sys.modules.get("nnspec.spec.experiment")
    if experiment is not None and isinstance(spec, experiment.ExperimentSpec):
        return spec.model  # type: ignore[no-any-return]
    problem = Problem(
        (),
        "the compiler needs a ModelSpec",
        expected="ModelSpec (experiment.model)",
        found=type(spec).__name__,
        fix="pass spec.model, or load a spec with nnspec.load",
    )
    raise SpecError(problem)


def infer_shapes(model: ModelSpec | ExperimentSpec) -> list[LayerInfo]:
    """Infer every layer's input/output shape and exact parameter count, without any tensor.

    Raises:
        ShapeError: one error listing every shape problem found (and any init problem).
        SpecError: init problems only (e.g. ``zeros`` on a hidden layer, INIT-6).

    Example:
        >>> from nnspec.spec import ModelSpec
        >>> spec = ModelSpec(input_shape=(30,), layers=[{"linear": 10**9}, {"linear": 1}])
        >>> [i.out_shape for i in infer_shapes(spec)]
        [(1000000000,), (1,)]
    """
    model = model_spec_of(model)
    _refuse_auto(model)
    if model.is_graph:  # blocks, residuals, branches, named inputs/outputs
        return infer_graph_shapes(model)
    return infer_sequential(model)


def _refuse_auto(model: ModelSpec) -> None:
    """``auto`` sizes are the data's: shapes cannot be inferred before it is opened."""
    problems: list[Problem] = [
        Problem(("model", *path), "size `auto` is taken from the data, which is not open here",
                fix="train it (the run resolves `auto`), or see the sizes with nnspec summary "
                "--data")
        for path, _ in auto_sizes(model)
    ]  # fmt: skip
    if problems:
        raise SpecError(problems)


MAX_PARAM_BYTES = 2**40
"""Parameter memory (fp32) above which a spec is refused before anything is allocated: no
machine trains it, and torch's allocation error would come after the run started [nnspec
choice]."""


def check_param_memory(infos: list[LayerInfo]) -> list[LayerInfo]:
    """``infos`` when the model's fp32 parameters fit in :data:`MAX_PARAM_BYTES` (checked by
    ``build_model`` and the CLI's shape check; :func:`infer_shapes` itself counts any size).

    Raises:
        SpecError: naming the largest layer, its parameter count and the total.
    """
    total = sum(i.params for i in infos)
    if total * 4 <= MAX_PARAM_BYTES:
        return infos
    big = max(infos, key=lambda i: i.params)
    raise SpecError(
        Problem(
            big.path,
            f"the model has {total:,} parameters ({total * 4 / 2**40:,.3g} TiB in fp32); this "
            f"layer alone has {big.params:,}",
            expected=f"at most {MAX_PARAM_BYTES // 4:,} parameters (1 TiB)",
            found=f"{total:,}",
            fix="check the layer sizes (a typo such as 1e29 for 128?)",
        )
    )


def infer_sequential(model: ModelSpec) -> list[LayerInfo]:
    """:func:`infer_shapes` of a model known to be a plain layer list (not ``is_graph``)."""
    _refuse_auto(model)
    problems: list[Problem] = []
    infos, out = walk_layers(
        model.layers,
        tuple(model.input_shape),
        prefix=("model", "layers"),
        defaults=model.defaults,
        problems=problems,
        head=head_index(model.layers),
    )
    if problems:
        problems.sort(
            key=lambda p: [(0, x, "") if isinstance(x, int) else (1, 0, x) for x in p.path]
        )
        shape_problem = out is None or any(p.path[-1] not in ("init", "name") for p in problems)
        raise (ShapeError if shape_problem else SpecError)(problems)
    return infos
