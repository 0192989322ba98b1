"""Checkpoints (CKPT-1..4) and the spec hash (CKPT-2).

A checkpoint holds only plain tensors, numbers, strings and containers, so it loads with
``torch.load(weights_only=True)``: model, optimizer, LR schedule, early-stopping state, epoch/step,
metric history, RNG states (Python, NumPy, torch) and the hash of the resolved spec.

The hash leaves out the fields that cannot change the trained weights (:data:`HASH_EXCLUDED`), so a
resumed run may change them: where it writes, how it shows progress, where it runs.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import re
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nnspec.errors import CheckpointError, Problem
from nnspec.files import read_regular
from nnspec.run.manifest import verified_bytes
from nnspec.spec.experiment import ExperimentSpec

__all__ = [
    "HASH_EXCLUDED",
    "EXTENSION_FIELDS",
    "CheckpointWarning",
    "spec_fields",
    "spec_hash",
    "diff_fields",
    "rng_state",
    "set_rng_state",
    "checkpoint_paths",
    "load_checkpoint",
    "load_latest",
    "resume_point",
    "auto_resume_dir",
    "continues",
]

FORMAT = 1
HASH_EXCLUDED: tuple[str, ...] = (
    "name",  # only names the output folder
    "lint",  # lint settings do not touch training
    "train.resume",
    "train.device",  # CPU vs CUDA results differ in the last bits, but a user moving a run is fine
    "train.progress",
    "train.output_dir",
    "train.trackers",  # where the run is also logged
    "train.num_threads",
    "train.strategy",  # a DDP run computes what one process does (nnspec.run.distributed)
    "train.checkpoint",
    "data.num_workers",
)
"""Dotted spec fields (and their sub-fields) left out of the spec hash."""

EXTENSION_FIELDS: tuple[str, ...] = ("train.epochs", "schedule", "train.early_stopping")
"""Dotted fields (and their sub-fields) an extension of a run may change, besides those a resume
may (:data:`HASH_EXCLUDED`); :mod:`nnspec.run.extend`."""

_EPOCH_FILE = re.compile(r"epoch-(\d+)\.pt$")


class CheckpointWarning(UserWarning):
    """A checkpoint was skipped (corrupt or truncated); an older one is used."""


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): data}


def spec_fields(spec: ExperimentSpec) -> dict[str, Any]:
    """The spec as flat ``dotted.path -> value`` pairs, without :data:`HASH_EXCLUDED` fields."""
    flat = _flatten(spec.model_dump(mode="json"))
    return {
        k: v
        for k, v in flat.items()
        if not any(k == ex or k.startswith(ex + ".") for ex in HASH_EXCLUDED)
    }


def spec_hash(spec: ExperimentSpec) -> str:
    """sha256 of the result-relevant spec fields (16 hex digits)."""
    text = json.dumps(spec_fields(spec), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def diff_fields(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Dotted fields whose values differ between two :func:`spec_fields` results."""
    return sorted(k for k in set(a) | set(b) if a.get(k, "<missing>") != b.get(k, "<missing>"))


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch RNG states as weights_only-loadable data."""
    _, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)  # type: ignore[misc]
    return {
        "python": json.dumps(random.getstate()),
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the states written by :func:`rng_state`."""
    version, internal, gauss = json.loads(state["python"])
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_paths(run_dir: Path) -> list[Path]:
    """Epoch checkpoints of a run, newest first."""
    folder = Path(run_dir) / "checkpoints"
    found = [
        (int(m.group(1)), p) for p in folder.glob("epoch-*.pt") if (m := _EPOCH_FILE.search(p.name))
    ]
    return [p for _, p in sorted(found, reverse=True)]


def load_checkpoint(path: Path, run_dir: Path | None = None) -> dict[str, Any]:
    """Load one checkpoint (weights_only) once its bytes match the run's manifest.

    ``run_dir`` defaults to the checkpoint's run (``RUN/checkpoints/x.pt``). The bytes are read
    once, checked, and unpickled from memory, so a FIFO or a device planted as a checkpoint is
    refused instead of blocking.

    Raises:
        CheckpointError: missing, damaged (sha256 differs from ``manifest.json``), unreadable or
            incomplete.
    """
    path = Path(path)
    data = verified_bytes(Path(run_dir) if run_dir is not None else path.parent.parent, path)
    try:
        ckpt = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, bad pickle opcode, a global weights_only refuses ...
        raise CheckpointError(
            Problem(("train", "resume"), f"cannot read checkpoint {path}: {_first_line(e)}")
        ) from e
    required = {"format", "spec_hash", "epoch", "step", "model", "optimizer"}
    if not isinstance(ckpt, dict) or not required <= set(ckpt):
        raise CheckpointError(
            Problem(("train", "resume"), f"{path} is not an nnspec checkpoint (keys missing)")
        )
    return ckpt


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200] if text else ''}"


