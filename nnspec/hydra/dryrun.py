"""``nnspec train -m ... --dry-run``: expand a sweep, validate and shape-check every trial.

Nothing is trained and nothing is written.

A grid (basic sweeper) is expanded completely; an Optuna study (``hydra/sweeper=nnspec_optuna``)
shows its first N proposals (an in-memory study with the configured sampler and seed, so nothing is
written). Exit code 2 when any trial is invalid.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nnspec.errors import NNSpecError
from nnspec.hydra.compose import compose, compose_container, split_overrides
from nnspec.hydra.sources import Sources
from nnspec.spec import ExperimentSpec

if TYPE_CHECKING:
    from nnspec.hydra.app import Invocation

__all__ = ["TrialCheck", "expand_grid", "expand_optuna", "check_trial", "dry_run"]


@dataclass(frozen=True)
class TrialCheck:
    """One expanded trial: its overrides, parameter count or the reason it is invalid."""

    overrides: list[str]
    n_params: int | None
    reason: str = ""
    param_bytes: int | None = None
    activation_bytes: int | None = None  # one training batch's top-level outputs, fp32

    @property
    def valid(self) -> bool:
        return not self.reason


def expand_grid(
    arguments: Sequence[str], params: Mapping[str, Any] | None = None
) -> list[list[str]]:
    """The cartesian product of every sweep, as the basic sweeper launches it."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    merged = {str(k): f"{k}={v}" for k, v in (params or {}).items()}
    merged.update({a.split("=", 1)[0]: a for a in arguments})
    axes = []
    for ov in OverridesParser.create().parse_overrides(list(merged.values())):
        key = ov.get_key_element()
        if ov.is_sweep_override():
            axes.append([f"{key}={v}" for v in ov.sweep_string_iterator()])
        else:
            axes.append([ov.input_line or f"{key}={ov.get_value_element_as_str()}"])
    return [list(x) for x in itertools.product(*axes)]


def expand_optuna(
    arguments: Sequence[str], sweeper: Mapping[str, Any], seed: int, n: int
) -> list[list[str]]:
    """The first ``n`` proposals of the configured sampler (in memory, nothing saved)."""
    import optuna

    from nnspec.hydra.space import make_sampler, parse_space

    space = parse_space(arguments, sweeper.get("params") or {}, sweeper.get("conditions") or {})
    base = sweeper.get("seed")
    # the node is composed from NNSpecOptunaSweeperConf, which holds the defaults
    sampler = make_sampler(str(sweeper["sampler"]), space, seed if base is None else base)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=sampler)
    count = min(n, int(sweeper["n_trials"]))
    return [space.overrides(space.ask(study).params) for _ in range(count)]


def check_trial(
    overrides: list[str],
    spec: ExperimentSpec | Mapping[str, Any] | None,
    sources: Sources = Sources(),
    config_name: str | None = None,
    max_params: int | None = None,
) -> TrialCheck:
    """Compose, validate and shape-check one trial; one over ``max_params`` is invalid."""
    from nnspec.hydra.budget import budget, over_budget

    try:
        trial = compose(overrides, spec, sources=sources, config_name=config_name)
        b = budget(trial)
    except NNSpecError as e:
        first = [str(p).splitlines()[0] for p in e.problems]
        return TrialCheck(overrides, None, f"{type(e).__name__}: " + "; ".join(first))
    reason = over_budget(b, max_params)
    return TrialCheck(overrides, b.n_params, reason, b.param_bytes, b.activation_bytes)


def _sweeper_node(
    inv: Invocation, spec: ExperimentSpec | Mapping[str, Any] | None
) -> tuple[dict[str, Any], int]:
    """The composed ``hydra.sweeper`` node (unresolved: params are grammar text) and the seed."""
    from nnspec.hydra.groups import first_choice

    args = split_overrides(inv.overrides)
    plain = [*first_choice(args.groups), *args.hydra]
    full = compose_container(plain, spec=spec, with_hydra=True, sources=inv.sources,
                             config_name=inv.config_name)  # fmt: skip
    return full["hydra"].get("sweeper", {}), int(full.get("seed", 0))


def _render(checks: list[TrialCheck]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"dry run: {len(checks)} trials")
    from nnspec.hydra.budget import mib

    for col in ("trial", "overrides", "parameters", "param memory", "activations", "status"):
        table.add_column(col)
    for i, c in enumerate(checks):
        params = f"{c.n_params:,}" if c.n_params is not None else "-"
        memory = [mib(x) if x is not None else "-" for x in (c.param_bytes, c.activation_bytes)]
        status = "[green]valid[/]" if c.valid else f"[red]invalid[/]: {c.reason}"
        table.add_row(str(i), " ".join(c.overrides), params, *memory, status)
    import sys

    # piped or captured: wide, so a row's reason is never folded mid-word
    Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200).print(table)


def dry_run(inv: Invocation, spec: ExperimentSpec | Mapping[str, Any] | None) -> int:
    """Print the trial table; 0 when every trial is valid, 2 otherwise."""
    args = split_overrides(inv.overrides)
    sweeper, seed = _sweeper_node(inv, spec)
    job_args = [*(f"{g}={o}" for g, o in args.groups.items()), *args.keys]
    if str(sweeper.get("_target_", "")).endswith("NNSpecOptunaSweeper"):
        trials = expand_optuna(job_args, sweeper, seed, inv.dry_run_trials)
    else:
        trials = expand_grid(job_args, sweeper.get("params") or {})
    limit = sweeper.get("max_params")
    checks = [check_trial(t, spec, inv.sources, inv.config_name, limit) for t in trials]
    _render(checks)
    return 0 if all(c.valid for c in checks) else 2
