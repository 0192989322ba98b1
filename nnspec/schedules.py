"""Learning-rate schedule specs (``schedule:``), one class per ``kind``, and the warm-up.

Example:
    >>> from nnspec.schedules import Cosine, WarmupSpec
    >>> Cosine(warmup=WarmupSpec(epochs=2)).kind
    'cosine'
"""

from nnspec.spec.schedule import (
    Constant,
    Cosine,
    Exponential,
    MultiStep,
    OneCycle,
    ReduceOnPlateau,
    ScheduleBase,
    ScheduleSpec,
    Step,
    WarmupSpec,
)

__all__ = [
    "ScheduleSpec",
    "ScheduleBase",
    "WarmupSpec",
    "Constant",
    "Step",
    "MultiStep",
    "Exponential",
    "Cosine",
    "OneCycle",
    "ReduceOnPlateau",
]
