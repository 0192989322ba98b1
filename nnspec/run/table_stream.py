"""A Parquet dataset read row group by row group, normalised as :func:`nnspec.run.tables.read_table`
normalises a table read whole, so a streamed run and ``predict`` (which reads rows whole) see
the same columns.

``read_table`` decides per column, on every row: numbers become float32 (integers beyond 2**53
round), a text column whose every present cell is a number becomes a number column, and a text
column of mostly numbers, or one declared numeric, with other cells is a problem; infinite cells
and numbers beyond float32 are problems. Streamed, those whole-column decisions are made from
counts kept over every row group (:class:`TableCheck`, one pass), then each row group is cast by
the same fixed rule (:func:`normalise`). NaN cells, which a Parquet file can hold apart from
missing (null) cells, are a problem here too: a streamed pass cannot leave them to the model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nnspec.errors import DataError, Problem
from nnspec.run.iterables import Chunk, holdout_parts, whole_numbers
from nnspec.run.table_readers import plural
from nnspec.run.tables import (
    F32_MAX,
    NUMBER_PATTERN,
    NUMERIC_SHARE,
    encodable,
    numeric_type,
    plain_text,
    text_type,
)
from nnspec.run.workers import release_heap
from nnspec.spec.data import DataSpec

if TYPE_CHECKING:
    import pyarrow as pa

    from nnspec.run.column_fit import Summary
    from nnspec.run.columns import Columns

__all__ = [
    "ParquetPieces",
    "TableCheck",
    "normalise",
    "parquet_files",
    "parquet_pieces",
    "target_values",
]


@dataclass
class _Cells:
    """A count of some kind of cell in one column, and where the first one is."""

    count: int = 0
    first: tuple[int, str] | None = None  # (row number, the cell as text)

    def add(self, mask: np.ndarray, rows: np.ndarray, values: Any) -> None:
        hits = int(mask.sum())
        if hits and self.first is None:
            at = int(np.argmax(mask))
            self.first = (int(rows[at]), str(values[at].as_py())[:40])
        self.count += hits


@dataclass
class _Text:
    present: int = 0
    numbers: int = 0
    other: _Cells | None = None  # cells that are not numbers


class TableCheck:
    """The whole-column decisions of ``read_table``, from every row group in turn.

    Args:
        types: the columns checked (features and the target) and their Arrow types.
        numeric: the columns ``data.columns`` declares ``numeric``.
        text: the columns read as text (declared categorical or binary): never numbers.
        where: a row number -> "file: row group g, row r".
    """

    def __init__(self, types: dict[str, Any], numeric: set[str], text: set[str],
                 where: Callable[[int], str]) -> None:  # fmt: skip
        self.types, self.numeric, self.where = types, numeric, where
        self.text = {n: _Text() for n, t in types.items() if text_type(t) and n not in text}
        kinds = ("NaN", "an infinite value", "a number beyond float32")
        self.bad = {(n, what): _Cells() for n, t in types.items()
                    if numeric_type(t) and n not in text for what in kinds}  # fmt: skip

    def add(self, table: pa.Table, first: int) -> None:
        """Count the cells of a row group whose first row is number ``first``."""
        import pyarrow as pa
        import pyarrow.compute as pc

        rows = first + np.arange(table.num_rows)
        for name, t in self.text.items():
            col = plain_text(table.column(name))
            is_number = pc.fill_null(pc.match_substring_regex(col, NUMBER_PATTERN), True)
            t.present += len(col) - col.null_count
            t.numbers += (pc.sum(is_number).as_py() or 0) - col.null_count
            not_number = ~np.asarray(is_number.to_numpy(zero_copy_only=False), dtype=bool)
            if not_number.any():
                t.other = t.other or _Cells()
                t.other.add(not_number, rows, col)
        for (name, what), cells in self.bad.items():
            wide = pc.fill_null(pc.cast(table.column(name), pa.float64(), safe=False), 0.0)
            values = wide.to_numpy(zero_copy_only=False)
            if what == "NaN":
                mask = np.isnan(values)
            elif what == "an infinite value":
                mask = np.isinf(values)
            else:
                mask = np.isfinite(values) & (np.abs(values) > F32_MAX)
            cells.add(mask, rows, wide)

    def numeric_text(self) -> frozenset[str]:
        """Text columns whose every present cell is a number: number columns."""
        return frozenset(n for n, t in self.text.items() if t.present and t.numbers == t.present)

    def problems(self) -> list[Problem]:
        """Every problem found, one per column and kind, each at its first cell."""
        found = [
            Problem(("data", "columns", n), f"column '{n}' is declared numeric", found=str(t),
                    expected="numbers, or text that is numbers")
            for n, t in self.types.items()
            if n in self.numeric and not (numeric_type(t) or text_type(t))
        ]  # fmt: skip
        for name, t in self.text.items():
            share = t.numbers / t.present if t.present else 0.0
            if t.other is not None and t.other.first and (name in self.numeric
                                                          or share >= NUMERIC_SHARE):  # fmt: skip
                row, value = t.other.first
                found.append(Problem(("data", "source"),
                    f"{self.where(row)}: column '{name}': not a number (the column's other "
                    "cells are numbers)", expected="a number, or an empty cell for a missing "
                    "value", found=repr(value), fix="clean the cell, or declare the column text "
                    f"with data.columns.{name}: categorical"))  # fmt: skip
        for (name, what), cells in self.bad.items():
            if cells.first is not None:
                row, value = cells.first
                found.append(Problem(("data", "source"),
                    f"{self.where(row)}: column '{name}': {what} ({plural(cells.count, 'cell')})",
                    expected=f"finite numbers within +-{F32_MAX:.3g}", found=value,
                    fix="clean the cells, or leave them empty (null) for missing values",
                ))  # fmt: skip
        return found


def normalise(
    table: pa.Table, numeric_text: frozenset[str], text: frozenset[str] = frozenset()
) -> pa.Table:
    """A row group as ``read_table`` gives a table: numbers (and the ``numeric_text`` columns)
    float32, text as ``string``, the ``text`` columns as text whatever their cells."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = {}
    for name in table.column_names:
        col = table.column(name)
        if name in text and numeric_type(col.type):
            col = pc.cast(col, pa.string())
        if text_type(col.type):
            col = plain_text(col)
        if name in numeric_text:
            col = pc.cast(pc.utf8_trim_whitespace(col), pa.float64())
        if numeric_type(col.type):
            col = pc.cast(pc.cast(col, pa.float64(), safe=False), pa.float32(), safe=False)
        columns[name] = col
    return pa.table(columns)


