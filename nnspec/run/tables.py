"""Tables from files: CSV, Parquet and Arrow IPC / Feather, read with pyarrow.

Every problem of a file is collected and raised at once as one :class:`DataError`: an empty or
header-only file, duplicate or empty header names, ragged rows, text that is not UTF-8, fields
longer than :data:`MAX_FIELD_CHARS`, ``inf`` cells and numbers beyond float32's range, and
columns of numbers with a few cells that are not numbers (each with its first bad row and value).

Numeric columns come back as float32 (missing cells as nulls); text columns as strings. Cells
spelt like ``NA``, ``N/A``, ``null``, ``NaN`` or left empty are missing values (pyarrow's list).
A file that does not parse as the declared format is never echoed: only a file that parsed has
its column names and values quoted in messages. pyarrow is imported here only, when a table is
read.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Collection, Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np

from nnspec.errors import DataError, Problem

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "TABLE_FORMATS",
    "MAX_FIELD_CHARS",
    "NUMBER_PATTERN",
    "NUMERIC_SHARE",
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
_F32_MAX: Final = float(np.finfo(np.float32).max)
_NUMBER: Final = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"
NUMBER_PATTERN: Final = _NUMBER  # a cell of text that is a number (run.table_stream counts them)
_SNIFF_BYTES: Final = 1 << 16
_WHERE: Final = ("data", "source")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def _problem(file: Path, message: str, line: int | None = None, **kw: str) -> Problem:
    return Problem(_WHERE, message, file=file.name, line=line, **kw)  # type: ignore[arg-type]


def read_table(
    file: Path,
    fmt: str,
    *,
    numeric: Collection[str] = (),
    field: tuple[str, ...] = _WHERE,
    max_rows: int | None = None,
) -> pa.Table:
    """Read ``file`` as a table; numeric columns as float32, every problem in one error.

    Args:
        file: the file.
        fmt: one of :data:`TABLE_FORMATS`.
        numeric: columns declared numeric: any cell that is not a number is a problem.
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
        table = _read_csv(file, problems, max_rows)
        # pyarrow leaves out blank and ragged lines: a problem's row number counts them back in
        width = table.num_columns if table is not None else 0
        rows = _Rows(lambda: _left_out_rows(file, width))
    else:
        table = _read_binary(file, fmt, problems, max_rows)
        rows = _Rows(list)
    if table is not None:  # only a file that parsed has columns to name
        table = _check_columns(file, table, set(numeric), rows, problems)
    if problems:
        title = f"{file.name}: {_plural(len(problems), 'problem')} in the data file"
        raise DataError([replace(p, path=field) for p in problems], title=title)
    assert table is not None
    return table


def check_table(table: pa.Table, name: str, *, numeric: Collection[str] = ()) -> pa.Table:
    """The checks of :func:`read_table` on a table already in memory (a user's pandas or pyarrow
    table): numbers as float32, every problem in one error, located ``name:ROW`` (the first row
    is row 1).

    Raises:
        DataError: all the problems found.
    """
    problems: list[Problem] = []
    where = Path(name)
    table = _check_columns(where, table, set(numeric), _Rows(list, first=1), problems)
    if problems:
        title = f"{name}: {_plural(len(problems), 'problem')}"
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


def first_row(mask: pa.ChunkedArray | pa.Array) -> int:
    """Index of the first true value of a boolean array (nulls count as false)."""
    import pyarrow.compute as pc

    return int(pc.index(pc.fill_null(mask, False), True).as_py())


# ---- CSV ----


