"""The Hydra app behind ``nnspec train``: compose, validate, train into the Hydra job directory.

The command line is parsed by :mod:`nnspec.cli.parser` into an :class:`Invocation`. Before Hydra
sees the arguments, nnspec reads the user's spec with its own loader, checks every ``key=value``
names a real field (did-you-mean instead of Hydra's "Could not override") and, for a single run,
validates the composed spec and checks its data file and the run it resumes, so such a mistake
leaves nothing on disk. What runs inside a job is :mod:`nnspec.hydra.job`'s: a failure there
never ends the process; a single run's failure is raised by :func:`run` once Hydra has returned
(the caller prints it), after its job folder is removed if it holds only Hydra's own files.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nnspec.errors import NNSpecError, Problem, SpecError
from nnspec.hydra.compose import (
    _spec_data,
    compose_container,
    prepare,
    spec_input,
    split_overrides,
    validate_container,
)
from nnspec.hydra.job import JobTask, TrainFn
from nnspec.hydra.sources import Sources, session
from nnspec.io import attach_source
from nnspec.spec import ExperimentSpec

__all__ = ["Invocation", "run"]

# Hydra flags after which Hydra prints and exits without running a job.
_HYDRA_ONLY_FLAGS = ("--cfg", "--hydra-help", "--info")
JOB_NAME = "app"  # Hydra's job name: the log file in a run's folder is app.log


@dataclass(frozen=True)
class Invocation:
    """``nnspec train`` arguments, split into nnspec's and Hydra's.

    ``flags`` are Hydra's flags as typed (``--cfg job``, ``--config-dir DIR``); ``base_dir`` is
    where relative data paths resolve (the spec file's folder; None: the trainer's default).
    """

    spec_path: Path | None
    overrides: list[str]
    flags: list[str] = field(default_factory=list)
    multirun: bool = False
    dry_run: bool = False
    dry_run_trials: int = 8
    base_dir: Path | None = None

    @property
    def inspect_only(self) -> bool:
        """``--cfg``/``--hydra-help``/``--info``: Hydra prints and exits without running a job."""
        return any(f in _HYDRA_ONLY_FLAGS for f in self.flags)

    @property
    def sources(self) -> Sources:
        """The user's ``--config-dir`` and ``hydra.searchpath`` folders (first wins)."""
        return Sources.of(self.flag("--config-dir"), split_overrides(self.overrides).searchpath)

    @property
    def config_name(self) -> str | None:
        """The user's ``--config-name``: their primary config instead of nnspec's."""
        return self.flag("--config-name")

    def flag(self, flag: str) -> str | None:
        """The value of a valued Hydra flag (``--cfg job`` -> ``job``), if given."""
        return self.flags[self.flags.index(flag) + 1] if flag in self.flags else None


def precheck(
    inv: Invocation, spec: ExperimentSpec | Mapping[str, Any] | None
) -> tuple[list[str], ExperimentSpec | None]:
    """Fail fast, in nnspec's words; validate a single run completely. Returns the overrides
    Hydra gets (layer names rewritten to indices, the run's ``name`` added where it fits) and,
    for a single run, the spec it composes to.

    Raises:
        SpecError: an unknown key, layer name or group option, or (single run) an invalid
            composed spec.
        DataError: (single run) the data file does not exist.
        CheckpointError: (single run) ``train.resume`` names no run directory.
    """
    sources, name = inv.sources, inv.config_name
    overrides = prepare(inv.overrides, spec, sources=sources, config_name=name,
                        sweep=inv.multirun, spec_path=inv.spec_path)  # fmt: skip
    args = split_overrides(overrides)
    if inv.multirun or inv.inspect_only:
        return overrides, None  # sweep values are validated per trial (or by --dry-run)
    full = compose_container([*overrides], spec=spec, with_hydra=True, sources=sources,
                             config_name=name)  # fmt: skip
    choices = full.pop("hydra")["runtime"]["choices"]
    checked = validate_container(full, args.keys, choices, sources)
    _check_files(checked, inv.base_dir)
    return overrides, checked


def _check_files(spec: ExperimentSpec, base_dir: Path | None) -> None:
    """The run's data file and the run it resumes exist, before Hydra creates the job directory.

    Raises:
        DataError: ``data.source`` names a file that does not exist.
        CheckpointError: ``train.resume`` names no run directory.
    """
    from nnspec.run.file_sources import data_file, data_folder_or_file
    from nnspec.run.tables import TABLE_FORMATS

    prefix, _, path = spec.data.source.partition(":")
    if prefix in ("npy", "parquet"):  # a file, or a folder of shards / of a dataset's files
        data_folder_or_file(path, base_dir)
    elif prefix in ("npz", *TABLE_FORMATS):  # the sources whose argument is a file
        data_file(path, base_dir)
    resume = spec.train.resume
    if resume is not None and resume != "auto":
        from nnspec.run.rundir import resume_dir

        resume_dir(resume)


def _remove_stray(run_dir: Path) -> None:
    """Remove a failed single run's job dir and the empty folders Hydra made above it."""
    shutil.rmtree(run_dir, ignore_errors=True)
    cwd = Path.cwd().resolve()
    for parent in run_dir.resolve().parents:
        if parent == cwd or cwd not in parent.parents or any(parent.iterdir()):
            return
        parent.rmdir()


