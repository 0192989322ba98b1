"""nnspec train [SPEC.yaml | RUN_DIR] [group=option ...] [key=value ...] [-m] [--dry-run]

Train an experiment end to end (Hydra composes the config) and print its test metrics. Without SPEC
the built-in default experiment (digits CNN, conf/config.yaml) is trained. A SPEC file becomes the
primary config: any of its fields can be overridden (optim.weight_decay=0.1), a group choice
(optim=sgd) replaces its whole section. The run directory (Hydra's job dir,
<train.output_dir>/<name>/<time>) receives the resolved spec, metrics, summary.json, checkpoints,
plots and trial.json. A RUN_DIR instead of a SPEC resumes that run from its last checkpoint, with
its own spec (the same as `nnspec train RUN_DIR/spec.yaml train.resume=RUN_DIR`).

Examples:
  nnspec train                                   # the default digits CNN
  nnspec train experiment=breast_cancer_mlp optim=sgd optim.lr=0.05 train.epochs=20
  nnspec train examples/iris_mlp.yaml train.epochs=5
  nnspec train runs/iris_mlp/RUN                # resume that run (its folder)
  nnspec train --config-dir myconf optim=fast     # your own group options (myconf/optim/fast.yaml)
  nnspec train -m optim=adam,adamw optim.lr=1e-3,3e-3            # grid sweep
  nnspec train -m hydra/launcher=joblib hydra.launcher.n_jobs=2 seed=0,1,2
  nnspec train -m hydra/sweeper=nnspec_optuna hydra.sweeper.n_trials=20 \\
      'optim.lr=tag(log, interval(1e-4, 1e-1))'                  # Bayesian search
  nnspec train -m sweep=lr_wd --dry-run          # list + validate the trials, train nothing
  nnspec train --cfg job optim=sgd               # print the composed config
  nnspec train --hydra-help                      # Hydra's help: config groups and options

Exit status: 0 on success; 1 when a run or any sweep trial failed (NaN guard, bad data, ...);
2 on an invalid spec or override (nothing is written).
"""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path
from typing import TYPE_CHECKING

from nnspec.cli.common import UsageError

if TYPE_CHECKING:
    from nnspec.hydra.app import Invocation, TrainFn

__all__ = ["run", "main", "invocation", "register_plugins"]

RUN_SPEC = "spec.yaml"  # the resolved spec a run directory holds (nnspec.run writes it)


def invocation(args: Namespace) -> Invocation:
    """The Hydra app's view of ``nnspec train``'s parsed arguments."""
    from nnspec.cli.parser import split_positionals
    from nnspec.hydra.app import Invocation

    paths, overrides = split_positionals(args.args)
    if len(paths) > 1:
        raise UsageError(f"nnspec train takes one SPEC.yaml or RUN_DIR, got: {' '.join(paths)}")
    spec_path, base_dir = None, None
    if paths:
        path = Path(paths[0])
        if path.is_dir():  # a run to resume, with its own spec
            spec_path, overrides = _run_spec(path), [f"train.resume={path}", *overrides]
        elif path.suffix in (".yaml", ".yml") or path.exists():
            spec_path, base_dir = path, path.resolve().parent
        else:
            raise UsageError(f"'{path}' is neither a SPEC.yaml file nor a run directory "
                             "(overrides are written key=value)")  # fmt: skip
        if args.config_name is not None:
            raise UsageError(f"--config-name {args.config_name} names a primary config, and so "
                             f"does {path}: give one of them")  # fmt: skip
    return Invocation(spec_path, overrides, _hydra_flags(args), args.multirun, args.dry_run,
                      args.dry_run_trials, base_dir)  # fmt: skip


def _run_spec(run_dir: Path) -> Path:
    spec = run_dir / RUN_SPEC
    if not spec.is_file():
        raise UsageError(f"{run_dir} is not an nnspec run directory (it has no {RUN_SPEC})")
    return spec


def _hydra_flags(args: Namespace) -> list[str]:
    """The options Hydra reads itself, as Hydra spells them."""
    valued = {"--config-dir": args.config_dir, "--config-name": args.config_name,
              "--cfg": args.cfg, "--package": args.package, "--info": args.info}  # fmt: skip
    flags = [x for flag, value in valued.items() if value is not None for x in (flag, value)]
    return flags + ["--resolve"] * args.resolve + ["--hydra-help"] * args.hydra_help


def register_plugins() -> None:
    """Make nnspec's sweeper and launcher known even where Hydra's plugin scan misses them.

    An editable install maps ``hydra_plugins`` through an import hook that pkgutil (Hydra's scan)
    does not walk; Hydra's public ``Plugins.register`` covers that case.
    """
    from hydra.core.plugins import Plugins

    from hydra_plugins.nnspec_optuna_sweeper.sweeper import NNSpecOptunaSweeper
    from hydra_plugins.nnspec_pool_launcher.launcher import NNSpecPoolLauncher

    Plugins.instance().register(NNSpecOptunaSweeper)
    Plugins.instance().register(NNSpecPoolLauncher)


def run(args: Namespace, *, train_fn: TrainFn | None = None) -> int:
    """``nnspec train``: compose with Hydra, validate, train (one run or a sweep).

    ``train_fn`` replaces :func:`nnspec.workflow.train` (tests and benchmarks).
    """
    from nnspec.hydra.app import run as run_app

    inv = invocation(args)
    register_plugins()
    return run_app(inv, train_fn=train_fn)


def main(argv: list[str], *, train_fn: TrainFn | None = None) -> int:
    """``nnspec train ARGV`` in this process, parsed by the CLI's grammar (tests, benchmarks)."""
    from nnspec.cli.parser import parse

    return run(parse(["train", *argv]), train_fn=train_fn)
