"""Optimizer specs (``optim:``), one class per ``kind``.

Example:
    >>> from nnspec.optim import AdamW
    >>> AdamW(lr=3e-4).kind
    'adamw'
"""

from nnspec.spec.optim import (
    ASGD,
    SGD,
    Adadelta,
    Adafactor,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    LossBase,
    NAdam,
    OptimBase,
    OptimSpec,
    RAdam,
    RMSprop,
    Rprop,
)

__all__ = [
    "OptimSpec",
    "OptimBase",
    "LossBase",
    "Adadelta",
    "ASGD",
    "Rprop",
    "Adafactor",
    "SGD",
    "Adam",
    "AdamW",
    "NAdam",
    "RAdam",
    "RMSprop",
    "Adamax",
    "Adagrad",
]