def run(
    inv: Invocation, *, train_fn: TrainFn | None = None, preload: tuple[str, ...] = (),
    plugins: tuple[str, ...] = (),
) -> int:  # fmt: skip
    """``nnspec train``: returns the exit code (0 ok, 1 a sweep trial failed) or raises.

    Hydra composes once, in its run or multirun, from the same primary config and overrides that
    :func:`nnspec.hydra.compose.compose` uses (nothing is written to compose, ``sys.argv`` is not
    touched). ``preload`` is what a job imports before it trains (the caller's list; see
    :mod:`nnspec._heap`); ``plugins`` are the user's plugin modules, already loaded here and
    loaded again by each job in its own process (:mod:`nnspec.run.plugins`). nnspec's sweeper and
    launcher must be registered with Hydra's ``Plugins`` first where Hydra's own scan misses them
    (the CLI does it).

    Raises:
        SpecError: an unknown key or an invalid spec (nothing is written).
        DataError: the data file does not exist (nothing is written).
        CheckpointError: ``train.resume`` names no run (nothing is written).
        Exception: whatever a single run failed with, once Hydra has returned; its job dir is
            removed when it holds nothing but Hydra's own files.
    """
    spec, source = spec_input(inv.spec_path, inv.overrides) if inv.spec_path else (None, None)
    try:
        overrides, checked = precheck(inv, spec)
    except NNSpecError as e:  # what no override or group file explains is the spec file's
        raise attach_source(e, source) from e
    if inv.dry_run:
        from nnspec.hydra.dryrun import dry_run

        return dry_run(replace(inv, overrides=overrides), spec)
    from nnspec.hydra import rundirs

    where: list[str] = []
    made: Path | None = None
    if inv.multirun:
        rundirs.check_sweep_overrides(overrides)
        if inv.config_name is None:
            where, made = rundirs.sweep_dir_overrides(spec, overrides, inv.sources)
    elif checked is not None and inv.config_name is None:
        where, made = rundirs.job_dir_overrides(checked, overrides)  # created exclusively
    overrides = [*overrides, *where]
    try:
        return _launch(inv, spec, overrides, train_fn, preload, plugins)
    finally:
        rundirs.drop_if_empty(made)


def _launch(
    inv: Invocation, spec: ExperimentSpec | Mapping[str, Any] | None, overrides: list[str],
    train_fn: TrainFn | None, preload: tuple[str, ...], plugins: tuple[str, ...] = (),
) -> int:  # fmt: skip
    """Hydra's run, multirun, ``--cfg`` or ``--info`` inside one initialised session."""
    task = JobTask(train_fn, inv.base_dir, tuple(preload), inv.sources, tuple(plugins))
    data = _spec_data(spec) if spec is not None else None
    args = split_overrides(overrides)
    plain = [o for o in overrides if not o.lstrip("+").startswith("hydra.searchpath=")]
    extra = [e for e in [task.sources.searchpath_override()] if e]
    with session(task.sources, data, args.groups, config_name=inv.config_name,
                 job_name=JOB_NAME) as config_name:  # fmt: skip
        from hydra.core.global_hydra import GlobalHydra

        hydra = GlobalHydra.instance().hydra
        assert hydra is not None  # session() initialised it
        return _hydra_call(inv, hydra, config_name, task, [*plain, *extra])


def _hydra_call(inv: Invocation, hydra: Any, config_name: str, task: JobTask, ov: list[str]) -> int:
    """What Hydra's ``@hydra.main`` does with its flags, called with nnspec's arguments."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        if "--hydra-help" in inv.flags:
            from hydra._internal.utils import get_args_parser

            parser = get_args_parser()
            hydra.hydra_help(config_name=config_name, args_parser=parser,
                             args=parser.parse_args(ov))  # fmt: skip
        elif inv.flag("--cfg") is not None:
            _print_group_files(hydra, config_name, ov, task.sources)
            hydra.show_cfg(
                config_name=config_name,
                overrides=ov,
                cfg_type=inv.flag("--cfg"),
                package=inv.flag("--package"),
                resolve="--resolve" in inv.flags,
            )
        elif inv.flag("--info") is not None:
            _print_group_files(hydra, config_name, ov, task.sources)
            hydra.show_info(inv.flag("--info"), config_name=config_name, overrides=ov)
        elif inv.multirun:
            returns = hydra.multirun(config_name, task, [*ov, "hydra.mode=MULTIRUN"])
            return _sweep_exit(returns)
        else:
            outcome = hydra.run(config_name, task, [*ov, "hydra.mode=RUN"]).return_value
            if outcome.error is not None:
                if outcome.stray_dir is not None:
                    _remove_stray(outcome.stray_dir)
                raise outcome.error
    except (HydraException, OmegaConfBaseException) as e:
        msg = " ".join(str(e).split()) or type(e).__name__
        raise SpecError(Problem((), f"Hydra: {msg}")) from e
    return 0


def _print_group_files(hydra: Any, config_name: str, ov: list[str], sources: Sources) -> None:
    """``# group: file`` for each group choice (YAML comments, so ``--cfg`` output stays YAML):
    which file was used, the user's or nnspec's."""
    from hydra.types import RunMode

    cfg = hydra.compose_config(config_name, ov, run_mode=RunMode.RUN)
    for group, option in cfg.hydra.runtime.choices.items():
        found = sources.option_file(group, option) if option and "/" not in group else None
        if found is not None:
            print(f"# {group}: {found[0]}")


def _sweep_exit(returns: Any) -> int:
    """1 when a trial of this sweep failed (each says why in its ``trial.json``), else 0."""
    from hydra.core.utils import JobStatus

    flat = [r for batch in returns or [] for r in batch]
    failed = [r for r in flat if r.status != JobStatus.COMPLETED or r.return_value is None]
    if failed:
        where = Path(str(flat[0].hydra_cfg.hydra.sweep.dir)) if flat[0].hydra_cfg else None
        print(f"{len(failed)} of {len(flat)} trials failed; see {where}")
        return 1
    return 0
