"""Sample the init rules with an explicit ``torch.Generator`` and record what each parameter got.

nnspec initialises every parameter of the built-in layers itself (INIT-11: torch's default,
``kaiming_uniform_(a=sqrt(5))``, matches none of the schemes). Documented constants:

* biases of weight ops: 0
* norm scale (weight): 1, norm shift (bias): 0
* PReLU slope: its ``init`` (0.25 by default, as torch)
* embedding vectors: N(0, 1) (as torch), the ``padding_idx`` row 0
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType

import torch
from torch import nn

from nnspec.compile.infer import LayerInfo
from nnspec.compile.rules import (
    TRUNC_STD_CORRECTION,
    ConstantRule,
    InitRule,
    NormalRule,
    OrthogonalRule,
    ResolvedInit,
    VarianceRule,
    fans,
    resolve_init,
)
from nnspec.compile.settings import IDENTITY
from nnspec.registry import Registry
from nnspec.spec.layers import LayerBase

__all__ = [
    "InitRecord",
    "Records",
    "LAYER_INITIALIZERS",
    "sample_",
    "init_tensor",
    "initialize_layer",
    "no_params",
    "seeded_generator",
    "global_rng_from",
]


@dataclass(frozen=True)
class InitRecord:
    """How one parameter was initialised: the rule, why, and where the choice came from
    (``auto``/``head``/``explicit`` for weights, ``constant`` for documented constants,
    ``builder`` for parameters a user-registered layer's builder set itself)."""

    rule: str
    reason: str
    source: str


Records = dict[str, InitRecord]
Initializer = Callable[[nn.Module, LayerBase, LayerInfo, torch.Generator], Records]
LAYER_INITIALIZERS: Registry[Initializer] = Registry("layer initializer")
"""kind -> initialiser(module, layer, info, generator) -> records, for the kinds outside the
built-in layer table (topology and sequence kinds: :mod:`nnspec.compile.topology_modules`,
:mod:`nnspec.compile.sequence_modules`)."""


def _variance(t: torch.Tensor, rule: VarianceRule, g: torch.Generator) -> None:
    fan_in, fan_out = fans(tuple(t.shape))
    std = rule.std(fan_in, fan_out)
    # The tensor methods nn.init.normal_/uniform_ call (same draws), without their per-call
    # dispatch checks: build_model samples every parameter, so this is on the build's hot path.
    if rule.distribution == "normal":
        t.normal_(0.0, std, generator=g)
    elif rule.distribution == "uniform":
        limit = math.sqrt(3.0) * std  # same variance as the normal: limit = sqrt(3 scale / fan)
        t.uniform_(-limit, limit, generator=g)
    else:  # truncated_normal at +-2 std, widened so the kept variance is the target (INIT-5)
        wide = std / TRUNC_STD_CORRECTION
        nn.init.trunc_normal_(t, 0.0, wide, -2 * wide, 2 * wide, generator=g)


def _orthogonal(t: torch.Tensor, rule: OrthogonalRule, g: torch.Generator) -> None:
    nn.init.orthogonal_(t, rule.gain, generator=g)


def _constant(t: torch.Tensor, rule: ConstantRule, g: torch.Generator) -> None:
    t.fill_(rule.value)


def _normal(t: torch.Tensor, rule: NormalRule, g: torch.Generator) -> None:
    t.normal_(0.0, rule.std, generator=g)


_SAMPLERS: Mapping[type, Callable[..., None]] = MappingProxyType(
    {
        VarianceRule: _variance,
        OrthogonalRule: _orthogonal,
        ConstantRule: _constant,
        NormalRule: _normal,
    }
)


def sample_(tensor: torch.Tensor, rule: InitRule, generator: torch.Generator) -> torch.Tensor:
    """Fill ``tensor`` in place by ``rule`` using only ``generator`` (never the global RNG).

    Example:
        >>> from nnspec.compile.rules import PRESETS
        >>> w = torch.empty(256, 512)
        >>> _ = sample_(w, PRESETS["he_normal"], torch.Generator().manual_seed(0))
        >>> round(w.std().item() / (2 / 512) ** 0.5, 1)
        1.0
    """
    with torch.no_grad():
        _SAMPLERS[type(rule)](tensor, rule, generator)
    return tensor


def _fill(tensor: torch.Tensor, rule: InitRule, generator: torch.Generator) -> None:
    # sample_ without its no_grad: initialize_layer holds one for the whole module.
    _SAMPLERS[type(rule)](tensor, rule, generator)


def _record(rule: InitRule, reason: str, source: str) -> InitRecord:
    return InitRecord(rule.label, reason, source)


@functools.lru_cache(maxsize=256)
def _resolved_record(resolved: ResolvedInit) -> InitRecord:
    return _record(resolved.rule, resolved.reason, resolved.source)


ZERO = ConstantRule(0.0)
ONE = ConstantRule(1.0)
ZERO_BIAS = "bias = 0 (constant)"  # reasons of the documented constants (topology kinds share)
ONE_SCALE = "norm scale = 1 (constant)"
BIAS_ZERO = _record(ZERO, ZERO_BIAS, "constant")
NORM_ONE = _record(ONE, ONE_SCALE, "constant")
NORM_ZERO = _record(ZERO, "norm shift = 0 (constant)", "constant")


def _weight_op(m: nn.Module, layer: LayerBase, info: LayerInfo, g: torch.Generator) -> Records:
    resolved: ResolvedInit = info.settings.init  # type: ignore[union-attr]
    _fill(m.weight, resolved.rule, g)
    out = {"weight": _resolved_record(resolved)}
    if m.bias is not None:
        m.bias.zero_()
        out["bias"] = BIAS_ZERO
    return out


def _norm(m: nn.Module, layer: LayerBase, info: LayerInfo, g: torch.Generator) -> Records:
    out: Records = {}
    if getattr(m, "weight", None) is not None:
        m.weight.fill_(1.0)
        out["weight"] = NORM_ONE
    if getattr(m, "bias", None) is not None:
        m.bias.zero_()
        out["bias"] = NORM_ZERO
    return out


def _prelu(m: nn.PReLU, layer: LayerBase, info: LayerInfo, g: torch.Generator) -> Records:
    rule = ConstantRule(m.init)
    _fill(m.weight, rule, g)
    return {"weight": _record(rule, "prelu slope = its init (constant)", "constant")}


def _embedding(m: nn.Embedding, layer: LayerBase, info: LayerInfo, g: torch.Generator) -> Records:
    spec = getattr(layer, "init", None)
    if spec is None:
        rule: InitRule = NormalRule()
        reason, source = "embedding: N(0, 1) as torch (constant)", "constant"
    else:
        resolved = resolve_init(spec, IDENTITY, is_head=False)
        rule, reason, source = resolved.rule, resolved.reason, resolved.source
    _fill(m.weight, rule, g)
    if m.padding_idx is not None:
        m.weight[m.padding_idx].zero_()  # torch's convention: the padding vector stays 0
    return {"weight": _record(rule, reason, source)}


# Parameter owners nnspec knows, looked up along the module's MRO (so subclasses work). The entries
# fill leaf parameters in place: call them through initialize_layer (it holds the no_grad).
PARAM_INITIALIZERS: Mapping[type, Initializer] = MappingProxyType(
    {
        nn.Linear: _weight_op,
        nn.modules.conv._ConvNd: _weight_op,
        nn.modules.batchnorm._NormBase: _norm,  # BatchNorm*d and InstanceNorm*d
        nn.LayerNorm: _norm,
        nn.GroupNorm: _norm,
        nn.PReLU: _prelu,
        nn.Embedding: _embedding,
    }
)


def _initializer(module: nn.Module) -> Initializer:
    for cls in type(module).__mro__:
        if cls in PARAM_INITIALIZERS:
            return PARAM_INITIALIZERS[cls]
    raise TypeError(f"nnspec has no initializer for {type(module).__name__}")


def initialize_layer(
    module: nn.Module, layer: LayerBase, info: LayerInfo, generator: torch.Generator
) -> Records:
    """Initialise every parameter of a built-in layer's module; returns records keyed by the
    parameter's name relative to ``module`` (``op.weight``, ``norm.bias``, ``weight``)."""
    records: Records = {}
    with torch.no_grad():
        for name, sub in module.named_modules():
            if next(sub.parameters(recurse=False), None) is None:
                continue  # no parameter of its own
            for pname, rec in _initializer(sub)(sub, layer, info, generator).items():
                records[f"{name}.{pname}" if name else pname] = rec
    return records


def init_tensor(
    records: Records,
    name: str,
    tensor: torch.Tensor,
    rule: InitRule,
    reason: str,
    g: torch.Generator,
    source: str = "default",
) -> None:
    """Fill one tensor (or a view of one) by ``rule`` using ``g``; record it under ``name``."""
    sample_(tensor, rule, g)
    records[name] = InitRecord(rule.label, reason, source)


def no_params(m: nn.Module, layer: LayerBase, info: LayerInfo, g: torch.Generator) -> Records:
    """The initialiser of a kind without parameters (merges)."""
    return {}


def seeded_generator(seed: int) -> torch.Generator:
    """The generator a build draws from when the caller passes none.

    ``build_model``, ``nnspec.compile`` and the trainer all take it from here, so one spec and
    seed give the same weights whichever way the model is built.
    """
    return torch.Generator().manual_seed(seed)


@contextmanager
def global_rng_from(g: torch.Generator) -> Iterator[None]:
    """Run module constructors under the CPU global RNG, forked and seeded from ``g``.

    torch's constructors (their default init) and user builders draw from the global CPU RNG.
    Inside this block it is seeded from one draw of ``g`` and it is restored on exit, so a build
    is reproducible and the caller's RNG state is left as it was. Only the CPU generator is forked
    and seeded: modules are constructed on the CPU, and seeding CUDA as ``torch.manual_seed``
    does would change the caller's CUDA RNG (or queue a seed for when CUDA starts).

    Example:
        >>> before = torch.random.get_rng_state()
        >>> with global_rng_from(seeded_generator(0)):
        ...     a = torch.rand(2)
        >>> with global_rng_from(seeded_generator(0)):
        ...     b = torch.rand(2)
        >>> bool((a == b).all()), bool((torch.random.get_rng_state() == before).all())
        (True, True)
    """
    seed = int(torch.randint(0, 2**62, (1,), generator=g))
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        yield
