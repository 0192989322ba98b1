"""Pure-data spec schemas (pydantic, no torch).

Names are imported lazily (PEP 562): building a model needs the model-level schemas (layers,
activations, init, blocks, graphs, sequences), not the experiment-level ones (data, optim,
schedule, train), and every pydantic class costs import time (``bench/bench_import.py``).
``tests/test_lazy.py`` checks this table against the modules' own ``__all__``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nnspec._lazy import lazy_exports

# public name -> module that defines it ("module:attribute" for an alias)
_EXPORTS: dict[str, str] = {
    # nnspec.spec.base
    "Spec": "nnspec.spec.base",
    # nnspec.spec.activations
    "ActivationName": "nnspec.spec.activations",
    "ACTIVATION_NAMES": "nnspec.spec.activations",
    "ActivationSpec": "nnspec.spec.activations",
    "Activation": "nnspec.spec.activations",
    "activation_from": "nnspec.spec.activations",
    "ReLU": "nnspec.spec.activations",
    "LeakyReLU": "nnspec.spec.activations",
    "PReLU": "nnspec.spec.activations",
    "RReLU": "nnspec.spec.activations",
    "ELU": "nnspec.spec.activations",
    "SELU": "nnspec.spec.activations",
    "GELU": "nnspec.spec.activations",
    "SiLU": "nnspec.spec.activations",
    "Mish": "nnspec.spec.activations",
    "Tanh": "nnspec.spec.activations",
    "Sigmoid": "nnspec.spec.activations",
    "Softplus": "nnspec.spec.activations",
    "Softmax": "nnspec.spec.activations",
    "LogSoftmax": "nnspec.spec.activations",
    "Identity": "nnspec.spec.activations",
    # nnspec.spec.init
    "InitSpec": "nnspec.spec.init",
    "Orthogonal": "nnspec.spec.init",
    "Preset": "nnspec.spec.init",
    "VarianceScaling": "nnspec.spec.init",
    "ConstantInit": "nnspec.spec.init:Constant",
    # nnspec.spec.layers
    "LayerBase": "nnspec.spec.layers",
    "WeightLayer": "nnspec.spec.layers",
    "LAYER_SPECS": "nnspec.spec.layers",
    "LayerSpec": "nnspec.spec.layers",
    "NormName": "nnspec.spec.layers",
    "register_layer_spec": "nnspec.spec.layers",
    "layer_spec_json_types": "nnspec.spec.layers",
    "Linear": "nnspec.spec.layers",
    "Conv1d": "nnspec.spec.layers",
    "Conv2d": "nnspec.spec.layers",
    "MaxPool1d": "nnspec.spec.layers",
    "MaxPool2d": "nnspec.spec.layers",
    "AvgPool1d": "nnspec.spec.layers",
    "AvgPool2d": "nnspec.spec.layers",
    "AdaptiveAvgPool1d": "nnspec.spec.layers",
    "AdaptiveAvgPool2d": "nnspec.spec.layers",
    "Flatten": "nnspec.spec.layers",
    "Reshape": "nnspec.spec.layers",
    "Dropout": "nnspec.spec.layers",
    "Dropout2d": "nnspec.spec.layers",
    "AlphaDropout": "nnspec.spec.layers",
    "BatchNorm": "nnspec.spec.layers",
    "LayerNorm": "nnspec.spec.layers",
    "GroupNorm": "nnspec.spec.layers",
    "InstanceNorm": "nnspec.spec.layers",
    "ActivationLayer": "nnspec.spec.layers",
    "Embedding": "nnspec.spec.layers",
    "IdentityLayer": "nnspec.spec.layers",
    # nnspec.spec.sequence
    "RNN": "nnspec.spec.sequence",
    "LSTM": "nnspec.spec.sequence",
    "GRU": "nnspec.spec.sequence",
    "MultiheadAttention": "nnspec.spec.sequence",
    "TransformerEncoderLayer": "nnspec.spec.sequence",
    "PositionalEncoding": "nnspec.spec.sequence",
    "ClsToken": "nnspec.spec.sequence",
    "SequencePool": "nnspec.spec.sequence",
    "SEQUENCE_KINDS": "nnspec.spec.sequence",
    "needs_clipping": "nnspec.spec.sequence",
    # nnspec.spec.blocks
    "BlockDef": "nnspec.spec.blocks",
    "BlockUse": "nnspec.spec.blocks",
    "ConvTranspose2d": "nnspec.spec.blocks",
    "DepthwiseSeparableConv2d": "nnspec.spec.blocks",
    "ParamDef": "nnspec.spec.blocks",
    "ResidualSpec": "nnspec.spec.blocks",
    "SqueezeExcitation": "nnspec.spec.blocks",
    # nnspec.spec.graph
    "Add": "nnspec.spec.graph",
    "Concat": "nnspec.spec.graph",
    "Graph": "nnspec.spec.graph",
    "Multiply": "nnspec.spec.graph",
    "Node": "nnspec.spec.graph",
    # nnspec.spec.model
    "LayerDefaults": "nnspec.spec.model",
    "ModelSpec": "nnspec.spec.model",
    # nnspec.spec.data
    "DataSpec": "nnspec.spec.data",
    "SplitSpec": "nnspec.spec.data",
    # nnspec.spec.optim
    "LossKind": "nnspec.spec.optim",
    "LossSpec": "nnspec.spec.optim",
    "OptimKind": "nnspec.spec.optim",
    "OptimSpec": "nnspec.spec.optim",
    "OPTIM_CLASSES": "nnspec.spec.optim",
    "SGD": "nnspec.spec.optim",
    "Adam": "nnspec.spec.optim",
    "AdamW": "nnspec.spec.optim",
    "NAdam": "nnspec.spec.optim",
    "RAdam": "nnspec.spec.optim",
    "RMSprop": "nnspec.spec.optim",
    "Adamax": "nnspec.spec.optim",
    "Adagrad": "nnspec.spec.optim",
    "DEFAULT_LOSS": "nnspec.spec.optim",
    "LOSS_TASKS": "nnspec.spec.optim",
    "LOGIT_LOSSES": "nnspec.spec.optim",
    "resolve_loss_kind": "nnspec.spec.optim",
    # nnspec.spec.schedule
    "SCHEDULE_CLASSES": "nnspec.spec.schedule",
    "ScheduleSpec": "nnspec.spec.schedule",
    "WarmupSpec": "nnspec.spec.schedule",
    # nnspec.spec.train
    "EarlyStoppingSpec": "nnspec.spec.train",
    "ClipGradSpec": "nnspec.spec.train",
    "CheckpointSpec": "nnspec.spec.train",
    "MonitorsSpec": "nnspec.spec.train",
    "TrainSpec": "nnspec.spec.train",
    "TASK_METRICS": "nnspec.spec.train",
    "LOWER_IS_BETTER": "nnspec.spec.train",
    "monitor_names": "nnspec.spec.train",
    "resolve_mode": "nnspec.spec.train",
    "check_training_rules": "nnspec.spec.train",
    # nnspec.spec.experiment
    "ExperimentSpec": "nnspec.spec.experiment",
    "LintSpec": "nnspec.spec.experiment",
    "Task": "nnspec.spec.experiment",
}

__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_exports("nnspec.spec", _EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from nnspec.spec.activations import *  # noqa: F403
    from nnspec.spec.base import Spec  # noqa: F401
    from nnspec.spec.blocks import (  # noqa: F401
        BlockUse,
        ConvTranspose2d,
        DepthwiseSeparableConv2d,
        ParamDef,
        ResidualSpec,
        SqueezeExcitation,
    )
    from nnspec.spec.data import DataSpec, SplitSpec  # noqa: F401
    from nnspec.spec.experiment import ExperimentSpec, LintSpec, Task  # noqa: F401
    from nnspec.spec.graph import Add, Concat, Graph, Multiply, Node  # noqa: F401
    from nnspec.spec.init import Constant as ConstantInit  # noqa: F401
    from nnspec.spec.init import InitSpec, Orthogonal, Preset, VarianceScaling  # noqa: F401
    from nnspec.spec.layers import *  # noqa: F403
    from nnspec.spec.model import BlockDef, LayerDefaults, ModelSpec  # noqa: F401
    from nnspec.spec.optim import *  # noqa: F403
    from nnspec.spec.schedule import SCHEDULE_CLASSES, ScheduleSpec, WarmupSpec  # noqa: F401
    from nnspec.spec.sequence import *  # noqa: F403
    from nnspec.spec.train import *  # noqa: F403
