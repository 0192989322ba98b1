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

import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nnspec.errors import DataError, Problem, did_you_mean
from nnspec.files import file_kind
from nnspec.registry import Registry
from nnspec.run.arrays import NamedArrays, RawData, check_finite, load_npz, open_npy
from nnspec.run.images import ImageFolder, scan_folder
from nnspec.run.streams import DatasetRows, StreamData, streams
from nnspec.run.synthetic import SYNTHETIC
from nnspec.run.table_stream import parquet_files, parquet_pieces, target_values
from nnspec.run.tables import TABLE_FORMATS
from nnspec.spec.data import SOURCE_NAMES, DataSpec

if TYPE_CHECKING:
    from nnspec.run.iterables import IterData

__all__ = [
    "RawData",
    "TableData",
    "SOURCES",
    "SKLEARN_SETS",
    "SYNTHETIC",
    "data_file",
    "load_source",
    "load_table",
    "user_table",
    "table_features",
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


# ---- files ----


def data_file(
    path: str | Path, base: Path | None = None, *, field: tuple[str, ...] = ("data", "source")
) -> Path:
    """``path`` (relative ones against ``base``), checked to be a file.

    Raises:
        DataError: no such file; ``field`` is the problem's path (the spec's data source, or the
            command argument that named the file).
    """
    p = Path(path).expanduser()
    if not p.is_absolute() and base is not None:
        p = base / p
    kind = file_kind(p)
    if kind == "missing":
        raise _problem(field, f"data file not found: {p}", fix="check the path")
    if kind is not None:  # a FIFO or a device would block the reader or never end
        raise _problem(field, f"{p} is {kind}, not a data file", fix="name a regular file")
    return p


def data_folder_or_file(path: str, base: Path | None) -> Path:
    """``path`` (relative ones against ``base``): a folder of shards, or else a file."""
    p = Path(path).expanduser()
    folder = p if p.is_absolute() or base is None else base / p
    return folder if folder.is_dir() else data_file(path, base)


def _targets(spec: DataSpec) -> tuple[str, ...]:
    if spec.target is None:
        raise _problem(
            ("data", "target"),
            f"a {spec.source.partition(':')[0]} source needs the target column(s)",
            fix="set data.target: <column name>",
        )
    return (spec.target,) if isinstance(spec.target, str) else tuple(spec.target)


@dataclass(frozen=True)
class TableData:
    """A table source before splitting: the feature columns as an Arrow table (typed and encoded
    by :mod:`nnspec.run.columns` once the split is known) and the targets as an array."""

    table: Any  # pyarrow.Table (pyarrow is imported only when a table is read)
    y: np.ndarray
    file: str
    target_columns: tuple[str, ...]
    dropped: int = 0  # rows left out because their target was missing


def load_table(file: Path, fmt: str, spec: DataSpec, max_rows: int | None = None) -> TableData:
    """Read a table file (its first ``max_rows`` rows only, when given) and split off its target
    columns; rows without a target are dropped (counted in a warning).

    Raises:
        DataError: every problem of the file, or of the column names the spec gives, at once.
    """
    from nnspec.run.columns import check_names
    from nnspec.run.tables import read_table

    targets = _targets(spec)
    table = read_table(file, fmt, numeric=declared(spec, "numeric"), text=declared_text(spec),
                       max_rows=max_rows)  # fmt: skip
    problems = check_names(table.column_names, spec, targets, file.name)
    if problems:
        raise DataError(problems)
    return split_target(table, targets, file.name)


def user_table(table: Any, spec: DataSpec) -> TableData:
    """A user's pyarrow table or pandas DataFrame (``nnspec.train(spec, data=df)``): checked as
    a file would be, the target columns named by ``data.target``."""
    import pyarrow as pa

    from nnspec.run.columns import check_names
    from nnspec.run.tables import check_table

    if not isinstance(table, pa.Table):  # a pandas DataFrame
        table = pa.Table.from_pandas(table, preserve_index=False)
    targets = _targets(spec)
    problems = check_names(table.column_names, spec, targets, "data")
    if problems:
        raise DataError(problems)
    checked = check_table(table, "data", numeric=declared(spec, "numeric"),
                          text=declared_text(spec))  # fmt: skip
    return split_target(checked, targets, "data")


def declared(spec: DataSpec, kind: str) -> list[str]:
    """The columns ``data.columns`` declares of ``kind``."""
    return [n for n, k in spec.columns.items() if k == kind]


def declared_text(spec: DataSpec) -> list[str]:
    """The columns read as text whatever their cells: those declared categorical or binary."""
    return [*declared(spec, "categorical"), *declared(spec, "binary")]


def split_target(table: Any, targets: tuple[str, ...], name: str) -> TableData:
    """A pyarrow table split into feature columns and target values; rows without a target are
    left out (counted in a warning)."""
    import pyarrow.compute as pc

    keep = pc.is_valid(table.column(targets[0]))
    for t in targets[1:]:
        keep = pc.and_(keep, pc.is_valid(table.column(t)))
    dropped = table.num_rows - pc.sum(keep).as_py()
    if dropped and dropped == table.num_rows:  # nothing would be left to train or predict on
        raise DataError(Problem(
            ("data", "target"), f"{name}: no row has a target value ({', '.join(targets)})",
            expected="a value in the target column of at least one row",
            found=f"{table.num_rows} row{'s' * (table.num_rows != 1)}, every target cell empty",
            fix="check that data.target names the label column",
        ))  # fmt: skip
    if dropped:
        rows = f"{dropped} of {table.num_rows} rows"
        warnings.warn(
            f"{name}: {rows} have no target value ({', '.join(targets)}) and were left out",
            stacklevel=4,
        )
        table = table.filter(keep)
    ys = [target_values(table.column(t)) for t in targets]
    y = ys[0] if len(ys) == 1 else np.stack(ys, axis=1)
    return TableData(table.drop_columns(list(targets)), y, name, targets, dropped)


def _table_loader(fmt: str) -> Loader:
    def load(path: str, spec: DataSpec, seed: int, base: Path | None) -> TableData:
        return load_table(data_file(path, base), fmt, spec)

    return load


def _parquet(path: str, spec: DataSpec, seed: int, base: Path | None) -> TableData | IterData:
    """A Parquet file or a folder of them (a dataset: every ``*.parquet`` below it): read whole
    into one table, or streamed by row groups (:mod:`nnspec.run.iterables`) when
    ``data.in_memory`` says so for its size (from the files' metadata)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from nnspec.run.iterables import IterData

    p = data_folder_or_file(path, base)
    files = parquet_files(p)
    targets = _targets(spec)
    if files and spec.in_memory != "yes":
        rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        if streams(spec.in_memory, rows * _encoded_width(pq.read_schema(files[0]), spec) * 4):
            # the columns are fitted by the data step (nnspec.run.data), one pass
            return IterData(parquet_pieces(p, spec, targets), spec.split.val, spec.split.test)
    if len(files) == 1:
        return load_table(files[0], "parquet", spec)
    parts = [load_table(f, "parquet", spec) for f in files]
    first = parts[0].table.schema
    odd = [
        Problem(("data", "source"), f"{f.name}: its columns differ from {files[0].name}'s",
                expected=str(first.names), found=str(t.table.schema.names))
        for f, t in zip(files, parts, strict=True) if not t.table.schema.equals(first)
    ]  # fmt: skip
    if odd or not files:
        raise DataError(odd or [Problem(("data", "source"), f"{p}: no .parquet files here")])
    y = np.concatenate([t.y for t in parts])
    table = pa.concat_tables([t.table for t in parts])
    return TableData(table, y, p.name, targets, sum(t.dropped for t in parts))


def _encoded_width(schema: Any, spec: DataSpec) -> int:
    """The most inputs a table's feature columns can encode to (``data.in_memory: auto``
    decides on it): a number or true/false column one (two with a missing indicator), a text
    column its ``max_categories`` slots, ``unknown``, ``missing`` and an indicator."""
    import pyarrow as pa

    targets = _targets(spec)
    names = spec.features or [n for n in schema.names if n not in targets]
    width = 0
    for name in names:
        if name not in schema.names or spec.columns.get(name) == "ignore":
            continue
        t = schema.field(name).type
        typed = pa.types.is_string(t) or spec.columns.get(name) == "categorical"
        width += (spec.max_categories + 2 if typed else 1) + spec.impute.indicator
    return max(width, 1)


def table_features(file: Path, names: tuple[str, ...], exclude: tuple[str, ...]) -> np.ndarray:
    """Numeric feature columns of a table file for prediction: ``names`` in order, or every
    column except ``exclude`` (the targets) when the run's features were unnamed."""
    import pyarrow as pa

    from nnspec.run.tables import read_table

    fmt = file.suffix.lstrip(".").lower()
    fmt = fmt if fmt in TABLE_FORMATS else "csv"
    table = read_table(file, fmt, field=("data",))
    columns = list(names) or [n for n in table.column_names if n not in exclude]
    absent = [n for n in columns if n not in table.column_names]
    if absent:
        raise DataError([Problem(("data",), f"{file.name} has no column '{n}'") for n in absent])
    if any(not pa.types.is_floating(table.column(n).type) for n in columns):
        read_table(file, fmt, numeric=columns, field=("data",))  # names each bad cell; raises
    x = np.stack([table.column(n).to_numpy(zero_copy_only=False) for n in columns], axis=1)
    check_finite(x, ("data",), file.name)
    return x.astype(np.float32)


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
    *((fmt, _table_loader(fmt)) for fmt in TABLE_FORMATS if fmt != "parquet"),
    ("parquet", _parquet),
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
