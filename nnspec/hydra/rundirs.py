"""Where a single ``nnspec train`` run writes, decided before Hydra starts.

Hydra makes its job folder with ``exist_ok=True`` from a timestamp, so two runs started in the
same second would share one folder. nnspec creates the folder itself, exclusively
(:func:`nnspec.files.create_run_dir`: ``mkdir``, a ``-1``, ``-2`` suffix on a collision), and
hands it to Hydra as ``hydra.run.dir``. A run that resumes another (``train.resume=DIR``, or
``auto`` when an earlier run matches) runs in that run's folder, so no empty extra job folder is
left behind. A ``hydra.run.dir`` the user sets is theirs and is kept.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from nnspec.errors import OutputError, Problem
from nnspec.files import create_run_dir
from nnspec.hydra.configtext import quoted
from nnspec.spec import ExperimentSpec

__all__ = ["STAMP", "check_sweep_overrides", "drop_if_empty", "job_dir_overrides"]

STAMP = "%Y-%m-%d_%H-%M-%S"  # the folder name Hydra's own default gives a run


def job_dir_overrides(spec: ExperimentSpec, overrides: list[str]) -> tuple[list[str], Path | None]:
    """The ``hydra.run.dir`` override for a single run, and the folder created for it (None when
    it resumes a run or the user chose the folder).

    Raises:
        OutputError: the output folder cannot be created (read-only, permissions, full disk).
    """
    if any(o.lstrip("+").startswith(("hydra.run.dir=", "hydra.output_subdir=")) for o in overrides):
        return [], None
    resume = _resumed(spec)
    if resume is not None:
        return [f"hydra.run.dir={quoted(str(resume))}", "hydra.output_subdir=null"], None
    root = Path(spec.train.output_dir) / spec.name
    try:
        made = create_run_dir(root, datetime.now().strftime(STAMP))
    except OSError as e:
        raise OutputError(
            Problem(("train", "output_dir"), f"cannot create a run folder in {root}: "
                    f"{e.strerror or e}", fix="set train.output_dir to a writable folder")
        ) from e  # fmt: skip
    return [f"hydra.run.dir={quoted(str(made))}"], made


def _resumed(spec: ExperimentSpec) -> Path | None:
    resume = spec.train.resume
    if resume is None:
        return None
    if resume != "auto":
        return Path(resume)
    from nnspec.run.checkpoint import auto_resume_dir

    return auto_resume_dir(spec, report=False)


def drop_if_empty(folder: Path | None) -> None:
    """Remove a run folder made for a run that never started (Hydra stopped first)."""
    if folder is not None:
        try:
            folder.rmdir()
        except OSError:
            pass  # not empty: the run wrote something there


def check_sweep_overrides(overrides: list[str]) -> None:
    """Refuse a sweep that cannot run a trial before Hydra starts (Hydra would report the
    sweeper's own refusal as its error, exit 1).

    Raises:
        SpecError: ``hydra.sweeper.n_trials`` is not a whole number >= 1.
    """
    from nnspec.errors import SpecError

    for o in overrides:
        key, _, value = o.lstrip("+").partition("=")
        if key == "hydra.sweeper.n_trials" and not (value.strip().isdigit() and int(value) >= 1):
            raise SpecError(Problem(("hydra", "sweeper", "n_trials"), "a sweep needs trials",
                                    expected="a whole number >= 1", found=value,
                                    fix="e.g. hydra.sweeper.n_trials=20"))  # fmt: skip
