"""nnspec eval RUN_DIR

Recompute the test metrics of a finished run from its saved weights (model.pt, loaded with
weights_only=True), its spec and the same data split, and compare them with summary.json.
"""

from __future__ import annotations

import json
from pathlib import Path

from nnspec.cli.common import EXIT_OK, UsageError, console, parse_invocation, warm_start
from nnspec.run.rundir import finished_run

__all__ = ["main"]


def main(argv: list[str]) -> int:
    """``nnspec eval``: print a table of recomputed vs recorded test metrics."""
    inv = parse_invocation("eval", argv)
    if len(inv.specs) != 1:
        raise UsageError("usage: nnspec eval RUN_DIR")
    run = Path(inv.specs[0])
    finished_run(run, also=("summary.json",))  # before the heavy imports; summary.json: compared
    warm_start("eval")
    from rich.table import Table

    from nnspec.run.predict import evaluate_run

    metrics = evaluate_run(run)
    summary_file = run / "summary.json"
    recorded = json.loads(summary_file.read_text()).get("test_metrics", {})
    table = Table(title=f"test metrics of {run}", title_justify="left")
    for col in ("metric", "recomputed", "summary.json"):
        table.add_column(col)
    for name, value in metrics.items():
        old = recorded.get(name)
        table.add_row(name, f"{value:.6g}", "" if old is None else f"{old:.6g}")
    console().print(table)
    return EXIT_OK
