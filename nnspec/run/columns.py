"""Typed table columns: types inferred and statistics fitted on the training split (DATA-5),
then every row encoded to float32 inputs.

A column is ``numeric`` (imputed, then standardised with the other inputs), ``binary`` (one 0/1
input) or ``categorical`` (one-hot over the ``data.max_categories`` most frequent training values
plus an ``unknown`` slot that takes rarer values and values never seen in training, and a
``missing`` slot when missing cells are a category of their own). A categorical column
that the model names as one of its ``inputs`` is **embedded** instead: it becomes a named int64
input of shape ``(1,)`` holding the category's id (every training value in the vocabulary, most
frequent first, then the ``unknown`` id, then a ``missing`` id when missing is a category of its
own), for an ``embedding`` layer whose ``num_embeddings`` is :attr:`Column.vocab_size`.

The fitted :class:`Columns` is plain JSON (``preprocess.json`` of a run): ``predict``, ``eval``
and ``load_run`` encode new rows with it, never refitting.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np

from nnspec.errors import DataError, Problem, did_you_mean
from nnspec.spec.data import DataSpec, ImputeName

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "Column",
    "Columns",
    "check_names",
    "encode_rows",
    "as_table",
    "as_text",
    "Kind",
    "UNKNOWN",
    "MISSING",
]

Kind = Literal["numeric", "categorical", "binary"]
UNKNOWN: Final = "<unknown>"  # the one-hot slot of values the training split did not have
MISSING: Final = "<missing>"  # the one-hot slot of missing cells (impute: constant)


@dataclass(frozen=True)
class Column:
    """One fitted feature column.

    ``fill`` is the imputed value: a number for numeric and binary columns, a category for a
    categorical column imputed with ``most_frequent``, None when missing is its own slot.
    ``categories``: the one-hot slots of a categorical column (before ``unknown``), or the
    (0, 1) values of a binary column.
    """

    name: str
    kind: Kind
    impute: ImputeName
    fill: float | str | None
    categories: tuple[str, ...] = ()
    missing: int = 0
    cardinality: int = 0  # distinct training values (categorical and binary columns)
    indicator: bool = False
    embed: bool = False  # a named int64 input of category ids, not one-hot inputs
    text: bool = False  # read as text (declared categorical or binary): predict reads it alike

    @property
    def vocab_size(self) -> int:
        """Ids of an embedded column: its categories, ``unknown``, and ``missing`` if it has one."""
        return len(self.categories) + 1 + self._missing_slot

    @property
    def names(self) -> tuple[str, ...]:
        """Names of the encoded inputs, in order (an embedded column: its one input of ids)."""
        if self.embed:
            return (self.name,)
        if self.kind == "categorical":
            slots = (*self.categories, UNKNOWN, *((MISSING,) if self._missing_slot else ()))
            own = tuple(f"{self.name}={c}" for c in slots)
        else:
            own = (self.name,)
        return own + ((f"{self.name}:missing",) if self.indicator else ())

    @property
    def _missing_slot(self) -> bool:
        return self.kind == "categorical" and self.fill is None and self.missing > 0

    def encoding(self) -> str:
        """How the column becomes inputs, in words (for ``nnspec data``)."""
        extra = " + missing indicator" if self.indicator else ""
        if self.embed:
            missing = " + missing" if self._missing_slot else ""
            return (
                f"embedding input '{self.name}': ids of {len(self.categories)} + unknown{missing}"
            )
        if self.kind == "numeric":
            return f"standardised, missing -> {self.impute} ({self.fill:.4g})" + extra
        if self.kind == "binary":
            return f"0/1 ({self.categories[0]} / {self.categories[1]})" + extra
        return (
            f"one-hot {len(self.categories)} + unknown"
            + (" + missing" if self._missing_slot else "")
            + extra
        )


@dataclass(frozen=True)
class Columns:
    """The fitted columns of a table, in input order."""

    columns: tuple[Column, ...]

    @property
    def dense(self) -> tuple[Column, ...]:
        """The columns encoded into the float matrix (every column but the embedded ones)."""
        return tuple(c for c in self.columns if not c.embed)

    @property
    def embedded(self) -> tuple[Column, ...]:
        """The columns that are named int64 inputs of category ids."""
        return tuple(c for c in self.columns if c.embed)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for c in self.dense for n in c.names)

    @property
    def width(self) -> int:
        return len(self.names)

    def standardised(self) -> np.ndarray:
        """Per encoded input: True for numeric values (standardised), False for 0/1 inputs."""
        flags = []
        for c in self.dense:
            flags += [c.kind == "numeric"] * (len(c.names) - c.indicator) + [False] * c.indicator
        return np.array(flags, dtype=bool)

    def to_json(self) -> list[dict[str, Any]]:
        return [asdict(c) for c in self.columns]

    @classmethod
    def from_json(cls, data: list[dict[str, Any]]) -> Columns:
        return cls(tuple(Column(**{**c, "categories": tuple(c["categories"])}) for c in data))

    def encode(self, table: pa.Table, where: str = "data") -> np.ndarray:
        """Encode ``table``'s rows to a float32 matrix ``(rows, width)``.

        Raises:
            DataError: a fitted column is absent, or a numeric column holds text.
        """
        absent = [c.name for c in self.columns if c.name not in table.column_names]
        if absent:
            raise DataError(
                Problem(
                    ("data",),
                    f"{where}: the model's input columns are missing: " + ", ".join(absent),
                    expected="the columns the model was trained on",
                    found=", ".join(table.column_names),
                )
            )
        out = np.empty((table.num_rows, self.width), dtype=np.float32)
        at = 0
        for c in self.dense:  # each column's inputs written in place: no concatenation copy
            width = len(c.names)
            out[:, at : at + width] = _encode(c, table.column(c.name), where)
            at += width
        return out

    def encode_ids(self, table: pa.Table, where: str = "data") -> dict[str, np.ndarray]:
        """The embedded columns' category ids, int64 ``(rows, 1)`` by column name (unseen
        values: the ``unknown`` id)."""
        return {c.name: _ids(c, table.column(c.name)) for c in self.embedded}


def as_text(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """The column as text (the form categories are compared and counted in)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    return col if pa.types.is_string(col.type) else pc.cast(col, pa.string())


