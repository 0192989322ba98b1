"""Plain-text rendering of lint results (the CLI adds colour with rich; logs use this)."""

from __future__ import annotations

from collections import Counter

from nnspec.lint.finding import Finding, LintResult

__all__ = ["render_text", "summary_line"]


def summary_line(result: LintResult) -> str:
    """One line: counts per severity and which rules the spec silenced.

    Example:
        >>> summary_line(LintResult([]))
        'no findings'
    """
    counts = Counter(f.severity for f in result)
    parts = [
        f"{counts[s]} {s}{'s' if counts[s] != 1 else ''}" for s in ("error", "warning", "info")
    ]
    text = ", ".join(p for p in parts if not p.startswith("0 ")) or "no findings"
    if result.silenced:
        by_rule = Counter(f.rule for f in result.silenced)
        silenced = ", ".join(f"{r} x{n}" if n > 1 else r for r, n in sorted(by_rule.items()))
        text += f"; silenced by lint.ignore: {silenced}"
    return text


def render_text(findings: list[Finding] | LintResult) -> str:
    """Every finding (``where: severity RULE (name): reason`` + ``fix:`` line), then the summary."""
    result = findings if isinstance(findings, LintResult) else LintResult(findings)
    lines = [str(f) for f in result]
    lines.append(summary_line(result))
    return "\n".join(lines)
