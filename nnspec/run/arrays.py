"""Samples as NumPy arrays (:class:`RawData`) and NumPy array files: ``.npz`` archives (arrays
``x`` and ``y``), ``.npy`` tables and folders of ``.npy`` shards (memory-mapped, read batch by
batch: :func:`open_npy`).

Loaded without pickles: object arrays and files that are not NumPy files are refused with a
clear message. NaN or inf features are named by sample index, and a NaN label never becomes a
class of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from nnspec.errors import DataError, Problem

__all__ = [
    "NamedArrays", "RawData", "ShardRows", "load_npz", "load_npz_arrays", "open_npy", "check_finite"
]  # fmt: skip


@dataclass(frozen=True)
class RawData:
    """Samples before splitting: features ``x`` (N, ...) and targets ``y`` (N,) or (N, K)."""

    x: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...] = ()
    class_names: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NamedArrays:
    """The user's arrays by name (``{"x": {input: array}, "y": {output: array}}``), for a model
    with named inputs or several outputs (:mod:`nnspec.run.named_arrays`); either side may be
    one array where the model has one input or one output."""

    x: Any
    y: Any


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


def _arrays(file: Path, mmap: bool = False) -> Any:
    """np.load without pickles: object arrays and files that are not .npy/.npz are refused.
    ``mmap``: an .npy is memory-mapped (only its header is read now)."""
    with file.open("rb") as fh:
        magic = fh.read(6)
    try:
        if not magic.startswith((b"\x93NUMPY", b"PK\x03\x04")):  # neither .npy nor a zip
            raise ValueError("not a NumPy file")
        return np.load(file, mmap_mode="r" if mmap else None, allow_pickle=False)  # never unpickle
    except (ValueError, OSError, EOFError) as e:
        pickled = "pickle" in str(e) or "Python objects" in str(e)
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
    _checked_targets(y, file)
    # Integer features stay integers (token ids for an embedding); the rest become float32.
    return x if x.dtype.kind in "iu" else x.astype(np.float32), y


def _checked_targets(y: np.ndarray, file: str) -> None:
    if y.dtype.kind == "f":  # a NaN label would become a class of its own
        bad = np.isnan(y.reshape(len(y), -1)).any(axis=1)
        if bad.any():
            raise _problem(
                ("data", "target"),
                f"{file}: {int(bad.sum())} targets are NaN (first: sample {int(np.argmax(bad))})",
                expected="a value for every sample",
                fix="drop those samples",
            )


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


def load_npz_arrays(path: str) -> dict[str, np.ndarray]:
    """Every array of an .npz archive by name (never unpickled; object arrays refused)."""
    file = Path(path)
    if not file.is_file():
        raise _problem(("x",), "no such file", expected="an .npz archive of arrays")
    try:
        arrays = _arrays(file)
    except DataError as e:  # the command's argument, not the spec's data.source
        raise DataError(
            [
                replace(p, path=("x",), message=p.message.removeprefix(f"{file.name}: "))
                for p in e.problems
            ]
        ) from None  # the caller names the file
    if not hasattr(arrays, "files"):
        raise _problem(("x",), "an .npy file, not an .npz archive",
                       expected="an .npz archive with one array per input (np.savez)")  # fmt: skip
    with arrays:
        try:
            return {k: arrays[k] for k in arrays.files}
        except ValueError as e:
            raise _problem(("x",), "holds object arrays, which nnspec never loads",
                           fix="save plain numeric arrays") from e  # fmt: skip


@dataclass(frozen=True)
class ShardRows:
    """The rows of a folder of memory-mapped ``.npy`` shards, one after another in file-name
    order (a :class:`~nnspec.run.streams.Rows`)."""

    shards: tuple[np.ndarray, ...]  # each shard's feature columns (a view of its memory map)
    files: tuple[str, ...]
    offsets: np.ndarray  # the first row of each shard, then the total

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.shards[0].shape[1:])

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.shards[0].dtype

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def read(self, idx: np.ndarray) -> np.ndarray:
        from nnspec.run.streams import read_rows

        which = np.searchsorted(self.offsets, idx, side="right") - 1
        out = np.empty((len(idx), *self.sample_shape), dtype=self.dtype)
        for s in np.unique(which).tolist():
            hit = which == s
            out[hit] = read_rows(self.shards[s], idx[hit] - self.offsets[s])
        return out

    def where(self, row: int) -> str:
        s = int(np.searchsorted(self.offsets, row, side="right") - 1)
        return f"{self.files[s]}: row {row - int(self.offsets[s])}"


def _mapped_table(file: Path) -> np.ndarray:
    """A 2-D numeric .npy table, memory-mapped (nothing read yet); refused otherwise."""
    table = _arrays(file, mmap=True)
    if not isinstance(table, np.ndarray) or table.ndim != 2 or table.shape[1] < 2:
        if hasattr(table, "close"):
            table.close()
        raise _problem(
            ("data", "source"),
            f"{file.name}: an .npy source must be a 2-D table whose last column is the target",
            found=f"shape {getattr(table, 'shape', 'an .npz archive')}",
            fix="a separate target array needs an .npz archive (npz:PATH)",
        )
    if table.dtype.kind not in "iufb":
        raise _problem(("data", "source"), f"{file.name}: features must be numbers",
                       found=f"dtype {table.dtype}")  # fmt: skip
    return table


def open_npy(path: Path) -> Any:
    """An ``.npy`` table, or a folder of ``.npy`` shards (same columns and dtype), memory-mapped:
    features are read batch by batch, the target column (the last) once, into memory.

    Raises:
        DataError: every shard whose shape or dtype differs from the first's, at once.
    """
    from nnspec.run.streams import ArrayRows, StreamData

    files = sorted(path.glob("*.npy")) if path.is_dir() else [path]
    if not files:
        raise _problem(("data", "source"), f"{path}: no .npy files in this folder",
                       expected="shards named *.npy")  # fmt: skip
    tables = [_mapped_table(f) for f in files]
    first, problems = tables[0], []
    for f, t in zip(files[1:], tables[1:], strict=True):
        if t.shape[1] != first.shape[1] or t.dtype != first.dtype:
            problems.append(Problem(
                ("data", "source"),
                f"{f.name}: the shards of {path.name} must share their columns and dtype",
                expected=f"{first.shape[1]} columns of {first.dtype} (as {files[0].name})",
                found=f"{t.shape[1]} columns of {t.dtype}",
            ))  # fmt: skip
    if problems:
        raise DataError(problems)
    y = np.concatenate([np.asarray(t[:, -1]) for t in tables])
    _checked_targets(y, path.name)
    if len(tables) == 1:
        rows: Any = ArrayRows(first[:, :-1], files[0].name)
    else:
        offsets = np.cumsum([0, *(len(t) for t in tables)])
        rows = ShardRows(tuple(t[:, :-1] for t in tables), tuple(f.name for f in files), offsets)
    return StreamData(rows, y)