def _as_float(col: pa.ChunkedArray, name: str, where: str) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    numeric = pa.types.is_integer(col.type) or pa.types.is_floating(col.type)
    try:
        col = pc.cast(col, pa.float32(), safe=not numeric)  # a wide integer: the nearest float
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise DataError(
            Problem(("data",), f"{where}: column '{name}' must hold numbers", found=str(col.type))
        ) from e
    return np.array(col.to_numpy(zero_copy_only=False), dtype=np.float32)  # a writable copy


def _encode(c: Column, col: pa.ChunkedArray, where: str) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    missing = col.is_null().to_numpy(zero_copy_only=False)
    if c.kind == "numeric":
        values = _as_float(col, c.name, where)
        values[missing] = c.fill
        own = values[:, None]
    else:
        text = as_text(col)
        code = pc.index_in(text, value_set=pa.array(c.categories, pa.string()))
        code = code.to_numpy(zero_copy_only=False)  # float, NaN where not found or missing
        if c.kind == "binary":  # the first value is 0, the second 1; an unseen one is missing
            own = np.where(np.isnan(code), c.fill, code)[:, None]
        else:
            own = _one_hot(c, code, missing)
    if c.indicator:
        own = np.concatenate([own, missing[:, None]], axis=1)
    return own


def _ids(c: Column, col: pa.ChunkedArray) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    code = pc.index_in(as_text(col), value_set=pa.array(c.categories, pa.string()))
    return _slots(
        c, code.to_numpy(zero_copy_only=False), col.is_null().to_numpy(zero_copy_only=False)
    )[:, None]


def _slots(c: Column, code: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """Each cell's slot: its category's index, ``unknown`` (k), or the missing slot."""
    k = len(c.categories)
    slot = np.where(np.isnan(code), k, np.nan_to_num(code)).astype(np.int64)  # k: unknown
    if c.fill is None:  # the missing slot; the unknown slot when training had no missing cell
        slot[missing] = k + 1 if c.missing else k
    else:
        slot[missing] = c.categories.index(str(c.fill))
    return slot


def _one_hot(c: Column, code: np.ndarray, missing: np.ndarray) -> np.ndarray:
    slot = _slots(c, code, missing)
    out = np.zeros((len(code), len(c.names) - c.indicator), dtype=np.float32)
    out[np.arange(len(code)), slot] = 1.0
    return out


def check_names(
    header: list[str], spec: DataSpec, targets: tuple[str, ...], file: str
) -> list[Problem]:
    """Problems of the column names the spec gives that ``header`` lacks."""
    named = (
        [(("data", "columns", n), n) for n in spec.columns]
        + [(("data", "impute", "columns", n), n) for n in spec.impute.columns]
        + [(("data", "features", i), n) for i, n in enumerate(spec.features or ())]
        + [(("data", "target"), t) for t in targets]
    )
    problems = []
    for path, name in named:
        if name not in header:
            hint = did_you_mean(name, header)
            problems.append(
                Problem(path, f"{file} has no column '{name}'" + (f"; {hint}" if hint else ""),
                        expected="one of " + ", ".join(header), found=name)
            )  # fmt: skip
    return problems


def encode_rows(rows: object, columns: Columns) -> np.ndarray:
    """Encode prediction rows (see :func:`as_table`) with fitted columns."""
    text = [c.name for c in columns.columns if c.text]
    return columns.encode(as_table(rows, text), str(rows) if isinstance(rows, str) else "rows")


def as_table(rows: object, text: list[str] | None = None) -> pa.Table:
    """Rows for prediction as an Arrow table: a table file (by its suffix; ``.feather`` and
    ``.arrow`` read alike), a pyarrow Table, a pandas DataFrame, or a mapping column -> values;
    ``text``: the columns training read as text (:attr:`Column.text`), read so again.

    Raises:
        DataError: anything else, or a file with problems.
    """
    import pyarrow as pa

    from nnspec.run.tables import TABLE_FORMATS, check_table, read_table

    if isinstance(rows, (str, Path)):
        file = Path(rows)
        fmt = file.suffix.lstrip(".").lower()
        return read_table(file, fmt if fmt in TABLE_FORMATS else "csv", text=text or ())
    table = None
    if isinstance(rows, pa.Table):
        table = rows
    elif hasattr(rows, "to_numpy") and hasattr(rows, "columns"):  # a pandas DataFrame
        table = pa.Table.from_pandas(rows, preserve_index=False)
    elif isinstance(rows, dict):
        table = pa.table({str(k): list(v) if not hasattr(v, "__array__") else v
                          for k, v in rows.items()})  # fmt: skip
    if table is not None:  # checked and typed as training checked its table
        return check_table(table, "rows", text=text or ())
    raise DataError(
        Problem(
            ("data",),
            "a model trained on a table predicts from rows with the same columns",
            expected="a table file path, a pyarrow Table, a pandas DataFrame or a dict "
            "column -> values",
            found=type(rows).__name__,
        )
    )
