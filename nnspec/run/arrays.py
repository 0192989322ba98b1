"""Samples as NumPy arrays (:class:`RawData`) and NumPy array files: ``.npz`` archives (arrays
``x`` and ``y``) and ``.npy`` tables.

Loaded without pickles: object arrays and files that are not NumPy files are refused with a
clear message. NaN or inf features are named by sample index, and a NaN label never becomes a
class of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nnspec.errors import DataError, Problem

__all__ = ["RawData", "load_npz", "load_npy", "check_finite"]


@dataclass(frozen=True)
class RawData:
    """Samples before splitting: features ``x`` (N, ...) and targets ``y`` (N,) or (N, K)."""

    x: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...] = ()
    class_names: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)


def _problem(path: tuple[str | int, ...], message: str, **kw: Any) -> DataError:
    return DataError(Problem(path=path, message=message, **kw))


def check_finite(x: np.ndarray, path: tuple[str, ...], file: str) -> None:
    """Refuse NaN / inf features, naming the first bad sample by index."""
    bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    if bad.any():
        first = int(np.argmax(bad))
        raise _problem(
            path,
            f"{file}: {int(bad.sum())} samples hold NaN or inf features (first: sample {first})",
            expected="finite numbers",
            fix="clean or drop those samples",
        )


def _arrays(file: Path) -> Any:
    """np.load without pickles: object arrays and files that are not .npy/.npz are refused."""
    with file.open("rb") as fh:
        magic = fh.read(6)
    try:
        if not magic.startswith((b"\x93NUMPY", b"PK\x03\x04")):  # neither .npy nor a zip
            raise ValueError("not a NumPy file")
        return np.load(file, allow_pickle=False)  # never unpickle
    except (ValueError, OSError, EOFError) as e:
        pickled = "pickle" in str(e)
        raise _problem(
            ("data", "source"),
            f"{file.name}: " + ("holds object arrays (pickled Python objects), which nnspec "
                                "never loads" if pickled else "is not a NumPy .npy/.npz file"),
            expected="numeric arrays saved with np.save / np.savez",
            fix="save plain numeric arrays (e.g. x.astype('float32'))",
        ) from e  # fmt: skip


def _checked(x: np.ndarray, y: np.ndarray, file: str) -> tuple[np.ndarray, np.ndarray]:
    if x.dtype.kind not in "iufb":
        raise _problem(("data", "source"), f"{file}: features must be numbers",
                       found=f"dtype {x.dtype}")  # fmt: skip
    if x.dtype.kind == "f":
        check_finite(x, ("data", "source"), file)
    if y.dtype.kind == "f":  # a NaN label would become a class of its own
        bad = np.isnan(y.reshape(len(y), -1)).any(axis=1)
        if bad.any():
            raise _problem(
                ("data", "target"),
                f"{file}: {int(bad.sum())} targets are NaN (first: sample {int(np.argmax(bad))})",
                expected="a value for every sample",
                fix="drop those samples",
            )
    # Integer features stay integers (token ids for an embedding); the rest become float32.
    return x if x.dtype.kind in "iu" else x.astype(np.float32), y


def load_npz(file: Path, target: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Features ``x`` and targets (``y``, or the array named ``target``) of an .npz archive."""
    arrays = _arrays(file)
    if not hasattr(arrays, "files"):
        raise _problem(("data", "source"), f"{file.name}: an .npy file, not an .npz archive",
                       fix=f"use npy:{file}")  # fmt: skip
    with arrays:
        keys = list(arrays.files)
        xk = next((k for k in ("x", "X", "features") if k in keys), None)
        yk = target or next((k for k in ("y", "Y", "target") if k in keys), None)
        if xk is None or yk not in keys:
            raise _problem(
                ("data", "target"),
                "an .npz source needs a feature array 'x' and a target array",
                expected="keys x and y (or data.target)",
                found=", ".join(keys),
            )
        try:
            return _checked(arrays[xk], arrays[yk], file.name)
        except ValueError as e:
            if isinstance(e, DataError):
                raise
            raise _problem(
                ("data", "source"),
                f"{file.name}: holds object arrays, which nnspec never loads",
                fix="save plain numeric arrays",
            ) from e


def load_npy(file: Path) -> tuple[np.ndarray, np.ndarray]:
    """A 2-D .npy table whose LAST column is the target (a separate target needs .npz)."""
    table = _arrays(file)
    if not isinstance(table, np.ndarray) or table.ndim != 2 or table.shape[1] < 2:
        raise _problem(
            ("data", "source"),
            "an .npy source must be a 2-D table whose last column is the target",
            found=f"shape {getattr(table, 'shape', 'an .npz archive')}",
        )
    return _checked(table[:, :-1], table[:, -1], file.name)