def _header(file: Path, problems: list[Problem]) -> list[str] | None:
    """The header names, or None (with a problem) when the file is not CSV text."""
    with file.open("rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    if not head.strip():
        problems.append(_problem(file, "the file is empty", fix="write a header row and data"))
        return None
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in head:
        problems.append(
            _problem(
                file,
                "the file is not CSV text (it holds NUL bytes: UTF-16 text or a binary file)",
                expected="UTF-8 CSV text",
                fix="re-save it as UTF-8 CSV, or name its format in data.source "
                "(parquet:, arrow:, feather:)",
            )
        )
        return None
    line = head.split(b"\n", 1)[0].removeprefix(codecs.BOM_UTF8)  # a UTF-8 BOM is not a name
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(line, final=False)
    except UnicodeDecodeError:
        problems.append(_encoding_problem(file, 1))
        return None
    names = [h.strip() for h in next(csv.reader(io.StringIO(text)), [])]
    if not names:  # a blank first line: pyarrow would invent the names
        problems.append(
            _problem(
                file,
                "the first line is empty",
                1,
                expected="a header row of column names",
                fix="remove the blank line(s) before the header",
            )
        )
        return None
    return names


def _encoding_problem(file: Path, line: int | None, column: str | None = None) -> Problem:
    where = f"column '{column}': " if column else ""
    return _problem(
        file,
        f"{where}text that is not UTF-8 (the file looks like another encoding, e.g. Latin-1)",
        line,
        expected="UTF-8 text",
        fix="re-save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8 in.csv > out.csv)",
    )


def _unique_names(file: Path, header: list[str], problems: list[Problem]) -> list[str]:
    """Header names made unique (``a``, ``a.2``) so reading goes on; duplicates are problems."""
    seen: dict[str, int] = {}
    names = []
    for i, name in enumerate(header, start=1):
        if not name:
            problems.append(
                _problem(file, f"header column {i} has no name", 1, fix="name every column")
            )
            name = f"column{i}"
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name}.{seen[name]}")
    dups = [n for n, k in seen.items() if k > 1]
    if dups:
        problems.append(
            _problem(
                file,
                "duplicate header names: " + ", ".join(f"'{d}' ({seen[d]} times)" for d in dups),
                1,
                fix="give every column its own name",
            )
        )
    return names


def _read_csv(file: Path, problems: list[Problem], max_rows: int | None) -> pa.Table | None:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    header = _header(file, problems)
    if header is None:
        return None
    ragged: list[tuple[int, int]] = []

    def on_ragged(row: pacsv.InvalidRow) -> str:
        ragged.append((row.expected_columns, row.actual_columns))
        return "skip"  # recorded; the row's text is never echoed

    options = {
        "read_options": pacsv.ReadOptions(
            column_names=_unique_names(file, header, problems), skip_rows=1
        ),
        "parse_options": pacsv.ParseOptions(invalid_row_handler=on_ragged),
        "convert_options": pacsv.ConvertOptions(check_utf8=False, strings_can_be_null=True),
    }
    try:
        if max_rows is None:
            table = pacsv.read_csv(file, **options)
        else:  # the first blocks only (their types are inferred from the first block)
            table = _first_rows(pacsv.open_csv(file, **options), max_rows)
    except pa.ArrowInvalid:
        problems.append(
            _problem(file, "the file does not parse as CSV", expected="comma-separated text")
        )
        return None
    if ragged:
        lines = _ragged_lines(file, len(header))
        problems.append(_ragged_problem(file, len(header), ragged, lines))
    if table.num_rows == 0:
        problems.append(_problem(file, "the file has a header but no data rows", 2))
    return table


def _first_rows(batches: Iterable[pa.RecordBatch], max_rows: int) -> pa.Table:
    import pyarrow as pa

    taken, rows = [], 0
    for batch in batches:
        taken.append(batch)
        rows += batch.num_rows
        if rows >= max_rows:
            break
    if not taken:
        return pa.table({})
    return pa.Table.from_batches(taken).slice(0, max_rows)


def _ragged_problem(
    file: Path, width: int, ragged: list[tuple[int, int]], lines: list[int]
) -> Problem:
    shown = ", ".join(str(n) for n in lines[:3]) + (", ..." if len(ragged) > 3 else "")
    cells = sorted({got for _, got in ragged})
    return _problem(
        file,
        f"{_plural(len(ragged), 'row')} with the wrong number of cells (row {shown})",
        lines[0] if lines else None,
        expected=f"{width} cells (one per header column)",
        found=", ".join(map(str, cells[:5])) + " cells",
        fix="fix the rows, or quote cells that contain commas",
    )


