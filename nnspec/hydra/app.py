"""The Hydra app behind ``nnspec train``: compose, validate, train into the Hydra job directory.

The command line is parsed by :mod:`nnspec.cli.parser` into an :class:`Invocation`. Before Hydra
sees the arguments, nnspec reads the user's spec with its own loader, checks every ``key=value``
names a real field (did-you-mean instead of Hydra's "Could not override") and, for a single run,
validates the composed spec and checks its data file and the run it resumes, so such a mistake
leaves nothing on disk. Inside a job, a failure never ends the process: in a multirun it is
recorded in the trial's folder (``trial.json``), the other trials go on and the sweep exits
non-zero at the end; a single run's failure is raised by :func:`run` once Hydra has returned (the
caller prints it), after its job folder is removed if it holds only Hydra's own files.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnspec.errors import CheckpointError, DataError, NNSpecError, SpecError
from nnspec.hydra.compose import (
    CONF_MODULE,
    PRIMARY,
    SPEC_PRIMARY,
    ParsedArgs,
    check_override_keys,
    compose_container,
    load_spec,
    spec_config_dir,
    split_overrides,
    validate_container,
)
from nnspec.hydra.naming import run_name_override
from nnspec.hydra.trial import TrialRecord, write_record
from nnspec.spec import ExperimentSpec

if TYPE_CHECKING:
    from omegaconf import DictConfig

__all__ = ["TrainFn", "Invocation", "run", "Outcome", "job_preload", "USER_ERRORS"]

log = logging.getLogger("nnspec")
# nnspec.workflow.train(spec, *, run_dir=..., base_dir=...) -> RunResult
TrainFn = Callable[..., Any]
# Hydra flags after which Hydra prints and exits without running a job.
_HYDRA_ONLY_FLAGS = ("--cfg", "--hydra-help", "--info")
# The user's files were wrong (spec, data, checkpoint): exit 2, and a single run leaves no record.
# Any other nnspec error of a run (the NaN guard's TrainError, ...) is the run failing: exit 1.
USER_ERRORS = (SpecError, DataError, CheckpointError)


@dataclass
class Outcome:
    """What the jobs of one invocation reported back (filled by the task and the callback)."""

    base_dir: Path | None = None  # relative data paths resolve against the spec file's folder
    error: Exception | None = None  # a single run's failure, raised by `run` after Hydra returns
    stray_dir: Path | None = None  # that run's job dir when it holds only Hydra's bookkeeping
    preload: tuple[str, ...] = ()  # what a job imports before it trains (nnspec._heap.warm)
    sweep_dir: Path | None = None
    failed: int = 0
    trials: int = 0


_OUTCOME = Outcome()  # reset by run(); read back after Hydra returns (same process)


@dataclass(frozen=True)
class Invocation:
    """``nnspec train`` arguments, split into nnspec's and Hydra's.

    ``flags`` go to Hydra as typed (``--cfg job``, ``--config-dir DIR``); ``base_dir`` is where
    relative data paths resolve (the spec file's folder; None: the trainer's default).
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
    def search_dirs(self) -> list[Path]:
        """The user's ``--config-dir`` (its group options join nnspec's), if any."""
        folder = self._flag("--config-dir")
        return [Path(folder).resolve()] if folder else []

    @property
    def config_name(self) -> str | None:
        """The user's ``--config-name``: their primary config instead of nnspec's."""
        return self._flag("--config-name")

    def _flag(self, flag: str) -> str | None:
        return self.flags[self.flags.index(flag) + 1] if flag in self.flags else None


def precheck(
    inv: Invocation, spec: ExperimentSpec | None, args: ParsedArgs
) -> ExperimentSpec | None:
    """Fail fast, in nnspec's words, on unknown keys; validate a single run completely.

    Raises:
        SpecError: an unknown key or group option, or (single run) an invalid composed spec.
        DataError: (single run) the data file does not exist.
        CheckpointError: (single run) ``train.resume`` names no run directory.
    """
    from nnspec.hydra.groups import check_group_options, first_choice

    user = {"search_dirs": inv.search_dirs, "config_name": inv.config_name}
    check_group_options(args.groups, sweep=inv.multirun, search_dirs=inv.search_dirs)
    if args.keys:
        plain = first_choice(args.groups)
        check_override_keys(args.keys, compose_container(plain, spec=spec, **user))
    if inv.multirun or inv.inspect_only:
        return None  # sweep values are validated per trial (or by --dry-run)
    plain = [*first_choice(args.groups), *args.keys]
    full = compose_container(plain, spec=spec, with_hydra=True, **user)
    choices = full.pop("hydra")["runtime"]["choices"]
    checked = validate_container(full, args.keys, choices)
    _check_files(checked, inv.base_dir)
    return checked


