"""Weight-initialisation rules (``init:`` of a layer or of ``model.defaults``).

Example:
    >>> from nnspec.init import VarianceScaling
    >>> VarianceScaling(scale=2.0, mode="fan_in").distribution  # He normal
    'normal'
"""

from nnspec.spec.init import (
    Constant,
    InitSpec,
    Orthogonal,
    Preset,
    VarianceScaling,
)

__all__ = [
    "InitSpec",
    "Preset",
    "VarianceScaling",
    "Orthogonal",
    "Constant",
]
