"""Plain-text rendering of lint results (the CLI adds colour with rich; logs use this)."""

from __future__ import annotations

import sys
from collections import Counter
from typing import TextIO

from nnspec.lint.finding import Finding, LintResult

__all__ = ["render_text", "summary_line", "announce"]


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


def announce(
    spec: object, *, stream: TextIO | None = None, source: object | None = None
) -> LintResult:
    """Print a spec's lint findings as warnings (never raises, never fails a run).

    ``nnspec train`` calls this before training (lint runs at the start of training, warnings
    only); nothing is printed when there are no findings or when the spec turns
    progress output off (``train.progress: none``).
    """
    from nnspec.lint.engine import lint_spec

    result = lint_spec(spec, source)  # type: ignore[arg-type]
    quiet = getattr(getattr(spec, "train", None), "progress", None) == "none"
    if result and not quiet:
        out = stream if stream is not None else sys.stderr
        for f in result:
            print(f"lint: {f.where}: {f.rule} ({f.name}): {f.reason} fix: {f.fix}", file=out)
        print(f"lint: {summary_line(result)} (`nnspec lint SPEC` for details)", file=out)
    return result
