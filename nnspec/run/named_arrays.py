"""Arrays bound by name to a model's named inputs and declared outputs (the Python API).

Example::

    nnspec.train(spec, data={"x": {"tabular": X, "city": city_ids},
                             "y": {"segment": labels, "spend": amounts}})

Each key of ``x`` is one of ``model.inputs`` (a model with one ``input_shape`` takes one array
``x``); each key of ``y`` one of ``model.outputs`` (a model with one output takes one array
``y``). Every array holds one row per sample, all the same number.

- An input an ``embedding`` reads is ids: integers (int64, never standardised), and the
  embedding's ``num_embeddings: auto`` is the largest id + 1 over every row (the ids are the
  user's own vocabulary, so validation and test ids are in range too). A 1-D array is one id
  per sample.
- Any other input is features (float32, integer counts included), standardised per feature
  with the training split's mean and standard deviation (DATA-5; float64 sums) when
  ``data.standardize``.
- Each output's targets are encoded for its own task, as a table's target column would be.

The split is the one of every other source (seeded, stratified on the first output's classes).
The arrays are held in memory; with ``data.in_memory: no`` they are read item by item as a
Dataset of named items is (:mod:`nnspec.run.named_streams`), e.g. for memory-mapped arrays.
Each input's kind, shape, vocabulary and statistics are saved in ``preprocess.json``
(``extra.arrays``); :func:`encode_arrays` applies them to the same names at prediction time
(``load_run(...).predict({...})``, or ``nnspec predict RUN file.npz`` with arrays named after
the inputs).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from nnspec.errors import DataError, Problem, did_you_mean
from nnspec.run.arrays import NamedArrays, RawData, load_npz_arrays
from nnspec.run.batches import INPUT, TARGET
from nnspec.run.named import NamedSplit, check_input_shapes, output_heads, output_targets
from nnspec.run.splitting import split_indices
from nnspec.run.streams import unit_floor
from nnspec.run.targets import encode_targets
from nnspec.run.tokens import embedded_inputs
from nnspec.spec.experiment import ExperimentSpec

__all__ = [
    "prepare_named_arrays", "encode_arrays", "encode_input", "arrays_info",
    "bind_names", "collect_problems", "check_values", "input_names", "samples",
]  # fmt: skip


def input_names(spec: ExperimentSpec) -> tuple[str, ...]:
    """The model's input names (``input`` for a model with one ``input_shape``)."""
    return tuple(spec.model.inputs) if spec.model.inputs is not None else (INPUT,)


def prepare_named_arrays(
    spec: ExperimentSpec, raw: NamedArrays
) -> tuple[list[NamedSplit | None], dict[str, Any]]:
    """Check, split, encode and standardise named arrays (see the module doc).

    Returns:
        The train, validation and test splits (None when empty) and the fields of the run's
        :class:`~nnspec.run.data.DataInfo`, as :func:`~nnspec.run.named.prepare_named` does.
    """
    outputs = output_targets(spec)
    root = ("data",)
    problems: list[Problem] = []
    x = collect_problems(problems, lambda: bind_names(raw.x, input_names(spec), "x", root))
    y = collect_problems(problems, lambda: bind_names(raw.y, tuple(outputs), "y", root))
    if problems:
        raise DataError(problems)
    n = samples({**{("x", k): v for k, v in x.items()}, **{("y", k): v for k, v in y.items()}},
                root)  # fmt: skip
    ids = embedded_inputs(spec.model)
    check_values(x, y, root, ids)
    empty = RawData(np.empty((n, 0), np.float32), np.empty(0))
    targets = {name: encode_targets(RawData(empty.x, y[name]), out.task)
               for name, out in outputs.items()}  # fmt: skip
    first, (y0, _, _) = next(iter(outputs.values())), next(iter(targets.values()))
    tr, va, te = split_indices(n, y0 if y0.ndim == 1 else y0[:, 0], spec, first.task)
    meta = {name: _fitted(a, name in ids, tr, spec.data.standardize) for name, a in x.items()}
    shapes = {name: tuple(m["shape"]) for name, m in meta.items()}
    check_input_shapes(spec, shapes)
    tensors: dict[str, np.ndarray] = {name: encode_input(x[name], m).numpy()
                                      for name, m in meta.items()}  # fmt: skip
    heads, y_first = output_heads(spec, outputs, targets, empty, tr, tensors)

    def split(ix: np.ndarray) -> NamedSplit | None:
        if not len(ix):
            return None
        return NamedSplit({k: torch.from_numpy(np.ascontiguousarray(v[ix]))
                           for k, v in tensors.items()}, torch.from_numpy(y_first[ix]))  # fmt: skip

    return [split(tr), split(va), split(te)], arrays_info(spec, heads, shapes, meta)


