"""Where an ``nnspec train`` run or sweep writes, decided before Hydra starts.

Hydra makes its job folder with ``exist_ok=True`` from a timestamp, so two runs started in the
same second would share one folder. nnspec creates the folder itself, exclusively
(:func:`nnspec.files.create_run_dir`: ``mkdir``, a ``-1``, ``-2`` suffix on a collision), and
hands it to Hydra as ``hydra.run.dir``. A sweep's folder (``multirun_<time>``, which holds one
job folder per trial: ``0``, ``1``, ...) is made the same way and handed over as
``hydra.sweep.dir``, so two sweeps started in the same second never share job folders. A run
that resumes another (``train.resume=DIR``, or ``auto`` when an earlier run matches) runs in
that run's folder, so no empty extra job folder is left behind. A ``hydra.run.dir`` or
``hydra.sweep.dir`` the user sets is theirs and is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from nnspec.errors import OutputError, Problem
from nnspec.files import create_run_dir
from nnspec.hydra.configtext import quoted
from nnspec.hydra.sources import Sources
from nnspec.spec import ExperimentSpec

__all__ = [
    "STAMP",
    "check_sweep_overrides",
    "drop_if_empty",
    "job_dir_overrides",
    "sweep_dir_overrides",
]

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
    made = _create(Path(spec.train.output_dir) / spec.name, datetime.now().strftime(STAMP))
    return [f"hydra.run.dir={quoted(str(made))}"], made


def sweep_dir_overrides(
    spec: ExperimentSpec | Mapping[str, Any] | None, overrides: list[str], sources: Sources
) -> tuple[list[str], Path | None]:
    """The ``hydra.sweep.dir`` override for a sweep, and the folder created for it (None when
    the user chose the folder, or ``train.output_dir`` or ``name`` is itself swept: then Hydra's
    own ``multirun_<time>`` folder is used).

    Raises:
        OutputError: the output folder cannot be created (read-only, permissions, full disk).
    """
    if any(o.lstrip("+").startswith("hydra.sweep.dir=") for o in overrides):
        return [], None
    root = _sweep_root(spec, overrides, sources)
    if root is None:
        return [], None
    made = _create(root, "multirun_" + datetime.now().strftime(STAMP))
    return [f"hydra.sweep.dir={quoted(str(made))}"], made


def _sweep_root(
    spec: ExperimentSpec | Mapping[str, Any] | None, overrides: list[str], sources: Sources
) -> Path | None:
    """``train.output_dir / name`` as the sweep composes them without its swept values."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from nnspec.errors import NNSpecError
    from nnspec.hydra.compose import compose_container
    from nnspec.io.overrides import parse_overrides

    try:
        fixed = [o.input_line or "" for o in parse_overrides(overrides)
                 if not o.is_sweep_override() and _job_key(o.get_key_element())]  # fmt: skip
        data = compose_container(fixed, spec=spec, sources=sources)
    except (NNSpecError, HydraException, OmegaConfBaseException, ValueError):
        return None  # Hydra reports the problem itself, in its own run
    out, name = data.get("train", {}).get("output_dir", "runs"), data.get("name")
    return Path(out) / name if isinstance(out, str) and isinstance(name, str) else None


def _job_key(key: str) -> bool:
    """Whether an override is the job's (or the user's config folders), not Hydra's."""
    key = key.lstrip("+~")
    return key == "hydra.searchpath" or not key.startswith(("hydra.", "hydra/"))


def _create(root: Path, stem: str) -> Path:
    try:
        return create_run_dir(root, stem)
    except OSError as e:
        raise OutputError(
            Problem(("train", "output_dir"), f"cannot create a run folder in {root}: "
                    f"{e.strerror or e}", fix="set train.output_dir to a writable folder")
        ) from e  # fmt: skip


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
