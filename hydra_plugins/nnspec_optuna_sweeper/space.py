"""Hydra override grammar -> Optuna distributions, and Optuna parameters -> overrides.

``choice(a, b)`` / ``a,b``      -> categorical (values kept as override text)
``range(lo, hi, step)``         -> integer steps (``hi`` excluded, as in Python); float ranges
                                   become a categorical of their values
``interval(lo, hi)``            -> float uniform; ``tag(log, interval(...))`` log-uniform;
                                   ``tag(int, interval(...))`` integers
anything else                   -> a fixed override given to every trial
"""

# No `from __future__ import annotations`: Hydra's plugin scan executes this module without
# registering it in sys.modules, and dataclasses then cannot resolve string annotations.
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep, Override, RangeSweep
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from nnspec.errors import Problem, SpecError

__all__ = ["SearchSpace", "parse_space", "to_override"]


@dataclass(frozen=True)
class SearchSpace:
    """Distributions to sample and overrides every trial shares."""

    distributions: dict[str, BaseDistribution]
    fixed: list[str]

    def overrides(self, params: Mapping[str, Any]) -> list[str]:
        """The command-line overrides of one trial (fixed ones first)."""
        return [*self.fixed, *(to_override(k, v) for k, v in params.items())]

    def grid(self) -> dict[str, list[Any]]:
        """Every value of every parameter, for the grid sampler (continuous ones refused)."""
        out: dict[str, list[Any]] = {}
        for key, dist in self.distributions.items():
            if isinstance(dist, CategoricalDistribution):
                out[key] = list(dist.choices)
            elif isinstance(dist, IntDistribution) and not dist.log:
                out[key] = list(range(dist.low, dist.high + 1, dist.step))
            else:
                raise SpecError(
                    Problem(
                        ("hydra", "sweeper", "params", key),
                        f"{key}: the grid sampler needs discrete values (choice or range), "
                        f"found a continuous interval",
                        expected="choice(...) or range(...)",
                        found=str(dist),
                        fix="use hydra.sweeper.sampler=tpe, or list the values with choice(...)",
                    )
                )
        return out


def to_override(key: str, value: Any) -> str:
    """``key=value`` in override syntax (floats written so they parse back exactly)."""
    text = repr(value) if isinstance(value, float) else str(value)
    return f"{key}={text}"


def _distribution(ov: Override) -> BaseDistribution:
    sweep = ov.value()
    if isinstance(sweep, IntervalSweep):
        lo, hi = sweep.start, sweep.end
        log = "log" in sweep.tags
        if "int" in sweep.tags or (isinstance(lo, int) and isinstance(hi, int)):
            return IntDistribution(int(lo), int(hi), log=log)  # type: ignore[arg-type]
        return FloatDistribution(float(lo), float(hi), log=log)  # type: ignore[arg-type]
    if isinstance(sweep, RangeSweep) and all(
        isinstance(x, int) for x in (sweep.start, sweep.stop, sweep.step)
    ):
        start, stop, step = int(sweep.start), int(sweep.stop), int(sweep.step)  # type: ignore[arg-type]
        high = start + step * ((stop - 1 - start) // step)
        return IntDistribution(start, high, step=step)
    return CategoricalDistribution(list(ov.sweep_string_iterator()))


def parse_space(arguments: Sequence[str], params: Mapping[str, Any] | None = None) -> SearchSpace:
    """Build the search space from ``hydra.sweeper.params`` and the command-line overrides.

    The command line wins over ``params`` for the same key.
    """
    merged: dict[str, str] = {f"{k}": f"{k}={v}" for k, v in (params or {}).items()}
    for arg in arguments:
        merged[arg.split("=", 1)[0]] = arg
    parsed = OverridesParser.create().parse_overrides(list(merged.values()))
    distributions: dict[str, BaseDistribution] = {}
    fixed: list[str] = []
    for ov in parsed:
        if ov.is_sweep_override():
            distributions[ov.get_key_element()] = _distribution(ov)
        else:
            fixed.append(ov.input_line or f"{ov.get_key_element()}={ov.get_value_element_as_str()}")
    return SearchSpace(distributions, fixed)
