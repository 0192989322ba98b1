"""Initialisation rules as data, and the ONE table that picks a rule from an activation (STYLE §4).

Pure Python (no torch): shape inference and ``nnspec summary`` use it to show which rule each
layer gets and why, before any weight exists; :mod:`nnspec.compile.initialize` samples them.

Every random rule is Keras' ``VarianceScaling(scale, mode, distribution)``:

    Var(W) = scale / fan          fan = fan_in | fan_out | (fan_in + fan_out) / 2
    normal:            std   = sqrt(scale / fan)
    truncated_normal:  std   = sqrt(scale / fan) / 0.87962566  (cut at +-2 std, so the kept
                                                                  variance is scale / fan, INIT-5)
    uniform:           limit = sqrt(3 * scale / fan)

He = (2, fan_in) [INIT-2], with leaky slope a: scale = 2 / (1 + a^2); LeCun = (1, fan_in) [INIT-3];
Glorot = (1, fan_avg) [INIT-4]. Fans follow torch's tensor layout (INIT-10): fan_in = shape[1] x
receptive field, fan_out = shape[0] x receptive field, so a grouped conv has
fan_in = in_channels / groups x kernel area.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Literal, assert_never, get_args

from nnspec.spec.activations import Activation, ActivationName
from nnspec.spec.init import (
    INIT_PRESETS,
    Constant,
    Distribution,
    FanMode,
    Orthogonal,
    Preset,
    VarianceScaling,
)

__all__ = [
    "VarianceRule",
    "OrthogonalRule",
    "ConstantRule",
    "NormalRule",
    "InitRule",
    "AutoInit",
    "DEFAULT_INIT",
    "PRESETS",
    "HEAD_SCALE",
    "EMBEDDING_STD",
    "TRUNC_STD_CORRECTION",
    "ResolvedInit",
    "resolve_init",
    "activation_label",
    "fans",
]

HEAD_SCALE = 0.1
"""INIT-9: the head's Glorot draw is multiplied by 0.1 so the initial logits are nearly constant and
the loss at initialisation is close to its analytic value (ln C for C balanced classes)."""
EMBEDDING_STD = 1.0
"""Embedding vectors start as N(0, 1), as torch's ``nn.Embedding`` (a documented constant)."""
TRUNC_STD_CORRECTION = 0.87962566103423978
"""Std of a standard normal truncated at +-2; dividing by it keeps the target variance (INIT-5)."""

