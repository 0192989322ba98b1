"""Pure-data spec schemas (pydantic, no torch)."""

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
