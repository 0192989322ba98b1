"""Every built-in layer kind, one spec class each (``model.layers`` items).

Example:
    >>> from nnspec.layers import Dropout, Linear
    >>> Linear(out_features=8, activation="relu").kind, Dropout(p=0.1).p
    ('linear', 0.1)
"""

from nnspec.spec.blocks import (
    BlockUse,
    ConvTranspose2d,
    DepthwiseSeparableConv2d,
    SqueezeExcitation,
)
from nnspec.spec.graph import (
    Add,
    Concat,
    Multiply,
    Shortcut,
)
from nnspec.spec.layers import (
    ActivationLayer,
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AlphaDropout,
    AvgPool1d,
    AvgPool2d,
    BatchNorm,
    Conv1d,
    Conv2d,
    Dropout,
    Dropout2d,
    Embedding,
    Flatten,
    GroupNorm,
    IdentityLayer,
    InstanceNorm,
    LayerNorm,
    LayerSpec,
    Linear,
    MaxPool1d,
    MaxPool2d,
    Reshape,
)
from nnspec.spec.sequence import (
    GRU,
    LSTM,
    RNN,
    ClsToken,
    MultiheadAttention,
    PositionalEncoding,
    SequencePool,
    TransformerEncoderLayer,
)

__all__ = [
    "LayerSpec",
    "Linear",
    "Conv1d",
    "Conv2d",
    "MaxPool1d",
    "MaxPool2d",
    "AvgPool1d",
    "AvgPool2d",
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "Flatten",
    "Reshape",
    "Dropout",
    "Dropout2d",
    "AlphaDropout",
    "BatchNorm",
    "LayerNorm",
    "GroupNorm",
    "InstanceNorm",
    "ActivationLayer",
    "Embedding",
    "IdentityLayer",
    "BlockUse",
    "ConvTranspose2d",
    "DepthwiseSeparableConv2d",
    "SqueezeExcitation",
    "Add",
    "Multiply",
    "Concat",
    "Shortcut",
    "RNN",
    "LSTM",
    "GRU",
    "MultiheadAttention",
    "TransformerEncoderLayer",
    "PositionalEncoding",
    "ClsToken",
    "SequencePool",
]