@dataclass(frozen=True)
class ParquetPieces:
    """The row groups of a Parquet dataset (one file or a folder of files), each a piece; rows
    are normalised (:func:`normalise`) and encoded with the table's
    :class:`~nnspec.run.columns.Columns` once :meth:`fitted`."""

    groups: tuple[tuple[str, int, int], ...]  # (file, row group, number of its first row)
    features: tuple[str, ...]  # the feature columns read (``ignore`` ones left out)
    target: str
    name: str  # the dataset in messages
    types: dict[str, Any] = field(default_factory=dict, compare=False)  # features and target
    columns: Columns | None = None
    numeric_text: frozenset[str] = frozenset()
    text: frozenset[str] = frozenset()  # declared categorical or binary: read as text
    by_piece: bool = True

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (self.columns.width if self.columns is not None else len(self.features),)

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(np.float32)

    def __len__(self) -> int:
        return len(self.groups)

    def _table(self, piece: int, names: list[str]) -> pa.Table:
        import pyarrow.parquet as pq

        file, group, _ = self.groups[piece]
        return pq.ParquetFile(file).read_row_group(group, columns=names)

    def read(self, piece: int, epoch: int | None = None) -> Iterator[Chunk]:
        if self.columns is None:
            raise RuntimeError("ParquetPieces.read before fitted()")  # nnspec's own bug
        file, group, first = self.groups[piece]
        table = normalise(self._table(piece, [*self.features, self.target]), self.numeric_text,
                          self.text)  # fmt: skip
        x = self.columns.encode(table.drop_columns([self.target]),
                                f"{Path(file).name}: row group {group}")  # fmt: skip
        yield first, x, target_values(table.column(self.target))

    def fitted(self, spec: DataSpec, val: float, test: float) -> ParquetPieces:
        """These pieces with their columns fitted on the training rows of the hold-out rule, in
        one pass over every row group: the checks and type decisions of ``read_table`` over
        every row (:class:`TableCheck`), the column summaries over the training rows
        (:mod:`nnspec.run.column_fit`: the same decisions as for a table read whole).

        Raises:
            DataError: every cell and column problem, at once; no training row.
        """
        from nnspec.run.column_fit import columns_from

        text = frozenset(n for n, k in spec.columns.items() if k in ("categorical", "binary"))
        numeric = {n for n in self.features if spec.columns.get(n) == "numeric"}
        check = TableCheck(self.types, numeric, set(text), self.where)
        summaries = _Summaries(self.features, self.types, spec, text)
        rows = trained = 0
        for piece, (_, _, first) in enumerate(self.groups):
            table = self._table(piece, [*self.features, self.target])
            check.add(table, first)
            train = holdout_parts(first + np.arange(table.num_rows), val, test) == 0
            rows, trained = rows + len(train), trained + int(train.sum())
            summaries.add(table.filter(train).drop_columns([self.target]))
            del table
        release_heap()
        problems = check.problems()
        if problems:
            raise DataError(problems, title=f"{self.name}: {plural(len(problems), 'problem')} in "
                            "the data")  # fmt: skip
        if not trained:
            raise DataError(Problem(("data", "split"), "the hold-out rule left no training rows",
                                    found=f"{rows} rows"))  # fmt: skip
        numeric_text = check.numeric_text()
        columns = columns_from(summaries.result(numeric_text), spec, self.name)
        return replace(self, columns=columns, numeric_text=numeric_text, text=text)

    def where(self, row: int) -> str:
        starts = [g[2] for g in self.groups]
        file, group, first = self.groups[int(np.searchsorted(starts, row, side="right")) - 1]
        return f"{Path(file).name}: row group {group}, row {row - first}"


