"""Activation specs: a discriminated union on ``kind``; a bare name means its defaults.

``relu`` and ``{kind: relu}`` are the same activation; dumping always writes the mapping form.
"""

# No `from __future__ import annotations` in the schema modules on the model's build path: pydantic
# would eval every field's annotation string one by one at import (bench/bench_import.py);
# forward references are quoted where needed.

from typing import Annotated, Any, Literal, Union, get_args

from pydantic import BeforeValidator, Discriminator, Field, Tag

from nnspec.spec.base import NonNegFloat, PosFloat, Spec

__all__ = [
    "ActivationName",
    "ACTIVATION_NAMES",
    "ActivationSpec",
    "Activation",
    "activation_from",
]

ActivationName = Literal[
    "relu",
    "leaky_relu",
    "prelu",
    "rrelu",
    "elu",
    "selu",
    "gelu",
    "silu",
    "mish",
    "tanh",
    "sigmoid",
    "softplus",
    "softmax",
    "log_softmax",
    "identity",
]
ACTIVATION_NAMES: tuple[str, ...] = get_args(ActivationName)


class _Act(Spec):
    kind: str


class ReLU(_Act):
    kind: Literal["relu"] = "relu"


class LeakyReLU(_Act):
    kind: Literal["leaky_relu"] = "leaky_relu"
    negative_slope: NonNegFloat = Field(
        default=0.01, description="Slope for x < 0 (ACT-4); feeds the He gain."
    )


class PReLU(_Act):
    kind: Literal["prelu"] = "prelu"
    num_parameters: Literal["shared", "channel"] = Field(
        default="shared",
        description="One learnt slope for the layer (torch's default) or one per channel.",
    )
    init: NonNegFloat = Field(
        default=0.25, description="Initial slope; the He gain uses it (INIT-2)."
    )


class RReLU(_Act):
    kind: Literal["rrelu"] = "rrelu"
    lower: NonNegFloat = Field(default=1.0 / 8, description="Lower bound of the random slope.")
    upper: NonNegFloat = Field(
        default=1.0 / 3, description="Upper bound; the He gain uses the mean slope."
    )


class ELU(_Act):
    kind: Literal["elu"] = "elu"
    alpha: PosFloat = Field(default=1.0, description="Saturation value for x < 0.")


class SELU(_Act):
    kind: Literal["selu"] = "selu"


class GELU(_Act):
    kind: Literal["gelu"] = "gelu"
    approximate: Literal["none", "tanh"] = Field(
        default="none", description="torch's GELU approximation."
    )


class SiLU(_Act):
    kind: Literal["silu"] = "silu"


class Mish(_Act):
    kind: Literal["mish"] = "mish"


class Tanh(_Act):
    kind: Literal["tanh"] = "tanh"


class Sigmoid(_Act):
    kind: Literal["sigmoid"] = "sigmoid"


class Softplus(_Act):
    kind: Literal["softplus"] = "softplus"
    beta: PosFloat = Field(default=1.0, description="Sharpness.")
    threshold: PosFloat = Field(
        default=20.0, description="Above beta*x > threshold the function is linear."
    )


class Softmax(_Act):
    kind: Literal["softmax"] = "softmax"
    dim: int = Field(default=-1, description="Dimension the softmax normalises over.")


class LogSoftmax(_Act):
    kind: Literal["log_softmax"] = "log_softmax"
    dim: int = Field(default=-1, description="Dimension the log-softmax normalises over.")


class Identity(_Act):
    kind: Literal["identity"] = "identity"


_CLASSES = (
    ReLU, LeakyReLU, PReLU, RReLU, ELU, SELU, GELU, SiLU, Mish, Tanh, Sigmoid, Softplus, Softmax,
    LogSoftmax, Identity,
)  # fmt: skip
ACTIVATION_CLASSES = {c.model_fields["kind"].default: c for c in _CLASSES}


def _normalize(value: Any) -> Any:
    # A bare name is the one-key shorthand for its defaults: `relu` == `{kind: relu}`.
    if isinstance(value, str):
        return {"kind": value}
    return value


def _tag(value: Any) -> Any:
    if isinstance(value, dict):
        return value.get("kind")
    return getattr(value, "kind", None)


ActivationSpec = Annotated[
    Union[tuple(Annotated[c, Tag(k)] for k, c in ACTIVATION_CLASSES.items())],  # type: ignore[misc]
    Discriminator(_tag),
    BeforeValidator(_normalize),
]
"""Any activation spec; accepts a bare name or a mapping with ``kind``."""

Activation = _Act  # the common base, for isinstance checks


def activation_from(value: str | dict[str, Any] | _Act) -> _Act:
    """Build an activation spec from a name or mapping.

    Example:
        >>> activation_from("leaky_relu").negative_slope
        0.01
    """
    if isinstance(value, _Act):
        return value
    data = _normalize(value)
    return ACTIVATION_CLASSES[data["kind"]].model_validate(data)


__all__ += [c.__name__ for c in _CLASSES]
