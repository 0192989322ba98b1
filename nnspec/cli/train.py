"""nnspec train [SPEC.yaml | RUN_DIR] [group=option ...] [key=value ...] [-m] [--dry-run]

Train an experiment end to end (Hydra composes the config) and print its test metrics. Without SPEC
the built-in default experiment (digits CNN, conf/config.yaml) is trained. A SPEC file becomes the
primary config: any of its fields can be overridden (optim.weight_decay=0.1), a group choice
(optim=sgd) replaces its whole section. The run directory (Hydra's job dir,
<train.output_dir>/<name>/<time>) receives the resolved spec, metrics, summary.json, checkpoints,
plots and trial.json. A RUN_DIR instead of a SPEC resumes that run from its last checkpoint, with
its own spec and in its own folder, whose .hydra record stays as it was (the same as `nnspec train
RUN_DIR/spec.yaml train.resume=RUN_DIR hydra.run.dir=RUN_DIR hydra.output_subdir=null`).

RUN_DIR --extend train.epochs=N continues a finished or stopped run from its last checkpoint up to
epoch N, in its folder, with a new LR-schedule segment over the added epochs: the spec's schedule
restarted from the base LR (a warm restart), or the one `schedule=...` / `schedule.*=...` give;
`train.early_stopping.*` may change too (patience restarts; the best epoch so far is kept). The
new plan is printed first; spec.yaml (train.extensions), summary.json and the manifest record the
extension. One run: no -m.

Examples:
  nnspec train                                   # the default digits CNN
  nnspec train experiment=breast_cancer_mlp optim=sgd optim.lr=0.05 train.epochs=20
  nnspec train examples/iris_mlp.yaml train.epochs=5
  nnspec train runs/iris_mlp/RUN                # resume that run (its folder)
  nnspec train runs/iris_mlp/RUN --extend train.epochs=60        # train on to epoch 60
  nnspec train --config-dir myconf optim=fast     # your own group options (myconf/optim/fast.yaml)
  nnspec train -m optim=adam,adamw optim.lr=1e-3,3e-3            # grid sweep
  nnspec train -m hydra/launcher=joblib hydra.launcher.n_jobs=2 seed=0,1,2
  nnspec train -m hydra/sweeper=nnspec_optuna hydra.sweeper.n_trials=20 \\
      'optim.lr=tag(log, interval(1e-4, 1e-1))'                  # Bayesian search
  nnspec train -m sweep=lr_wd --dry-run          # list + validate the trials, train nothing
  nnspec train --cfg job optim=sgd               # print the composed config
  nnspec train --hydra-help                      # Hydra's help: config groups and options

Exit status: 0 on success; 2 on a user mistake: an invalid spec, override or option, data that
cannot be read or do not fit, a checkpoint that cannot be resumed (every problem printed; a run
that fails this way leaves no folder behind); 1 when a run failed in training (the NaN guard, ...)
or any sweep trial failed (each trial's reason is in its trial.json), and on an internal error
(NNSPEC_DEBUG=1 prints its traceback).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from argparse import Namespace
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from nnspec.cli.common import EXIT_INVALID, PRELOAD, UsageError, print_error
from nnspec.errors import NNSpecError

if TYPE_CHECKING:
    from nnspec.hydra.app import Invocation
    from nnspec.hydra.job import TrainFn

__all__ = ["run", "main", "invocation", "register_plugins"]

RUN_SPEC = "spec.yaml"  # the resolved spec a run directory holds (nnspec.run writes it)
EXIT_RUN_FAILED = 1  # a run failed in training, not from a mistake (USER_ERRORS: exit 2)


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
        if path.is_dir():  # a run to resume, with its own spec, in its own folder
            spec_path, overrides = _run_spec(path), _resume_overrides(path, overrides)
        elif path.suffix in (".yaml", ".yml") or path.exists():
            spec_path, base_dir = path, path.resolve().parent
        else:
            raise UsageError(f"'{path}' is neither a SPEC.yaml file nor a run directory "
                             "(overrides are written key=value)")  # fmt: skip
        if args.config_name is not None:
            raise UsageError(f"--config-name {args.config_name} names a primary config, and so "
                             f"does {path}: give one of them")  # fmt: skip
    _check_config_flags(args)
    if args.reveal_test and args.multirun:  # the sweep report's test-set lock is lifted
        overrides = [*overrides, "hydra.callbacks.nnspec_sweep_report.reveal_test=true"]
    return Invocation(spec_path, overrides, _hydra_flags(args), args.multirun, args.dry_run,
                      args.dry_run_trials, base_dir)  # fmt: skip


def _resume_overrides(run_dir: Path, overrides: list[str]) -> list[str]:
    """``train.resume`` and (unless the user set one) Hydra's run dir, both ``run_dir``, quoted;
    Hydra leaves the run's own ``.hydra`` record as it is."""
    from nnspec.hydra.configtext import quoted

    where = [] if any(o.startswith("hydra.run.dir=") for o in overrides) else [
        f"hydra.run.dir={quoted(str(run_dir))}", "hydra.output_subdir=null"]  # fmt: skip
    return [f"train.resume={quoted(str(run_dir))}", *where, *overrides]


