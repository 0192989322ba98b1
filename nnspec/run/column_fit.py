"""Fitting a table's columns on the training split (DATA-5): each column's type, fill value and
vocabulary, decided from a :class:`Summary` of its training cells.

A summary is mergeable: a table in memory is summarised in one piece, a streamed Parquet dataset
row group by row group (its training rows), and :func:`columns_from` decides from the merged
summaries with the same code either way, so a streamed run fits exactly the columns an in-memory
run fits. What a summary holds grows with a column's distinct values only where the decision
needs them: the value counts of text and true/false columns (the vocabulary), of numeric columns
declared categorical or binary, of an ``auto`` numeric column while every value is 0 or 1
(binary detection), and of numeric values when the fill is their median or most frequent value.
A ``mean`` fill (the default) keeps a float64 sum.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from nnspec.errors import DataError, Problem
from nnspec.run.columns import Column, Columns, Kind, as_text
from nnspec.run.table_readers import plural
from nnspec.run.tables import encodable, numeric_type, text_type
from nnspec.spec.data import DataSpec

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Summary", "ValueCounts", "summarise", "fit_columns", "columns_from", "needs"]


@dataclass(frozen=True, eq=False)
class ValueCounts:
    """Numbers and how often each occurs: 16 bytes a distinct value.

    Merged row group by row group, the pairs are piled up and sorted into distinct values only
    when the pile has doubled since it last was (``distinct``): n log n over a pass instead of a
    sort of everything so far at every row group.
    """

    values: np.ndarray
    counts: np.ndarray
    sorted_size: int = 0  # the pile's size when it was last made distinct

    @classmethod
    def of(cls, cells: np.ndarray) -> ValueCounts:
        values, counts = np.unique(cells, return_counts=True)
        return cls(values, counts.astype(np.int64), len(values))

    def __add__(self, other: ValueCounts) -> ValueCounts:
        values = np.concatenate([self.values, other.values])
        pile = ValueCounts(values, np.concatenate([self.counts, other.counts]), self.sorted_size)
        return pile.distinct() if len(pile.values) > 2 * max(self.sorted_size, 4096) else pile

    def distinct(self) -> ValueCounts:
        """Each value once, ascending, with its total count."""
        if self.sorted_size == len(self.values):
            return self
        values, at = np.unique(self.values, return_inverse=True)
        counts = np.bincount(at, weights=self.counts).astype(np.int64)
        return ValueCounts(values, counts, len(values))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ValueCounts):
            return False
        a, b = self.distinct(), other.distinct()
        return np.array_equal(a.values, b.values) and np.array_equal(a.counts, b.counts)

    def median(self) -> float:
        """numpy's median of the cells: the middle value, or the mean of the middle two."""
        d = self.distinct()
        n = int(d.counts.sum())
        ends = np.cumsum(d.counts)  # the cell number after each value's last cell
        middle = np.searchsorted(ends, [(n - 1) // 2, n // 2], side="right")
        return float(np.median(d.values[middle]))

    def mode(self) -> float:
        """The most frequent value (the smallest of those, on a tie)."""
        d = self.distinct()
        return float(d.values[np.argmax(d.counts)])


@dataclass
class Summary:
    """What the fit needs of one column's training cells (merge with :meth:`add`)."""

    type: Any  # pa.DataType
    rows: int = 0
    nulls: int = 0
    counts: Counter[str] | None = None  # text of present values -> count (see the module doc)
    low: float | None = None
    high: float | None = None
    only01: bool = True  # every present value is 0 or 1 (numbers)
    total: float = 0.0  # float64 sum of the present values (numbers)
    numbers: ValueCounts | None = None  # present numeric values and counts (median, mode)
    text: bool = field(default=False, repr=False)  # counts kept whatever the values

    def add(self, other: Summary) -> None:
        """Merge the summary of more cells of the same column."""
        self.rows, self.nulls = self.rows + other.rows, self.nulls + other.nulls
        self.total += other.total
        if other.low is not None:
            self.low = other.low if self.low is None else min(self.low, other.low)
            self.high = other.high if self.high is None else max(self.high, other.high)  # type: ignore[type-var]
        self.only01 = self.only01 and other.only01
        self.counts = _merged(self.counts, other.counts, keep=self.text or self.only01)
        if other.numbers is not None:
            self.numbers = other.numbers if self.numbers is None else self.numbers + other.numbers

    @property
    def present(self) -> int:
        return self.rows - self.nulls


def _merged(a: Counter[Any] | None, b: Counter[Any] | None, *, keep: bool) -> Counter[Any] | None:
    if not keep or b is None:
        return None if not keep else a
    if a is None:
        return Counter(b)
    a.update(b)
    return a


def needs(name: str, declared: str, spec: DataSpec, embed: bool) -> tuple[bool, bool]:
    """(keep text counts whatever the values, keep numeric value counts) for one column."""
    text = embed or declared in ("categorical", "binary")
    fill = spec.impute.columns.get(name, spec.impute.numeric)
    return text, fill in ("median", "most_frequent")


def summarise(col: pa.ChunkedArray | pa.Array, *, text: bool, numbers: bool) -> Summary:
    """The summary of some cells of a column (``text``, ``numbers``: see :func:`needs`)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    s = Summary(col.type, len(col), col.null_count, text=text or not numeric_type(col.type))
    if not encodable(col.type):  # refused by the fit (_kind), with every other problem
        return s
    if numeric_type(col.type) and s.present:
        low, high = (v.as_py() for v in pc.min_max(col).values())
        s.low, s.high = float(low), float(high)
        zero_one = pa.array([0, 1], col.type)
        s.only01 = low >= 0 and high <= 1 and bool(pc.all(pc.is_in(col, zero_one)).as_py())
        s.total = float(pc.sum(pc.cast(col, pa.float64())).as_py())
        if numbers:
            s.numbers = ValueCounts.of(pc.drop_null(col).to_numpy(zero_copy_only=False))
    if not numeric_type(col.type) or text or s.only01:
        counts = pc.value_counts(as_text(col))
        pairs = zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(),
                    strict=True)  # fmt: skip
        s.counts = Counter({v: n for v, n in pairs if v is not None})
    return s


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

    features = spec.features or tuple(n for n in table.column_names if n not in targets)
    rows = table.select([n for n in features if n in table.column_names]).take(pa.array(train))
    summaries = {}
    for name in rows.column_names:
        declared = spec.columns.get(name, "auto")
        if declared != "ignore":
            text, numbers = needs(name, declared, spec, name in embed)
            summaries[name] = summarise(rows.column(name), text=text, numbers=numbers)
    return columns_from(summaries, spec, file, embed)


def columns_from(
    summaries: dict[str, Summary], spec: DataSpec, file: str, embed: frozenset[str] = frozenset()
) -> Columns:
    """The fitted columns, in the order of ``summaries`` (see :func:`fit_columns`)."""
    problems: list[Problem] = []
    columns = []
    for name, s in summaries.items():
        declared = spec.columns.get(name, "auto")
        kind = _kind(name, s, "categorical" if name in embed else declared, file, problems)
        fitted = _fit(name, s, kind, spec, file, problems, name in embed) if kind else None
        if fitted is not None:  # a declared category is read as text (tables.read_table)
            columns.append(replace(fitted, text=declared in ("categorical", "binary")))
    if problems:
        raise DataError(problems, title=f"{file}: {plural(len(problems), 'column problem')}")
    return Columns(tuple(c for c in columns if c is not None))


def _kind(name: str, s: Summary, declared: str, file: str, problems: list[Problem]) -> Kind | None:
    import pyarrow as pa

    where = ("data", "columns", name)
    if s.nulls == s.rows:
        problems.append(
            Problem(where, f"{file}: column '{name}' has no value in the training split",
                    fix=f"set data.columns.{name}: ignore")
        )  # fmt: skip
        return None
    t = s.type
    if not encodable(t):
        problems.append(
            Problem(where, f"{file}: column '{name}' has a type nnspec cannot encode",
                    expected="numbers, text or true/false", found=str(t),
                    fix=f"set data.columns.{name}: ignore, or convert it to numbers or text")
        )  # fmt: skip
        return None
    if declared == "binary" and len(s.counts or ()) > 2:
        problems.append(
            Problem(where, f"{file}: column '{name}' is declared binary",
                    expected="at most two values", found=f"{len(s.counts or ())} values",
                    fix=f"set data.columns.{name}: categorical")
        )  # fmt: skip
        return None
    if declared != "auto":
        return declared  # type: ignore[return-value]
    if text_type(t):
        return "binary" if len(s.counts or ()) == 2 else "categorical"
    if pa.types.is_boolean(t):
        return "binary"
    # numbers: binary only when every value is 0 or 1, and both occur at least at the extremes
    return "binary" if s.low == 0 and s.high == 1 and s.only01 else "numeric"


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
    name: str, s: Summary, kind: Kind, spec: DataSpec, file: str, problems: list[Problem],
    embed: bool = False,
) -> Column | None:  # fmt: skip
    impute = _strategy(name, kind, spec, file, problems)
    missing = s.nulls
    indicator = spec.impute.indicator and missing > 0
    if kind == "numeric":
        fill = _numeric_fill(s, impute, spec.impute.fill_value)
        return Column(name, kind, impute, fill, (), missing, 0, indicator)
    ranked = _ranked(s.counts or Counter())
    if kind == "binary":
        pair = tuple(sorted(ranked))
        pair = pair if len(pair) == 2 else (pair[0], pair[0])
        fill = float(pair.index(ranked[0])) if impute == "most_frequent" else spec.impute.fill_value
        return Column(name, kind, impute, fill, pair, missing, len(ranked), indicator)
    kept = tuple(ranked if embed else ranked[: spec.max_categories])
    category = ranked[0] if impute == "most_frequent" else None
    return Column(name, kind, impute, category, kept, missing, len(ranked), indicator and not embed,
                  embed)  # fmt: skip


def _ranked(counts: Counter[str]) -> list[str]:
    """Distinct non-missing values as text, most frequent first (ties by value)."""
    return [v for v, _ in sorted(counts.items(), key=lambda p: (-p[1], p[0]))]


def _numeric_fill(s: Summary, impute: str, constant: float) -> float:
    if impute == "constant" or not s.present:
        return float(constant)
    if impute == "mean":  # in float64, over the present cells
        return s.total / s.present
    assert s.numbers is not None  # kept whenever the fill is the median or the mode (needs)
    return s.numbers.median() if impute == "median" else s.numbers.mode()
