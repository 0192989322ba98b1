"""Sources read from files: the path checks (:func:`data_file`, :func:`data_folder_or_file`)
and the tables ``csv:``, ``parquet:``, ``arrow:``, ``feather:`` (read whole by
:func:`~nnspec.run.tables.read_table`, or a Parquet dataset streamed by row group:
:mod:`nnspec.run.table_stream`), and a user's pyarrow table or pandas DataFrame
(:func:`user_table`). :mod:`nnspec.run.sources` registers them by prefix.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nnspec.errors import DataError, Problem
from nnspec.files import file_kind
from nnspec.run.arrays import check_finite
from nnspec.run.streams import streams
from nnspec.run.table_stream import parquet_files, parquet_pieces, target_values
from nnspec.run.tables import TABLE_FORMATS
from nnspec.spec.data import DataSpec

if TYPE_CHECKING:
    from nnspec.run.iterables import IterData

__all__ = [
    "TableData",
    "data_file",
    "data_folder_or_file",
    "declared",
    "declared_text",
    "load_table",
    "parquet_source",
    "split_target",
    "table_features",
    "table_loader",
    "targets_of",
    "user_table",
]


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
        raise DataError(Problem(field, f"data file not found: {p}", fix="check the path"))
    if kind is not None:  # a FIFO or a device would block the reader or never end
        raise DataError(Problem(field, f"{p} is {kind}, not a data file",
                                fix="name a regular file"))  # fmt: skip
    return p


def data_folder_or_file(path: str, base: Path | None) -> Path:
    """``path`` (relative ones against ``base``): a folder of shards, or else a file."""
    p = Path(path).expanduser()
    folder = p if p.is_absolute() or base is None else base / p
    return folder if folder.is_dir() else data_file(path, base)


def targets_of(spec: DataSpec) -> tuple[str, ...]:
    if spec.target is None:
        raise DataError(Problem(
            ("data", "target"),
            f"a {spec.source.partition(':')[0]} source needs the target column(s)",
            fix="set data.target: <column name>",
        ))  # fmt: skip
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

    targets = targets_of(spec)
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
    targets = targets_of(spec)
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


def table_loader(fmt: str) -> Callable[[str, DataSpec, int, Path | None], TableData]:
    def load(path: str, spec: DataSpec, seed: int, base: Path | None) -> TableData:
        return load_table(data_file(path, base), fmt, spec)

    return load


def parquet_source(path: str, spec: DataSpec, seed: int, base: Path | None) -> TableData | IterData:
    """A Parquet file or a folder of them (a dataset: every ``*.parquet`` below it): read whole
    into one table, or streamed by row groups (:mod:`nnspec.run.iterables`) when
    ``data.in_memory`` says so for its size (from the files' metadata)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from nnspec.run.iterables import IterData

    p = data_folder_or_file(path, base)
    files = parquet_files(p)
    targets = targets_of(spec)
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

    targets = targets_of(spec)
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
