"""Data sources: a registry from the ``data.source`` prefix to a loader returning raw arrays.

Built in: ``sklearn:NAME`` (bundled with scikit-learn, no download), ``synthetic:KIND`` (seeded
generators: ``classification`` and ``regression`` give float features, ``sequence_count`` and
``sequence_compare`` give int64 token sequences for a model that starts with an ``embedding``),
tables ``csv:PATH``, ``parquet:PATH``, ``arrow:PATH``, ``feather:PATH`` (typed columns, see
:mod:`nnspec.run.tables` and :mod:`nnspec.run.columns`), arrays ``npz:PATH``, ``npy:PATH``
and ``npy:FOLDER`` of shards (:mod:`nnspec.run.arrays`; memory-mapped, streamed by
:mod:`nnspec.run.streams` when large), image folders ``images:PATH`` (:mod:`nnspec.run.images`);
relative paths resolve against the spec file's folder. ``user`` data is passed to
:func:`nnspec.train` directly (:func:`user_data`). The prefixes and their closed name lists are
:data:`nnspec.spec.data.SOURCE_NAMES`, which ``nnspec validate`` checks without loading anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nnspec.errors import DataError, Problem, did_you_mean
from nnspec.registry import Registry
from nnspec.run.arrays import NamedArrays, RawData, load_npz, open_npy
from nnspec.run.file_sources import (
    TableData,
    data_file,
    data_folder_or_file,
    parquet_source,
    table_loader,
)
from nnspec.run.images import ImageFolder, scan_folder
from nnspec.run.streams import DatasetRows, StreamData
from nnspec.run.synthetic import SYNTHETIC
from nnspec.run.tables import TABLE_FORMATS
from nnspec.spec.data import SOURCE_NAMES, DataSpec

if TYPE_CHECKING:
    from nnspec.run.iterables import IterData

__all__ = [
    "RawData",
    "SOURCES",
    "SKLEARN_SETS",
    "SYNTHETIC",
    "load_source",
    "UserTable",
    "UserDataset",
    "user_data",
    "user_dataset",
]


Loader = Callable[[str, DataSpec, int, "Path | None"], Any]  # RawData, TableData, StreamData,
# IterData or ImageFolder


def _problem(path: tuple[str | int, ...], message: str, **kw: Any) -> DataError:
    return DataError(Problem(path=path, message=message, **kw))


def _require_known(name: str, choices: Iterable[str], what: str) -> None:
    """Refuse an unknown ``data.source`` name, listing the choices with a did-you-mean."""
    choices = tuple(choices)
    if name in choices:
        return
    hint = did_you_mean(name, choices)
    raise _problem(
        ("data", "source"),
        f"unknown {what} '{name}'" + (f"; {hint}" if hint else ""),
        expected=", ".join(choices),
        found=name,
    )


# ---- sklearn: the five bundled data sets ----

SKLEARN_SETS: tuple[str, ...] = SOURCE_NAMES["sklearn"] or ()


def _sklearn(name: str, spec: DataSpec, seed: int, base: Path | None) -> RawData:
    import sklearn.datasets as ds  # heavy: imported only when a data set is loaded

    _require_known(name, SKLEARN_SETS, "scikit-learn data set")
    bunch = getattr(ds, f"load_{name}")()
    names = tuple(str(n) for n in getattr(bunch, "target_names", ())) if name != "diabetes" else ()
    features = tuple(str(f) for f in getattr(bunch, "feature_names", ()))
    return RawData(bunch.data.astype(np.float32), bunch.target, features, names)


# ---- synthetic generators (seeded; for benchmarks, examples and tests): run/synthetic.py ----


def _synthetic(kind: str, spec: DataSpec, seed: int, base: Path | None) -> RawData:
    _require_known(kind, SYNTHETIC, "synthetic generator")
    return SYNTHETIC[kind](spec, seed)


def _npz(path: str, spec: DataSpec, seed: int, base: Path | None) -> RawData:
    x, y = load_npz(data_file(path, base), spec.target if isinstance(spec.target, str) else None)
    return RawData(x, y)


def _npy(path: str, spec: DataSpec, seed: int, base: Path | None) -> StreamData:
    return open_npy(data_folder_or_file(path, base))


def _images(path: str, spec: DataSpec, seed: int, base: Path | None) -> ImageFolder:
    return scan_folder(path, base)  # decoded once input_shape is known (run/images.py)


SOURCES: Registry[Loader] = Registry("data source")
for _prefix, _loader in (
    ("sklearn", _sklearn),
    ("synthetic", _synthetic),
    *((fmt, table_loader(fmt)) for fmt in TABLE_FORMATS if fmt != "parquet"),
    ("parquet", parquet_source),
    ("npz", _npz),
    ("npy", _npy),
    ("images", _images),
):
    SOURCES.register(_prefix, _loader)
SOURCES.seal()  # user sources: nnspec.register_source (nnspec.run.components)


def load_source(
    spec: DataSpec, seed: int, base: Path | None = None
) -> RawData | TableData | StreamData | ImageFolder:
    """Load the raw samples named by ``data.source``.

    Args:
        spec: the data section.
        seed: the experiment seed (synthetic generators use it).
        base: folder that relative file paths resolve against (the spec file's folder).
    """
    prefix, _, arg = spec.source.partition(":")
    raw = SOURCES[prefix](arg, spec, seed, base)
    if isinstance(raw, RawData) and raw.x.shape[0] != raw.y.shape[0]:  # (StreamData: by design)
        raise _problem(
            ("data", "source"),
            "features and targets have different numbers of samples",
            found=f"{raw.x.shape[0]} vs {raw.y.shape[0]}",
        )
    return raw


@dataclass(frozen=True)
class UserTable:
    """A user's pyarrow table or pandas DataFrame; ``data.target`` names its target columns."""

    table: Any


def _is_table(data: Any) -> bool:
    # pyarrow.Table or pandas.DataFrame, told apart without importing either
    return type(data).__module__.split(".")[0] in ("pyarrow", "pandas") and hasattr(data, "columns")


@dataclass(frozen=True)
class UserDataset:
    """A user's ``torch.utils.data.Dataset`` (map-style) or ``IterableDataset`` of ``(x, y)``
    items, read as it is."""

    dataset: Any


def user_data(data: Any) -> RawData | NamedArrays | UserTable | UserDataset:
    """Turn ``(x, y)`` arrays/tensors, ``{"x": ..., "y": ...}`` (either side may map names to
    arrays: a model's named inputs and outputs, :mod:`nnspec.run.named_arrays`), a map-style
    ``Dataset`` of ``(x, y)`` items (never copied: read item by item, see
    :mod:`nnspec.run.streams`) or a table (pyarrow / pandas, with the target column named by
    ``data.target``) into what :func:`~nnspec.run.data.prepare_data` takes."""
    from collections.abc import Mapping

    import torch

    if _is_table(data):
        return UserTable(data)
    if isinstance(data, dict):
        data = (data.get("x"), data.get("y"))
    if (
        isinstance(data, (tuple, list))
        and len(data) == 2
        and any(isinstance(side, Mapping) for side in data)
    ):
        return NamedArrays(*data)
    if isinstance(data, torch.utils.data.IterableDataset):
        return UserDataset(data)
    if isinstance(data, torch.utils.data.Dataset) and not isinstance(data, tuple):
        if not hasattr(data, "__len__"):
            raise DataError(
                Problem(
                    ("data",),
                    f"{type(data).__name__} has no len(): nnspec reads a map-style Dataset",
                    expected="a Dataset with __len__ and __getitem__ returning (x, y)",
                    fix="add __len__, or pass (x, y) arrays",
                )
            )
        return UserDataset(data)
    if not isinstance(data, (tuple, list)) or len(data) != 2 or data[0] is None:
        raise DataError(
            Problem(
                ("data",),
                "user data must be (x, y) arrays, {'x': ..., 'y': ...} or a Dataset of (x, y)",
                found=type(data).__name__,
            )
        )
    x, y = (np.asarray(a.numpy() if isinstance(a, torch.Tensor) else a) for a in data)
    # Integer arrays stay integers (token ids for an embedding); prepare_data makes the rest float.
    return RawData(x if x.dtype.kind in "iu" else x.astype(np.float32), y)


def user_dataset(dataset: Any, spec: DataSpec) -> StreamData | IterData:
    """A user's Dataset as a lazily read source. Map-style: its targets are read in one pass
    (``data.num_workers`` DataLoader processes), or taken from its ``targets`` attribute when it
    has one. Iterable: its splits follow the hold-out rule of :mod:`nnspec.run.iterables`."""
    import torch

    from nnspec.run.iterables import IterData, UserIterable

    if isinstance(dataset, torch.utils.data.IterableDataset):
        return IterData(UserIterable.of(dataset), spec.split.val, spec.split.test)
    rows = DatasetRows.of(dataset)
    y = rows.labels(spec.num_workers)
    if len(y) != len(rows):
        raise _problem(("data",), "the Dataset's targets and items differ in number",
                       found=f"{len(y)} vs {len(rows)}")  # fmt: skip
    return StreamData(rows, y)
