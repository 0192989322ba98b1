"""Data sources: a registry from the ``data.source`` prefix to a loader returning raw arrays.

Built in: ``sklearn:NAME`` (bundled with scikit-learn, no download), ``synthetic:KIND`` (seeded
generators: ``classification`` and ``regression`` give float features, ``sequence_count`` and
``sequence_compare`` give int64 token sequences for a model that starts with an ``embedding``),
``csv:PATH``, ``npz:PATH``, ``npy:PATH`` (relative paths resolve against the spec file's folder).
``user`` data is passed to :func:`nnspec.train` directly.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nnspec.errors import DataError, Problem, did_you_mean
from nnspec.registry import Registry
from nnspec.spec.data import DataSpec

__all__ = ["RawData", "SOURCES", "SKLEARN_SETS", "SYNTHETIC", "data_file", "load_source"]


@dataclass(frozen=True)
class RawData:
    """Samples before splitting: features ``x`` (N, ...) and targets ``y`` (N,) or (N, K)."""

    x: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...] = ()
    class_names: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)


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

SKLEARN_SETS: tuple[str, ...] = ("digits", "breast_cancer", "wine", "iris", "diabetes")


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
            "a CSV source needs the target column(s)",
            fix="set data.target: <column name>",
        )
    return (spec.target,) if isinstance(spec.target, str) else tuple(spec.target)


def _targets_opt(spec: DataSpec) -> tuple[str, ...]:
    if spec.target is None:
        return ()
    return (spec.target,) if isinstance(spec.target, str) else tuple(spec.target)


def _parse_cell(text: str, column: str, row: int, where: str) -> float:
    try:
        value = float(text)
        if value == value:  # NaN cells are refused too (DATA-1)
            return value
    except ValueError:
        pass
    raise _problem(
        ("data", "source"),
        f"{where}: row {row}, column '{column}': not a number",
        expected="a numeric value",
        found=repr(text),
        fix="clean the cell, or leave the column out with data.features",
    )


def _csv(path: str, spec: DataSpec, seed: int, base: Path | None) -> RawData:
    return parse_csv(data_file(path, base), spec, need_target=True)


def _read_rows(file: Path) -> tuple[list[str], list[list[str]]]:
    with file.open(newline="") as fh:
        rows = [r for r in csv.reader(fh) if r]  # blank lines carry no sample
    if not rows:
        raise _problem(("data", "source"), f"{file}: empty CSV file")
    header = [h.strip() for h in rows[0]]
    for n, r in enumerate(rows[1:], start=2):  # row 1 is the header
        if len(r) != len(header):
            raise _problem(
                ("data", "source"),
                f"{file.name}: row {n} has {len(r)} cells",
                expected=f"{len(header)} (one per header column)",
                found=str(len(r)),
            )
    return header, rows[1:]


def _check_columns(file: Path, header: list[str], targets: tuple[str, ...], features: Any) -> None:
    for col in (*targets, *features):
        if col not in header:
            hint = did_you_mean(col, header)
            raise _problem(
                ("data", "target" if col in targets else "features"),
                f"{file.name}: no column '{col}'" + (f"; {hint}" if hint else ""),
                expected="one of " + ", ".join(header),
                found=col,
            )


def parse_csv(file: Path, spec: DataSpec, *, need_target: bool) -> RawData:
    """Parse a CSV with a header row; every problem names the file, row and column.

    Targets stay text (class labels may be words); features must be numbers.

    Args:
        file: the CSV file.
        spec: target/feature column names.
        need_target: training needs the target columns; prediction does not.
    """
    header, body = _read_rows(file)
    targets = _targets(spec) if need_target else tuple(t for t in _targets_opt(spec) if t in header)
    features = spec.features or tuple(h for h in header if h not in targets)
    _check_columns(file, header, targets, features)
    fi = [header.index(c) for c in features]
    ti = [header.index(c) for c in targets]
    x = np.array(
        [[_parse_cell(r[i], header[i], n, file.name) for i in fi] for n, r in enumerate(body, 2)],
        dtype=np.float32,
    ).reshape(len(body), len(fi))
    y_text = np.array([[r[i].strip() for i in ti] for r in body]).reshape(len(body), len(ti))
    y = y_text[:, 0] if len(ti) == 1 else y_text
    meta = {"file": file.name, "target_columns": targets}
    return RawData(x, y, tuple(features), meta=meta)


def _npz(path: str, spec: DataSpec, seed: int, base: Path | None) -> RawData:
    with np.load(data_file(path, base), allow_pickle=False) as arrays:  # never unpickle
        keys = list(arrays.keys())
        xk = next((k for k in ("x", "X", "features") if k in arrays), None)
        yk = (
            spec.target
            if isinstance(spec.target, str)
            else next((k for k in ("y", "Y", "target") if k in arrays), None)
        )
        if xk is None or yk not in arrays:
            raise _problem(
                ("data", "target"),
                "an .npz source needs a feature array 'x' and a target array",
                expected="keys x and y (or data.target)",
                found=", ".join(keys),
            )
        return RawData(arrays[xk].astype(np.float32), arrays[yk])


def _npy(path: str, spec: DataSpec, seed: int, base: Path | None) -> RawData:
    # A 2-D table whose LAST column is the target (documented; a separate target needs .npz).
    table = np.load(data_file(path, base), allow_pickle=False)
    if table.ndim != 2 or table.shape[1] < 2:
        raise _problem(
            ("data", "source"),
            "an .npy source must be a 2-D table whose last column is the target",
            found=f"shape {table.shape}",
        )
    return RawData(table[:, :-1].astype(np.float32), table[:, -1])


Loader = Callable[[str, DataSpec, int, "Path | None"], RawData]
SOURCES: Registry[Loader] = Registry("data source")
for _prefix, _loader in (
    ("sklearn", _sklearn),
    ("synthetic", _synthetic),
    ("csv", _csv),
    ("npz", _npz),
    ("npy", _npy),
):
    SOURCES.register(_prefix, _loader)


def load_source(spec: DataSpec, seed: int, base: Path | None = None) -> RawData:
    """Load the raw samples named by ``data.source``.

    Args:
        spec: the data section.
        seed: the experiment seed (synthetic generators use it).
        base: folder that relative file paths resolve against (the spec file's folder).
    """
    prefix, _, arg = spec.source.partition(":")
    raw = SOURCES[prefix](arg, spec, seed, base)
    if raw.x.shape[0] != raw.y.shape[0]:
        raise _problem(
            ("data", "source"),
            "features and targets have different numbers of samples",
            found=f"{raw.x.shape[0]} vs {raw.y.shape[0]}",
        )
    return raw
