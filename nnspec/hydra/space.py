"""Hydra override grammar -> Optuna distributions, and Optuna parameters -> overrides.

``choice(a, b)`` / ``a,b``      -> categorical (values kept as override text)
``range(lo, hi, step)``         -> integer steps (``hi`` excluded, as in Python); float ranges
                                   become a categorical of their values
``interval(lo, hi)``            -> float uniform; ``tag(log, interval(...))`` log-uniform;
                                   ``tag(int, interval(...))`` integers
anything else                   -> a fixed override given to every trial

The samplers of ``hydra/sweeper=nnspec_optuna`` are here too: the sweeper plugin and the dry run
(:mod:`nnspec.hydra.dryrun`) both draw proposals from them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep, Override, RangeSweep
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from nnspec.errors import Problem, SpecError, did_you_mean

if TYPE_CHECKING:
    from optuna.samplers import BaseSampler

__all__ = ["SAMPLERS", "SearchSpace", "make_sampler", "parse_space", "to_override"]


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


def _tpe(space: SearchSpace, seed: int) -> BaseSampler:
    import optuna

    return optuna.samplers.TPESampler(seed=seed)


def _random(space: SearchSpace, seed: int) -> BaseSampler:
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


def _grid(space: SearchSpace, seed: int) -> BaseSampler:
    import optuna

    class AskTellGridSampler(optuna.samplers.GridSampler):
        """GridSampler whose exhaustion ends the sweep loop instead of ``study.stop()``.

        ``study.stop()`` is only legal inside ``study.optimize``; this sweeper drives the study by
        ask/tell, and checks :meth:`is_exhausted` itself.
        """

        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            return None

    return AskTellGridSampler(space.grid(), seed=seed)


def _cmaes(space: SearchSpace, seed: int) -> BaseSampler:
    import optuna

    # Categorical parameters are sampled independently (CMA-ES handles numbers only).
    return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)


SAMPLERS: Mapping[str, Callable[[SearchSpace, int], BaseSampler]] = MappingProxyType(
    {
        "tpe": _tpe,
        "random": _random,
        "grid": _grid,
        "cmaes": _cmaes,
    }
)


def make_sampler(name: str, space: SearchSpace, seed: int) -> BaseSampler:
    """The Optuna sampler called ``name`` (tpe, random, grid, cmaes), seeded."""
    if name not in SAMPLERS:
        hint = did_you_mean(name, SAMPLERS)
        raise SpecError(
            Problem(
                ("hydra", "sweeper", "sampler"),
                f"unknown sampler '{name}'; choices: {', '.join(SAMPLERS)}",
                expected=" | ".join(SAMPLERS),
                found=name,
                fix=hint or "hydra.sweeper.sampler=tpe",
            )
        )
    return SAMPLERS[name](space, seed)
