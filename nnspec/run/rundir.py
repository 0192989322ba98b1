"""The files a saved run must have to be loaded, checked without torch (the CLI checks first)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from nnspec.errors import CheckpointError, Problem

__all__ = ["RUN_FILES", "finished_run", "resume_dir"]

# what load_run reads (spec.yaml is written first, model.pt and preprocess.json at the end; a
# run's summary.json, last of all, marks it done)
RUN_FILES: Final = ("spec.yaml", "model.pt", "preprocess.json")


def finished_run(run_dir: str | Path, *, also: tuple[str, ...] = ()) -> tuple[Path, ...]:
    """The run's :data:`RUN_FILES` and then the ``also`` files, in that order.

    Raises:
        CheckpointError: one of them is missing.

    Example:
        >>> finished_run("no/such/run", also=("summary.json",))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        nnspec.errors.CheckpointError: run_dir: ... (found missing ..., summary.json)
    """
    run = Path(run_dir)
    files = tuple(run / name for name in (*RUN_FILES, *also))
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise CheckpointError(
            Problem(
                ("run_dir",),
                f"{run} is not a finished nnspec run",
                found="missing " + ", ".join(missing),
            )
        )
    return files


def resume_dir(resume: str) -> Path:
    """The run directory that ``train.resume`` names (a path, not ``auto``), checked to exist.

    Raises:
        CheckpointError: no such directory (checked by ``nnspec train`` before Hydra creates its
            job directory, and again by the trainer for specs given in Python).
    """
    path = Path(resume)
    if not path.is_dir():
        raise CheckpointError(
            Problem(
                ("train", "resume"),
                f"no run directory {path}",
                expected="the run directory of an earlier run of this spec, or 'auto'",
            )
        )
    return path
