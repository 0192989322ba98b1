"""``model.init_from``: copy tensors saved elsewhere into a built model, with a report.

Sources: a finished run (its ``model.pt``), a ``.pt``/``.pth`` file (``torch.load`` with
``weights_only=True``: a state dict, or a checkpoint holding one under ``model`` or
``state_dict``) or a ``.safetensors`` file (the ``safetensors`` package, read where installed).
Source keys are renamed by the spec's ordered regular expressions, then matched to the model's
``state_dict`` keys; shapes must agree. Loading runs after nnspec's own init (and the head-bias
init), so what is not loaded keeps its rule-based values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from nnspec.errors import CheckpointError, Problem
from nnspec.spec.weights import WEIGHT_SUFFIXES, InitFrom

__all__ = ["WeightReport", "load_init_from", "read_weights", "rename_keys"]

_WHERE = ("model", "init_from")


@dataclass
class WeightReport:
    """What ``init_from`` did: keys loaded, skipped (with why) and left with nnspec's init."""

    source: str
    loaded: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # source key (renamed) -> reason
    missing: list[str] = field(default_factory=list)  # model keys nothing was loaded into

    def summary(self) -> str:
        """One line, plus up to five examples of each kind of miss."""
        text = (
            f"init_from {self.source}: loaded {len(self.loaded)} tensors, "
            f"skipped {len(self.skipped)}, kept nnspec's init for {len(self.missing)}"
        )
        for key, why in list(self.skipped.items())[:5]:
            text += f"\n  skipped {key}: {why}"
        for key in self.missing[:5]:
            text += f"\n  not in the source: {key}"
        return text


def _problem(message: str, **kw: str) -> CheckpointError:
    return CheckpointError(Problem(_WHERE, message, **kw))


def _tensors(blob: object, file: Path) -> dict[str, torch.Tensor]:
    if isinstance(blob, Mapping):
        for key in ("model", "state_dict"):  # an nnspec run's model.pt / a training checkpoint
            if isinstance(blob.get(key), Mapping):
                blob = blob[key]
                break
    if not isinstance(blob, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in blob.items()
    ):
        raise _problem(f"{file} does not hold a state dict",
                       expected="a mapping of names to tensors (model.state_dict())")  # fmt: skip
    return dict(blob)


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The tensors saved at ``path`` (a run folder, a .pt/.pth or a .safetensors file).

    Raises:
        CheckpointError: no such file, an unknown suffix, an unreadable file or not a state dict.
    """
    file = path / "model.pt" if path.is_dir() else path
    if not file.is_file():
        what = "a finished run (no model.pt)" if path.is_dir() else "no such file"
        raise _problem(
            f"cannot load weights from {path}: {what}",
            expected=f"a run folder or a file ending in {', '.join(WEIGHT_SUFFIXES)}",
        )
    if file.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError as e:
            raise _problem("reading .safetensors needs the safetensors package",
                           fix="pip install safetensors") from e  # fmt: skip
        try:
            return load_file(str(file))
        except Exception as e:  # the package raises its own error types for damaged files
            raise _problem(f"cannot read {file}: {e}") from e
    if file.suffix not in (".pt", ".pth"):
        raise _problem(f"cannot load weights from {file}",
                       expected=f"a file ending in {', '.join(WEIGHT_SUFFIXES)}",
                       found=file.suffix or "no suffix")  # fmt: skip
    try:
        blob = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:  # weights_only refuses pickled code; damaged zips raise RuntimeError
        raise _problem(f"cannot read {file} as weights (weights_only=True): {e}") from e
    return _tensors(blob, file)


def rename_keys(keys: list[str], renames: Mapping[str, str]) -> dict[str, str]:
    """Source key -> model key after applying every ``pattern -> replacement`` in order.

    Example:
        >>> rename_keys(["fc.weight", "conv1.weight"], {r"^fc\\.": "head.", r"^conv1\\.": "stem."})
        {'fc.weight': 'head.weight', 'conv1.weight': 'stem.weight'}
    """
    compiled = [(re.compile(p), r) for p, r in renames.items()]
    out = {}
    for key in keys:
        new = key
        for pattern, replacement in compiled:
            new = pattern.sub(replacement, new)
        out[key] = new
    return out


def load_init_from(model: nn.Module, init: InitFrom, base: Path | None = None) -> WeightReport:
    """Copy the matching tensors of ``init.path`` into ``model`` (in place, without grad).

    Raises:
        CheckpointError: the source cannot be read; nothing matched; with ``strict``, any key
            missing, unused or of another shape (all listed at once).
    """
    path = Path(init.path)
    path = path if path.is_absolute() or base is None else base / path
    source = read_weights(path)
    target = model.state_dict()
    excluded = [re.compile(p) for p in init.exclude]
    report = WeightReport(str(path))
    for key, new in rename_keys(list(source), init.map).items():
        if any(p.search(new) for p in excluded):
            report.skipped[new] = "excluded"
        elif new not in target:
            report.skipped[new] = f"no such key in the model (source key {key})"
        elif source[key].shape != target[new].shape:
            report.skipped[new] = (
                f"shape {list(source[key].shape)} in the source, {list(target[new].shape)} "
                "in the model"
            )
        else:
            with torch.no_grad():
                target[new].copy_(source[key].to(target[new].dtype))
            report.loaded.append(new)
    done = set(report.loaded)
    report.missing = [k for k in target if k not in done and not any(p.search(k) for p in excluded)]
    _check(report, init)
    return report


def _check(report: WeightReport, init: InitFrom) -> None:
    if not report.loaded:
        raise _problem(
            f"no tensor of {report.source} matches the model",
            found="; ".join(f"{k}: {why}" for k, why in list(report.skipped.items())[:3]),
            fix="map the source's keys to the model's (model.init_from.map); `nnspec summary` "
            "and model.state_dict() show the model's",
        )  # fmt: skip
    if init.strict and (report.missing or any(w != "excluded" for w in report.skipped.values())):
        problems = [
            Problem((*_WHERE, "strict"), f"{key}: {why}")
            for key, why in report.skipped.items()
            if why != "excluded"
        ] + [Problem((*_WHERE, "strict"), f"{key}: not in the source") for key in report.missing]
        raise CheckpointError(problems, title=f"init_from {report.source}: strict loading failed")
