"""Lint findings: what a rule reports, where, why and how to fix it.

A :class:`Finding` is plain data (no torch): rule id (see ``docs/rules.md``), a slug name, a
severity, the field path of the spec and, when the spec came from YAML, the file and line the path
points at.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from nnspec.errors import format_path, source_prefix

__all__ = [
    "Severity",
    "SEVERITY_ORDER",
    "Finding",
    "LintResult",
    "DataStats",
    "Locator",
]

Severity = Literal["error", "warning", "info"]
SEVERITY_ORDER: Mapping[Severity, int] = {"error": 0, "warning": 1, "info": 2}


class Locator(Protocol):
    """What lint needs from a YAML source map (``nnspec.io.SourceMap``)."""

    def locate(self, path: tuple[str | int, ...]) -> tuple[str | None, int | None, int | None]:
        """Return ``(file, line, col)`` of ``path`` (1-based; ``None`` where unknown)."""
        ...


@dataclass(frozen=True)
class Finding:
    """One departure from established practice.

    Attributes:
        rule: Catalog id, e.g. ``"INIT-1"``.
        name: Slug of the check, e.g. ``"init-activation-mismatch"`` (unique per check).
        severity: ``error`` (wrong), ``warning`` (very likely a mistake) or ``info`` (a hint).
        path: Field path in the spec, e.g. ``("model", "layers", 3, "activation")``.
        reason: One sentence saying what is wrong and why it matters.
        fix: A concrete change that removes the finding.
        file: YAML file the spec came from (when known).
        line: 1-based line of ``path`` (or of its nearest written parent) in that file.
        silenced: True when the spec's ``lint.ignore`` lists this rule.
    """

    rule: str
    name: str
    severity: Severity
    path: tuple[str | int, ...]
    reason: str
    fix: str
    file: str | None = None
    line: int | None = None
    silenced: bool = False

    @property
    def where(self) -> str:
        """``file:line path`` with the parts that are known."""
        return source_prefix(self.file, self.line) + format_path(self.path)

    def with_severity(self, severity: Severity) -> Finding:
        return replace(self, severity=severity)

    def __str__(self) -> str:
        return (
            f"{self.where}: {self.severity} {self.rule} ({self.name}): {self.reason}\n"
            f"  fix: {self.fix}"
        )


class LintResult(list[Finding]):
    """The active findings (a plain list), plus the ones the spec silenced.

    Example:
        >>> r = LintResult([], silenced=[])
        >>> r.errors, r.silenced
        ([], [])
    """

    def __init__(self, findings: Iterable[Finding] = (), *, silenced: Sequence[Finding] = ()):
        super().__init__(findings)
        self.silenced: list[Finding] = list(silenced)

    @property
    def errors(self) -> list[Finding]:
        """Active findings at error severity (they make ``nnspec lint`` exit 1)."""
        return [f for f in self if f.severity == "error"]

    def by_rule(self, rule: str) -> list[Finding]:
        """Active findings of one rule id or name."""
        return [f for f in self if rule in (f.rule, f.name)]


@dataclass(frozen=True)
class DataStats:
    """Optional facts about the training split that data-aware rules use (DATA-4, INIT-8).

    Lint stays pure: whoever has loaded the data (the CLI, the trainer) passes these in.

    Attributes:
        class_counts: Training samples per class (classification tasks), or ``None``.
        feature_mean: Per-feature mean of the inputs *as the model will see them*.
        feature_std: Per-feature standard deviation of the same.
    """

    class_counts: tuple[int, ...] | None = None
    feature_mean: tuple[float, ...] | None = None
    feature_std: tuple[float, ...] | None = None
    extra: dict[str, object] = field(default_factory=dict, compare=False)
