"""nnspec train [SPEC.yaml] [key.path=value ...]

Train an experiment end to end and print its test metrics. Without SPEC the built-in default
experiment (digits CNN) is trained. The run directory (<train.output_dir>/<name>/<time>) receives
the resolved spec, metrics.csv/jsonl, summary.json, checkpoints and plots.

Examples:
  nnspec train                                   # the default digits CNN
  nnspec train examples/iris_mlp.yaml optim.lr=3e-3 train.epochs=50
  nnspec train examples/iris_mlp.yaml train.resume=auto   # continue the newest killed run

Exit status: 0 on success, 2 on an invalid spec, bad data, a failed guard (NaN / divergence) or an
unusable checkpoint.
"""

from __future__ import annotations

from pathlib import Path

from nnspec.cli.common import EXIT_OK, load_spec, parse_invocation

__all__ = ["main"]


def main(argv: list[str]) -> int:
    """``nnspec train``: one run; the final line holds the test metrics."""
    from nnspec.run.api import train

    inv = parse_invocation("train", argv)
    path = inv.one_spec()
    spec, _ = load_spec(path, inv.overrides)
    base = Path(path).resolve().parent if path else None
    train(spec, base_dir=base)
    return EXIT_OK
