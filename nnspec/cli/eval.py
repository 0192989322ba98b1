"""nnspec eval RUN_DIR

Recompute the test metrics of a finished run from its saved weights (model.pt, loaded with
weights_only=True), its spec and the same data split, and compare them with summary.json.
"""

from __future__ import annotations

import json
from argparse import Namespace

from nnspec.cli.common import EXIT_OK, console, warm_start
from nnspec.run.rundir import finished_run

__all__ = ["run"]


def run(args: Namespace) -> int:
    """``nnspec eval``: print a table of recomputed vs recorded test metrics."""
    run_dir = args.path
    # before the heavy imports; summary.json: what the table compares with
    finished_run(run_dir, also=("summary.json",))
    warm_start("eval")
    from rich.table import Table

    from nnspec.run.predict import evaluate_run

    metrics = evaluate_run(run_dir)
    summary_file = run_dir / "summary.json"
    recorded = json.loads(summary_file.read_text()).get("test_metrics", {})
    table = Table(title=f"test metrics of {run_dir}", title_justify="left")
    for col in ("metric", "recomputed", "summary.json"):
        table.add_column(col)
    for name, value in metrics.items():
        old = recorded.get(name)
        table.add_row(name, f"{value:.6g}", "" if old is None else f"{old:.6g}")
    console().print(table)
    return EXIT_OK
