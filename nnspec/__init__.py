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

__version__ = "0.1.0"

# Public functions whose modules import torch, Hydra or matplotlib: name -> (module, attribute).
_HEAVY: dict[str, tuple[str, str]] = {
    "build_model": ("nnspec.compile", "build_model"),
    "infer_shapes": ("nnspec.compile", "infer_shapes"),
    "register_layer": ("nnspec.compile", "register_layer"),
    "compile": ("nnspec.compile", "compile"),
    "train": ("nnspec.run", "train"),
    "load_run": ("nnspec.run", "load_run"),
    "compose": ("nnspec.hydra", "compose"),
    "lint": ("nnspec.lint", "lint"),
}


def __getattr__(name: str) -> Any:
    if name not in _HEAVY:
        raise AttributeError(f"module 'nnspec' has no attribute '{name}'")
    module, attribute = _HEAVY[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # later lookups skip this function
    return value


if TYPE_CHECKING:  # what __getattr__ returns, for type checkers
    from nnspec.compile import build_model as build_model
    from nnspec.compile import infer_shapes as infer_shapes
    from nnspec.compile import register_layer as register_layer
    from nnspec.compile.plan import compile as compile
    from nnspec.hydra import compose as compose
    from nnspec.lint import lint as lint
    from nnspec.run import load_run as load_run
    from nnspec.run import train as train


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
    # YAML in and out
    "load",
    "loads",
    "dump",
    # need torch, Hydra or matplotlib (imported on first use)
    "build_model",
    "infer_shapes",
    "register_layer",
    "compile",
    "train",
    "load_run",
    "compose",
    "lint",
]
