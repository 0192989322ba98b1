"""The file readers behind :func:`nnspec.run.tables.read_table`: CSV (its header, ragged and
blank rows, text that is not UTF-8) and Parquet, Arrow IPC / Feather, each read with pyarrow, its
problems appended to the caller's list; and the helpers that word a data file's problems, shared
with the column checks of :mod:`nnspec.run.tables`.

A file that does not parse as the declared format is never echoed. pyarrow is imported here only,
when a table is read.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Final

from nnspec.errors import Problem

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "WHERE",
    "read_csv",
    "read_binary",
    "left_out_rows",
    "file_problem",
    "encoding_problem",
    "plural",
]

_SNIFF_BYTES: Final = 1 << 16
# the problems' field path until the caller sets its own (data.source, or a command argument)
WHERE: Final = ("data", "source")


def plural(n: int, word: str) -> str:
    """``1 row``, ``2 rows``."""
    return f"{n} {word}{'s' * (n != 1)}"


def file_problem(file: Path, message: str, line: int | None = None, **kw: str) -> Problem:
    """A problem of ``file`` (at ``line``, when known); ``kw``: expected, found, fix."""
    return Problem(WHERE, message, file=file.name, line=line, **kw)  # type: ignore[arg-type]


# ---- CSV ----


def _header(file: Path, problems: list[Problem]) -> list[str] | None:
    """The header names, or None (with a problem) when the file is not CSV text."""
    with file.open("rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    if not head.strip():
        problems.append(file_problem(file, "the file is empty", fix="write a header row and data"))
        return None
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in head:
        problems.append(
            file_problem(
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
        problems.append(encoding_problem(file, 1))
        return None
    names = [h.strip() for h in next(csv.reader(io.StringIO(text)), [])]
    if not names:  # a blank first line: pyarrow would invent the names
        problems.append(
            file_problem(
                file,
                "the first line is empty",
                1,
                expected="a header row of column names",
                fix="remove the blank line(s) before the header",
            )
        )
        return None
    return names


def encoding_problem(file: Path, line: int | None, column: str | None = None) -> Problem:
    where = f"column '{column}': " if column else ""
    return file_problem(
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
                file_problem(file, f"header column {i} has no name", 1, fix="name every column")
            )
            name = f"column{i}"
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name}.{seen[name]}")
    dups = [n for n, k in seen.items() if k > 1]
    if dups:
        problems.append(
            file_problem(
                file,
                "duplicate header names: " + ", ".join(f"'{d}' ({seen[d]} times)" for d in dups),
                1,
                fix="give every column its own name",
            )
        )
    return names


def read_csv(
    file: Path, problems: list[Problem], max_rows: int | None, text: Collection[str] = ()
) -> pa.Table | None:
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
        # ``text`` columns stay text (a zip code keeps its leading zero)
        "convert_options": pacsv.ConvertOptions(
            check_utf8=False, strings_can_be_null=True, column_types={n: pa.string() for n in text}
        ),
    }
    try:
        if max_rows is None:
            table = pacsv.read_csv(file, **options)
        else:  # the first blocks only (their types are inferred from the first block)
            table = _first_rows(pacsv.open_csv(file, **options), max_rows)
    except pa.ArrowInvalid:
        problems.append(
            file_problem(file, "the file does not parse as CSV", expected="comma-separated text")
        )
        return None
    if ragged:
        lines = _ragged_lines(file, len(header))
        problems.append(_ragged_problem(file, len(header), ragged, lines))
    if table.num_rows == 0:
        problems.append(file_problem(file, "the file has a header but no data rows", 2))
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
    return file_problem(
        file,
        f"{plural(len(ragged), 'row')} with the wrong number of cells (row {shown})",
        lines[0] if lines else None,
        expected=f"{width} cells (one per header column)",
        found=", ".join(map(str, cells[:5])) + " cells",
        fix="fix the rows, or quote cells that contain commas",
    )


def _ragged_lines(file: Path, width: int) -> list[int]:
    """Row numbers of the ragged rows (only on the error path: a scan with ``csv``)."""
    with file.open(newline="", encoding="utf-8", errors="replace") as fh:
        return [n for n, row in enumerate(csv.reader(fh), start=1) if row and len(row) != width]


def left_out_rows(file: Path, width: int) -> list[int]:
    """Row numbers of the blank and ragged rows, which pyarrow's reader skips (only on the error
    path: a scan with ``csv``, whose records match pyarrow's, quoted line breaks included)."""
    with file.open(newline="", encoding="utf-8", errors="replace") as fh:
        return [n for n, row in enumerate(csv.reader(fh), start=1) if n > 1 and len(row) != width]


# ---- Parquet, Arrow IPC, Feather ----


def read_binary(
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
            file_problem(
                file,
                f"the file is not a valid {fmt.capitalize()} file",
                expected=f"a {fmt} file",
                fix="check the file, or name its real format in data.source",
            )
        )
        return None
    if len(set(table.column_names)) != table.num_columns:
        dups = sorted({n for n in table.column_names if table.column_names.count(n) > 1})
        problems.append(file_problem(file, "duplicate column names: " + ", ".join(dups)))
        return None
    if table.num_rows == 0:
        problems.append(file_problem(file, "the table has no rows"))
    return table
