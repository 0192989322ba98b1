"""nnspec: declarative model builder and experiment DSL for PyTorch.

Public import paths, one per name: the functions, errors and experiment sections below come from
``nnspec``; the long lists live in namespaces: :mod:`nnspec.layers` (every layer kind),
:mod:`nnspec.optim`, :mod:`nnspec.schedules`, :mod:`nnspec.activations` and :mod:`nnspec.init`.

``import nnspec`` loads the specs, YAML I/O and errors; the functions that need torch, Hydra or
matplotlib are imported on first use (see ``_HEAVY``), so ``nnspec validate`` starts without torch.

Example:
    >>> import nnspec
    >>> from nnspec.layers import Linear
    >>> spec = nnspec.ExperimentSpec(
    ...     model=nnspec.ModelSpec(input_shape=(4,), layers=(Linear(out_features=3),)),
    ...     optim=nnspec.optim.AdamW(lr=1e-3),
    ... )
    >>> nnspec.loads(nnspec.dump(spec)) == spec
    True
"""

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nnspec import activations, init, layers, optim, schedules
from nnspec.errors import (
    CheckpointError,
    CompileError,
    DataError,
    NNSpecError,
    Problem,
    ShapeError,
    SpecError,
    TrainError,
)
from nnspec.io import dump, load, loads
from nnspec.run.callbacks import Callback, FitState  # imports torch for type checkers only
from nnspec.spec.blocks import ParamDef, ResidualSpec
from nnspec.spec.data import DataSpec, SplitSpec
from nnspec.spec.experiment import ExperimentSpec, LintSpec
from nnspec.spec.layers import LayerBase, WeightLayer
from nnspec.spec.model import BlockDef, LayerDefaults, ModelSpec
from nnspec.spec.optim import LossSpec
from nnspec.spec.train import (
    CheckpointSpec,
    ClipGradSpec,
    EarlyStoppingSpec,
    MonitorsSpec,
    TrainSpec,
)

if TYPE_CHECKING:
    import torch

    from nnspec.compile.plan import Compiled

__version__ = "0.1.0"

# Public functions whose modules import torch, Hydra or matplotlib: name -> (module, attribute).
# Each entry has its import in the TYPE_CHECKING branch below (tests/test_lazy.py checks both).
_HEAVY: dict[str, tuple[str, str]] = {
    "build_model": ("nnspec.compile.model", "build_model"),
    "infer_shapes": ("nnspec.compile.inference", "infer_shapes"),
    "register_layer": ("nnspec.compile.custom", "register_layer"),
    "register_metric": ("nnspec.run.metrics", "register_metric"),
    "Metric": ("nnspec.run.metrics", "Metric"),
    "train": ("nnspec.workflow", "train"),
    "load_run": ("nnspec.run.predict", "load_run"),
    "compose": ("nnspec.hydra.compose", "compose"),
}

# ``nnspec.compile`` and ``nnspec.lint`` are both functions and subpackages. The first import of a
# subpackage sets its parent's attribute to it, so both subpackages are imported here (neither
# loads torch) before the functions are bound below; later imports find them loaded and leave the
# functions in place.
importlib.import_module("nnspec.compile")
from nnspec.lint.engine import lint_spec as lint  # noqa: E402


def compile(
    spec: ExperimentSpec | Mapping[str, Any], *, generator: "torch.Generator | None" = None
) -> "Compiled":
    """Build the model and the training plan of ``spec``: :func:`nnspec.compile.compile_spec`."""
    from nnspec.compile.plan import compile_spec

    return compile_spec(spec, generator=generator)


if not TYPE_CHECKING:  # hidden from type checkers, which would type every unknown name as Any

    def __getattr__(name: str) -> Any:
        if name not in _HEAVY:
            raise AttributeError(f"module 'nnspec' has no attribute '{name}'")
        module, attribute = _HEAVY[name]
        value = getattr(importlib.import_module(module), attribute)
        globals()[name] = value  # later lookups skip this function
        return value

else:  # what __getattr__ returns, for type checkers
    from nnspec.compile.custom import register_layer as register_layer
    from nnspec.compile.inference import infer_shapes as infer_shapes
    from nnspec.compile.model import build_model as build_model
    from nnspec.hydra.compose import compose as compose
    from nnspec.run.metrics import Metric as Metric
    from nnspec.run.metrics import register_metric as register_metric
    from nnspec.run.predict import load_run as load_run
    from nnspec.workflow import train as train


__all__ = [
    "__version__",
    # namespaces
    "layers",
    "optim",
    "schedules",
    "activations",
    "init",
    # errors
    "NNSpecError",
    "SpecError",
    "ShapeError",
    "CompileError",
    "DataError",
    "TrainError",
    "CheckpointError",
    "Problem",
    # experiment sections
    "ExperimentSpec",
    "ModelSpec",
    "LayerDefaults",
    "BlockDef",
    "ParamDef",
    "ResidualSpec",
    "DataSpec",
    "SplitSpec",
    "LossSpec",
    "TrainSpec",
    "EarlyStoppingSpec",
    "ClipGradSpec",
    "CheckpointSpec",
    "MonitorsSpec",
    "LintSpec",
    # base classes of user-registered layers
    "LayerBase",
    "WeightLayer",
    # training callbacks (nnspec.train(..., callbacks=[...]))
    "Callback",
    "FitState",
    # YAML in and out
    "load",
    "loads",
    "dump",
    # need torch, Hydra or matplotlib (imported on first use)
    "build_model",
    "infer_shapes",
    "register_layer",
    "register_metric",
    "Metric",
    "compile",
    "train",
    "load_run",
    "compose",
    "lint",
]