class _Summaries:
    """The column summaries of the training rows, row group by row group; a text column is
    summarised both as text and as numbers (where its cells are numbers) until the whole pass
    says which it is (:meth:`TableCheck.numeric_text`)."""

    def __init__(self, features: tuple[str, ...], types: dict[str, Any], spec: DataSpec,
                 text: frozenset[str]) -> None:  # fmt: skip
        from nnspec.run.column_fit import needs

        self.features, self.text_columns = features, text
        self.strings = {n for n in features if text_type(types[n]) and n not in text}
        self.needs = {n: needs(n, spec.columns.get(n, "auto"), spec, False) for n in features}
        self.text: dict[str, Summary] = {}
        self.numbers: dict[str, Summary | None] = {}

    def add(self, table: pa.Table) -> None:
        import pyarrow as pa

        from nnspec.run.column_fit import summarise

        read = normalise(table, frozenset(), self.text_columns)  # numbers float32, text string
        for name in self.features:
            text, counts = self.needs[name]
            col = read.column(name)
            _merge(self.text, name, summarise(col, text=text, numbers=counts))
            if name in self.strings and self.numbers.get(name, True) is not None:
                try:  # the cells as numbers, if they all are
                    as_numbers = normalise(pa.table({name: col}), frozenset({name})).column(name)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    self.numbers[name] = None
                    continue
                _merge(self.numbers, name, summarise(as_numbers, text=text, numbers=counts))

    def result(self, numeric_text: frozenset[str]) -> dict[str, Summary]:
        out = {}
        for name in self.features:
            number = self.numbers.get(name) if name in numeric_text else None
            out[name] = number if number is not None else self.text[name]
        return out


def _merge(into: dict[str, Any], name: str, part: Summary) -> None:
    if into.get(name) is None:
        into[name] = part
    else:
        into[name].add(part)


def target_values(col: Any) -> np.ndarray:
    """A target column as numpy: whole numbers as int64 (class labels), text as str; empty
    cells as NaN (numbers) or None (text), which the readers leave out (``has_target``)."""
    if numeric_type(col.type):
        return whole_numbers(col.to_numpy(zero_copy_only=False))
    if not col.null_count:
        return np.array([str(v) for v in col.to_pylist()])
    return np.array([None if v is None else str(v) for v in col.to_pylist()], dtype=object)


def _columns(schema: Any) -> str:
    return ", ".join(f"{f.name}: {f.type}" for f in schema)


def parquet_files(path: Path) -> list[Path]:
    """The Parquet files of a dataset folder (recursively, in path order), or the one file."""
    return sorted(path.rglob("*.parquet")) if path.is_dir() else [path]


def parquet_pieces(path: Path, spec: DataSpec, targets: tuple[str, ...]) -> ParquetPieces:
    """The row groups of every file of ``path``, from their metadata (no data read); the
    columns are fitted by :meth:`ParquetPieces.fitted`.

    Raises:
        DataError: files whose schema differs from the first's, columns the spec names that
            the files lack, feature columns of a type nnspec cannot encode, every one named,
            at once.
    """
    import pyarrow.parquet as pq

    from nnspec.run.columns import check_names

    files = parquet_files(path)
    if not files:
        raise DataError(Problem(("data", "source"), f"{path}: no .parquet files in this folder"))
    schema = pq.read_schema(files[0])
    problems = check_names(list(schema.names), spec, targets, files[0].name)
    names = tuple(n for n in (spec.features or (n for n in schema.names if n not in targets))
                  if n in schema.names and spec.columns.get(n) != "ignore")  # fmt: skip
    problems += [
        Problem(("data", "columns", n), f"{files[0].name}: column '{n}' has a type nnspec "
                "cannot encode", expected="numbers, text or true/false",
                found=str(schema.field(n).type),
                fix=f"set data.columns.{n}: ignore, or convert it to numbers or text")
        for n in names if not encodable(schema.field(n).type)
    ]  # fmt: skip
    groups, first = [], 0
    for f in files:
        meta = pq.ParquetFile(f)
        if not meta.schema_arrow.equals(schema):
            problems.append(Problem(("data", "source"), f"{f.name}: its columns differ from "
                                    f"{files[0].name}'s", expected=_columns(schema),
                                    found=_columns(meta.schema_arrow)))  # fmt: skip
            continue
        for g in range(meta.num_row_groups):
            n = meta.metadata.row_group(g).num_rows
            if n:  # an empty part file (Spark, Dask) has a row group of no rows
                groups.append((str(f), g, first))
                first += n
    if problems:
        raise DataError(problems)
    types = {n: schema.field(n).type for n in (*names, targets[0])}
    return ParquetPieces(tuple(groups), names, targets[0], path.name, types)