def arrays_info(
    spec: ExperimentSpec, heads: dict[str, dict[str, Any]], shapes: dict[str, tuple[int, ...]],
    meta: dict[str, dict[str, Any]],
) -> dict[str, Any]:  # fmt: skip
    """The run's :class:`~nnspec.run.data.DataInfo` fields: each output's (``heads``), each
    input's shape, and each input's saved fields (``extra.arrays``) with the ids' vocabularies
    (``extra.vocab``: ``num_embeddings: auto``)."""
    one = heads.pop(TARGET, None)  # one output: its fields are the run's
    info = dict(one or next(iter(heads.values())))
    vocab = {name: m["vocab"] for name, m in meta.items() if m["kind"] == "ids"}
    info.update(input_shape=shapes.get(INPUT, (0,)),
                inputs=shapes if spec.model.inputs is not None else {}, outputs=heads,
                extra={"arrays": meta, "vocab": vocab})  # fmt: skip
    return info


def collect_problems(
    problems: list[Problem], bind: Callable[[], dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """``bind()``, its problems added to ``problems`` (the inputs' and the outputs' together)."""
    try:
        return bind()
    except DataError as e:
        problems.extend(e.problems)
        return {}


def as_array(value: Any, path: tuple[str | int, ...]) -> np.ndarray:
    """A user's value (array, tensor, list) as an array; ragged lists are a DataError."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except ValueError as e:  # ragged nested lists
        raise DataError(Problem(
            path, "not an array of one shape", found=str(e).split(".")[0],
            fix="pass a NumPy array (every sample the same shape)",
        )) from e  # fmt: skip


def bind_names(
    given: Any, names: tuple[str, ...], key: str, root: tuple[str, ...]
) -> dict[str, np.ndarray]:
    """``given`` (a mapping by name, or one array where the model has one input or output) as a
    dict of arrays, every missing and unknown name reported at once (paths ``root.key.name``)."""
    what, field = ("input", "model.inputs") if key == "x" else ("output", "model.outputs")
    one = names in ((INPUT,), (TARGET,))
    if not isinstance(given, Mapping):
        if one:
            return {names[0]: as_array(given, (*root, key))}
        raise DataError(Problem(
            (*root, key), f"the model has named {what}s: give a mapping from each name to its "
            "array", expected=f"a dict with the keys {', '.join(names)}",
            found=type(given).__name__,
        ))  # fmt: skip
    if one:
        raise DataError(Problem(
            (*root, key), f"the model has one {what}, and a mapping was given "
            f"({', '.join(map(str, given))})", expected="one array",
            fix=f"pass the array itself, or declare the {what}s by name in {field}",
        ))  # fmt: skip
    problems = [Problem((*root, key, name), f"no array for the model's {what} '{name}'",
                        expected=f"a key '{name}'", found=", ".join(map(str, given)) or "none")
                for name in names if name not in given]  # fmt: skip
    problems += [
        Problem((*root, key, str(name)), f"'{name}' is not an {what} of the model",
                expected=f"one of {', '.join(names)} ({field})",
                fix=did_you_mean(name, names) or f"drop it, or add it to {field}")
        for name in given if name not in names
    ]  # fmt: skip
    if problems:
        raise DataError(problems)
    return {name: as_array(given[name], (*root, key, name)) for name in names}


def samples(arrays: dict[tuple[str, str], np.ndarray], root: tuple[str, ...]) -> int:
    """The arrays' common number of samples (rows); none, a scalar or a mismatch is refused."""
    counts = {f"{k}['{name}']": (f"{len(a)}" if a.ndim else "a scalar")
              for (k, name), a in arrays.items()}  # fmt: skip
    values = set(counts.values())
    if len(values) != 1 or "a scalar" in values:
        raise DataError(Problem(
            root, "the arrays must hold one row per sample, the same number each",
            found=", ".join(f"{k}: {v}" for k, v in counts.items()),
        ))  # fmt: skip
    n = int(next(iter(values)))
    if n == 0:
        raise DataError(Problem(root, "the arrays hold no samples", expected="one row or more"))
    return n


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def value_problems(
    name: str, a: np.ndarray, path: tuple[str | int, ...], ids: bool, start: int = 0
) -> tuple[Problem | None, int, int]:
    """One input's problem (non-numbers, non-integer or negative ids, NaN/inf features), the
    number of bad samples and the first (``start``: the first row's number, for a chunk)."""
    flat = a.reshape(len(a), -1)
    if a.dtype.kind not in "iufb":
        return Problem(path, f"input '{name}' is not numbers", found=str(a.dtype)), len(a), start
    if ids and a.dtype.kind not in "iu":
        return Problem(path, f"input '{name}' feeds an embedding: it takes integer ids",
                       found=str(a.dtype), fix="pass integer ids (e.g. ids.astype('int64'))"), \
            len(a), start  # fmt: skip
    bad = (flat < 0).any(axis=1) if ids else ~np.isfinite(flat.astype(np.float64)).all(axis=1)
    if not bad.any():
        return None, 0, 0
    first, count = start + int(np.argmax(bad)), int(bad.sum())
    if ids:
        problem = Problem(path, f"input '{name}' holds negative ids", expected="ids 0 .. "
                          "vocabulary size - 1", found=str(int(flat.min())))  # fmt: skip
    else:
        problem = Problem(path, f"input '{name}' holds NaN or inf", expected="finite numbers",
                          fix="impute or drop those samples")  # fmt: skip
    return problem, count, first


def check_values(
    x: dict[str, np.ndarray], y: dict[str, np.ndarray], root: tuple[str, ...],
    ids: frozenset[str] = frozenset(),
) -> None:  # fmt: skip
    """Every problem of the arrays' contents at once (``ids``: the inputs an embedding reads)."""
    problems = []
    for name, a in x.items():
        problem, count, first = value_problems(name, a, (*root, "x", name), name in ids)
        if problem is not None:
            problems.append(with_count(problem, count, first))
    for name, a in y.items():
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            bad = ~np.isfinite(a.reshape(len(a), -1)).all(axis=1)
            count = _plural(int(bad.sum()), "target is", "targets are")
            problems.append(Problem(
                (*root, "y", name), f"output '{name}': {count} NaN or inf (first: sample "
                f"{int(np.argmax(bad))})", expected="finite targets", fix="drop those samples",
            ))  # fmt: skip
    if problems:
        raise DataError(problems)


def with_count(problem: Problem, count: int, first: int, what: str = "sample") -> Problem:
    """``problem`` with how many samples it holds and the first one (by ``what``)."""
    where = f"{_plural(count, what, what + 's')}, first: {what} {first}"
    return Problem(problem.path, f"{problem.message} ({where})", problem.expected,
                   problem.found, problem.fix)  # fmt: skip


def _fitted(a: np.ndarray, ids: bool, train: np.ndarray, standardize: bool) -> dict[str, Any]:
    """One input's saved fields: kind, per-sample shape, and the vocabulary or statistics."""
    rows = a.reshape(len(a), 1) if a.ndim == 1 else a
    shape = [int(d) for d in rows.shape[1:]]
    if ids:
        return {"kind": "ids", "shape": shape, "vocab": int(rows.max()) + 1}
    if not standardize:
        return {"kind": "features", "shape": shape, "mean": None, "std": None}
    part = rows.reshape(len(rows), -1)[train].astype(np.float64)
    mean, std = part.mean(axis=0), unit_floor(part.std(axis=0))
    return {"kind": "features", "shape": shape, "mean": mean.astype(np.float32).tolist(),
            "std": std.astype(np.float32).tolist()}  # fmt: skip


def encode_input(a: np.ndarray, meta: dict[str, Any]) -> torch.Tensor:
    """One input's rows as the model takes them, with its saved fields (``meta``): int64 ids,
    or float32 features standardised with the training statistics; shape ``(N, *shape)``."""
    rows = a.reshape(len(a), 1) if a.ndim == 1 else a
    if meta["kind"] == "ids":
        return torch.from_numpy(np.ascontiguousarray(rows, dtype=np.int64))
    flat = torch.from_numpy(np.ascontiguousarray(rows.reshape(len(rows), -1), np.float32))
    if meta["mean"] is not None:
        flat = (flat - torch.tensor(meta["mean"])) / torch.tensor(meta["std"])
    return flat.reshape(len(flat), *meta["shape"])


def encode_arrays(
    x: Any, meta: dict[str, dict[str, Any]]
) -> torch.Tensor | dict[str, torch.Tensor]:
    """Prediction inputs (a mapping by input name, one array for a one-input model, or an
    ``.npz`` path) encoded with the run's saved fields; every problem reported at once (an
    archive's problems name the file)."""
    file = str(x) if isinstance(x, str) or hasattr(x, "__fspath__") else None
    if file is None:
        return _encoded(x, meta)
    try:
        given: Any = load_npz_arrays(file)
        if list(meta) == [INPUT] and INPUT not in given and len(given) == 1:
            given = next(iter(given.values()))  # a one-input model: the archive's one array
        return _encoded(given, meta)
    except DataError as e:
        named = [p if p.file else p.located(file, None, None) for p in e.problems]
        raise DataError(named) from None


def _encoded(x: Any, meta: dict[str, dict[str, Any]]) -> torch.Tensor | dict[str, torch.Tensor]:
    arrays = bind_names(x, tuple(meta), "x", ())
    samples({("x", k): v for k, v in arrays.items()}, ("x",))
    ids = frozenset(name for name, m in meta.items() if m["kind"] == "ids")
    check_values(arrays, {}, (), ids)
    problems, out = [], {}
    for name, m in meta.items():
        a = arrays[name]
        rows = a.reshape(len(a), 1) if a.ndim == 1 else a
        shape = tuple(m["shape"])
        if tuple(rows.shape[1:]) != shape:
            problems.append(Problem(("x", name), f"input '{name}' has the wrong shape",
                                    expected=f"{list(shape)} per sample",
                                    found=str(list(rows.shape[1:]))))  # fmt: skip
            continue
        if m["kind"] == "ids":
            too_big = (rows >= m["vocab"]).reshape(len(rows), -1).any(axis=1)
            if too_big.any():
                problems.append(Problem(
                    ("x", name), f"input '{name}' holds ids the model has never seen (first: "
                    f"sample {int(np.argmax(too_big))})", expected=f"ids 0 .. {m['vocab'] - 1} "
                    "(the training data's largest id)", found=str(int(rows.max())),
                    fix="map unseen ids to an id the model was trained with",
                ))  # fmt: skip
                continue
        out[name] = encode_input(rows, m)
    if problems:
        raise DataError(problems)
    return out[INPUT] if list(meta) == [INPUT] else out