def _check_config_flags(args: Namespace) -> None:
    """``--config-dir`` is a folder; ``--config-name`` a YAML file in it (without the folder: one
    of nnspec's primary configs)."""
    folder, name = args.config_dir, args.config_name
    if folder is not None and not Path(folder).is_dir():
        raise UsageError(
            f"--config-dir {folder}: no such folder (fix: the folder that "
            "holds your group options, e.g. myconf for myconf/optim/fast.yaml)"
        )
    if name is None:
        return
    file = name if name.endswith(".yaml") else f"{name}.yaml"
    if folder is not None:
        if not (Path(folder) / file).is_file():
            raise UsageError(f"--config-name {name}: no {Path(folder) / file} (fix: the name of "
                             f"a primary config in {folder}, without .yaml)")  # fmt: skip
        return
    from importlib import resources

    from nnspec.hydra.compose import CONF_MODULE

    if not resources.files(CONF_MODULE).joinpath(file).is_file():
        raise UsageError(
            f"--config-name {name}: nnspec has no primary config {file} (fix: "
            f"give the folder it is in, --config-dir DIR --config-name {name})"
        )


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

    ``train_fn`` replaces :func:`nnspec.workflow.train` (tests and benchmarks). nnspec's errors
    are printed here like every command's; any other exception of a run is left to
    :func:`nnspec.cli.main.main` (an internal error).
    """
    from nnspec.hydra.app import run as run_app
    from nnspec.hydra.job import USER_ERRORS

    inv = None if args.extend else invocation(args)
    register_plugins()
    plugins = getattr(args, "plugin_list", None)
    if plugins is None:  # parsed by `main` below, not by the CLI's entry (which loads them)
        from nnspec.run.plugins import load_plugins, plugin_list

        plugins = plugin_list(args.plugins or ())
        load_plugins(plugins)
    try:
        if inv is None:
            from nnspec.cli.extend import extend

            return extend(args, train_fn=train_fn)
        with _rank_job(inv) as inv:
            return run_app(inv, train_fn=train_fn, preload=PRELOAD["train"], plugins=plugins)
    except NNSpecError as e:
        print_error(e)
        return EXIT_INVALID if isinstance(e, USER_ERRORS) else EXIT_RUN_FAILED


@contextlib.contextmanager
def _rank_job(inv: Invocation) -> Iterator[Invocation]:
    """Under torchrun, every rank runs this command; rank 0's Hydra job dir is the run's, the
    other ranks' Hydra bookkeeping goes to a temporary folder removed afterwards (the run layer
    hands them rank 0's run directory and writes nothing from them)."""
    from nnspec.run.launch import launch_env

    env = launch_env()
    if env.launcher == "torchrun" and inv.multirun:
        raise UsageError(
            "a sweep (-m) cannot run under torchrun: every rank would launch every "
            "trial (fix: sweep without torchrun, or through "
            "hydra/launcher=submitit_slurm with hydra.launcher.tasks_per_node)"
        )
    if env.rank == 0:
        yield inv
        return
    scratch = tempfile.mkdtemp(prefix=f"nnspec-rank{env.rank}-")
    ours = ("hydra.run.dir=", "hydra.output_subdir=")
    kept = [o for o in inv.overrides if not o.startswith(ours)]
    extra = [f"hydra.run.dir={scratch}", "hydra.output_subdir=null"]
    try:
        yield replace(inv, overrides=[*kept, *extra])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str], *, train_fn: TrainFn | None = None) -> int:
    """``nnspec train ARGV`` in this process, parsed by the CLI's grammar (tests, benchmarks)."""
    from nnspec.cli.parser import parse

    return run(parse(["train", *argv]), train_fn=train_fn)