def _ragged_lines(file: Path, width: int) -> list[int]:
    """Row numbers of the ragged rows (only on the error path: a scan with ``csv``)."""
    with file.open(newline="", encoding="utf-8", errors="replace") as fh:
        return [n for n, row in enumerate(csv.reader(fh), start=1) if row and len(row) != width]


def _left_out_rows(file: Path, width: int) -> list[int]:
    """Row numbers of the blank and ragged rows, which pyarrow's reader skips (only on the error
    path: a scan with ``csv``, whose records match pyarrow's, quoted line breaks included)."""
    with file.open(newline="", encoding="utf-8", errors="replace") as fh:
        return [n for n, row in enumerate(csv.reader(fh), start=1) if n > 1 and len(row) != width]


# ---- Parquet, Arrow IPC, Feather ----


def _read_binary(
    file: Path, fmt: str, problems: list[Problem], max_rows: int | None
) -> pa.Table | None:
    import pyarrow as pa

    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            if max_rows is None:
                table = pq.read_table(file)
            else:
                parquet = pq.ParquetFile(file)
                batches = parquet.iter_batches(batch_size=max_rows)
                table = _first_rows(batches, max_rows)
                if table.num_columns == 0:
                    table = parquet.schema_arrow.empty_table()
        else:  # arrow / feather: Feather v2 is the Arrow IPC file format
            import pyarrow.feather as feather

            table = feather.read_table(file)  # memory-mapped: slicing reads only those rows
            table = table if max_rows is None else table.slice(0, max_rows)
    except (pa.ArrowException, OSError):
        problems.append(
            _problem(
                file,
                f"the file is not a valid {fmt.capitalize()} file",
                expected=f"a {fmt} file",
                fix="check the file, or name its real format in data.source",
            )
        )
        return None
    if len(set(table.column_names)) != table.num_columns:
        dups = sorted({n for n in table.column_names if table.column_names.count(n) > 1})
        problems.append(_problem(file, "duplicate column names: " + ", ".join(dups)))
        return None
    if table.num_rows == 0:
        problems.append(_problem(file, "the table has no rows"))
    return table


# ---- column checks (every format) ----


def _check_columns(
    file: Path, table: pa.Table, numeric: set[str], rows: _Rows, problems: list[Problem]
) -> pa.Table:
    import pyarrow as pa

    columns = {}
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            col = _check_text(file, name, col, name in numeric, rows, problems)
        if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
            col = _check_numbers(file, name, col, rows, problems)
        elif name in numeric and not pa.types.is_null(col.type):
            problems.append(
                _problem(file, f"column '{name}' is declared numeric", found=str(col.type))
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
        problems.append(_encoding_problem(file, rows(bad), name))
        return col
    lengths = pc.binary_length(col)
    if (pc.max(lengths).as_py() or 0) > MAX_FIELD_CHARS:
        row = first_row(pc.greater(lengths, MAX_FIELD_CHARS))
        problems.append(
            _problem(
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
            _problem(
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
    """inf cells and numbers float32 cannot hold are problems; the column becomes float32."""
    import pyarrow as pa
    import pyarrow.compute as pc

    # integers above 2**53 round (safe=False): the column becomes float32 anyway
    wide = pc.cast(col, pa.float64(), safe=False)
    magnitude = pc.abs(wide)
    for mask, what in (
        (pc.is_inf(wide), "an infinite value"),
        (pc.and_(pc.is_finite(wide), pc.greater(magnitude, _F32_MAX)), "a number beyond float32"),
    ):
        if pc.any(mask).as_py():
            row = first_row(mask)
            problems.append(
                _problem(
                    file,
                    f"column '{name}': {what} ({_plural(pc.sum(mask).as_py(), 'cell')})",
                    rows(row),
                    expected=f"finite numbers within +-{_F32_MAX:.3g}",
                    found=str(wide[row].as_py()),
                    fix="clean the cells, or leave them empty for missing values",
                )
            )
    return pc.cast(wide, pa.float32(), safe=False)
