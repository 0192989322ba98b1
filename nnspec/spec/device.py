"""``train.device`` and ``train.precision``: the names a spec may use, checked without torch (the
machine's own devices are checked by :func:`nnspec.run.step.resolve_device` when a run starts)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from nnspec.errors import did_you_mean

__all__ = ["Device", "Precision", "device_error"]

Precision = Literal["fp32", "bf16", "fp16"]
_DEVICE_KINDS = ("auto", "cpu", "cuda", "mps")


def device_error(value: str) -> str | None:
    """Why ``value`` is not a ``train.device`` (None when it is one).

    Example:
        >>> device_error("cuda:1") is None
        True
        >>> device_error("gpu").endswith("did you mean 'cuda'?")
        True
    """
    kind, sep, index = value.partition(":")
    if kind in _DEVICE_KINDS and not sep:
        return None
    if kind == "cuda" and sep and index.isdigit() and index.isascii():
        return None
    spelled = value.lower().replace("gpu", "cuda")  # GPU, gpu:1, CUDA
    if spelled != value and device_error(spelled) is None:
        hint: str | None = f"did you mean '{spelled}'?"
    else:
        digits = "".join(c for c in value if c.isdigit()) or "0"
        hint = did_you_mean(value, [*_DEVICE_KINDS, f"cuda:{digits}"])
    message = f"unknown device '{value}'; expected auto, cpu, cuda, cuda:N (N = 0, 1, ...) or mps"
    return f"{message}; {hint}" if hint else message


def _device(value: str) -> str:
    problem = device_error(value)
    if problem is not None:
        raise PydanticCustomError("nnspec_rule", problem)
    return value


Device = Annotated[str, AfterValidator(_device)]
