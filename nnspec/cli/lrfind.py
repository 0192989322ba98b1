"""``nnspec lr-find [SPEC.yaml] [key=value ...] [--start 1e-6] [--end 10] [--steps 100]
[--out=lr_find.png] [--apply] [--json]``.

Runs the LR range test (LR-3/4), writes the plot (PNG) and the readings (JSON next to it) and
prints the suggestion. ``--apply`` prints only the override ``optim.lr=<suggestion>`` on stdout,
so it composes: ``nnspec train spec.yaml $(nnspec lr-find spec.yaml --apply)``.
Exit status: 0 done, 2 invalid spec or data.
"""

from __future__ import annotations

import json
import sys
import time
from argparse import Namespace
from pathlib import Path

from nnspec.cli.common import UsageError, load_checked, warm_start
from nnspec.files import atomic_write

__all__ = ["run"]


def _write_json(path: Path, data: dict[str, object]) -> None:
    atomic_write(path, json.dumps(data, indent=2) + "\n")  # never a half-written file


def _report(result: object, plot: Path, seconds: float) -> str:
    div = result.divergence_lr
    return "\n".join(
        [
            f"LR range test: {len(result.lrs)} steps from {result.lrs[0]:.3g} to "
            f"{result.lrs[-1]:.3g} ({seconds:.1f} s)",
            f"  steepest descent : {result.steepest_lr:.3g}",
            f"  minimum loss     : {result.min_loss_lr:.3g}",
            f"  divergence       : {'not reached' if div is None else f'{div:.3g}'}",
            f"  suggested lr     : {result.suggested_lr:.3g}  (min(steepest, divergence / 2))",
            f"  plot             : {plot}",
            f"apply with: optim.lr={result.suggested_lr:.3g}",
        ]
    )


def run(args: Namespace) -> int:
    """Run ``nnspec lr-find``; returns the exit status."""
    from nnspec.check.lr_range import END, START, STEPS  # torch-free: arguments come first

    start, end = args.start or START, args.end or END
    steps = STEPS if args.steps is None else args.steps
    if not (0 < start < end) or steps < 2:
        raise UsageError("lr-find: need 0 < --start < --end and --steps >= 2")
    t0 = time.perf_counter()
    spec, _, base = load_checked(args, "lr-find")
    warm_start("lr-find")
    from nnspec.check.lrfind import lr_find, save_plot

    result = lr_find(spec, base=base, start=start, end=end, steps=steps)
    save_plot(result, args.out)
    _write_json(args.out.with_suffix(".json"), result.to_json())
    report = _report(result, args.out, time.perf_counter() - t0)
    if args.apply:
        print(report, file=sys.stderr)
        print(f"optim.lr={result.suggested_lr:.3g}")
    elif args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(report)
    return 0
