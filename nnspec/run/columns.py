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
    "fit_columns",
    "check_names",
    "encode_rows",
    "as_table",
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


def _as_text(col: pa.ChunkedArray) -> pa.ChunkedArray:
    import pyarrow as pa
    import pyarrow.compute as pc

    return col if pa.types.is_string(col.type) else pc.cast(col, pa.string())


def _as_float(col: pa.ChunkedArray, name: str, where: str) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        col = pc.cast(col, pa.float32())
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
        text = _as_text(col)
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

    code = pc.index_in(_as_text(col), value_set=pa.array(c.categories, pa.string()))
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


# ---- fitting on the training split ----


def fit_columns(
    table: pa.Table, train: np.ndarray, spec: DataSpec, targets: tuple[str, ...], file: str,
    embed: frozenset[str] = frozenset(),
) -> Columns:  # fmt: skip
    """Type, impute and vocabulary of every feature column, from the training rows only.

    Args:
        table: every row (features and targets).
        train: indices of the training rows.
        spec: ``data.columns``, ``data.features``, ``data.impute``, ``data.max_categories``.
        targets: the target columns (never features).
        file: the table's name in messages.
        embed: categorical columns the model reads as named inputs of category ids (every
            training value kept, whatever ``max_categories`` is).

    Raises:
        DataError: every column problem at once (unknown names, a column with no values, an
            unsupported type, a binary column with more than two values, ...).
    """
    import pyarrow as pa

    problems: list[Problem] = []
    features = spec.features or tuple(n for n in table.column_names if n not in targets)
    rows = table.select([n for n in features if n in table.column_names]).take(pa.array(train))
    columns = []
    for name in rows.column_names:
        declared = spec.columns.get(name, "auto")
        if declared == "ignore":
            continue
        col = rows.column(name)
        kind = _kind(name, col, "categorical" if name in embed else declared, file, problems)
        if kind is not None:
            columns.append(_fit(name, col, kind, spec, file, problems, name in embed))
    if problems:
        raise DataError(problems, title=f"{file}: {len(problems)} column problem(s)")
    return Columns(tuple(c for c in columns if c is not None))


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


def _kind(
    name: str, col: pa.ChunkedArray, declared: str, file: str, problems: list[Problem]
) -> Kind | None:
    import pyarrow as pa
    import pyarrow.compute as pc

    where = ("data", "columns", name)
    if col.null_count == len(col):
        problems.append(
            Problem(where, f"{file}: column '{name}' has no value in the training split",
                    fix=f"set data.columns.{name}: ignore")
        )  # fmt: skip
        return None
    t = col.type
    if not (pa.types.is_string(t) or pa.types.is_boolean(t) or pa.types.is_floating(t)
            or pa.types.is_integer(t)):  # fmt: skip
        problems.append(
            Problem(where, f"{file}: column '{name}' has a type nnspec cannot encode",
                    expected="numbers, text or true/false", found=str(t),
                    fix=f"set data.columns.{name}: ignore, or convert it to numbers or text")
        )  # fmt: skip
        return None
    if declared == "binary":
        distinct = _distinct(col)
        if distinct > 2:
            problems.append(
                Problem(where, f"{file}: column '{name}' is declared binary",
                        expected="at most two values", found=f"{distinct} values",
                        fix=f"set data.columns.{name}: categorical")
            )  # fmt: skip
            return None
    if declared != "auto":
        return declared  # type: ignore[return-value]
    if pa.types.is_string(t):
        return "binary" if _distinct(col) == 2 else "categorical"
    if pa.types.is_boolean(t):
        return "binary"
    # numbers: binary only when every value is 0 or 1 (min/max first: no hashing of the column)
    low, high = (v.as_py() for v in pc.min_max(col).values())
    if low == 0 and high == 1 and pc.all(pc.is_in(col, pa.array([0, 1], t))).as_py():
        return "binary"
    return "numeric"


