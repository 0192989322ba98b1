"""Extending a finished or stopped run: ``nnspec train RUN_DIR --extend train.epochs=N``.

:func:`extended_spec` turns the spec a run is to be continued with (the run's own ``spec.yaml``
with ``train.epochs`` raised, and optionally a new ``schedule`` or ``train.early_stopping``) into
the run's next spec: its ``schedule`` stays the one the run started with, and one
:class:`~nnspec.spec.extension.ExtensionSpec` is appended to ``train.extensions`` (the epoch and
spec hash it continues from, the previous ``train.epochs``, the added epochs' schedule, the time).
Training that spec with ``train.resume`` = the run is an ordinary resume: the checkpoint of the
extension's ``from_epoch`` is accepted under its old hash (:func:`~nnspec.run.checkpoint.continues`)
and the trainer starts the new schedule segment there (a warm restart from the base LR; early
stopping's patience restarts, its best epoch is kept). Checkpoints are verified against the run's
manifest before they load; ``spec.yaml`` is rewritten through it when training starts.

A checkpoint written by any other spec is still refused, as for every resume.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nnspec.compile.plan import compile_plan
from nnspec.errors import CheckpointError, Problem, SpecError
from nnspec.run import checkpoint as ck
from nnspec.run.manifest import verified_bytes
from nnspec.spec.experiment import ExperimentSpec
from nnspec.spec.extension import ExtensionSpec

__all__ = ["extended_spec", "run_spec_path"]


def run_spec_path(run_dir: str | Path) -> Path:
    """``RUN_DIR/spec.yaml``, checked to exist.

    Raises:
        CheckpointError: ``run_dir`` is not an nnspec run directory.
    """
    spec = Path(run_dir) / "spec.yaml"
    if not spec.is_file():
        raise CheckpointError(
            Problem(("train", "resume"), f"{run_dir} is not an nnspec run directory",
                    expected="a folder nnspec train wrote (with spec.yaml and checkpoints/)",
                    found="no spec.yaml" if Path(run_dir).is_dir() else
                    "a file" if Path(run_dir).exists() else "no such folder")
        )  # fmt: skip
    return spec


def extended_spec(new: ExperimentSpec, *, at: datetime | None = None) -> ExperimentSpec:
    """The spec that continues the run ``new.train.resume`` up to ``new.train.epochs``.

    Args:
        new: the run's spec with the extension's changes (``train.epochs``, ``schedule``,
            ``train.early_stopping``) and ``train.resume`` naming the run directory.
        at: when (recorded in the extension; default now, UTC).

    Raises:
        CheckpointError: no run directory, no verified checkpoint, or checkpoints written by
            another spec.
        SpecError: ``train.epochs`` not above the epochs trained, a change outside
            :data:`~nnspec.run.checkpoint.EXTENSION_FIELDS`, a changed early-stopping monitor,
            or ``train.max_steps`` reached.
    """
    run_dir = _run_dir(new)
    old = _run_spec(run_dir)
    ckpt, _ = ck.resume_point(run_dir, old)  # verified against the manifest and the hash
    if ckpt is None:
        raise CheckpointError(
            Problem(("train", "resume"), f"{run_dir} has no checkpoint to extend from",
                    found="checkpoints/ is empty or missing",
                    fix="train the run with train.checkpoint.enabled: true, or start a new run")
        )  # fmt: skip
    done = int(ckpt["epoch"])
    _check_changes(old, new, done, int(ckpt["step"]))
    exts = old.train.extensions
    if exts and exts[-1].from_epoch == done:  # an extension that never trained an epoch
        exts, previous = exts[:-1], exts[-1].previous_epochs
    else:
        previous = old.train.epochs
    stamp = (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    ext = ExtensionSpec(from_epoch=done, previous_epochs=previous, schedule=new.schedule,
                        from_hash=ckpt["spec_hash"], at=stamp)  # fmt: skip
    train = new.train.model_copy(update={"extensions": (*exts, ext)})
    data = {**new.model_dump(), "schedule": old.schedule, "train": train}
    return ExperimentSpec.model_validate(_dumped(data))


def _dumped(data: dict[str, Any]) -> dict[str, Any]:
    """Plain data (nested specs dumped), so validation sees what a spec file would hold."""
    return {k: v.model_dump() if hasattr(v, "model_dump") else v for k, v in data.items()}


def _run_dir(spec: ExperimentSpec) -> Path:
    resume = spec.train.resume
    if resume is None or resume == "auto":
        raise SpecError(
            Problem(("train", "resume"), "an extension continues one run directory",
                    expected="train.resume: RUN_DIR", found=str(resume),
                    fix="nnspec train RUN_DIR --extend train.epochs=N")
        )  # fmt: skip
    run_spec_path(resume)
    return Path(resume)


def _run_spec(run_dir: Path) -> ExperimentSpec:
    """The run's ``spec.yaml``, checked against its manifest first."""
    from nnspec import io

    path = run_dir / "spec.yaml"
    text = verified_bytes(run_dir, path).decode("utf-8")
    return io.loads(text, filename=str(path))


def _check_changes(old: ExperimentSpec, new: ExperimentSpec, done: int, steps: int) -> None:
    problems = [
        Problem((*key.split("."),), "an extension may change only train.epochs, schedule and "
                "train.early_stopping", expected=_show(old_fields, key),
                found=_show(new_fields, key),
                fix="train a new run for other changes (model.init_from: RUN_DIR starts from "
                "this run's weights)")
        for old_fields, new_fields in [(ck.spec_fields(old), ck.spec_fields(new))]
        for key in ck.diff_fields(old_fields, new_fields)
        if not any(key == f or key.startswith(f + ".") for f in ck.EXTENSION_FIELDS)
    ]  # fmt: skip
    if new.train.epochs <= done:
        problems.append(Problem(("train", "epochs"), f"the run has trained {done} epochs",
                                expected=f"train.epochs larger than {done}",
                                found=str(new.train.epochs)))  # fmt: skip
    was, now = compile_plan(old), compile_plan(new)
    if (was.monitor, was.mode) != (now.monitor, now.mode):
        problems.append(Problem(("train", "early_stopping", "monitor"),
                                f"the run's best epoch was chosen by {was.monitor} ({was.mode})",
                                expected=f"{was.monitor} ({was.mode})",
                                found=f"{now.monitor} ({now.mode})",
                                fix="keep the monitor (and enabled, mode), or train a new "
                                "run"))  # fmt: skip
    cap = new.train.max_steps
    if cap is not None and steps >= cap:
        problems.append(Problem(("train", "max_steps"), f"the run stopped at train.max_steps "
                                f"{cap}; added epochs would train no step",
                                fix="train a new run with a larger train.max_steps"))  # fmt: skip
    if problems:
        raise SpecError(problems, title="cannot extend this run")


def _show(fields: dict[str, Any], key: str) -> str:
    from nnspec.io import show_value

    return show_value(fields[key]) if key in fields else "(absent)"