def _check_files(spec: ExperimentSpec, base_dir: Path | None) -> None:
    """The run's data file and the run it resumes exist, before Hydra creates the job directory.

    Raises:
        DataError: ``data.source`` names a file that does not exist.
        CheckpointError: ``train.resume`` names no run directory.
    """
    from nnspec.run.sources import data_file
    from nnspec.run.tables import TABLE_FORMATS

    prefix, _, path = spec.data.source.partition(":")
    if prefix in ("npz", "npy", *TABLE_FORMATS):  # the sources whose argument is a file
        data_file(path, base_dir)
    resume = spec.train.resume
    if resume is not None and resume != "auto":
        from nnspec.run.rundir import resume_dir

        resume_dir(resume)


def _trainer() -> TrainFn:
    from nnspec.workflow import train

    return train


def _job_overrides() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task)


def _parallel_launcher() -> bool:
    from hydra.core.hydra_config import HydraConfig

    launcher = HydraConfig.get().launcher
    if "BasicLauncher" in str(launcher.get("_target_", "")):
        return False
    if "n_jobs" in launcher:  # joblib and nnspec_pool (null = 1 job); submitit launchers have none
        n_jobs = launcher.get("n_jobs")
        from nnspec.hydra.plugins import effective_jobs

        return effective_jobs(n_jobs if isinstance(n_jobs, int) else None) > 1
    return True


def _spec_for_job(cfg: Any) -> ExperimentSpec:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    hc = HydraConfig.get()
    data = OmegaConf.to_container(cfg, resolve=True)
    choices = OmegaConf.to_container(hc.runtime.choices)
    keys = split_overrides(_job_overrides()).keys
    spec = validate_container(data, keys, choices)  # type: ignore[arg-type]
    if hc.mode == RunMode.MULTIRUN and _parallel_launcher() and spec.train.num_threads is None:
        # Parallel workers share the cores: one torch thread each unless the user said otherwise.
        spec = spec.model_copy(update={"train": spec.train.model_copy(update={"num_threads": 1})})
    return spec


def run_job(
    cfg: DictConfig, train_fn: TrainFn | None, base_dir: Path | None = None,
    preload: tuple[str, ...] = (),
) -> float | None:  # fmt: skip
    """One Hydra job: validate, train into the job dir, record the outcome; never raises.

    ``base_dir`` (the spec file's folder, for relative data paths) comes as an argument, not from
    this process's globals: a parallel launcher runs the job in a fresh worker process. In a
    sweep a failure is recorded (``trial.json``) and logged; a single run's failure is handed to
    :func:`run`, which raises it once Hydra has returned.

    Returns:
        The objective (the monitored metric's best value), or ``None`` when the job failed.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    t0 = time.perf_counter()
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    overrides = _job_overrides()
    try:
        spec = _spec_for_job(cfg)
        if train_fn is None:  # the training stack, once per process (nnspec._heap)
            from nnspec._heap import warm

            warm(preload, what="nnspec train")
        result = (train_fn or _trainer())(spec, run_dir=run_dir, base_dir=base_dir)
    except Exception as e:  # a trial's failure is data for the report, never a crash
        if hc.mode == RunMode.MULTIRUN:
            write_record(run_dir, TrialRecord.failed(overrides, _one_line(e)))
            log.error("trial failed: %s", _one_line(e))
        else:  # a single run: `run` raises it once Hydra is done (no "trial" in the message)
            _single_run_failed(e, run_dir, overrides, {hc.output_subdir, f"{hc.job.name}.log"})
        return None
    elapsed = time.perf_counter() - t0
    write_record(run_dir, TrialRecord.from_result(overrides, result, elapsed))
    return float(result.best_value)


def _single_run_failed(
    e: Exception, run_dir: Path, overrides: list[str], bookkeeping: set[str | None]
) -> None:
    """Hand the error to :func:`run`; a run dir holding only Hydra's files is removed later.

    A run that got somewhere (spec, metrics, checkpoints) and then failed gets its record; a
    user mistake writes none (a run dir resumed by mistake keeps its own).
    """
    _OUTCOME.error = e
    if {p.name for p in run_dir.iterdir()} <= bookkeeping:
        _OUTCOME.stray_dir = run_dir
    elif not isinstance(e, USER_ERRORS):
        write_record(run_dir, TrialRecord.failed(overrides, _one_line(e)))


def _remove_stray(run_dir: Path) -> None:
    """Remove a failed single run's job dir and the empty folders Hydra made above it."""
    shutil.rmtree(run_dir, ignore_errors=True)
    cwd = Path.cwd().resolve()
    for parent in run_dir.resolve().parents:
        if parent == cwd or cwd not in parent.parents or any(parent.iterdir()):
            return
        parent.rmdir()


def _one_line(e: BaseException) -> str:
    """``Type: reason`` on one line (every problem of an nnspec error, joined by ``;``)."""
    if isinstance(e, NNSpecError) and e.problems:
        parts = [f"{p.where}: {p.message}" if p.path or p.file else p.message for p in e.problems]
        return f"{type(e).__name__}: " + "; ".join(parts)
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"


@contextlib.contextmanager
def _argv(args: list[str]) -> Iterator[None]:
    saved = sys.argv
    sys.argv = args
    try:
        yield
    finally:
        sys.argv = saved


