"""Arrays bound by name to a model's named inputs and declared outputs (the Python API).

Example::

    nnspec.train(spec, data={"x": {"tabular": X, "city": city_ids},
                             "y": {"segment": labels, "spend": amounts}})

Each key of ``x`` is one of ``model.inputs`` (a model with one ``input_shape`` takes one array
``x``); each key of ``y`` one of ``model.outputs`` (a model with one output takes one array
``y``). Every array holds one row per sample, all the same number.

- An integer array is ids (int64, never standardised): an ``embedding`` reads them, and its
  ``num_embeddings: auto`` is the largest id + 1 over every row (the ids are the user's own
  vocabulary, so validation and test ids are in range too). A 1-D array is one id per sample.
- Any other numeric array is features (float32), standardised per feature with the training
  split's mean and standard deviation (DATA-5; float64 sums) when ``data.standardize``.
- Each output's targets are encoded for its own task, as a table's target column would be.

The split is the one of every other source (seeded, stratified on the first output's classes).
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
from nnspec.run.arrays import NamedArrays, RawData
from nnspec.run.batches import INPUT, TARGET
from nnspec.run.named import NamedSplit, _check_shapes, _heads, output_targets
from nnspec.run.splitting import split_indices
from nnspec.run.targets import encode_targets
from nnspec.spec.experiment import ExperimentSpec

__all__ = ["prepare_named_arrays", "encode_arrays", "read_named_arrays", "arrays_info"]


def prepare_named_arrays(
    spec: ExperimentSpec, raw: NamedArrays
) -> tuple[list[NamedSplit | None], dict[str, Any]]:
    """Check, split, encode and standardise named arrays (see the module doc).

    Returns:
        The train, validation and test splits (None when empty) and the fields of the run's
        :class:`~nnspec.run.data.DataInfo`, as :func:`~nnspec.run.named.prepare_named` does.
    """
    outputs = output_targets(spec)
    names = tuple(spec.model.inputs) if spec.model.inputs is not None else (INPUT,)
    root = ("data",)
    problems: list[Problem] = []
    x = _collect(problems, lambda: _bound(raw.x, names, "x", "input", "model.inputs", root))
    y = _collect(problems, lambda: _bound(raw.y, tuple(outputs), "y", "output",
                                          "model.outputs", root))  # fmt: skip
    if problems:
        raise DataError(problems)
    n = _rows({**{("x", k): v for k, v in x.items()}, **{("y", k): v for k, v in y.items()}},
              root)  # fmt: skip
    _check_values(x, y, root)
    empty = RawData(np.empty((n, 0), np.float32), np.empty(0))
    targets = {name: encode_targets(RawData(empty.x, y[name]), out.task)
               for name, out in outputs.items()}  # fmt: skip
    first, (y0, _, _) = next(iter(outputs.values())), next(iter(targets.values()))
    tr, va, te = split_indices(n, y0 if y0.ndim == 1 else y0[:, 0], spec, first.task)
    tensors, shapes, meta = _encoded_inputs(x, tr, spec.data.standardize)
    _check_shapes(spec, shapes)
    heads, y_first = _heads(spec, outputs, targets, empty, tr, tensors)  # type: ignore[arg-type]

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


def _collect(
    problems: list[Problem], bind: Callable[[], dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """``bind()``, its problems added to ``problems`` (the inputs' and the outputs' together)."""
    try:
        return bind()
    except DataError as e:
        problems.extend(e.problems)
        return {}


def _as_array(value: Any) -> np.ndarray:
    return np.asarray(value.numpy() if isinstance(value, torch.Tensor) else value)


def _bound(
    given: Any, names: tuple[str, ...], key: str, what: str, field: str, root: tuple[str, ...]
) -> dict[str, np.ndarray]:
    """``given`` (a mapping by name, or one array where the model has one ``what``) as a dict
    of arrays, every missing and unknown name reported at once (paths under ``root``)."""
    one = names in ((INPUT,), (TARGET,))
    if not isinstance(given, Mapping):
        if one:
            return {names[0]: _as_array(given)}
        raise DataError(Problem(
            (*root, key), f"the model has named {what}s: data['{key}'] maps each name to its "
            "array", expected=f"a dict with the keys {', '.join(names)}",
            found=type(given).__name__,
        ))  # fmt: skip
    if one:
        raise DataError(Problem(
            (*root, key), f"the model has one {what}, and data['{key}'] is a mapping "
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
    return {name: _as_array(given[name]) for name in names}


def _rows(arrays: dict[tuple[str, str], np.ndarray], root: tuple[str, ...]) -> int:
    counts = {f"{k}['{name}']": (len(a) if a.ndim else 0) for (k, name), a in arrays.items()}
    if len(set(counts.values())) != 1:
        raise DataError(Problem(
            root, "the arrays hold different numbers of samples",
            expected="one row per sample in every array",
            found=", ".join(f"{k}: {v}" for k, v in counts.items()),
        ))  # fmt: skip
    return next(iter(counts.values()))


def _check_values(
    x: dict[str, np.ndarray], y: dict[str, np.ndarray], root: tuple[str, ...]
) -> None:
    """Every problem of the arrays' contents at once: types, NaN/inf features, negative ids."""
    problems = []
    for name, a in x.items():
        path: tuple[str | int, ...] = (*root, "x", name)
        if a.dtype.kind not in "iufb":
            problems.append(Problem(path, f"input '{name}' is not numbers", found=str(a.dtype)))
        elif a.dtype.kind in "iu" and a.size and int(a.min()) < 0:
            first = int(np.argmax((a.reshape(len(a), -1) < 0).any(axis=1)))
            problems.append(Problem(path, f"input '{name}' holds negative ids (first: sample "
                                    f"{first})", expected="ids 0 .. vocabulary size - 1",
                                    found=str(int(a.min()))))  # fmt: skip
        elif a.dtype.kind == "f":
            bad = ~np.isfinite(a.reshape(len(a), -1)).all(axis=1)
            if bad.any():
                problems.append(Problem(path, f"input '{name}': {int(bad.sum())} samples hold "
                                        f"NaN or inf (first: sample {int(np.argmax(bad))})",
                                        expected="finite numbers",
                                        fix="impute or drop those samples"))  # fmt: skip
    for name, a in y.items():
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            bad = ~np.isfinite(a.reshape(len(a), -1)).all(axis=1)
            problems.append(Problem((*root, "y", name), f"output '{name}': {int(bad.sum())} "
                                    f"targets are NaN or inf (first: sample "
                                    f"{int(np.argmax(bad))})", expected="finite targets",
                                    fix="drop those samples"))  # fmt: skip
    if problems:
        raise DataError(problems)


