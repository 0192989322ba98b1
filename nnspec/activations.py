"""Activation specs (``activation:`` of a layer or of ``model.defaults``), one class per ``kind``.

A name (``"relu"``) is accepted wherever a class is; the classes carry the parameters.

Example:
    >>> from nnspec.activations import LeakyReLU
    >>> LeakyReLU(negative_slope=0.2).kind
    'leaky_relu'
"""

from nnspec.spec.activations import (
    ELU,
    GELU,
    SELU,
    ActivationName,
    ActivationSpec,
    Identity,
    LeakyReLU,
    LogSoftmax,
    Mish,
    PReLU,
    ReLU,
    RReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)

__all__ = [
    "ActivationSpec",
    "ActivationName",
    "ReLU",
    "LeakyReLU",
    "PReLU",
    "RReLU",
    "ELU",
    "SELU",
    "GELU",
    "SiLU",
    "Mish",
    "Tanh",
    "Sigmoid",
    "Softplus",
    "Softmax",
    "LogSoftmax",
    "Identity",
]
