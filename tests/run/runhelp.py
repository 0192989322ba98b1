"""Small specs for the trainer's tests: synthetic data, tiny models, one thread, no progress."""

from __future__ import annotations

import copy
import os
import signal
from pathlib import Path
from typing import Any

from nnspec.run.callbacks import Callback, FitState
from nnspec.spec import ExperimentSpec


def tiny(tmp: Path, **sections: Any) -> ExperimentSpec:
    """A 3-class MLP on 300 synthetic samples; ``sections`` deep-merge into the spec data."""
    data: dict[str, Any] = {
        "name": "tiny",
        "seed": 0,
        "task": "classification",
        "data": {
            "source": "synthetic:classification",
            "n_samples": 300,
            "options": {"n_features": 8, "n_informative": 5, "n_classes": 3},
            "batch_size": 32,
        },
        "model": {"input_shape": [8], "layers": [{"linear": 16}, {"linear": 3}]},
        "optim": {"kind": "adamw", "lr": 0.01},
        "train": {
            "epochs": 4,
            "num_threads": 1,
            "progress": "none",
            "output_dir": str(tmp / "runs"),
        },
    }
    merged = merge(data, sections)
    return ExperimentSpec.model_validate(merged)


def bitwise_equal(a: Any, b: Any) -> bool:
    """Checkpoint-like values equal bit for bit: tensors (same dtype, torch.equal), nested
    dicts, lists and tuples, and plain values."""
    import torch

    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(bitwise_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(bitwise_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


class KillAt(Callback):
    """Fault injection for the resume tests: the process SIGKILLs itself once ``step`` optimizer
    steps are done (no clean-up of any kind, as a power cut or the OOM killer)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, state: FitState) -> None:
        if state.step >= self.step:
            os.kill(os.getpid(), signal.SIGKILL)
