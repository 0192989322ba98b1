"""Seeded synthetic data sets (``data.source: synthetic:KIND``) for benchmarks, examples and tests.

``classification`` and ``regression`` give float features (scikit-learn's generators);
``sequence_count`` and ``sequence_compare`` give int64 token sequences for a model that starts with
an ``embedding`` layer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from nnspec.errors import DataError, Problem, did_you_mean
from nnspec.run.arrays import RawData
from nnspec.spec.data import DataSpec

__all__ = ["SYNTHETIC", "TOKEN_DEFAULTS", "place_tokens"]



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
    "length": 30,  # sequence length of the example task
    "vocab_size": 10,  # token ids 0..9; the embedding needs num_embeddings >= vocab_size
    "token_a": 1,  # the token that is counted / compared
    "token_b": 2,  # sequence_compare: the token A is compared with
    "max_count": 9,  # counts are drawn from 0..max_count (sequence_count: classes 0..9)
}


def _token_options(spec: DataSpec, used: tuple[str, ...]) -> dict[str, int]:
    for key in spec.options:  # a misspelt option would silently fall back to its default
        if key not in used:
            hint = did_you_mean(key, used)
            raise DataError(
                Problem(
                    ("data", "options", key),
                    f"{spec.source} has no option '{key}'" + (f"; {hint}" if hint else ""),
                    expected=", ".join(used),
                    found=key,
                    fix=f"remove data.options.{key} (on the command line: ~data.options.{key})",
                )
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
