"""Pure-data spec schemas (pydantic, no torch)."""

from nnspec.spec import activations as _activations
from nnspec.spec import layers as _layers
from nnspec.spec import optim as _optim
from nnspec.spec import sequence as _sequence
from nnspec.spec import train as _train
from nnspec.spec.activations import *  # noqa: F403
from nnspec.spec.base import Spec
from nnspec.spec.blocks import (  # topology (issue 5)
    BlockUse,
    ConvTranspose2d,
    DepthwiseSeparableConv2d,
    ParamDef,
    ResidualSpec,
    SqueezeExcitation,
)
from nnspec.spec.data import DataSpec, SplitSpec
from nnspec.spec.experiment import ExperimentSpec, LintSpec, Task
from nnspec.spec.graph import Add, Concat, Graph, Multiply, Node
from nnspec.spec.init import Constant as ConstantInit
from nnspec.spec.init import InitSpec, Orthogonal, Preset, VarianceScaling
from nnspec.spec.layers import *  # noqa: F403
from nnspec.spec.model import BlockDef, LayerDefaults, ModelSpec
from nnspec.spec.optim import *  # noqa: F403
from nnspec.spec.schedule import SCHEDULE_CLASSES, ScheduleSpec, WarmupSpec
from nnspec.spec.sequence import *  # noqa: F403
from nnspec.spec.train import *  # noqa: F403

# The star-imported modules keep their own __all__; this list adds the explicit imports above.
__all__ = [
    "SCHEDULE_CLASSES",
    "Add",
    "BlockDef",
    "BlockUse",
    "Concat",
    "ConstantInit",
    "ConvTranspose2d",
    "DataSpec",
    "DepthwiseSeparableConv2d",
    "ExperimentSpec",
    "Graph",
    "InitSpec",
    "LayerDefaults",
    "LintSpec",
    "ModelSpec",
    "Multiply",
    "Node",
    "Orthogonal",
    "ParamDef",
    "Preset",
    "ResidualSpec",
    "ScheduleSpec",
    "Spec",
    "SplitSpec",
    "SqueezeExcitation",
    "Task",
    "VarianceScaling",
    "WarmupSpec",
    *_activations.__all__,
    *_layers.__all__,
    *_optim.__all__,
    *_sequence.__all__,
    *_train.__all__,
]
