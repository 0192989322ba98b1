"""``nnspec check [SPEC.yaml] [key=value ...] [--only=NAME,...] [--json] [--layers]``

Runs the sanity checks (docs/rules.md, CHECK) on the spec's real data for a short budget and
prints pass/warn/fail with the numbers; each failure says what it usually means and what to try.
Exit status: 0 nothing failed (warnings allowed), 1 a check failed, 2 invalid spec or data.
"""

from __future__ import annotations

import json
from argparse import Namespace
from collections.abc import Sequence

from nnspec.cli.common import load_checked, warm_start

__all__ = ["run"]

_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}


def _print_report(report: object, layers: bool) -> None:
    from rich.markup import escape
    from rich.table import Table

    from nnspec.cli.common import console as make_console

    console = make_console()
    table = Table("check", "rule", "status", "numbers")
    for r in report.results:
        style = _STYLE[r.status]
        table.add_row(r.name, r.rule, f"[{style}]{r.status}[/{style}]", escape(r.summary))
    console.print(table)
    for r in report.results:
        if r.status in ("warn", "fail"):
            console.print(f"[{_STYLE[r.status]}]{r.name}[/]: {escape(r.meaning)}")
            for i, t in enumerate(r.tries, 1):
                console.print(f"  try {i}: {escape(t)}")
        if r.table and (layers or r.status == "fail"):
            _print_layer_table(console, r.table)
    verdict = "all checks passed" if report.ok else "some checks FAILED"
    console.print(f"{verdict} ({report.wall_time:.1f} s)")


def _print_layer_table(console: object, rows: Sequence[dict[str, object]]) -> None:
    from rich.table import Table

    table = Table("layer", "grad norm", "update/weight", "dead / saturated")
    for row in rows:
        if "grad_norm" in row:
            table.add_row(
                str(row["layer"]), f"{row['grad_norm']:.3g}", f"{row['update_ratio']:.2g}", ""
            )
        else:
            table.add_row(str(row["layer"]), "", "", f"{row['fraction']:.0%} {row['stat']}")
    console.print(table)


def _as_json(report: object) -> str:
    items = [
        {"name": r.name, "rule": r.rule, "status": r.status, "summary": r.summary,
         "numbers": r.numbers, "meaning": r.meaning, "tries": list(r.tries),
         "layers": list(r.table)}
        for r in report.results
    ]  # fmt: skip
    return json.dumps({"ok": report.ok, "wall_time": report.wall_time, "checks": items}, indent=2)


def run(args: Namespace) -> int:
    """Run ``nnspec check``; returns the exit status."""
    spec, _, base = load_checked(args, "check")
    warm_start("check")
    from nnspec.check.runner import run_checks

    only = [n.strip() for n in args.only.split(",")] if args.only else None
    report = run_checks(spec, only=only, base=base)
    if args.json:
        print(_as_json(report))
    else:
        _print_report(report, args.layers)
    return 0 if report.ok else 1
