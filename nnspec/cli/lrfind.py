"""``nnspec lr-find [SPEC.yaml] [key=value ...] [--start 1e-6] [--end 10] [--steps 100]
[--out=lr_find.png] [--apply] [--json]``.

Runs the LR range test (LR-3/4), writes the plot (PNG) and the readings (JSON next to it) and
prints the suggestion. ``--apply`` prints only the override ``optim.lr=<suggestion>`` on stdout,
so it composes: ``nnspec train spec.yaml $(nnspec lr-find spec.yaml --apply)``.
Exit status: 0 done, 2 invalid spec or data.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from nnspec.cli.common import warm_start
from nnspec.errors import NNSpecError
from nnspec.files import atomic_write

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    from nnspec.check.lr_range import END, START, STEPS  # torch-free: arguments come first

    p = argparse.ArgumentParser(prog="nnspec lr-find", description="LR range test (LR-3/4).")
    p.add_argument("args", nargs="*", help="[SPEC.yaml] [key=value ...]")
    p.add_argument("--start", type=float, default=START, help="first learning rate")
    p.add_argument("--end", type=float, default=END, help="last learning rate")
    p.add_argument("--steps", type=int, default=STEPS, help="number of steps (one per batch)")
    p.add_argument("--out", type=Path, default=Path("lr_find.png"), help="plot file (PNG)")
    p.add_argument("--apply", action="store_true", help="print only `optim.lr=<suggestion>`")
    p.add_argument("--json", action="store_true", help="print the readings as JSON")
    return p


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


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``nnspec lr-find``; returns the exit status."""
    from nnspec.cli.lint import load_spec_args, split_spec_args

    ns = _parser().parse_intermixed_args(list(sys.argv[1:] if argv is None else argv))
    if not (0 < ns.start < ns.end) or ns.steps < 2:
        print("lr-find: need 0 < --start < --end and --steps >= 2", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    try:
        spec, _ = load_spec_args(ns.args)
        path, _ = split_spec_args(ns.args)
        base = Path(path).resolve().parent if path and Path(path).exists() else None
        warm_start("lr-find")
        from nnspec.check.lrfind import lr_find, save_plot

        result = lr_find(spec, base=base, start=ns.start, end=ns.end, steps=ns.steps)
    except NNSpecError as e:
        from nnspec.cli.common import print_error

        print_error(e)
        return 2
    save_plot(result, ns.out)
    _write_json(ns.out.with_suffix(".json"), result.to_json())
    report = _report(result, ns.out, time.perf_counter() - t0)
    if ns.apply:
        print(report, file=sys.stderr)
        print(f"optim.lr={result.suggested_lr:.3g}")
    elif ns.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(report)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
