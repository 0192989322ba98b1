"""``nnspec check``: run a spec's sanity checks on its real data (CHECK rules, docs/rules.md).

Checks are a registry of functions ``check(ctx) -> CheckResult`` run in order: the static lint
(errors only) first, then loss at init, batch independence, gradient flow, overfit one batch and
the input-independent baseline (the two short trainings last, as they cost the most).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nnspec.check.basic import init_loss, input_independent, overfit_batch
from nnspec.check.context import CheckContext, CheckResult
from nnspec.check.gradflow import batch_independence, gradient_flow
from nnspec.check.sandbox import seeded_sandbox
from nnspec.registry import Registry
from nnspec.spec.experiment import ExperimentSpec

__all__ = ["CHECKS", "CheckReport", "run_checks", "lint_check"]

CheckFn = Callable[[CheckContext], CheckResult]
CHECKS: Registry[CheckFn] = Registry("check")


def lint_check(ctx: CheckContext) -> CheckResult:
    """Static pre-flight: lint findings at error severity fail the run before any training."""
    from nnspec.lint import lint_spec

    errors = lint_spec(ctx.spec).errors
    if not errors:
        return CheckResult("lint", "LINT", "pass", "no error-level lint findings")
    return CheckResult(
        "lint", "LINT", "fail",
        f"{len(errors)} error-level lint finding(s): " + "; ".join(
            f"{f.rule} at {'.'.join(map(str, f.path))}" for f in errors),
        {"errors": [f.rule for f in errors]},
        meaning="; ".join(f.reason for f in errors),
        tries=tuple(f.fix for f in errors),
    )  # fmt: skip


for _name, _fn in (
    ("lint", lint_check),
    ("init-loss", init_loss),
    ("batch-independence", batch_independence),
    ("gradient-flow", gradient_flow),
    ("overfit-batch", overfit_batch),
    ("input-independent", input_independent),
):
    CHECKS.register(_name, _fn)


@dataclass(frozen=True)
class CheckReport:
    """Results of every check that ran, and the wall time of the whole run."""

    results: tuple[CheckResult, ...]
    wall_time: float

    @property
    def ok(self) -> bool:
        """True when no check failed (warnings do not fail the run)."""
        return all(r.status != "fail" for r in self.results)

    def __getitem__(self, name: str) -> CheckResult:
        return next(r for r in self.results if r.name == name)


def run_checks(
    spec: ExperimentSpec,
    *,
    only: Sequence[str] | None = None,
    data: object | None = None,
    base: Path | None = None,
) -> CheckReport:
    """Run the sanity checks of ``spec`` on its data.

    Args:
        spec: The experiment.
        only: Names of the checks to run (default: all, in registry order).
        data: A prepared ``DataBundle`` to use instead of loading ``spec.data`` (tests plant bugs
            in the data this way).
        base: Folder that relative data paths resolve against.

    Returns:
        A :class:`CheckReport`; ``report.ok`` is False when any check failed.

    Example:
        >>> report = run_checks(nnspec.load("examples/digits_cnn.yaml"))  # doctest: +SKIP
        >>> report.ok  # doctest: +SKIP
        True
    """
    t0 = time.perf_counter()
    names = list(CHECKS) if only is None else [n for n in only if CHECKS[n]]
    with seeded_sandbox(spec):  # dropout masks and the like never disturb the caller's RNG
        ctx = CheckContext(spec, data, base=base)
        results = tuple(CHECKS[n](ctx) for n in names)
    return CheckReport(results, time.perf_counter() - t0)
