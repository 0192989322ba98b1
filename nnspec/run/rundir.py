"""What makes a directory a finished run, checked without torch (the CLI checks it first).

Example:
    >>> finished_run("no/such/run")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    nnspec.errors.CheckpointError: run_dir: no/such/run is not a finished nnspec run (found ...)
"""

from __future__ import annotations

from pathlib import Path

from nnspec.errors import CheckpointError, Problem

__all__ = ["RUN_FILES", "finished_run"]

# written by every run (spec.yaml first, model.pt and preprocess.json at the end)
RUN_FILES = ("spec.yaml", "model.pt", "preprocess.json")


def finished_run(run_dir: str | Path) -> tuple[Path, ...]:
    """The run's :data:`RUN_FILES`, in that order.

    Raises:
        CheckpointError: one of them is missing.
    """
    run = Path(run_dir)
    files = tuple(run / name for name in RUN_FILES)
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
