"""Optimizer specs (``optim:``), one class per ``kind``.

Example:
    >>> from nnspec.optim import AdamW
    >>> AdamW(lr=3e-4).kind
    'adamw'
"""

from nnspec.spec.optim import (
    SGD,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    NAdam,
    OptimSpec,
    RAdam,
    RMSprop,
)

__all__ = [
    "OptimSpec",
    "SGD",
    "Adam",
    "AdamW",
    "NAdam",
    "RAdam",
    "RMSprop",
    "Adamax",
    "Adagrad",
]
