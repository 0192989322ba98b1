"""Targets: class encoding (the user's own label per class index is kept for ``predict``) and
numeric targets checked cell by cell, for every kind of source."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from nnspec.errors import DataError, Problem
from nnspec.run.arrays import RawData
from nnspec.run.file_sources import TableData
from nnspec.run.streams import StreamData

__all__ = ["Raw", "encode_targets", "n_outputs", "target_encoder"]

Raw = RawData | TableData | StreamData


def encode_targets(raw: Raw, task: str) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """Encoded targets, class names and the original value of each class (empty when the data
    names its classes, or for numeric targets)."""
    y = raw.y
    if task == "classification" or (task == "binary" and y.ndim == 1):
        classes, codes = np.unique(y, return_inverse=True)
        names = raw.class_names if not isinstance(raw, TableData) else ()
        if not names or len(names) < len(classes) or y.dtype.kind not in "iu":
            names, values = tuple(str(c) for c in classes), classes
        else:
            names, values = tuple(names[int(c)] for c in classes), classes[:0]
        if task == "binary":
            if len(classes) != 2:
                raise DataError(
                    Problem(
                        ("task",),
                        "task 'binary' needs exactly two target values",
                        found=f"{len(classes)}: {', '.join(map(str, classes[:5]))}",
                        fix="use task: classification",
                    )
                )
            return codes.astype(np.float32).reshape(-1, 1), names, values
        return codes.astype(np.int64), names, values
    numbers = _numeric_targets(raw, task)
    return (numbers.reshape(-1, 1) if numbers.ndim == 1 else numbers), (), y[:0]


def _numeric_targets(raw: Raw, task: str) -> np.ndarray:
    try:
        return raw.y.astype(np.float32)
    except ValueError:
        pass
    # Name the first bad cell: table row and target column.
    flat = raw.y.reshape(len(raw.y), -1)
    table = raw if isinstance(raw, TableData) else None
    cols = table.target_columns if table else tuple(str(i) for i in range(flat.shape[1]))
    for n, row in enumerate(flat):
        for c, cell in enumerate(row):
            try:
                float(cell)
            except ValueError:
                where = _target_row(table, n) if table else f"sample {n}"
                raise DataError(
                    Problem(
                        ("data", "target"),
                        f"{where}, column '{cols[c]}': task '{task}' needs numeric targets",
                        expected="a number",
                        found=repr(str(cell)),
                    )
                ) from None
    raise AssertionError("unreachable: astype failed but every cell parsed")  # pragma: no cover


def _target_row(raw: TableData, n: int) -> str:
    # File rows count the header as row 1; once rows without a target were left out, only the
    # position among the remaining rows is known.
    return f"{raw.file}: row {n + 2}" if not raw.dropped else f"{raw.file}: data row {n + 1}"


def n_outputs(task: str, y: np.ndarray, names: tuple[str, ...], raw: Raw) -> int:
    if task == "classification":
        meta = raw.meta if not isinstance(raw, TableData) else {}
        return int(meta.get("n_classes", len(names)))
    return int(y.shape[1])


def target_encoder(
    task: str, y_all: np.ndarray, y_mean: Any = None, y_std: Any = None
) -> Callable[[np.ndarray], torch.Tensor]:
    """Raw targets of a streamed batch -> the encoded targets :func:`encode_targets` gives for
    ``y_all`` (class codes over its values; numbers, scaled by ``y_mean``/``y_std``)."""
    if task == "classification" or (task == "binary" and y_all.ndim == 1):
        classes = np.unique(y_all)
        binary = task == "binary"

        def codes(y: np.ndarray) -> torch.Tensor:
            at = np.minimum(np.searchsorted(classes, y), len(classes) - 1)
            if not np.array_equal(classes[at], y):
                raise DataError(
                    Problem(
                        ("data", "target"),
                        "a target value that the pass over the source did not see",
                        found=str(y[classes[at] != y][0]),
                        fix="the source must yield the same samples on every pass",
                    )
                )
            out = at.astype(np.float32).reshape(-1, 1) if binary else at.astype(np.int64)
            return torch.from_numpy(out)

        return codes
    mean = y_mean.numpy() if y_mean is not None else 0.0
    std = y_std.numpy() if y_std is not None else 1.0

    def numbers(y: np.ndarray) -> torch.Tensor:
        v = y.astype(np.float32)
        v = v.reshape(-1, 1) if v.ndim == 1 else v
        return torch.from_numpy(((v - mean) / std).astype(np.float32))

    return numbers
