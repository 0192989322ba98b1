"""Checkpoints (CKPT-1..4) and the spec hash (CKPT-2).

A checkpoint holds only plain tensors, numbers, strings and containers, so it loads with
``torch.load(weights_only=True)``: model, optimizer, LR schedule, early-stopping state, epoch/step,
metric history, RNG states (Python, NumPy, torch) and the hash of the resolved spec.

The hash leaves out the fields that cannot change the trained weights (:data:`HASH_EXCLUDED`), so a
resumed run may change them: where it writes, how it shows progress, where it runs.
"""

from __future__ import annotations

import hashlib
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
from nnspec.spec.experiment import ExperimentSpec

__all__ = [
    "HASH_EXCLUDED",
    "CheckpointWarning",
    "spec_fields",
    "spec_hash",
    "diff_fields",
    "rng_state",
    "set_rng_state",
    "checkpoint_paths",
    "load_checkpoint",
    "load_latest",
    "auto_resume_dir",
]

FORMAT = 1
HASH_EXCLUDED: tuple[str, ...] = (
    "name",  # only names the output folder
    "lint",  # lint settings do not touch training
    "train.resume",
    "train.device",  # CPU vs CUDA results differ in the last bits, but a user moving a run is fine
    "train.progress",
    "train.output_dir",
    "train.tensorboard",
    "train.num_threads",
    "train.strategy",  # a DDP run computes what one process does (nnspec.run.distributed)
    "train.checkpoint",
    "data.num_workers",
)
"""Dotted spec fields (and their sub-fields) left out of the spec hash."""

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


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load one checkpoint (weights_only); CheckpointError if it is unreadable or incomplete."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, bad pickle opcode, missing file ...
        raise CheckpointError(
            Problem(("train", "resume"), f"cannot read checkpoint {path}: {e}")
        ) from e
    required = {"format", "spec_hash", "epoch", "step", "model", "optimizer"}
    if not isinstance(ckpt, dict) or not required <= set(ckpt):
        raise CheckpointError(
            Problem(("train", "resume"), f"{path} is not an nnspec checkpoint (keys missing)")
        )
    return ckpt


def load_latest(run_dir: Path, expected: ExperimentSpec) -> dict[str, Any] | None:
    """Newest readable checkpoint of ``run_dir`` (corrupt ones are skipped with a warning).

    Raises:
        CheckpointError: the checkpoint was written by a spec whose hash differs (lists the
            differing fields).
    """
    for path in checkpoint_paths(run_dir):
        try:
            ckpt = load_checkpoint(path)
        except CheckpointError as e:
            warnings.warn(
                f"skipping corrupt checkpoint {path} ({e.problems[0].message}); "
                "using the previous one",
                CheckpointWarning,
                stacklevel=2,
            )
            continue
        if ckpt["spec_hash"] != spec_hash(expected):
            diff = diff_fields(json.loads(ckpt["spec_fields"]), spec_fields(expected))
            raise CheckpointError(
                Problem(
                    ("train", "resume"),
                    f"checkpoint {path} was written by a different spec",
                    expected=f"spec hash {spec_hash(expected)}",
                    found=f"{ckpt['spec_hash']}; differing fields: {', '.join(diff)}",
                    fix="resume with the original spec, or start a new run",
                )
            )
        return ckpt
    return None


# How many earlier runs the `resume=auto` report lists, and how many differing fields per run.
_LISTED_RUNS = 5
_LISTED_FIELDS = 4
# What to do when no run matches; options that continue a run under a changed spec go here.
NO_MATCH_FIX = (
    "to continue one of them, resume it with the spec it was trained with: "
    "nnspec train RUN_DIR/spec.yaml train.resume=RUN_DIR"
)


def auto_resume_dir(spec: ExperimentSpec) -> Path | None:
    """``train.resume=auto``: the newest run of ``spec.name`` written by this spec (same hash).

    When none matches, the run starts from scratch, and stderr says which runs were considered and
    why each did not match (the fields that differ, ``optim.lr: 0.01 -> 0.003``), unless the spec
    turns progress output off.
    """
    root = Path(spec.train.output_dir) / spec.name
    runs = _earlier_runs(root)
    want = spec_hash(spec)
    for run in runs:
        if (run / "hash.txt").read_text().strip() == want:
            return run
    if spec.train.progress != "none":
        print(_no_match_report(spec, root, runs), file=sys.stderr)
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
