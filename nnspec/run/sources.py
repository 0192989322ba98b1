"""Data sources: a registry from the ``data.source`` prefix to a loader returning raw arrays.

Built in: ``sklearn:NAME`` (bundled with scikit-learn, no download), ``synthetic:KIND`` (seeded
generators: ``classification`` and ``regression`` give float features, ``sequence_count`` and
``sequence_compare`` give int64 token sequences for a model that starts with an ``embedding``),
tables ``csv:PATH``, ``parquet:PATH``, ``arrow:PATH``, ``feather:PATH`` (typed columns, see
:mod:`nnspec.run.tables` and :mod:`nnspec.run.columns`), arrays ``npz:PATH``, ``npy:PATH``
(:mod:`nnspec.run.arrays`); relative paths resolve against the spec file's folder. ``user`` data
is passed to :func:`nnspec.train` directly. The prefixes and their closed name lists are
:data:`nnspec.spec.data.SOURCE_NAMES`, which ``nnspec validate`` checks without loading anything.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nnspec.errors import DataError, Problem, did_you_mean
from nnspec.registry import Registry
from nnspec.run.arrays import check_finite, load_npy, load_npz
from nnspec.run.tables import TABLE_FORMATS
from nnspec.spec.data import SOURCE_NAMES, DataSpec

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
]


@dataclass(frozen=True)
class RawData:
    """Samples before splitting: features ``x`` (N, ...) and targets ``y`` (N,) or (N, K)."""

    x: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...] = ()
    class_names: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)


Loader = Callable[[str, DataSpec, int, "Path | None"], "RawData | TableData"]


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


# ---- synthetic generators (seeded; for benchmarks, examples and tests) ----


def _opt(spec: DataSpec, key: str, default: Any) -> Any:
    # data.options is free-form per generator; each generator documents its keys and defaults here.
    return spec.options.get(key, default)


def _synth_classification(spec: DataSpec, seed: int) -> RawData:
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=spec.n_samples or 2000,
        n_features=_opt(spec, "n_features", 20),
        n_informative=_opt(spec, "n_informative", 10),
        n_classes=_opt(spec, "n_classes", 3),
        class_sep=_opt(spec, "class_sep", 1.0),
        random_state=seed,
    )
    return RawData(x.astype(np.float32), y)


def _synth_regression(spec: DataSpec, seed: int) -> RawData:
    from sklearn.datasets import make_regression

    x, y = make_regression(
        n_samples=spec.n_samples or 2000,
        n_features=_opt(spec, "n_features", 20),
        n_informative=_opt(spec, "n_informative", 10),
        noise=_opt(spec, "noise", 10.0),
        random_state=seed,
    )
    return RawData(x.astype(np.float32), y.astype(np.float32))


# Token-sequence tasks: integer ids in [0, vocab_size) of shape (N, length), for models that start
# with an `embedding` layer. The counts of the marked tokens are drawn first (uniformly) and
# placed at random positions; every other position holds a random "filler" token. Drawing the
# counts, rather than the tokens, keeps the classes balanced, so predicting the majority class
# scores far below a model that really counts.
TOKEN_DEFAULTS: dict[str, int] = {
    "length": 30,  # sequence length (the example task)
    "vocab_size": 10,  # token ids 0..9; the embedding needs num_embeddings >= vocab_size
    "token_a": 1,  # the token that is counted / compared
    "token_b": 2,  # sequence_compare: the token A is compared with
    "max_count": 9,  # counts are drawn from 0..max_count (sequence_count: classes 0..9)
}


def _token_options(spec: DataSpec, used: tuple[str, ...]) -> dict[str, int]:
    for key in spec.options:  # a misspelt option would silently fall back to its default
        if key not in used:
            hint = did_you_mean(key, used)
            raise _problem(
                ("data", "options", key),
                f"{spec.source} has no option '{key}'" + (f"; {hint}" if hint else ""),
                expected=", ".join(used),
                found=key,
                fix=f"remove data.options.{key} (on the command line: ~data.options.{key})",
            )
    opts = {k: _opt(spec, k, TOKEN_DEFAULTS[k]) for k in used}
    bad = [k for k, v in opts.items() if not isinstance(v, int) or isinstance(v, bool) or v < 0]
    if bad:
        raise DataError(
            [
                Problem(("data", "options", k), f"{k} must be a non-negative integer",
                        found=repr(opts[k]))
                for k in bad
            ]
        )  # fmt: skip
    marks = [opts[k] for k in ("token_a", "token_b") if k in opts]
    vocab, length, top = opts["vocab_size"], opts["length"], opts["max_count"]
    checks = [
        (max(marks) < vocab, "vocab_size", "the marked tokens must be in the vocabulary",
         f"token ids below vocab_size {vocab}", str(marks)),
        (len(set(marks)) == len(marks), "token_b", "token_b must differ from token_a",
         "two different token ids", str(marks)),
        (top * len(marks) <= length, "max_count", "the marked tokens do not fit the sequence",
         f"max_count * {len(marks)} <= length {length}", str(top)),
        (vocab > len(marks), "vocab_size", "no filler token is left besides the marked ones",
         f"vocab_size > {len(marks)}", str(vocab)),
    ]  # fmt: skip
    problems = [
        Problem(("data", "options", key), msg, expected=want, found=found)
        for ok, key, msg, want, found in checks
        if not ok
    ]
    if problems:
        raise DataError(problems)
    return opts


def place_tokens(
    rng: np.random.Generator, counts: np.ndarray, marks: tuple[int, ...], length: int, vocab: int
) -> np.ndarray:
    """Sequences holding ``counts[i, j]`` copies of token ``marks[j]`` at random positions.

    The remaining positions get tokens drawn uniformly from the vocabulary minus ``marks``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> seq = place_tokens(rng, np.array([[3, 1]]), (1, 2), 8, 5)
        >>> int((seq == 1).sum()), int((seq == 2).sum()), seq.shape
        (3, 1, (1, 8))
    """
    fillers = np.setdiff1d(np.arange(vocab), marks)
    x = fillers[rng.integers(0, len(fillers), size=(len(counts), length))]
    # One random permutation of positions per sequence: the first counts[:, 0] slots get mark 0,
    # the next counts[:, 1] mark 1, and so on (vectorised; no per-sample Python loop).
    slots = np.argsort(rng.random((len(counts), length)), axis=1)
    rank = np.empty_like(slots)
    np.put_along_axis(rank, slots, np.arange(length)[None, :], axis=1)
    edges = np.cumsum(counts, axis=1)
    for j, mark in enumerate(marks):
        lo = edges[:, j - 1 : j] if j else 0
        x[(rank >= lo) & (rank < edges[:, j : j + 1])] = mark
    return x.astype(np.int64)


def _synth_sequence_count(spec: DataSpec, seed: int) -> RawData:
    # "How many times does token A occur?": class = the count, 0..max_count (balanced).
    o = _token_options(spec, ("length", "vocab_size", "token_a", "max_count"))
    rng = np.random.default_rng(seed)
    n = spec.n_samples or 4000
    counts = rng.integers(0, o["max_count"] + 1, size=(n, 1))
    x = place_tokens(rng, counts, (o["token_a"],), o["length"], o["vocab_size"])
    meta = {"n_classes": o["max_count"] + 1, "vocab_size": o["vocab_size"]}
    return RawData(x, counts[:, 0].astype(np.int64), meta=meta)


def _synth_sequence_compare(spec: DataSpec, seed: int) -> RawData:
    # "Does token A occur more often than token B?": 1 if yes, 0 if fewer. The two counts are
    # drawn from 0..max_count and never equal (a tie has no answer), so the classes are balanced.
    o = _token_options(spec, ("length", "vocab_size", "token_a", "token_b", "max_count"))
    rng = np.random.default_rng(seed)
    n = spec.n_samples or 4000
    a = rng.integers(0, o["max_count"] + 1, size=n)
    b = (a + rng.integers(1, o["max_count"] + 1, size=n)) % (o["max_count"] + 1)  # b != a
    x = place_tokens(
        rng, np.stack([a, b], axis=1), (o["token_a"], o["token_b"]), o["length"], o["vocab_size"]
    )
    return RawData(x, (a > b).astype(np.int64), meta={"vocab_size": o["vocab_size"]})


SYNTHETIC: dict[str, Callable[[DataSpec, int], RawData]] = {
    "classification": _synth_classification,
    "regression": _synth_regression,
    "sequence_count": _synth_sequence_count,
    "sequence_compare": _synth_sequence_compare,
}


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
    if not p.is_file():
        raise _problem(field, f"data file not found: {p}", fix="check the path")
    return p


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
    numeric = [n for n, kind in spec.columns.items() if kind == "numeric"]
    table = read_table(file, fmt, numeric=numeric, max_rows=max_rows)
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
    numeric = [n for n, kind in spec.columns.items() if kind == "numeric"]
    return split_target(check_table(table, "data", numeric=numeric), targets, "data")


def split_target(table: Any, targets: tuple[str, ...], name: str) -> TableData:
    """A pyarrow table split into feature columns and target values; rows without a target are
    left out (counted in a warning)."""
    import pyarrow.compute as pc

    keep = pc.is_valid(table.column(targets[0]))
    for t in targets[1:]:
        keep = pc.and_(keep, pc.is_valid(table.column(t)))
    dropped = table.num_rows - pc.sum(keep).as_py()
    if dropped:
        rows = f"{dropped} of {table.num_rows} row{'s' * (table.num_rows != 1)}"
        warnings.warn(
            f"{name}: {rows} have no target value ({', '.join(targets)}) and were left out",
            stacklevel=4,
        )
        table = table.filter(keep)
    ys = [_target_values(table.column(t)) for t in targets]
    y = ys[0] if len(ys) == 1 else np.stack(ys, axis=1)
    return TableData(table.drop_columns(list(targets)), y, name, targets, dropped)


def _target_values(col: Any) -> np.ndarray:
    """A target column as numpy: whole numbers as int64 (class labels), text as str."""
    import pyarrow as pa

    if pa.types.is_floating(col.type) or pa.types.is_integer(col.type):
        values = col.to_numpy(zero_copy_only=False)
        whole = np.all(np.mod(values, 1) == 0) and np.abs(values).max(initial=0) < 2**53
        return values.astype(np.int64) if whole else values
    return np.array([str(v) for v in col.to_pylist()])


def _table_loader(fmt: str) -> Loader:
    def load(path: str, spec: DataSpec, seed: int, base: Path | None) -> TableData:
        return load_table(data_file(path, base), fmt, spec)

    return load


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


def _npy(path: str, spec: DataSpec, seed: int, base: Path | None) -> RawData:
    return RawData(*load_npy(data_file(path, base)))


SOURCES: Registry[Loader] = Registry("data source")
for _prefix, _loader in (
    ("sklearn", _sklearn),
    ("synthetic", _synthetic),
    *((fmt, _table_loader(fmt)) for fmt in TABLE_FORMATS),
    ("npz", _npz),
    ("npy", _npy),
):
    SOURCES.register(_prefix, _loader)


def load_source(spec: DataSpec, seed: int, base: Path | None = None) -> RawData | TableData:
    """Load the raw samples named by ``data.source``.

    Args:
        spec: the data section.
        seed: the experiment seed (synthetic generators use it).
        base: folder that relative file paths resolve against (the spec file's folder).
    """
    prefix, _, arg = spec.source.partition(":")
    raw = SOURCES[prefix](arg, spec, seed, base)
    if isinstance(raw, RawData) and raw.x.shape[0] != raw.y.shape[0]:
        raise _problem(
            ("data", "source"),
            "features and targets have different numbers of samples",
            found=f"{raw.x.shape[0]} vs {raw.y.shape[0]}",
        )
    return raw