Family = Literal["he", "lecun", "glorot", "variance_scaling"]


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of torch layout ``(out, in, *kernel)`` (INIT-10).

    Example:
        >>> fans((128, 64, 3, 3))  # Conv2d(64, 128, 3): fan_in = 64 * 9
        (576, 1152)
    """
    receptive = math.prod(shape[2:])
    fan_out = shape[0] * receptive
    fan_in = (shape[1] if len(shape) > 1 else shape[0]) * receptive
    return fan_in, fan_out


def _fmt(x: float) -> str:
    return f"{x:g}"


@dataclass(frozen=True)
class VarianceRule:
    """``Var(W) = scale / fan`` (times ``multiplier**2``); formulas in the module docstring."""

    family: Family
    scale: float
    mode: FanMode
    distribution: Distribution
    multiplier: float = 1.0  # INIT-9 head scaling, applied on top of the draw
    scale_text: str | None = None  # how the scale was derived, e.g. "2/(1+0.1^2)"

    def fan(self, fan_in: int, fan_out: int) -> float:
        """The fan that divides ``scale``."""
        return {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]

    def std(self, fan_in: int, fan_out: int) -> float:
        """Target standard deviation of the weights, multiplier included."""
        return self.multiplier * math.sqrt(self.scale / self.fan(fan_in, fan_out))

    @functools.cached_property  # frozen: computed once per rule (shape inference reads it)
    def label(self) -> str:
        scale = self.scale_text or _fmt(self.scale)
        if self.family == "variance_scaling":
            text = f"variance_scaling(scale={scale}, mode={self.mode}, {self.distribution})"
        else:
            text = f"{self.family}_{self.distribution}(scale={scale})"
        return text if self.multiplier == 1.0 else f"{text} x{_fmt(self.multiplier)}"


@dataclass(frozen=True)
class OrthogonalRule:
    """A (semi-)orthogonal matrix times ``gain`` (Saxe et al.)."""

    gain: float = 1.0

    @property
    def label(self) -> str:
        return f"orthogonal(gain={_fmt(self.gain)})"


@dataclass(frozen=True)
class ConstantRule:
    """Every element equals ``value``: biases, norm affine, or an explicit (head-only) choice."""

    value: float = 0.0

    @property
    def label(self) -> str:
        return "zeros" if self.value == 0 else f"constant({_fmt(self.value)})"


@dataclass(frozen=True)
class NormalRule:
    """``N(0, std^2)`` independent of the fans (embedding vectors)."""

    std: float = EMBEDDING_STD

    @property
    def label(self) -> str:
        return f"normal(std={_fmt(self.std)})"


InitRule = VarianceRule | OrthogonalRule | ConstantRule | NormalRule


def _he(slope: float | None) -> VarianceRule:
    if slope is None:
        return VarianceRule("he", 2.0, "fan_in", "normal")
    return VarianceRule("he", 2.0 / (1.0 + slope**2), "fan_in", "normal", 1.0, f"2/(1+{slope:g}^2)")


def _leaky_slope(act: Activation) -> float:
    return float(act.negative_slope)  # type: ignore[attr-defined]


def _prelu_slope(act: Activation) -> float:
    return float(act.init)  # type: ignore[attr-defined]


def _rrelu_slope(act: Activation) -> float:
    # RReLU draws its slope from U(lower, upper) in training and uses the mean at eval.
    return (float(act.lower) + float(act.upper)) / 2  # type: ignore[attr-defined]


@dataclass(frozen=True)
class AutoInit:
    """One row of :data:`DEFAULT_INIT`: the family an activation calls for, and why."""

    family: Literal["he", "lecun", "glorot"]
    rule_id: str
    slope: Callable[[Activation], float] | None = None
    convention: bool = False  # a convention of current practice rather than a derivation

    def rule(self, act: Activation) -> VarianceRule:
        """The concrete rule for this activation (its slope feeds He's scale)."""
        match self.family:
            case "he":
                return _he(self.slope(act) if self.slope else None)
            case "lecun":
                return VarianceRule("lecun", 1.0, "fan_in", "normal")
            case "glorot":
                return VarianceRule("glorot", 1.0, "fan_avg", "uniform")
            case _:
                assert_never(self.family)

    def reason(self, act: Activation) -> str:
        name = {"he": "He", "lecun": "LeCun", "glorot": "Glorot"}[self.family]
        why = f"{self.rule_id}; convention" if self.convention else self.rule_id
        return f"auto: {activation_label(act)} -> {name} ({why})"


DEFAULT_INIT: Mapping[ActivationName, AutoInit] = MappingProxyType(
    {
        "relu": AutoInit("he", "INIT-2"),  # He: Var = 2/fan_in keeps ReLU's second moment
        "leaky_relu": AutoInit("he", "INIT-2", _leaky_slope),  # 2/((1+a^2) fan_in)
        "prelu": AutoInit("he", "INIT-2", _prelu_slope),  # slope a = its initial value (0.25)
        "rrelu": AutoInit("he", "INIT-2", _rrelu_slope),  # a = mean of [lower, upper]
        # GELU, SiLU, Mish and softplus -> He is a convention of current practice (ReLU-like
        # curves), not a derivation (INIT-1 "[current practice]"): the summary says so.
        "gelu": AutoInit("he", "INIT-1", convention=True),
        "silu": AutoInit("he", "INIT-1", convention=True),
        "mish": AutoInit("he", "INIT-1", convention=True),
        "softplus": AutoInit("he", "INIT-1", convention=True),
        "selu": AutoInit("lecun", "INIT-3"),  # self-normalising: Var = 1/fan_in (ACT-7)
        "elu": AutoInit("lecun", "INIT-3"),
        "tanh": AutoInit("glorot", "INIT-4"),  # Glorot, uniform as in the paper, gain 1
        "sigmoid": AutoInit("glorot", "INIT-4"),
        "softmax": AutoInit("glorot", "INIT-4"),
        "log_softmax": AutoInit("glorot", "INIT-4"),
        "identity": AutoInit("glorot", "INIT-4"),
    }
)
"""``init: auto`` resolves through this table from the activation that follows the weight op."""


def _presets() -> dict[str, InitRule]:
    table: dict[str, InitRule] = {}
    base = {
        "he": VarianceRule("he", 2.0, "fan_in", "normal"),
        "lecun": VarianceRule("lecun", 1.0, "fan_in", "normal"),
        "glorot": VarianceRule("glorot", 1.0, "fan_avg", "normal"),
    }
    for family, rule in base.items():
        for dist in get_args(Distribution):
            table[f"{family}_{dist}"] = replace(rule, distribution=dist)
    table["orthogonal"] = OrthogonalRule(1.0)
    table["zeros"] = ConstantRule(0.0)
    return table


PRESETS: Mapping[str, InitRule] = MappingProxyType(_presets())
"""Named presets (``he_normal``, ...); an explicit He preset uses scale 2 whatever the slope."""
if set(PRESETS) | {"auto"} != set(INIT_PRESETS):  # pragma: no cover - import-time drift guard
    raise RuntimeError("nnspec.compile.rules.PRESETS and nnspec.spec.init.InitPreset disagree")


@functools.lru_cache(maxsize=256)  # specs are frozen (hashable); labels are asked per layer
def activation_label(act: Activation) -> str:
    """``relu``, ``leaky_relu(0.1)``, ``prelu(num_parameters=channel)``: the kind plus the
    parameters that differ from their defaults (bare value when the kind has one parameter).

    Example:
        >>> from nnspec.spec import activation_from
        >>> activation_label(activation_from({"kind": "leaky_relu", "negative_slope": 0.1}))
        'leaky_relu(0.1)'
    """
    fields = {k: f for k, f in type(act).model_fields.items() if k != "kind"}
    changed = {k: getattr(act, k) for k, f in fields.items() if getattr(act, k) != f.default}
    if not changed:
        return act.kind
    if len(fields) == 1:
        return f"{act.kind}({next(iter(changed.values()))})"
    return f"{act.kind}({', '.join(f'{k}={v}' for k, v in changed.items())})"


@dataclass(frozen=True)
class ResolvedInit:
    """The rule a weight gets, the reason shown in the summary, and where it came from."""

    rule: InitRule
    reason: str
    source: Literal["auto", "head", "explicit", "default"]

    @property
    def symmetric(self) -> bool:
        """True when every weight is equal (no symmetry breaking, INIT-6)."""
        return isinstance(self.rule, ConstantRule)


def _from_preset(spec: Preset, act: Activation) -> ResolvedInit:
    if spec.kind == "auto":
        row = DEFAULT_INIT[act.kind]  # type: ignore[index]
        return ResolvedInit(row.rule(act), row.reason(act), "auto")
    return ResolvedInit(PRESETS[spec.kind], f"explicit: {spec.kind}", "explicit")


def _from_variance(spec: VarianceScaling, act: Activation) -> ResolvedInit:
    rule = VarianceRule("variance_scaling", spec.scale, spec.mode, spec.distribution)
    return ResolvedInit(rule, "explicit: variance_scaling", "explicit")


def _from_orthogonal(spec: Orthogonal, act: Activation) -> ResolvedInit:
    return ResolvedInit(OrthogonalRule(spec.gain), "explicit: orthogonal", "explicit")


def _from_constant(spec: Constant, act: Activation) -> ResolvedInit:
    return ResolvedInit(ConstantRule(spec.value), "explicit: constant", "explicit")


# Dispatch on the validated spec type (STYLE §3), never on raw strings.
_FROM_SPEC: Mapping[type, Callable[..., ResolvedInit]] = MappingProxyType(
    {
        Preset: _from_preset,
        VarianceScaling: _from_variance,
        Orthogonal: _from_orthogonal,
        Constant: _from_constant,
    }
)

HEAD_INIT = ResolvedInit(
    VarianceRule("glorot", 1.0, "fan_avg", "uniform", HEAD_SCALE),
    f"head: Glorot x{HEAD_SCALE:g} (INIT-9)",
    "head",
)


@functools.lru_cache(maxsize=1024)  # pure function of frozen specs; deep nets repeat layers
def resolve_init(spec: object | None, act: Activation, *, is_head: bool) -> ResolvedInit:
    """Resolve a weight's init: explicit spec, else the head rule, else ``auto`` by activation.

    Example:
        >>> from nnspec.spec import activation_from
        >>> r = resolve_init(None, activation_from({"kind": "leaky_relu", "negative_slope": 0.1}),
        ...                  is_head=False)
        >>> r.rule.label, r.reason
        ('he_normal(scale=2/(1+0.1^2))', 'auto: leaky_relu(0.1) -> He (INIT-2)')
    """
    if spec is None:
        if is_head:
            return HEAD_INIT
        spec = Preset()
    if is_head and isinstance(spec, Preset) and spec.kind == "auto":
        return HEAD_INIT
    return _FROM_SPEC[type(spec)](spec, act)
