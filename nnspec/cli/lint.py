"""``nnspec lint [SPEC.yaml] [key=value ...] [--strict] [--data] [--json] [--rules]``

Check a spec against established design practice: each finding has a rule id, the spec's line,
the reason and a fix.

Exit status: 0 no error-level finding, 1 at least one (warnings count under ``--strict``), 2 the
spec is invalid (the full error list is printed, never a traceback).
"""

from __future__ import annotations

import json
from argparse import Namespace

from nnspec.cli.common import load_checked
from nnspec.lint.finding import Finding, LintResult

__all__ = ["run", "print_findings"]

EXIT_OK, EXIT_FINDINGS = 0, 1
_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def _print_rules() -> None:
    from rich.table import Table

    from nnspec.cli.common import console
    from nnspec.lint.engine import RULES, load_builtin_rules

    load_builtin_rules()
    table = Table("rule", "name", "severity", "checks")
    for r in sorted(RULES.values(), key=lambda r: (r.rule, r.name)):
        table.add_row(r.rule, r.name, r.severity, r.summary)
    console().print(table)


def _as_json(f: Finding) -> dict[str, object]:
    return {
        "rule": f.rule, "name": f.name, "severity": f.severity, "path": list(f.path),
        "file": f.file, "line": f.line, "reason": f.reason, "fix": f.fix, "silenced": f.silenced,
    }  # fmt: skip


def print_findings(result: LintResult, *, as_json: bool = False) -> None:
    """Print findings (coloured when on a terminal) and the summary line."""
    if as_json:
        items = [_as_json(f) for f in [*result, *result.silenced]]
        print(json.dumps(items, indent=2))
        return
    from rich.markup import escape

    from nnspec.cli.common import console
    from nnspec.lint.render import summary_line

    out = console()
    for f in result:
        style = _STYLE[f.severity]
        out.print(
            f"{escape(f.where)}: [{style}]{f.severity}[/{style}] {f.rule} ({f.name}): "
            f"{escape(f.reason)}\n  fix: {escape(f.fix)}"
        )
    out.print(summary_line(result))


def run(args: Namespace) -> int:
    """Run ``nnspec lint``; returns the exit status."""
    if args.rules:
        _print_rules()
        return EXIT_OK
    from nnspec.lint.engine import lint_spec

    spec, source, base = load_checked(args, "lint")
    stats = None
    if args.data:
        from nnspec.check.stats import data_stats

        stats = data_stats(spec, base=base)
    result = lint_spec(spec, source, strict=args.strict, stats=stats)
    print_findings(result, as_json=args.json)
    return EXIT_FINDINGS if result.errors else EXIT_OK
