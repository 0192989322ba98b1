"""The lint engine: a registry of small check functions and :func:`lint_spec` that runs them.

Each rule is a function ``check(ctx) -> Iterable[Hit]`` registered with :func:`rule` under a unique
slug, carrying the rule id (``docs/rules.md``) and a default severity. :func:`lint_spec` runs
every rule, attaches YAML lines, applies ``lint.ignore`` (silenced findings are kept aside, not
dropped) and ``strict`` (warnings become errors). Lint is pure: no torch, no I/O.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path as FsPath

from nnspec.errors import did_you_mean
from nnspec.lint.finding import SEVERITY_ORDER, DataStats, Finding, LintResult, Locator, Severity
from nnspec.lint.view import LayerView, Op, Path, layer_views, op_sequence
from nnspec.registry import Registry
from nnspec.spec.experiment import ExperimentSpec

__all__ = [
    "Hit",
    "Rule",
    "LintContext",
    "RULES",
    "rule",
    "lint_spec",
    "locate",
    "load_builtin_rules",
]

# Rule modules register on import; kept as names so this module has no import cycle with them.
_BUILTIN_RULE_MODULES = ("nnspec.lint.rules_model", "nnspec.lint.rules_train")


@dataclass(frozen=True)
class Hit:
    """What a check function reports: where, why (one sentence) and the fix."""

    path: Path
    reason: str
    fix: str
    severity: Severity | None = None  # None: the rule's default


@dataclass(frozen=True)
class Rule:
    """A registered check: catalog id, unique slug, default severity and the function."""

    rule: str
    name: str
    severity: Severity
    check: Callable[[LintContext], Iterable[Hit]]
    summary: str


RULES: Registry[Rule] = Registry("lint rule")


def rule(rule_id: str, name: str, severity: Severity) -> Callable[[Callable], Callable]:
    """Register ``check(ctx) -> Iterable[Hit]`` as lint rule ``name`` (catalog id ``rule_id``).

    The first line of the function's docstring is the rule's summary (``nnspec lint --rules``).
    """

    def wrap(check: Callable[[LintContext], Iterable[Hit]]) -> Callable:
        summary = (check.__doc__ or name).strip().splitlines()[0]
        RULES.register(name, Rule(rule_id, name, severity, check, summary))
        return check

    return wrap


class LintContext:
    """Everything a rule may look at, resolved once per :func:`lint` call."""

    def __init__(self, spec: ExperimentSpec, stats: DataStats | None = None) -> None:
        self.spec = spec
        self.stats = stats

    @cached_property
    def views(self) -> list[LayerView]:
        return layer_views(self.spec.model)

    @cached_property
    def ops(self) -> list[Op]:
        return op_sequence(self.views)

    @cached_property
    def weight_views(self) -> list[LayerView]:
        return [v for v in self.views if v.is_weight]


def locate(source: Locator | None, path: Path) -> tuple[str | None, int | None]:
    """File and line of ``path`` (the source map falls back to the nearest written parent, and
    names the CLI override when one set the value)."""
    if source is None:
        return None, None
    file, line, _ = source.locate(path)
    return file, line


def load_builtin_rules() -> None:
    """Import the built-in rule modules (registration happens on import; idempotent)."""
    for module in _BUILTIN_RULE_MODULES:
        importlib.import_module(module)


def _run_rule(r: Rule, ctx: LintContext, source: Locator | None) -> list[Finding]:
    out, seen = [], set()
    for hit in r.check(ctx):
        if hit.path in seen:  # several layers inheriting one `model.defaults` value: report once
            continue
        seen.add(hit.path)
        file, line = locate(source, hit.path)
        out.append(
            Finding(
                r.rule,
                r.name,
                hit.severity or r.severity,
                hit.path,
                hit.reason,
                hit.fix,
                file,
                line,
            )
        )
    return out


def _unknown_ignores(ignore: tuple[str, ...]) -> list[Finding]:
    known = {r.rule for r in RULES.values()} | set(RULES)
    out = []
    for i, name in enumerate(ignore):
        if name not in known:
            hint = did_you_mean(name, known)
            out.append(
                Finding(
                    "LINT", "unknown-ignore", "warning", ("lint", "ignore", i),
                    f"lint.ignore names '{name}', which is no lint rule, so it silences nothing.",
                    hint or "use a rule id or name listed by `nnspec lint --rules`",
                )
            )  # fmt: skip
    return out


def lint_spec(
    spec: ExperimentSpec | str | FsPath,
    source: Locator | None = None,
    *,
    strict: bool = False,
    stats: DataStats | None = None,
) -> LintResult:
    """Check a spec against the design-rule catalog and return the findings.

    Args:
        spec: A validated spec, or a YAML path/text (loaded with its source map).
        source: Source map of the YAML the spec came from; gives findings their line.
        strict: Report warnings as errors (``nnspec lint --strict``).
        stats: Facts about the training data for the data-aware rules (DATA-4, INIT-8).

    Returns:
        The active findings, sorted by severity then line; ``.silenced`` holds those that the
        spec's ``lint.ignore`` silenced.

    Example:
        >>> import nnspec
        >>> findings = nnspec.lint("examples/digits_cnn.yaml")  # doctest: +SKIP
        >>> [f.rule for f in findings]  # doctest: +SKIP
        []
    """
    if not isinstance(spec, ExperimentSpec):
        from nnspec.io import load_with_source  # lazy: only for the path/text convenience

        spec, source = load_with_source(spec)
    load_builtin_rules()
    ctx = LintContext(spec, stats)
    found: list[Finding] = []
    for r in RULES.values():
        found.extend(_run_rule(r, ctx, source))
    ignore = set(spec.lint.ignore)
    active = [f for f in found if not ({f.rule, f.name} & ignore)]
    silenced = [_silence(f) for f in found if {f.rule, f.name} & ignore]
    active += [_locate(f, source) for f in _unknown_ignores(spec.lint.ignore)]
    if strict:
        active = [f.with_severity("error") if f.severity == "warning" else f for f in active]
    active.sort(key=lambda f: (SEVERITY_ORDER[f.severity], f.line or 0, f.rule))
    return LintResult(active, silenced=silenced)


def _silence(f: Finding) -> Finding:
    return replace(f, silenced=True)


def _locate(f: Finding, source: Locator | None) -> Finding:
    file, line = locate(source, f.path)
    return replace(f, file=file, line=line)
