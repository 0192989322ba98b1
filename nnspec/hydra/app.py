"""The Hydra app behind ``nnspec train``: compose, validate, train into the Hydra job directory.

The grammar is nnspec's: ``nnspec train [SPEC.yaml] [group=option ...] [key=value ...] [-m]
[--cfg job] [--help] [--dry-run]``. Before Hydra sees the arguments, nnspec reads the user's spec
with its own loader, checks every ``key=value`` names a real field (did-you-mean instead of Hydra's
"Could not override") and, for a single run, validates the composed spec, so an invalid run leaves
nothing on disk. Inside a job, a failure is recorded in the job directory (``trial.json``) and never
ends the process: in a multirun the other trials go on and the sweep exits non-zero at the end.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnspec.errors import CheckpointError, DataError, NNSpecError, Problem, SpecError
from nnspec.hydra.compose import (
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

__all__ = ["TrainFn", "Invocation", "parse_argv", "run", "Outcome"]

log = logging.getLogger("nnspec")
TrainFn = Callable[..., Any]  # nnspec.workflow.train(spec, *, run_dir=, base_dir=) -> RunResult
# Hydra flags that take a value (kept with their value when passed through).
_VALUE_FLAGS = ("--cfg", "-c", "--package", "-p", "--info", "--config-dir", "-cd")
_HYDRA_ONLY_FLAGS = ("--cfg", "-c", "--help", "-h", "--hydra-help", "--info", "-i", "--resolve")


@dataclass
class Outcome:
    """What the jobs of one invocation reported back (filled by the task and the callback)."""

    base_dir: Path | None = None  # relative data paths resolve against the spec file's folder
    error: NNSpecError | None = None
    sweep_dir: Path | None = None
    failed: int = 0
    trials: int = 0


_OUTCOME = Outcome()  # reset by run(); read back after Hydra returns (same process)


@dataclass(frozen=True)
class Invocation:
    """``nnspec train`` arguments, split into nnspec's and Hydra's."""

    spec_path: Path | None
    overrides: list[str]
    flags: list[str] = field(default_factory=list)
    multirun: bool = False
    dry_run: bool = False
    dry_run_trials: int = 8

    @property
    def inspect_only(self) -> bool:
        """``--cfg``/``--help``/``--info``: Hydra prints and exits without running a job."""
        return any(f in _HYDRA_ONLY_FLAGS for f in self.flags)


def _is_spec_path(arg: str) -> bool:
    return "=" not in arg and (arg.endswith((".yaml", ".yml")) or Path(arg).is_file())


def parse_argv(argv: Sequence[str]) -> Invocation:
    """Split ``nnspec train`` arguments (SPEC first, then overrides and flags in any order)."""
    args = list(argv)
    spec = Path(args.pop(0)) if args and _is_spec_path(args[0]) else None
    overrides: list[str] = []
    flags: list[str] = []
    multirun = dry = False
    n_trials = 8
    while args:
        arg = args.pop(0)
        if arg in ("-m", "--multirun"):
            multirun = True
        elif arg == "--dry-run":
            dry = True
        elif arg.startswith("--dry-run-trials="):
            n_trials = _positive(arg)
        elif arg in _VALUE_FLAGS and args:
            flags += [arg, args.pop(0)]
        elif arg.startswith("-"):
            flags.append(arg)
        else:
            overrides.append(arg)
    return Invocation(spec, overrides, flags, multirun, dry, n_trials)


def _positive(flag: str) -> int:
    text = flag.split("=", 1)[1]
    if not text.isdigit() or int(text) < 1:
        raise SpecError(Problem((), f"{flag}: expected a positive whole number", found=text))
    return int(text)


def first_choice(groups: dict[str, str]) -> list[str]:
    """Group selections with a sweep (``optim=adam,sgd``) reduced to their first option."""
    from nnspec.hydra.groups import group_values

    return [f"{g}={group_values(o)[0]}" for g, o in groups.items()]


def precheck(inv: Invocation, spec: ExperimentSpec | None, args: ParsedArgs) -> None:
    """Fail fast, in nnspec's words, on unknown keys; validate a single run completely.

    Raises:
        SpecError: an unknown key or group option, or (single run) an invalid composed spec.
    """
    from nnspec.hydra.groups import check_group_options

    check_group_options(args.groups, sweep=inv.multirun)
    if args.keys:
        check_override_keys(args.keys, compose_container(first_choice(args.groups), spec=spec))
    if inv.multirun or inv.inspect_only:
        return  # sweep values are validated per trial (or by --dry-run)
    plain = [*first_choice(args.groups), *args.keys]
    full = compose_container(plain, spec=spec, with_hydra=True)
    choices = full.pop("hydra")["runtime"]["choices"]
    resume = validate_container(full, args.keys, choices).train.resume
    if resume is not None and resume != "auto":  # before Hydra creates the job directory
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
        from hydra_plugins.nnspec_pool_launcher.launcher import effective_jobs

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
    cfg: DictConfig, train_fn: TrainFn | None, base_dir: Path | None = None
) -> float | None:
    """One Hydra job: validate, train into the job dir, record the outcome; never raises.

    ``base_dir`` (the spec file's folder, for relative data paths) comes as an argument, not from
    this process's globals: a parallel launcher runs the job in a fresh worker process.

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
            from nnspec.cli.common import warm_start

            warm_start("train")
        result = (train_fn or _trainer())(spec, run_dir=run_dir, base_dir=base_dir)
    except Exception as e:  # a trial's failure is data for the report, never a crash
        reason = _one_line(e)
        write_record(run_dir, TrialRecord.failed(overrides, reason))
        if hc.mode == RunMode.MULTIRUN:
            log.error("trial failed: %s", reason)
        else:  # a single run: `run` prints the error once, as the run's error (no "trial")
            _OUTCOME.error = e if isinstance(e, NNSpecError) else NNSpecError(reason)
        return None
    elapsed = time.perf_counter() - t0
    write_record(run_dir, TrialRecord.from_result(overrides, result, elapsed))
    return float(result.best_value)


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

    def __call__(self, cfg: Any) -> float | None:
        return run_job(cfg, self.train_fn, self.base_dir)


def _launch(inv: Invocation, hydra_args: list[str], train_fn: TrainFn | None) -> None:
    import hydra

    _register_plugins()
    task = hydra.main(config_path="pkg://nnspec.conf", config_name="config", version_base="1.3")(
        _Task(train_fn, _OUTCOME.base_dir)
    )
    with _argv(["nnspec train", *hydra_args]):
        task()


def _register_plugins() -> None:
    """Make nnspec's sweeper and launcher known even where Hydra's plugin scan misses them.

    An editable install maps ``hydra_plugins`` through an import hook that pkgutil (Hydra's scan)
    does not walk; Hydra's public ``Plugins.register`` covers that case.
    """
    from hydra.core.plugins import Plugins

    # importing the config modules registers their ConfigStore entries
    import hydra_plugins.nnspec_optuna_sweeper.config
    import hydra_plugins.nnspec_pool_launcher.config  # noqa: F401
    from hydra_plugins.nnspec_optuna_sweeper.sweeper import NNSpecOptunaSweeper
    from hydra_plugins.nnspec_pool_launcher.launcher import NNSpecPoolLauncher

    Plugins.instance().register(NNSpecOptunaSweeper)
    Plugins.instance().register(NNSpecPoolLauncher)


def _hydra_args(inv: Invocation, config_dir: Path | None) -> list[str]:
    head = ["--config-dir", str(config_dir), "--config-name", SPEC_PRIMARY] if config_dir else []
    return [*head, *(["-m"] if inv.multirun else []), *inv.flags, *inv.overrides]


def run(argv: Sequence[str], *, train_fn: TrainFn | None = None) -> int:
    """``nnspec train``: returns the exit code (0 ok, 1 failed trial or run, 2 invalid input)."""
    global _OUTCOME
    try:
        inv = parse_argv(argv)
    except SpecError as e:
        print(str(e), file=sys.stderr)
        return 2
    _OUTCOME = Outcome(base_dir=inv.spec_path.resolve().parent if inv.spec_path else None)
    try:
        spec = load_spec(inv.spec_path) if inv.spec_path else None
        named = run_name_override(inv.spec_path, spec, split_overrides(inv.overrides))
        if named is not None:  # the run's folder is named after what the user chose
            inv = replace(inv, overrides=[named, *inv.overrides])
        args = split_overrides(inv.overrides)
        precheck(inv, spec, args)
        if inv.dry_run:
            from nnspec.hydra.dryrun import dry_run

            return dry_run(inv, spec)
    except (SpecError, CheckpointError) as e:
        print(str(e), file=sys.stderr)
        return 2
    with contextlib.ExitStack() as stack:
        cdir = None
        if spec is not None:
            from nnspec.hydra.presets import canonical

            cdir = stack.enter_context(spec_config_dir(canonical(spec), args.groups))
        try:
            _launch(inv, _hydra_args(inv, cdir), train_fn)
        except SystemExit as e:  # Hydra reports its own errors and exits
            return int(e.code) if isinstance(e.code, int) else 1
    return _exit_code()


def _exit_code() -> int:
    if _OUTCOME.error is not None:
        print(str(_OUTCOME.error), file=sys.stderr)
        return 2 if isinstance(_OUTCOME.error, (SpecError, DataError)) else 1
    if _OUTCOME.failed:
        print(f"{_OUTCOME.failed} of {_OUTCOME.trials} trials failed; see {_OUTCOME.sweep_dir}")
        return 1
    return 0


def record_sweep(sweep_dir: Path, trials: int, failed: int) -> None:
    """Called by the sweep-report callback in the launching process."""
    _OUTCOME.sweep_dir, _OUTCOME.trials, _OUTCOME.failed = sweep_dir, trials, failed
