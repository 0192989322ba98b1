"""What a trial's model costs before it trains: parameters, their memory and an activation estimate.

Shape inference only (no weight is allocated). Parameter memory is 4 bytes per parameter (fp32
weights, as nnspec keeps them under every ``train.precision``); the activation estimate is the
forward outputs of the top-level layers for one training batch in fp32, which backpropagation
keeps: a lower bound of the real peak (optimizer state, gradients and temporaries come on top).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nnspec.spec import ExperimentSpec

__all__ = ["Budget", "budget", "over_budget"]

_FP32 = 4


@dataclass(frozen=True)
class Budget:
    n_params: int
    param_bytes: int
    activation_bytes: int


def budget(spec: ExperimentSpec) -> Budget:
    """The model's size and memory estimates (raises the compiler's ShapeError when it cannot
    be built)."""
    from nnspec.compile import infer_shapes

    top = [info for info in infer_shapes(spec.model) if info.depth == 0]
    n_params = sum(info.params for info in top)
    per_sample = sum(math.prod(int(d) for d in info.out_shape) for info in top)
    return Budget(n_params, n_params * _FP32, per_sample * spec.data.batch_size * _FP32)


def over_budget(b: Budget, max_params: int | None) -> str:
    """Why a trial must not start (``""``: it fits)."""
    if max_params is not None and b.n_params > max_params:
        return f"over budget: {b.n_params:,} parameters > max_params {max_params:,}"
    return ""


def mib(n: int) -> str:
    return f"{n / 2**20:.2f} MiB"