def _encoded_inputs(
    x: dict[str, np.ndarray], train: np.ndarray, standardize: bool
) -> tuple[dict[str, np.ndarray], dict[str, tuple[int, ...]], dict[str, dict[str, Any]]]:
    """Each input as ids or standardised features, its per-sample shape and its saved fields."""
    tensors: dict[str, np.ndarray] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    meta: dict[str, dict[str, Any]] = {}
    for name, a in x.items():
        rows = a.reshape(len(a), 1) if a.ndim == 1 else a
        shape = tuple(int(d) for d in rows.shape[1:])
        if a.dtype.kind in "iu":
            tensors[name] = rows.astype(np.int64)
            meta[name] = {"kind": "ids", "shape": list(shape),
                          "vocab": int(rows.max()) + 1 if rows.size else 1}  # fmt: skip
        else:
            flat = rows.reshape(len(rows), -1).astype(np.float32)
            mean = std = None
            if standardize:
                part = flat[train].astype(np.float64)
                mean, std = part.mean(axis=0), part.std(axis=0)
                std = np.where(std > 1e-8, std, 1.0)
                mean, std = mean.astype(np.float32), std.astype(np.float32)
                flat = (flat - mean) / std
            tensors[name] = flat.reshape(len(flat), *shape)
            meta[name] = {"kind": "features", "shape": list(shape),
                          "mean": None if mean is None else mean.tolist(),
                          "std": None if std is None else std.tolist()}  # fmt: skip
        shapes[name] = shape
    return tensors, shapes, meta


def read_named_arrays(path: str) -> dict[str, np.ndarray]:
    """An ``.npz`` archive's arrays by name (never unpickled), for ``nnspec predict``."""
    from nnspec.run.arrays import load_npz_arrays

    return load_npz_arrays(path)


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
        given: Any = read_named_arrays(file)
        if list(meta) == [INPUT] and INPUT not in given and len(given) == 1:
            given = next(iter(given.values()))  # a one-input model: the archive's one array
        return _encoded(given, meta)
    except DataError as e:
        named = [p if p.file else p.located(file, None, None) for p in e.problems]
        raise DataError(named) from None


def _encoded(x: Any, meta: dict[str, dict[str, Any]]) -> torch.Tensor | dict[str, torch.Tensor]:
    arrays = _bound(x, tuple(meta), "x", "input", "model.inputs", ())
    _rows({("x", k): v for k, v in arrays.items()}, ())
    _check_values(arrays, {}, ())
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
            if rows.dtype.kind not in "iu":
                problems.append(Problem(("x", name), f"input '{name}' takes integer ids",
                                        found=str(rows.dtype)))  # fmt: skip
                continue
            too_big = (rows >= m["vocab"]).reshape(len(rows), -1).any(axis=1)
            if too_big.any():
                first = int(np.argmax(too_big))
                problems.append(Problem(
                    ("x", name), f"input '{name}' holds ids the model has never seen (first: "
                    f"sample {first})", expected=f"ids 0 .. {m['vocab'] - 1} (the training "
                    "data's largest id)", found=str(int(rows.max())),
                    fix="map unseen ids to an id the model was trained with",
                ))  # fmt: skip
                continue
            out[name] = torch.from_numpy(np.ascontiguousarray(rows, dtype=np.int64))
            continue
        flat = torch.from_numpy(np.ascontiguousarray(rows.reshape(len(rows), -1), np.float32))
        if m["mean"] is not None:
            flat = (flat - torch.tensor(m["mean"])) / torch.tensor(m["std"])
        out[name] = flat.reshape(len(flat), *shape)
    if problems:
        raise DataError(problems)
    return out[INPUT] if list(meta) == [INPUT] else out
