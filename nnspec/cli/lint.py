"""``nnspec lint [SPEC.yaml] [key=value ...] [--strict] [--data] [--json] [--rules]``.

Exit status: 0 no error-level finding, 1 at least one (warnings count under ``--strict``), 2 the
spec is invalid (the full error list is printed, never a traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from nnspec.errors import NNSpecError
from nnspec.lint.finding import Finding, LintResult
from nnspec.spec.experiment import ExperimentSpec

__all__ = ["main", "load_spec_args", "split_spec_args"]

EXIT_OK, EXIT_FINDINGS, EXIT_INVALID = 0, 1, 2
_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def split_spec_args(args: Sequence[str]) -> tuple[str | None, list[str]]:
    """``[SPEC] [key=value ...]`` -> (spec path or None, overrides)."""
    spec, overrides = None, []
    for arg in args:
        if "=" in arg or arg.startswith("~"):
            overrides.append(arg)
        elif spec is None:
            spec = arg
        else:
            raise NNSpecError(f"expected one SPEC file, found a second one: '{arg}'")
    return spec, overrides


def load_spec_args(args: Sequence[str]) -> tuple[ExperimentSpec, object | None]:
    """Load ``[SPEC] [key=value ...]`` through the CLI's common loader (the built-in default
    without SPEC; overrides applied) and run shape inference, so that every invalid spec is
    reported with ``file:line`` before any rule or check runs."""
    from nnspec.cli.common import check_shapes, load_spec

    path, overrides = split_spec_args(args)
    spec, source = load_spec(path, overrides)
    check_shapes(spec, source)
    return spec, source


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nnspec lint",
        description="Check a spec against established design practice (rule ids: design_rules.md).",
    )
    p.add_argument("args", nargs="*", help="[SPEC.yaml] [key=value ...]")
    p.add_argument("--strict", action="store_true", help="treat warnings as errors")
    p.add_argument("--data", action="store_true", help="load the data for data-aware rules")
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    p.add_argument("--rules", action="store_true", help="list every rule and exit")
    return p


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


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``nnspec lint``; returns the exit status."""
    ns = _parser().parse_intermixed_args(list(sys.argv[1:] if argv is None else argv))
    if ns.rules:
        _print_rules()
        return EXIT_OK
    from nnspec.lint.engine import lint

    try:
        spec, source = load_spec_args(ns.args)
        stats = None
        if ns.data:
            from nnspec.check.stats import data_stats

            path, _ = split_spec_args(ns.args)  # relative data paths: the spec file's folder
            stats = data_stats(spec, base=Path(path).resolve().parent if path else None)
        result = lint(spec, source, strict=ns.strict, stats=stats)  # type: ignore[arg-type]
    except NNSpecError as e:
        from nnspec.cli.common import print_error

        print_error(e)
        return EXIT_INVALID
    print_findings(result, as_json=ns.json)
    return EXIT_FINDINGS if result.errors else EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
