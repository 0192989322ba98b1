"""nnspec train [SPEC.yaml] [group=option ...] [key=value ...] [-m] [--cfg job] [--dry-run]

Train an experiment end to end (Hydra composes the config) and print its test metrics. Without SPEC
the built-in default experiment (digits CNN, conf/config.yaml) is trained. A SPEC file becomes the
primary config: any of its fields can be overridden (optim.weight_decay=0.1), a group choice
(optim=sgd) replaces its whole section. The run directory (Hydra's job dir,
<train.output_dir>/<name>/<time>) receives the resolved spec, metrics, summary.json, checkpoints,
plots and trial.json.

Examples:
  nnspec train                                   # the default digits CNN
  nnspec train experiment=breast_cancer_mlp optim=sgd optim.lr=0.05 train.epochs=20
  nnspec train examples/iris_mlp.yaml train.epochs=5
  nnspec train -m optim=adam,adamw optim.lr=1e-3,3e-3            # grid sweep
  nnspec train -m hydra/launcher=joblib hydra.launcher.n_jobs=2 seed=0,1,2
  nnspec train -m hydra/sweeper=nnspec_optuna hydra.sweeper.n_trials=20 \\
      'optim.lr=tag(log, interval(1e-4, 1e-1))'                  # Bayesian search
  nnspec train -m sweep=lr_wd --dry-run          # list + validate the trials, train nothing
  nnspec train --cfg job optim=sgd               # print the composed config
  nnspec train --help                            # Hydra's help: config groups and options

Exit status: 0 on success; 1 when a run or any sweep trial failed (NaN guard, bad data, ...);
2 on an invalid spec or override (nothing is written).
"""

from __future__ import annotations

from pathlib import Path

from nnspec.cli.common import EXIT_OK, load_spec, parse_invocation

__all__ = ["main", "main_plain", "HANDLES_HELP"]

# `nnspec train --help` is answered by Hydra (config groups and their options), not the docstring.
HANDLES_HELP = True


def main(argv: list[str]) -> int:
    """``nnspec train``: compose with Hydra, validate, train (one run or a sweep)."""
    from nnspec.hydra.app import run

    return run(argv)


def main_plain(argv: list[str]) -> int:
    """The same run without Hydra (nnspec's own ``key=value`` overrides; no groups, no sweeps)."""
    from nnspec.workflow import train

    inv = parse_invocation("train", argv)
    path = inv.one_spec()
    spec, _ = load_spec(path, inv.overrides)
    base = Path(path).resolve().parent if path else None
    train(spec, base_dir=base)
    return EXIT_OK