def _strategy(name: str, kind: Kind, spec: DataSpec, file: str, problems: list[Problem]) -> Any:
    chosen = spec.impute.columns.get(name)
    if chosen is None:
        return spec.impute.numeric if kind == "numeric" else spec.impute.categorical
    if kind != "numeric" and chosen in ("mean", "median"):
        problems.append(
            Problem(("data", "impute", "columns", name),
                    f"{file}: column '{name}' is {kind}; {chosen} needs numbers",
                    expected="most_frequent or constant", found=chosen)
        )  # fmt: skip
    return chosen


def _fit(
    name: str, col: pa.ChunkedArray, kind: Kind, spec: DataSpec, file: str, problems: list[Problem],
    embed: bool = False,
) -> Column | None:  # fmt: skip
    impute = _strategy(name, kind, spec, file, problems)
    missing = col.null_count
    indicator = spec.impute.indicator and missing > 0
    if kind == "numeric":
        fill = _numeric_fill(col, impute, spec.impute.fill_value)
        return Column(name, kind, impute, fill, (), missing, 0, indicator)
    ranked = _ranked(col)
    if kind == "binary":
        pair = tuple(sorted(ranked))
        pair = pair if len(pair) == 2 else (pair[0], pair[0])
        fill = float(pair.index(ranked[0])) if impute == "most_frequent" else spec.impute.fill_value
        return Column(name, kind, impute, fill, pair, missing, len(ranked), indicator)
    kept = tuple(ranked if embed else ranked[: spec.max_categories])
    fill = ranked[0] if impute == "most_frequent" else None
    return Column(name, kind, impute, fill, kept, missing, len(ranked), indicator and not embed,
                  embed)  # fmt: skip


def _distinct(col: pa.ChunkedArray) -> int:
    import pyarrow.compute as pc

    return int(pc.count_distinct(col).as_py())


def _ranked(col: pa.ChunkedArray) -> list[str]:
    """Distinct non-missing values as text, most frequent first (ties by value)."""
    import pyarrow.compute as pc

    counts = pc.value_counts(_as_text(col))
    pairs = zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True)
    return [v for v, _ in sorted(((v, n) for v, n in pairs if v is not None),
                                 key=lambda p: (-p[1], p[0]))]  # fmt: skip


def _numeric_fill(col: pa.ChunkedArray, impute: str, constant: float) -> float:
    import pyarrow as pa
    import pyarrow.compute as pc

    if impute == "constant" or col.null_count == len(col):
        return float(constant)
    if impute == "mean":  # in float64, over the present cells
        return float(pc.mean(pc.cast(col, pa.float64())).as_py())
    present = pc.drop_null(col).to_numpy(zero_copy_only=False)
    if impute == "median":
        return float(np.median(present))
    values, counts = np.unique(present, return_counts=True)
    return float(values[np.argmax(counts)])


def encode_rows(rows: object, columns: Columns) -> np.ndarray:
    """Encode prediction rows (see :func:`as_table`) with fitted columns."""
    return columns.encode(as_table(rows), str(rows) if isinstance(rows, str) else "rows")


def as_table(rows: object) -> pa.Table:
    """Rows for prediction as an Arrow table: a table file (by its suffix; ``.feather`` and
    ``.arrow`` read alike), a pyarrow Table, a pandas DataFrame, or a mapping column -> values.

    Raises:
        DataError: anything else, or a file with problems.
    """
    import pyarrow as pa

    from nnspec.run.tables import TABLE_FORMATS, read_table

    if isinstance(rows, (str, Path)):
        file = Path(rows)
        fmt = file.suffix.lstrip(".").lower()
        return read_table(file, fmt if fmt in TABLE_FORMATS else "csv")
    if isinstance(rows, pa.Table):
        return rows
    if hasattr(rows, "to_numpy") and hasattr(rows, "columns"):  # a pandas DataFrame
        return pa.Table.from_pandas(rows, preserve_index=False)
    if isinstance(rows, dict):
        return pa.table({str(k): list(v) if not hasattr(v, "__array__") else v
                         for k, v in rows.items()})  # fmt: skip
    raise DataError(
        Problem(
            ("data",),
            "a model trained on a table predicts from rows with the same columns",
            expected="a table file path, a pyarrow Table, a pandas DataFrame or a dict "
            "column -> values",
            found=type(rows).__name__,
        )
    )
