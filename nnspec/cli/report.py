"""nnspec report SWEEP_DIR: rebuild a sweep's summary from its trial directories.

Writes sweep_summary.csv, sweep_summary.md, best_spec.yaml and sweep_plot.png into SWEEP_DIR (also
for a sweep that was interrupted: unfinished trials are listed as incomplete) and prints the table.
Test metrics stay out of the summary unless --reveal-test is given (the test-set lock: a sweep is
chosen on validation metrics).
Exit code 0, or 1 when any trial failed or did not finish, 2 when SWEEP_DIR is not a sweep.
"""

from __future__ import annotations

import sys
from argparse import Namespace

from nnspec.cli.common import EXIT_INVALID

__all__ = ["run"]


def run(args: Namespace) -> int:
    """Rebuild the report of the sweep directory ``args.path``."""
    from nnspec.hydra.report import SUMMARY_MD, build_report

    sweep_dir = args.path
    if not sweep_dir.is_dir():
        print(f"nnspec report: no such directory: {sweep_dir}", file=sys.stderr)
        return EXIT_INVALID
    if not any(p.joinpath(".hydra").is_dir() for p in sweep_dir.iterdir()):
        print(f"nnspec report: {sweep_dir} holds no Hydra trial directories", file=sys.stderr)
        return EXIT_INVALID
    report = build_report(sweep_dir, reveal_test=args.reveal_test)
    print((sweep_dir / SUMMARY_MD).read_text(), end="")
    return 1 if report.failed else 0
