"""nnspec: declarative model builder and experiment DSL for PyTorch.

The public API is imported lazily (PEP 562) so that ``import nnspec`` stays light: torch, Hydra and
matplotlib are only imported by the call that needs them.

Example:
    >>> import nnspec
    >>> spec = nnspec.load("examples/breast_cancer_mlp.yaml")  # doctest: +SKIP
    >>> model = nnspec.build_model(spec.model)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nnspec._lazy import lazy_exports

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # errors
    "NNSpecError": "nnspec.errors",
    "SpecError": "nnspec.errors",
    "ShapeError": "nnspec.errors",
    "CompileError": "nnspec.errors",
    "DataError": "nnspec.errors",
    "TrainError": "nnspec.errors",
    "CheckpointError": "nnspec.errors",
    "Problem": "nnspec.errors",
    # specs
    "ExperimentSpec": "nnspec.spec",
    "ModelSpec": "nnspec.spec",
    "LayerDefaults": "nnspec.spec",
    "BlockDef": "nnspec.spec",
    "DataSpec": "nnspec.spec",
    "SplitSpec": "nnspec.spec",
    "LossSpec": "nnspec.spec",
    "TrainSpec": "nnspec.spec",
    "LintSpec": "nnspec.spec",
    "Linear": "nnspec.spec",
    "Conv1d": "nnspec.spec",
    "Conv2d": "nnspec.spec",
    "MaxPool1d": "nnspec.spec",
    "MaxPool2d": "nnspec.spec",
    "AvgPool1d": "nnspec.spec",
    "AvgPool2d": "nnspec.spec",
    "AdaptiveAvgPool1d": "nnspec.spec",
    "AdaptiveAvgPool2d": "nnspec.spec",
    "Flatten": "nnspec.spec",
    "Reshape": "nnspec.spec",
    "Dropout": "nnspec.spec",
    "Dropout2d": "nnspec.spec",
    "AlphaDropout": "nnspec.spec",
    "BatchNorm": "nnspec.spec",
    "LayerNorm": "nnspec.spec",
    "GroupNorm": "nnspec.spec",
    "InstanceNorm": "nnspec.spec",
    "ActivationLayer": "nnspec.spec",
    "Embedding": "nnspec.spec",
    "IdentityLayer": "nnspec.spec",
    "LayerBase": "nnspec.spec",
    "WeightLayer": "nnspec.spec",
    "VarianceScaling": "nnspec.spec",
    "Preset": "nnspec.spec",
    "activation_from": "nnspec.spec",
    # YAML in and out
    "load": "nnspec.io",
    "loads": "nnspec.io",
    "dump": "nnspec.io",
    # compiler
    "build_model": "nnspec.compile",
    "infer_shapes": "nnspec.compile",
    "register_layer": "nnspec.compile",
    "compile": "nnspec.compile",
    # run
    "train": "nnspec.workflow",
    "load_run": "nnspec.run",
    # hydra
    "compose": "nnspec.hydra",
    # lint / checks
    "lint": "nnspec.lint",
}

__all__ = ["__version__", *_EXPORTS]


__getattr__, __dir__ = lazy_exports("nnspec", _EXPORTS, extra=("__version__",))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from nnspec.errors import *  # noqa: F403
    from nnspec.spec import *  # noqa: F403
