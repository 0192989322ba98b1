"""``nnspec train RUN_DIR --extend train.epochs=N [schedule=...] [train.early_stopping.*=...]``.

The run's own ``spec.yaml`` is the primary config and the overrides compose with it as for every
command (:func:`nnspec.hydra.compose.composed`); :func:`nnspec.run.extend.extended_spec` checks
and records the extension; the new plan is printed; then the run is resumed in its own folder
(no Hydra job: an extension is one run, in a folder that exists; its ``.hydra`` record stays as
it was, its ``trial.json``, when it has one, gets the new outcome).
"""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path
from typing import TYPE_CHECKING

from nnspec.cli.common import EXIT_OK, UsageError, warm_start

if TYPE_CHECKING:
    from nnspec.hydra.job import TrainFn
    from nnspec.spec.experiment import ExperimentSpec

__all__ = ["extend"]

# Options of `nnspec train` that make no sense for one run continued in its own folder.
_REFUSED = {"multirun": "-m", "dry_run": "--dry-run", "reveal_test": "--reveal-test",
            "config_name": "--config-name", "cfg": "--cfg", "info": "--info",
            "hydra_help": "--hydra-help"}  # fmt: skip


def extend(args: Namespace, *, train_fn: TrainFn | None = None) -> int:
    """Check, print the plan, train; nnspec's errors propagate to the caller (exit 2 / 1)."""
    run_dir, overrides = _arguments(args)
    spec = _composed(run_dir, overrides, args.config_dir)
    warm_start("train")
    from nnspec.cli.plan import print_plan

    print_plan(spec, None)  # relative data paths: the working directory, as for a resume
    from nnspec.workflow import train

    result = (train_fn or train)(spec, run_dir=run_dir)
    _update_trial_record(run_dir, result)
    return EXIT_OK


def _update_trial_record(run_dir: Path, result: object) -> None:
    """A sweep trial's (or Hydra run's) ``trial.json`` gets the extended run's outcome, so
    ``nnspec report`` reads the same figures as ``summary.json``."""
    from nnspec.hydra.trial import TRIAL_FILE, TrialRecord, read_record, write_record

    if (run_dir / TRIAL_FILE).is_file():
        old = read_record(run_dir)
        write_record(run_dir, TrialRecord.from_result(old.overrides, result))


def _arguments(args: Namespace) -> tuple[Path, list[str]]:
    from nnspec.cli.parser import split_positionals
    from nnspec.hydra.compose import split_overrides

    used = [flag for name, flag in _REFUSED.items() if getattr(args, name, None)]
    if used:
        raise UsageError(f"--extend continues one run in its own folder; {', '.join(used)} "
                         "cannot be used with it")  # fmt: skip
    from nnspec.run.launch import launch_env

    if launch_env().world_size > 1:  # each rank would stamp its own extension record
        raise UsageError("--extend runs in one process: extend the run without torchrun "
                         "(then resume it under torchrun with nnspec train RUN_DIR)")  # fmt: skip
    paths, overrides = split_positionals(args.args)
    if len(paths) != 1:
        raise UsageError("--extend takes one RUN_DIR, then train.epochs=N (found "
                         f"{len(paths)} paths: {' '.join(paths) or 'none'})")  # fmt: skip
    parsed = split_overrides(overrides)
    if parsed.hydra or parsed.searchpath:
        given = ", ".join(parsed.hydra) or "hydra.searchpath"
        raise UsageError(f"--extend writes into RUN_DIR itself; Hydra settings ({given}) "
                         "do not apply")  # fmt: skip
    if not any(k.lstrip("+").split("=", 1)[0] == "train.epochs" for k in parsed.keys):
        raise UsageError("--extend needs the new number of epochs: train.epochs=N")
    return Path(paths[0]), overrides


def _composed(run_dir: Path, overrides: list[str], config_dir: str | None) -> ExperimentSpec:
    """The run's spec with the overrides (and ``train.resume`` = the run), extension recorded."""
    from nnspec.hydra.compose import composed
    from nnspec.hydra.configtext import quoted
    from nnspec.hydra.sources import Sources
    from nnspec.run.extend import extended_spec, run_spec_path

    path = run_spec_path(run_dir)
    resume = f"train.resume={quoted(str(run_dir))}"
    spec, _ = composed([*overrides, resume], path, sources=Sources.of(config_dir))
    return extended_spec(spec)