@dataclass(frozen=True)
class _Task:
    """Hydra's task function: a module-level class, so it pickles to a spawned trial process."""

    train_fn: TrainFn | None
    base_dir: Path | None  # the spec file's folder, for relative data paths in any process
    preload: tuple[str, ...] = ()

    def __call__(self, cfg: Any) -> float | None:
        return run_job(cfg, self.train_fn, self.base_dir, self.preload)


def _launch(inv: Invocation, spec_dir: Path | None, train_fn: TrainFn | None) -> None:
    """Hydra's app: nnspec's config (or the user's spec, written to ``spec_dir``) as primary.

    The spec's folder is the app's config path, not a ``--config-dir``: that flag is the user's.
    """
    import hydra

    import nnspec.hydra.plugins  # noqa: F401  (sweeper and launcher settings in the ConfigStore)

    path, name = (str(spec_dir), SPEC_PRIMARY) if spec_dir else (f"pkg://{CONF_MODULE}", PRIMARY)
    task = hydra.main(config_path=path, config_name=name, version_base="1.3")(
        _Task(train_fn, _OUTCOME.base_dir, _OUTCOME.preload)
    )
    with _argv(["nnspec train", *(["-m"] if inv.multirun else []), *inv.flags, *inv.overrides]):
        task()


def run(
    inv: Invocation, *, train_fn: TrainFn | None = None, preload: tuple[str, ...] = ()
) -> int:
    """``nnspec train``: returns the exit code (0 ok, 1 a sweep trial failed) or raises.

    ``preload`` is what a job imports before it trains (the caller's list; see
    :mod:`nnspec._heap`). nnspec's sweeper and launcher must be registered with Hydra's
    ``Plugins`` first where Hydra's own scan misses them (the CLI does it).

    Raises:
        SpecError: an unknown key or an invalid spec (nothing is written).
        DataError: the data file does not exist (nothing is written).
        CheckpointError: ``train.resume`` names no run (nothing is written).
        Exception: whatever a single run failed with, once Hydra has returned; its job dir is
            removed when it holds nothing but Hydra's own files.
    """
    global _OUTCOME
    _OUTCOME = Outcome(base_dir=inv.base_dir, preload=tuple(preload))
    spec = load_spec(inv.spec_path) if inv.spec_path else None
    checked = precheck(inv, spec, split_overrides(inv.overrides))
    named = run_name_override(inv.spec_path, spec, split_overrides(inv.overrides),
                              search_dirs=inv.search_dirs, config_name=inv.config_name)  # fmt: skip
    if named is not None:  # the run's folder is named after what the user chose
        inv = replace(inv, overrides=[named, *inv.overrides])
    args = split_overrides(inv.overrides)
    if inv.dry_run:
        from nnspec.hydra.dryrun import dry_run

        return dry_run(inv, spec)
    made = None
    if inv.multirun:
        from nnspec.hydra.rundirs import check_sweep_overrides

        check_sweep_overrides(inv.overrides)
    if checked is not None and inv.config_name is None:
        from nnspec.hydra.rundirs import job_dir_overrides

        if named is not None:
            checked = checked.model_copy(update={"name": named.partition("=")[2]})
        where, made = job_dir_overrides(checked, inv.overrides)  # created exclusively
        inv = replace(inv, overrides=[*inv.overrides, *where])
    try:
        return _launch_all(inv, spec, args, train_fn)
    finally:
        from nnspec.hydra.rundirs import drop_if_empty

        drop_if_empty(made)


def _launch_all(
    inv: Invocation, spec: ExperimentSpec | None, args: ParsedArgs, train_fn: TrainFn | None
) -> int:
    with contextlib.ExitStack() as stack:
        cdir = None
        if spec is not None:
            from nnspec.hydra.configtext import canonical

            cdir = stack.enter_context(spec_config_dir(canonical(spec), args.groups))
        try:
            _launch(inv, cdir, train_fn)
        except SystemExit as e:  # Hydra reports its own errors and exits
            return int(e.code) if isinstance(e.code, int) else 1
    return _exit_code()


def _exit_code() -> int:
    if _OUTCOME.error is not None:
        if _OUTCOME.stray_dir is not None:
            _remove_stray(_OUTCOME.stray_dir)
        error, _OUTCOME.error = _OUTCOME.error, None  # the module keeps no traceback alive
        raise error
    if _OUTCOME.failed:
        print(f"{_OUTCOME.failed} of {_OUTCOME.trials} trials failed; see {_OUTCOME.sweep_dir}")
        return 1
    return 0


def job_preload() -> tuple[str, ...]:
    """What a job imports before it trains (the list :func:`run` was given): a launcher that
    starts trials in fresh processes imports it once up front."""
    return _OUTCOME.preload


def record_sweep(sweep_dir: Path, trials: int, failed: int) -> None:
    """Called by the sweep-report callback in the launching process."""
    _OUTCOME.sweep_dir, _OUTCOME.trials, _OUTCOME.failed = sweep_dir, trials, failed
