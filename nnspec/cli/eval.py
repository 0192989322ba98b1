"""nnspec eval RUN_DIR

Recompute the test metrics of a finished run from its saved weights (model.pt, loaded with
weights_only=True), its spec and the same data split, and compare them with summary.json. Every
file of the run is checked against its manifest.json (sha256) first.

Exit status: 0 when the recomputed metrics match the recorded ones (relative tolerance 1e-4,
absolute 1e-5) or the test data are no longer those the run was tested on (a note says so); 1
when the run's own test data (same sha256) give other metrics than summary.json records: the
weights or the environment changed (another device, library versions); 2 when the run cannot be
loaded (missing or damaged files, data that cannot be read).
"""

from __future__ import annotations

import math
import sys
from argparse import Namespace

from nnspec.cli.common import EXIT_OK, console, warm_start
from nnspec.run.rundir import finished_run

__all__ = ["run", "EXIT_MISMATCH"]

EXIT_MISMATCH = 1  # the run's own test data gave other metrics than it recorded


def run(args: Namespace) -> int:
    """``nnspec eval``: print a table of recomputed vs recorded test metrics."""
    run_dir = args.path
    # before the heavy imports; summary.json: what the table compares with
    finished_run(run_dir, also=("summary.json",))
    warm_start("eval")
    from rich.table import Table

    from nnspec.run.predict import EVAL_ATOL, EVAL_RTOL, read_run_json, evaluate_run_data

    summary = read_run_json(run_dir, run_dir / "summary.json")
    metrics, data_digest = evaluate_run_data(run_dir)
    recorded = summary.get("test_metrics", {})
    recorded = recorded if isinstance(recorded, dict) else {}
    table = Table(title=f"test metrics of {run_dir}", title_justify="left")
    for col in ("metric", "recomputed", "summary.json"):
        table.add_column(col)
    differ = []
    for name, value in metrics.items():
        old = recorded.get(name)
        old = old if isinstance(old, (int, float)) else None
        table.add_row(name, f"{value:.6g}", "" if old is None else f"{old:.6g}")
        if old is not None and not math.isclose(value, old, rel_tol=EVAL_RTOL, abs_tol=EVAL_ATOL):
            differ.append(f"{name} {value:.6g} (recorded {old:.6g})")
    console().print(table)
    same_data = summary.get("test_data_sha256") == data_digest
    if not same_data:
        print(f"note: the test data are not those {run_dir} was tested on (their sha256 differs "
              "or was not recorded); the two columns are not compared")  # fmt: skip
    elif differ:
        print(
            f"nnspec eval: the run's own test data give other metrics than summary.json records "
            f"(tolerance rel {EVAL_RTOL:g}, abs {EVAL_ATOL:g}): {'; '.join(differ)}. The run "
            f"was tested on {summary.get('device', '?')}; on the same device and versions this "
            "means its weights changed\n  fix: restore model.pt from a copy of the run, or train "
            "again",
            file=sys.stderr,
        )
        return EXIT_MISMATCH
    return EXIT_OK