def _try_load(path: Path, skipped: list[str]) -> dict[str, Any] | None:
    """A verified checkpoint, or None (and a warning) when ``path`` is damaged."""
    try:
        return load_checkpoint(path)
    except CheckpointError as e:
        skipped.append(f"{path.name}: {e.problems[0].message}")
        warnings.warn(
            f"skipping checkpoint {path} ({e.problems[0].message}); trying an older one",
            CheckpointWarning,
            stacklevel=3,
        )
        return None


def load_latest(run_dir: Path, expected: ExperimentSpec) -> dict[str, Any] | None:
    """Newest verified checkpoint of ``run_dir``: the epoch checkpoints newest first, then
    ``best.pt`` (damaged ones are skipped with a warning); None when the run has none.

    Raises:
        CheckpointError: every checkpoint of the run is damaged (each is listed), or the one
            found was written by a spec whose hash differs (lists the differing fields).
    """
    return resume_point(run_dir, expected)[0]


def resume_point(
    run_dir: Path, expected: ExperimentSpec
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """``(checkpoint, best)`` to resume ``run_dir`` from: the newest verified checkpoint (an
    epoch checkpoint or ``best.pt``, whichever is newer) and the best weights so far.

    When ``best.pt`` is damaged or missing, the best weights come from the verified epoch
    checkpoint of the best epoch; when neither exists while the run still needs them (the best
    epoch is not the resumed one), resuming would end with ``model.pt`` holding other weights
    than those ``summary.json`` names, so it fails instead.

    Raises:
        CheckpointError: as :func:`load_latest`, or the best weights are lost.
    """
    run_dir = Path(run_dir)
    skipped: list[str] = []
    ckpt = None
    for path in checkpoint_paths(run_dir):
        if (ckpt := _try_load(path, skipped)) is not None:
            break
    best_path = run_dir / "checkpoints" / "best.pt"
    best = _try_load(best_path, skipped) if best_path.exists() else None
    if best is not None and (ckpt is None or best["epoch"] > ckpt["epoch"]):
        ckpt = best
    if ckpt is None:
        if skipped:
            raise _all_damaged(run_dir, skipped)
        return None, None
    _check_hash(ckpt, expected, run_dir)
    return ckpt, best if best is not None else _best_from_epochs(run_dir, ckpt)


def _best_from_epochs(run_dir: Path, ckpt: dict[str, Any]) -> dict[str, Any] | None:
    best_epoch = ckpt.get("early_stopping", {}).get("best_epoch", 0)
    if not best_epoch or best_epoch == ckpt["epoch"]:
        return ckpt if best_epoch else None  # the resumed weights are the best ones
    path = run_dir / "checkpoints" / f"epoch-{best_epoch:04d}.pt"
    best = _try_load(path, []) if path.exists() else None
    if best is None:
        raise CheckpointError(
            Problem(
                ("train", "resume"),
                f"the best weights of {run_dir} (epoch {best_epoch}) are lost: "
                "checkpoints/best.pt is missing or damaged and no verified "
                f"checkpoints/epoch-{best_epoch:04d}.pt exists; resuming would save other "
                "weights as model.pt than the ones summary.json names",
                fix="restore checkpoints/best.pt from a copy, or train a new run",
            )
        )
    return best


def _all_damaged(run_dir: Path, skipped: list[str]) -> CheckpointError:
    return CheckpointError(
        [Problem(("train", "resume"), f"{run_dir}: no verified checkpoint to resume from")]
        + [Problem(("train", "resume"), line) for line in skipped[:10]]
        + [
            Problem(
                ("train", "resume"),
                "every checkpoint is damaged",
                fix=f"restore {run_dir / 'checkpoints'} from a copy, or delete that folder to "
                "train the run again from its first epoch",
            )
        ]
    )


def _check_hash(ckpt: dict[str, Any], expected: ExperimentSpec, run_dir: Path) -> None:
    if ckpt["spec_hash"] == spec_hash(expected) or continues(ckpt, expected):
        return
    diff = diff_fields(json.loads(ckpt["spec_fields"]), spec_fields(expected))
    raise CheckpointError(
        Problem(
            ("train", "resume"),
            f"the checkpoints of {run_dir} were written by a different spec",
            expected=f"spec hash {spec_hash(expected)}",
            found=f"{ckpt['spec_hash']}; differing fields: {', '.join(diff)}",
            fix="resume with the original spec, or start a new run",
        )
    )


def continues(ckpt: dict[str, Any], spec: ExperimentSpec) -> bool:
    """Whether ``ckpt`` is where the last of ``spec``'s ``train.extensions`` starts: written at
    its ``from_epoch`` by the spec it extended (the extension's first epoch is still to train),
    which differs from ``spec`` only in :data:`EXTENSION_FIELDS` and ``train.extensions``."""
    exts = spec.train.extensions
    if not exts or (ckpt["spec_hash"], ckpt["epoch"]) != (exts[-1].from_hash, exts[-1].from_epoch):
        return False
    changed = diff_fields(json.loads(ckpt["spec_fields"]), spec_fields(spec))
    allowed = (*EXTENSION_FIELDS, "train.extensions")
    return all(any(k == f or k.startswith(f + ".") for f in allowed) for k in changed)


# How many earlier runs the `resume=auto` report lists, and how many differing fields per run.
_LISTED_RUNS = 5
_LISTED_FIELDS = 4
# What to do when no run matches; options that continue a run under a changed spec go here.
NO_MATCH_FIX = (
    "to continue one of them, resume it with the spec it was trained with: "
    "nnspec train RUN_DIR/spec.yaml train.resume=RUN_DIR"
)


def auto_resume_dir(spec: ExperimentSpec, *, report: bool = True) -> Path | None:
    """``train.resume=auto``: the newest run of ``spec.name`` written by this spec (same hash).

    When none matches, the run starts from scratch, and stderr says which runs were considered and
    why each did not match (the fields that differ, ``optim.lr: 0.01 -> 0.003``), unless the spec
    turns progress output off or ``report`` is False.
    """
    root = Path(spec.train.output_dir) / spec.name
    runs = _earlier_runs(root)
    want = spec_hash(spec)
    for run in runs:
        if _read_hash(run) == want:
            return run
    if report and spec.train.progress != "none":
        print(_no_match_report(spec, root, runs), file=sys.stderr)
    return None


def _read_hash(run: Path) -> str | None:
    try:
        return read_regular(run / "hash.txt", 4096).decode("ascii", "replace").strip()
    except (OSError, ValueError):
        return None


def _earlier_runs(root: Path) -> list[Path]:
    """The run directories under ``root``, newest first.

    Only folders holding ``hash.txt`` are runs (a Hydra job folder being created for this very run,
    or a sweep's ``multirun_*`` folder, is not). Newest is by when ``hash.txt`` was written, not by
    folder name: the Python API and Hydra stamp folder names in different formats.
    """
    if not root.is_dir():
        return []
    runs = [p for p in root.iterdir() if (p / "hash.txt").is_file()]
    return sorted(runs, key=lambda p: (p / "hash.txt").stat().st_mtime_ns, reverse=True)


def _no_match_report(spec: ExperimentSpec, root: Path, runs: list[Path]) -> str:
    head = f"train.resume=auto: no earlier run of '{spec.name}' in {root} "
    if not runs:
        return head + "(none there yet); starting a new run"
    lines = [head + "was trained with this spec; starting a new run. Runs considered:"]
    lines += [f"  {run.name}: {_why_not(run, spec)}" for run in runs[:_LISTED_RUNS]]
    if len(runs) > _LISTED_RUNS:
        lines.append(f"  ... and {len(runs) - _LISTED_RUNS} older")
    lines.append(f"  fix: {NO_MATCH_FIX}")
    return "\n".join(lines)


def _why_not(run: Path, spec: ExperimentSpec) -> str:
    """Why ``run`` cannot be resumed by ``spec``: the fields that differ, old -> new."""
    from nnspec.errors import NNSpecError
    from nnspec.io import load, show_value

    try:
        old = spec_fields(load(run / "spec.yaml"))
    except (NNSpecError, OSError) as e:
        return f"its spec.yaml cannot be read ({type(e).__name__})"
    new = spec_fields(spec)
    diff = diff_fields(old, new)
    if not diff:
        return "spec hash differs, same fields (written by another version of nnspec)"

    def value(fields: dict[str, Any], key: str) -> str:
        return show_value(fields[key]) if key in fields else "(absent)"

    shown = [f"{k}: {value(old, k)} -> {value(new, k)}" for k in diff[:_LISTED_FIELDS]]
    more = f" (and {len(diff) - _LISTED_FIELDS} more)" if len(diff) > _LISTED_FIELDS else ""
    return "differs in " + ", ".join(shown) + more
