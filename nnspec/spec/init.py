"""Weight-initialisation specs.

``init: auto`` (the default) resolves from the layer's activation through ONE table
(:data:`nnspec.compile.initialize.DEFAULT_INIT`). Explicit choices are a preset name or a general
variance-scaling rule (Keras' ``VarianceScaling``):

    std = sqrt(scale / fan)            (normal)
    std = sqrt(scale / fan) / 0.8796   (truncated normal at +-2 std, so the *kept* std is right)
    limit = sqrt(3 * scale / fan)      (uniform on [-limit, limit])

with fan = fan_in, fan_out or (fan_in + fan_out) / 2. He = (2, fan_in), LeCun = (1, fan_in),
Glorot = (1, fan_avg); for leaky ReLU / PReLU He's scale is 2 / (1 + a^2).
"""

# No `from __future__ import annotations` in the schema modules on the model's build path: pydantic
# would eval every field's annotation string one by one at import (bench/bench_import.py);
# forward references are quoted where needed.

from typing import Annotated, Any, Literal, Union, get_args

from pydantic import BeforeValidator, Discriminator, Field, Tag

from nnspec.spec.base import PosFloat, Spec

__all__ = [
    "InitPreset",
    "INIT_PRESETS",
    "FanMode",
    "Distribution",
    "VarianceScaling",
    "Orthogonal",
    "Constant",
    "Preset",
    "InitSpec",
]

InitPreset = Literal[
    "auto",
    "he_normal",
    "he_uniform",
    "he_truncated_normal",
    "lecun_normal",
    "lecun_uniform",
    "lecun_truncated_normal",
    "glorot_normal",
    "glorot_uniform",
    "glorot_truncated_normal",
    "orthogonal",
    "zeros",
]
INIT_PRESETS: tuple[str, ...] = get_args(InitPreset)
FanMode = Literal["fan_in", "fan_out", "fan_avg"]
Distribution = Literal["normal", "truncated_normal", "uniform"]


class Preset(Spec):
    """A named rule; ``auto`` picks by activation (INIT-1)."""

    kind: InitPreset = "auto"


class VarianceScaling(Spec):
    """General rule: variance ``scale / fan``; He, LeCun and Glorot are special cases (INIT-5)."""

    kind: Literal["variance_scaling"] = "variance_scaling"
    scale: PosFloat = Field(
        default=1.0, description="Variance numerator: 2 for He, 1 for LeCun/Glorot."
    )
    mode: FanMode = Field(default="fan_in", description="Which fan divides the scale.")
    distribution: Distribution = Field(default="normal", description="Sampling distribution.")


class Orthogonal(Spec):
    """Orthogonal matrix (Saxe et al.) times ``gain``; nnspec's default for recurrent weights."""

    kind: Literal["orthogonal_gain"] = "orthogonal_gain"
    gain: PosFloat = Field(default=1.0, description="Multiplier of the orthogonal matrix.")


class Constant(Spec):
    """All weights equal ``value``.

    Refused for hidden weight layers (INIT-6: no symmetry breaking).
    """

    kind: Literal["constant"] = "constant"
    value: float = Field(default=0.0, description="The constant.")


def _normalize(value: Any) -> Any:
    if isinstance(value, str):
        return {"kind": value}
    return value


_RULE_KINDS = ("variance_scaling", "orthogonal_gain", "constant")


def _tag(value: Any) -> str:
    # Anything that is not a general rule is validated as a preset name, so a misspelt name gets
    # pydantic's literal error listing every preset (and nnspec's did-you-mean).
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    return str(kind) if kind in _RULE_KINDS else "preset"


InitSpec = Annotated[
    Union[
        Annotated[Preset, Tag("preset")],
        Annotated[VarianceScaling, Tag("variance_scaling")],
        Annotated[Orthogonal, Tag("orthogonal_gain")],
        Annotated[Constant, Tag("constant")],
    ],
    Discriminator(_tag),
    BeforeValidator(_normalize),
]
"""An init rule: a preset name (``he_normal``), or
``{kind: variance_scaling|orthogonal_gain|constant, ...}``."""
