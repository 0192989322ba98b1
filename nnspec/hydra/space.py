"""Hydra override grammar -> Optuna distributions, and Optuna parameters -> overrides.

``choice(a, b)`` / ``a,b``      -> categorical (values kept as override text)
``range(lo, hi, step)``         -> integer steps (``hi`` excluded, as in Python); float ranges
                                   become a categorical of their values
``interval(lo, hi)``            -> float uniform; ``tag(log, interval(...))`` log-uniform;
                                   ``tag(int, interval(...))`` integers
anything else                   -> a fixed override given to every trial

Conditional parameters (``hydra.sweeper.conditions``, key -> ``"parent=value[,value...]"``) are
sampled only when the parent's value (sampled or fixed) is one of those values, e.g.
``optim.momentum: optim=sgd``: a trial with ``optim=adam`` gets no ``optim.momentum`` at all.

The samplers of ``hydra/sweeper=nnspec_optuna`` are here too: the sweeper plugin and the dry run
(:mod:`nnspec.hydra.dryrun`) both draw proposals from them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
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

__all__ = [
    "SAMPLERS",
    "Condition",
    "SearchSpace",
    "make_sampler",
    "parse_conditions",
    "parse_space",
    "to_override",
]


@dataclass(frozen=True)
class Condition:
    """A parameter is sampled only when ``parent`` took one of ``values`` (override text)."""

    parent: str
    values: tuple[str, ...]

    def holds(self, params: Mapping[str, Any], fixed: Mapping[str, str]) -> bool:
        if self.parent in params:
            return to_override(self.parent, params[self.parent]).split("=", 1)[1] in self.values
        return fixed.get(self.parent) in self.values


@dataclass(frozen=True)
class SearchSpace:
    """Distributions to sample and overrides every trial shares."""

    distributions: dict[str, BaseDistribution]
    fixed: list[str]
    conditions: Mapping[str, Condition] = field(default_factory=dict)

    @property
    def unconditional(self) -> dict[str, BaseDistribution]:
        """What ``study.ask`` samples up front (every parameter without a condition)."""
        return {k: d for k, d in self.distributions.items() if k not in self.conditions}

    def sample(self, trial: Any) -> dict[str, Any]:
        """A trial's parameters: the unconditional ones (already asked), then each conditional
        one whose condition holds, suggested through Optuna's define-by-run API."""
        params = {k: v for k, v in trial.params.items() if k in self.distributions}
        fixed = dict(o.lstrip("+").split("=", 1) for o in self.fixed if "=" in o)
        for key in _ordered(self.conditions):
            if self.conditions[key].holds(params, fixed):
                params[key] = _suggest(trial, key, self.distributions[key])
        return {k: params[k] for k in self.distributions if k in params}

    def ask(self, study: Any) -> Any:
        """A new trial of ``study`` with every parameter of this space that applies sampled."""
        trial = study.ask(self.unconditional)
        self.sample(trial)
        return trial

    def overrides(self, params: Mapping[str, Any]) -> list[str]:
        """The command-line overrides of one trial (fixed ones first)."""
        return [*self.fixed, *(to_override(k, v) for k, v in params.items())]

    def grid(self) -> dict[str, list[Any]]:
        """Every value of every parameter, for the grid sampler (continuous ones refused)."""
        if self.conditions:
            key = next(iter(self.conditions))
            raise SpecError(
                Problem(
                    ("hydra", "sweeper", "conditions", key),
                    "the grid sampler cannot skip a parameter: conditional parameters need another "
                    "sampler",
                    expected="no hydra.sweeper.conditions with sampler=grid",
                    found=f"{key}: {self.conditions[key].parent}=...",
                    fix="hydra.sweeper.sampler=random (or tpe), or sweep each branch on its own",
                )
            )
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


def _suggest(trial: Any, key: str, dist: BaseDistribution) -> Any:
    """``trial.suggest_*`` for one distribution (Optuna's public define-by-run API)."""
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(key, dist.low, dist.high, log=dist.log, step=dist.step)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(key, dist.low, dist.high, log=dist.log, step=dist.step)
    assert isinstance(dist, CategoricalDistribution)
    return trial.suggest_categorical(key, dist.choices)


def _ordered(conditions: Mapping[str, Condition]) -> list[str]:
    """Conditional keys with each parent before its children (chains allowed, not cycles)."""
    out: list[str] = []
    for key in conditions:
        chain = [key]
        while (parent := conditions[chain[-1]].parent) in conditions and parent not in out:
            if parent in chain:
                raise _condition_error(key, "a cycle of conditions", " -> ".join([*chain, parent]))
            chain.append(parent)
        out += [k for k in reversed(chain) if k not in out]
    return out


def _condition_error(key: str, message: str, found: str, fix: str | None = None) -> SpecError:
    return SpecError(
        Problem(
            ("hydra", "sweeper", "conditions", key),
            message,
            expected="'parent=value[,value...]' for a swept key, naming a swept "
            "or fixed parent and values it takes",
            found=found,
            fix=fix or "e.g. optim.momentum: optim=sgd",
        )
    )


def _flat(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{optim: {momentum: x}}`` (a command-line ``hydra.sweeper.conditions.optim.momentum=x``)
    and ``{optim.momentum: x}`` (a YAML key) alike, as dotted keys."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def parse_conditions(
    conditions: Mapping[str, Any],
    distributions: Mapping[str, BaseDistribution],
    fixed: Sequence[str],
) -> dict[str, Condition]:
    """``key -> "parent=v1,v2"`` checked against the space: the key is swept, the parent is swept
    or fixed, and a categorical parent offers each value.

    Raises:
        SpecError: at ``hydra.sweeper.conditions.KEY``, what is wrong and how to write it.
    """
    fixed_keys = {o.lstrip("+").split("=", 1)[0] for o in fixed}
    out: dict[str, Condition] = {}
    for key, text in _flat(conditions).items():
        parent, sep, values = str(text).partition("=")
        parent = parent.strip()
        choices = tuple(v.strip() for v in values.split(",") if v.strip())
        if not sep or not choices:
            raise _condition_error(key, "expected 'parent=value[,value...]'", repr(text))
        if key not in distributions:
            raise _condition_error(
                key,
                "a condition needs a swept parameter",
                f"{key} is not swept",
                f"sweep it too, e.g. {key}='interval(0.5, 0.99)'",
            )
        if parent not in distributions and parent not in fixed_keys:
            hint = did_you_mean(parent, [*distributions, *fixed_keys])
            raise _condition_error(key, f"unknown parent '{parent}'", parent, hint)
        dist = distributions.get(parent)
        if isinstance(dist, CategoricalDistribution):
            offered = [str(c) for c in dist.choices]
            for v in choices:
                if v not in offered:
                    raise _condition_error(
                        key,
                        f"{parent} never takes '{v}'",
                        v,
                        did_you_mean(v, offered) or ", ".join(offered),
                    )
        out[key] = Condition(parent, choices)
    _ordered(out)  # a cycle fails here, before any trial
    return out


def parse_space(
    arguments: Sequence[str],
    params: Mapping[str, Any] | None = None,
    conditions: Mapping[str, Any] | None = None,
) -> SearchSpace:
    """Build the search space from ``hydra.sweeper.params`` and the command-line overrides.

    The command line wins over ``params`` for the same key; ``conditions`` (key ->
    ``parent=value[,value...]``) make parameters conditional.
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
    checked = parse_conditions(conditions or {}, distributions, fixed)
    return SearchSpace(distributions, fixed, MappingProxyType(checked))


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
