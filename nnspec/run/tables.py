"""Tables from files: CSV, Parquet and Arrow IPC / Feather, read with pyarrow.

Every problem of a file is collected and raised at once as one :class:`DataError`: an empty or
header-only file, duplicate or empty header names, ragged rows, text that is not UTF-8, fields
longer than :data:`MAX_FIELD_CHARS`, ``inf`` cells and numbers beyond float32's range, and
columns of numbers with a few cells that are not numbers (each with its first bad row and value).

Numeric columns come back as float32 (missing cells as nulls); text columns as strings. Cells
spelt like ``NA``, ``N/A``, ``null``, ``NaN`` or left empty are missing values (pyarrow's list).
A file that does not parse as the declared format is never echoed: only a file that parsed has
its column names and values quoted in messages. The format readers are
:mod:`nnspec.run.table_readers`'s. pyarrow is imported only when a table is read.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from nnspec.errors import DataError, Problem
from nnspec.run.table_readers import (
    WHERE,
    encoding_problem,
    file_problem,
    left_out_rows,
    plural,
    read_binary,
    read_csv,
)

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "TABLE_FORMATS",
    "MAX_FIELD_CHARS",
    "NUMBER_PATTERN",
    "NUMERIC_SHARE",
    "F32_MAX",
    "numeric_type",
    "text_type",
    "encodable",
    "plain_text",
    "read_table",
    "check_table",
    "first_row",
]

TABLE_FORMATS: Final = ("csv", "parquet", "arrow", "feather")
# A longer cell is almost always a broken quote that swallowed the rest of the file.
MAX_FIELD_CHARS: Final = 65_536
# A text column whose non-missing cells are at least this share numbers is a numeric column with
# a few bad cells (reported), not a category column.
NUMERIC_SHARE: Final = 0.9
F32_MAX: Final = float(np.finfo(np.float32).max)
_NUMBER: Final = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"
NUMBER_PATTERN: Final = _NUMBER  # a cell of text that is a number (run.table_stream counts them)


def read_table(
    file: Path,
    fmt: str,
    *,
    numeric: Collection[str] = (),
    text: Collection[str] = (),
    field: tuple[str, ...] = WHERE,
    max_rows: int | None = None,
) -> pa.Table:
    """Read ``file`` as a table; numeric columns as float32, every problem in one error.

    Args:
        file: the file.
        fmt: one of :data:`TABLE_FORMATS`.
        numeric: columns declared numeric: any cell that is not a number is a problem.
        text: columns declared categorical or binary: read as text, never as numbers (a zip
            code keeps its leading zero, a long integer id every digit).
        field: the path of the problems (the spec's ``data.source``, or a command argument).
        max_rows: read only the first rows (a CSV or Parquet file is then not read to its end).

    Raises:
        DataError: all the problems found, each naming the file, row and column.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
        >>> _ = p.write_text("a,b\\n1,x\\nNA,y\\n")
        >>> t = read_table(p, "csv")
        >>> str(t.schema.field("a").type), t.column("a").null_count
        ('float', 1)
    """
    problems: list[Problem] = []
    if fmt == "csv":
        table = read_csv(file, problems, max_rows, text)
        # pyarrow leaves out blank and ragged lines: a problem's row number counts them back in
        width = table.num_columns if table is not None else 0
        rows = _Rows(lambda: left_out_rows(file, width))
    else:
        table = read_binary(file, fmt, problems, max_rows)
        rows = _Rows(list)
    if table is not None:  # only a file that parsed has columns to name
        table = _check_columns(file, table, set(numeric), rows, problems, set(text))
    if problems:
        title = f"{file.name}: {plural(len(problems), 'problem')} in the data file"
        raise DataError([replace(p, path=field) for p in problems], title=title)
    assert table is not None
    return table


def check_table(
    table: pa.Table, name: str, *, numeric: Collection[str] = (), text: Collection[str] = ()
) -> pa.Table:
    """The checks of :func:`read_table` on a table already in memory (a user's pandas or pyarrow
    table): numbers as float32, every problem in one error, located ``name:ROW`` (the first row
    is row 1).

    Raises:
        DataError: all the problems found.
    """
    problems: list[Problem] = []
    where = Path(name)
    table = _check_columns(where, table, set(numeric), _Rows(list, first=1), problems, set(text))
    if problems:
        title = f"{name}: {plural(len(problems), 'problem')}"
        raise DataError([replace(p, path=()) for p in problems], title=title)
    return table


class _Rows:
    """File row numbers (the header is row 1) of table rows, past the rows left out.

    ``left_out`` lists the file rows the reader skipped; it is called on the first use only, so
    a file without problems is never scanned twice.
    """

    def __init__(self, left_out: Callable[[], list[int]], first: int = 2) -> None:
        self.left_out, self.first = left_out, first
        self.skipped: list[int] | None = None

    def __call__(self, index: int) -> int:
        if self.skipped is None:
            self.skipped = sorted(self.left_out())
        line = index + self.first
        for s in self.skipped:
            line += s <= line
        return line


def numeric_type(t: Any) -> bool:
    """An Arrow type of numbers (integers or floats)."""
    import pyarrow as pa

    return bool(pa.types.is_integer(t) or pa.types.is_floating(t))


def text_type(t: Any) -> bool:
    """An Arrow type of text: string, large_string (pandas 3's text columns) or a dictionary of
    either (pandas' ``category`` columns)."""
    import pyarrow as pa

    if pa.types.is_dictionary(t):
        return text_type(t.value_type)
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t))


def encodable(t: Any) -> bool:
    """A column type the table columns can encode (numbers, text, true/false)."""
    import pyarrow as pa

    return numeric_type(t) or text_type(t) or bool(pa.types.is_boolean(t))


def plain_text(col: Any) -> Any:
    """A text column as ``string`` (large strings and dictionaries decoded)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    return col if pa.types.is_string(col.type) else pc.cast(col, pa.string())


def first_row(mask: pa.ChunkedArray | pa.Array) -> int:
    """Index of the first true value of a boolean array (nulls count as false)."""
    import pyarrow.compute as pc

    return int(pc.index(pc.fill_null(mask, False), True).as_py())


# ---- column checks (every format) ----


def _check_columns(
    file: Path, table: pa.Table, numeric: set[str], rows: _Rows, problems: list[Problem],
    text: set[str] = frozenset(),  # type: ignore[assignment]
) -> pa.Table:  # fmt: skip
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = {}
    for name in table.column_names:
        col = table.column(name)
        if name in text and numeric_type(col.type):  # declared categorical: the exact text
            col = pc.cast(col, pa.string())
        if text_type(col.type):
            col = plain_text(col)
            if name not in text:
                col = _check_text(file, name, col, name in numeric, rows, problems)
        if numeric_type(col.type):
            col = _check_numbers(file, name, col, rows, problems)
        elif name in numeric and not pa.types.is_null(col.type):
            problems.append(
                file_problem(file, f"column '{name}' is declared numeric", found=str(col.type))
            )
        columns[name] = col
    return pa.table(columns)


def _check_text(
    file: Path,
    name: str,
    col: pa.ChunkedArray,
    declared: bool,
    rows: _Rows,
    problems: list[Problem],
) -> pa.ChunkedArray:
    """UTF-8, field length, and numbers stored as text: a column of numbers becomes float."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        col.validate(full=True)
    except pa.ArrowInvalid:
        bad = next(i for i, v in enumerate(col.cast(pa.binary()).to_pylist()) if _not_utf8(v))
        problems.append(encoding_problem(file, rows(bad), name))
        return col
    lengths = pc.binary_length(col)
    if (pc.max(lengths).as_py() or 0) > MAX_FIELD_CHARS:
        row = first_row(pc.greater(lengths, MAX_FIELD_CHARS))
        problems.append(
            file_problem(
                file,
                f"column '{name}': a field of {lengths[row].as_py()} bytes",
                rows(row),
                expected=f"at most {MAX_FIELD_CHARS} bytes per field",
                fix='look for an unclosed quote (") above this row',
            )
        )
        return col
    is_number = pc.match_substring_regex(col, _NUMBER)
    present = len(col) - col.null_count
    share = pc.sum(is_number).as_py() / present if present else 0.0
    if share == 1.0:
        return pc.cast(pc.utf8_trim_whitespace(col), pa.float64())
    if declared or share >= NUMERIC_SHARE:
        row = first_row(pc.invert(pc.fill_null(is_number, True)))
        value = str(col[row].as_py())
        problems.append(
            file_problem(
                file,
                f"column '{name}': not a number (the column's other cells are numbers)",
                rows(row),
                expected="a number, or an empty / NA cell for a missing value",
                found=repr(value[:40] + ("..." if len(value) > 40 else "")),
                fix=f"clean the cell, or declare the column text with data.columns.{name}: "
                "categorical",
            )
        )
    return col


def _not_utf8(value: bytes | None) -> bool:
    try:
        (value or b"").decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _check_numbers(
    file: Path, name: str, col: pa.ChunkedArray, rows: _Rows, problems: list[Problem]
) -> pa.ChunkedArray:
    """NaN and inf cells and numbers float32 cannot hold are problems (a missing value is an
    empty cell); the column becomes float32."""
    import pyarrow as pa
    import pyarrow.compute as pc

    # integers above 2**53 round (safe=False): the column becomes float32 anyway
    wide = pc.cast(col, pa.float64(), safe=False)
    magnitude = pc.abs(wide)
    for mask, what in (
        (pc.is_nan(wide), "NaN"),
        (pc.is_inf(wide), "an infinite value"),
        (pc.and_(pc.is_finite(wide), pc.greater(magnitude, F32_MAX)), "a number beyond float32"),
    ):
        if pc.any(mask).as_py():
            row = first_row(mask)
            problems.append(
                file_problem(
                    file,
                    f"column '{name}': {what} ({plural(pc.sum(mask).as_py(), 'cell')})",
                    rows(row),
                    expected=f"finite numbers within +-{F32_MAX:.3g}",
                    found=str(wide[row].as_py()),
                    fix="clean the cells, or leave them empty for missing values",
                )
            )
    return pc.cast(wide, pa.float32(), safe=False)
