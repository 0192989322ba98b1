"""Data preparation: split (DATA-7/8), encode targets, standardise with training statistics only
(DATA-4/5), reshape to the model's ``input_shape``, and batch in memory by tensor slicing.

Tables (CSV, Parquet, Arrow/Feather sources) are split first; then their columns are typed,
imputed and encoded with statistics of the training split only (:mod:`nnspec.run.columns`), and
the fitted columns are saved with the run. ``input_shape: auto`` takes the data's shape.

Inputs are float32 features, except for a model whose input feeds an ``embedding`` layer: then
they are int64 token ids, never standardised, checked against the embedding's ``num_embeddings``
(:mod:`nnspec.run.tokens`).

The per-epoch data order is a pure function of ``(seed, epoch)`` (:func:`epoch_order`), never of
process RNG state: resuming a killed run replays exactly the same batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nnspec.errors import DataError, Problem, SpecError
from nnspec.run.columns import Columns, fit_columns
from nnspec.run.sources import RawData, TableData, load_source, user_table
from nnspec.run.tasks import TASKS
from nnspec.run.tokens import input_embeddings, token_array
from nnspec.spec.experiment import ExperimentSpec

__all__ = [
    "Split",
    "DataInfo",
    "DataBundle",
    "prepare_data",
    "epoch_order",
    "iter_batches",
    "loader_batches",
    "UserTable",
]


@dataclass(frozen=True)
class Split:
    """One split as tensors: inputs shaped ``(N, *input_shape)`` and encoded targets."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.x.shape[0])


@dataclass(frozen=True)
class DataInfo:
    """Preprocessing the model depends on; saved with the run for inference."""

    task: str
    input_shape: tuple[int, ...]
    n_outputs: int
    class_names: tuple[str, ...] = ()
    feature_names: tuple[str, ...] = ()
    x_mean: torch.Tensor | None = None
    x_std: torch.Tensor | None = None
    y_mean: torch.Tensor | None = None
    y_std: torch.Tensor | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    tokens: bool = False  # inputs are int64 token ids for an input embedding (never standardised)
    # The user's own label per class index, as ``predict`` returns it (ints stay ints, strings
    # strings), with its NumPy dtype; empty when the data names its classes (sklearn's datasets).
    class_values: tuple[Any, ...] = ()
    class_dtype: str = ""


@dataclass(frozen=True)
class DataBundle:
    """Train/val/test splits plus the preprocessing that produced them."""

    train: Split
    val: Split | None
    test: Split | None
    info: DataInfo


def _split_indices(n: int, y: np.ndarray, spec: ExperimentSpec) -> list[np.ndarray]:
    from sklearn.model_selection import train_test_split

    s = spec.data.split
    stratify = s.stratify if s.stratify is not None else TASKS[spec.task].single_label
    idx = np.arange(n)
    labels = y if stratify and y.ndim == 1 else None
    parts: list[np.ndarray] = []
    rest, rest_labels = idx, labels
    for frac in (s.test, s.val):  # DATA-7: seeded, shuffled, stratified for classification
        size = round(frac * n)  # an integer count: 0.2 of 1000 is exactly 200
        if size == 0:
            parts.append(np.array([], dtype=np.int64))
            continue
        try:
            rest, part = train_test_split(
                rest,
                test_size=size,
                random_state=spec.seed,
                shuffle=True,
                stratify=rest_labels,
            )
        except ValueError as e:
            raise DataError(
                Problem(("data", "split"), f"cannot split {n} samples: {e}", fix="use more data")
            ) from e
        rest_labels = labels[rest] if labels is not None else None
        parts.append(part)
    return [rest, parts[1], parts[0]]  # train, val, test


def _encode_targets(
    raw: RawData | TableData, task: str
) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """Encoded targets, class names and the original value of each class (empty when the data
    names its classes, or for numeric targets)."""
    y = raw.y
    if task == "classification" or (task == "binary" and y.ndim == 1):
        classes, codes = np.unique(y, return_inverse=True)
        names = raw.class_names if isinstance(raw, RawData) else ()
        if not names or len(names) < len(classes) or y.dtype.kind not in "iu":
            names, values = tuple(str(c) for c in classes), classes
        else:
            names, values = tuple(names[int(c)] for c in classes), classes[:0]
        if task == "binary":
            if len(classes) != 2:
                raise DataError(
                    Problem(
                        ("task",),
                        "task 'binary' needs exactly two target values",
                        found=f"{len(classes)}: {', '.join(map(str, classes[:5]))}",
                        fix="use task: classification",
                    )
                )
            return codes.astype(np.float32).reshape(-1, 1), names, values
        return codes.astype(np.int64), names, values
    numbers = _numeric_targets(raw, task)
    return (numbers.reshape(-1, 1) if numbers.ndim == 1 else numbers), (), y[:0]


def _numeric_targets(raw: RawData | TableData, task: str) -> np.ndarray:
    try:
        return raw.y.astype(np.float32)
    except ValueError:
        pass
    # Name the first bad cell: table row and target column.
    flat = raw.y.reshape(len(raw.y), -1)
    table = isinstance(raw, TableData)
    cols = raw.target_columns if table else tuple(str(i) for i in range(flat.shape[1]))
    for n, row in enumerate(flat):
        for c, cell in enumerate(row):
            try:
                float(cell)
            except ValueError:
                where = _target_row(raw, n) if table else f"sample {n}"
                raise DataError(
                    Problem(
                        ("data", "target"),
                        f"{where}, column '{cols[c]}': task '{task}' needs numeric targets",
                        expected="a number",
                        found=repr(str(cell)),
                    )
                ) from None
    raise AssertionError("unreachable: astype failed but every cell parsed")  # pragma: no cover


def _target_row(raw: TableData, n: int) -> str:
    # File rows count the header as row 1; once rows without a target were left out, only the
    # position among the remaining rows is known.
    return f"{raw.file}: row {n + 2}" if not raw.dropped else f"{raw.file}: data row {n + 1}"


def _n_outputs(task: str, y: np.ndarray, names: tuple[str, ...], raw: RawData | TableData) -> int:
    if task == "classification":
        meta = raw.meta if isinstance(raw, RawData) else {}
        return int(meta.get("n_classes", len(names)))
    return int(y.shape[1])


def _standardize(
    x: np.ndarray, train: np.ndarray, on: bool, which: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    if not on:
        return x, None, None
    # DATA-5: statistics of the training split only; constant features keep std 1. `which`:
    # the inputs to standardise (a table's 0/1 inputs keep mean 0, std 1).
    mean = x[train].mean(axis=0)
    std = x[train].std(axis=0)
    std = np.where(std > 1e-8, std, 1.0)
    if which is not None:
        mean, std = np.where(which, mean, 0.0), np.where(which, std, 1.0)
    mean, std = mean.astype(np.float32), std.astype(np.float32)
    return ((x - mean) / std).astype(np.float32), mean.astype(np.float32), std


def _check_shape(spec: ExperimentSpec, x: np.ndarray) -> tuple[int, ...]:
    """The model's input shape: the data's per-sample shape for ``auto``, else checked."""
    if spec.model.input_shape is None or spec.model.outputs is not None:
        # Multi-input / multi-output graphs compile, but nnspec.train does not train them yet.
        field = "inputs" if spec.model.input_shape is None else "outputs"
        raise SpecError(
            Problem(
                ("model", field),
                f"training a model with named {field} is not supported yet",
                expected="one input_shape and one output",
                found=f"model.{field}",
                fix="build it with nnspec.build_model and train it with your own loop",
            )
        )
    data_shape = [int(d) for d in x.shape[1:]]
    if spec.model.input_shape == "auto":
        return tuple(data_shape)
    shape = tuple(spec.model.input_shape)
    per_sample = int(np.prod(data_shape))
    if int(np.prod(shape)) != per_sample:
        # A DataError, not a SpecError: the spec is valid on its own; it is this data (e.g. a
        # `data=wine` override under the digits CNN) that it does not fit.
        raise DataError(
            Problem(
                ("model", "input_shape"),
                f"input_shape does not fit the data: {spec.data.source} has {per_sample} values "
                "per sample",
                expected=f"{data_shape} (the per-sample shape of the data)",
                found=f"{list(shape)} = {int(np.prod(shape))} values",
                fix=f"set model.input_shape: {data_shape} and adapt the layers to it, or choose "
                "a model made for this data",
            )
        )
    return shape


def _inputs(spec: ExperimentSpec, raw: RawData) -> tuple[np.ndarray, bool]:
    """Flat per-sample inputs: int64 tokens for an input embedding, float32 features otherwise."""
    embeddings = input_embeddings(spec.model)
    vocab = raw.meta.get("vocab_size")
    flat = raw.x.reshape(raw.x.shape[0], -1)
    if embeddings:
        return token_array(flat, embeddings, vocab_size=vocab), True
    if vocab is not None:
        first = spec.model.layers[0]
        raise DataError(
            Problem(
                ("model", "layers", 0),
                f"{spec.data.source} produces integer token ids (vocabulary {vocab}); the model "
                "must read them with an embedding",
                expected="an embedding first layer",
                found=f"{getattr(first, 'kind', type(first).__name__)} first",
                fix=f"start the layers with {{kind: embedding, num_embeddings: {vocab}, "
                "embedding_dim: 32}",
            )
        )
    try:
        return flat.astype(np.float32), False
    except (TypeError, ValueError) as e:
        raise DataError(
            Problem(("data",), f"features must be numbers: {e}", found=str(flat.dtype))
        ) from e


def _tensor(a: np.ndarray | None) -> torch.Tensor | None:
    return None if a is None else torch.from_numpy(np.ascontiguousarray(a))


def prepare_data(
    spec: ExperimentSpec,
    *,
    raw: RawData | TableData | UserTable | None = None,
    base: Path | None = None,
) -> DataBundle:
    """Load (unless ``raw`` is given), split, encode, standardise and reshape the data.

    Args:
        spec: the experiment (data section, task, seed, model input shape).
        raw: user data (``nnspec.train(spec, data=...)``); default: ``data.source``.
        base: folder relative file paths resolve against.
    """
    raw = raw if raw is not None else load_source(spec.data, spec.seed, base)
    if isinstance(raw, UserTable):
        raw = user_table(raw.table, spec.data)
    y, names, values = _encode_targets(raw, spec.task)
    tr, va, te = _split_indices(len(y), y if y.ndim == 1 else y[:, 0], spec)
    columns: Columns | None = None
    if isinstance(raw, TableData):  # typed columns, fitted on the training rows only (DATA-5)
        columns = fit_columns(raw.table, tr, spec.data, raw.target_columns, raw.file)
        x, tokens, which = columns.encode(raw.table, raw.file), False, columns.standardised()
        shape = _check_shape(spec, x)
    else:
        shape = _check_shape(spec, raw.x)
        (x, tokens), which = _inputs(spec, raw), None
    # Token ids are categories, not quantities: never standardised.
    x, x_mean, x_std = _standardize(x, tr, spec.data.standardize and not tokens, which)
    y_mean = y_std = None
    if spec.task == "regression":
        y, y_mean, y_std = _standardize(y, tr, spec.data.standardize_target)

    def split(ix: np.ndarray) -> Split:
        return Split(torch.from_numpy(x[ix].reshape(len(ix), *shape)), torch.from_numpy(y[ix]))

    extra: dict[str, Any] = {"base_dir": str(base) if base is not None else None}
    if columns is not None:
        extra["columns"] = columns.to_json()
    info = DataInfo(
        task=spec.task,
        input_shape=shape,
        n_outputs=_n_outputs(spec.task, y, names, raw),
        class_names=names,
        feature_names=columns.names if columns is not None else raw.feature_names,
        x_mean=_tensor(x_mean),
        x_std=_tensor(x_std),
        y_mean=_tensor(y_mean),
        y_std=_tensor(y_std),
        extra=extra,
        tokens=tokens,
        class_values=tuple(values.tolist()),
        class_dtype=values.dtype.str if len(values) else "",
    )
    return DataBundle(
        split(tr), split(va) if len(va) else None, split(te) if len(te) else None, info
    )


@dataclass(frozen=True)
class UserTable:
    """A user's pyarrow table or pandas DataFrame; ``data.target`` names its target columns."""

    table: Any


def _is_table(data: Any) -> bool:
    # pyarrow.Table or pandas.DataFrame, told apart without importing either
    return type(data).__module__.split(".")[0] in ("pyarrow", "pandas") and hasattr(data, "columns")


def user_data(data: Any) -> RawData | UserTable:
    """Turn ``(x, y)`` arrays/tensors, ``{"x": ..., "y": ...}`` or a table (pyarrow / pandas,
    with the target column named by ``data.target``) into what :func:`prepare_data` takes."""
    if _is_table(data):
        return UserTable(data)
    if isinstance(data, dict):
        data = (data.get("x"), data.get("y"))
    if isinstance(data, torch.utils.data.Dataset) and not isinstance(data, tuple):
        items = [data[i] for i in range(len(data))]  # type: ignore[arg-type]
        data = (torch.stack([torch.as_tensor(a) for a, _ in items]),
                torch.stack([torch.as_tensor(b) for _, b in items]))  # fmt: skip
    if not isinstance(data, (tuple, list)) or len(data) != 2 or data[0] is None:
        raise DataError(
            Problem(
                ("data",),
                "user data must be (x, y) arrays, {'x': ..., 'y': ...} or a Dataset of (x, y)",
                found=type(data).__name__,
            )
        )
    x, y = (np.asarray(a.numpy() if isinstance(a, torch.Tensor) else a) for a in data)
    # Integer arrays stay integers (token ids for an embedding); prepare_data makes the rest float.
    return RawData(x if x.dtype.kind in "iu" else x.astype(np.float32), y)


def epoch_order(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The training order of ``epoch``: a permutation that depends only on (seed, epoch).

    Example:
        >>> bool((epoch_order(0, 3, 10) == epoch_order(0, 3, 10)).all())
        True
    """
    mixed = int(np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0])
    gen = torch.Generator().manual_seed(mixed & 0x7FFF_FFFF_FFFF_FFFF)
    return torch.randperm(n, generator=gen)


def iter_batches(
    split: Split, batch_size: int, order: torch.Tensor | None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches by slicing (one gather per epoch, then views); a last batch of 1 is dropped."""
    x, y = (split.x[order], split.y[order]) if order is not None else (split.x, split.y)
    n = len(split)
    stop = n - 1 if n % batch_size == 1 and n > 1 else n
    for i in range(0, stop, batch_size):
        yield x[i : i + batch_size], y[i : i + batch_size]


def loader_batches(
    split: Split,
    batch_size: int,
    order: torch.Tensor | None,
    num_workers: int,
    pin_memory: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The DataLoader path (``data.in_memory: no``): same batches, same order as
    :func:`iter_batches`, collated by a ``DataLoader`` (with ``num_workers`` processes; in
    pinned memory with ``pin_memory``, for asynchronous copies to a GPU)."""
    idx = order.tolist() if order is not None else list(range(len(split)))
    stop = len(idx) - 1 if len(idx) % batch_size == 1 and len(idx) > 1 else len(idx)
    chunks = [idx[i : i + batch_size] for i in range(0, stop, batch_size)]
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(split.x, split.y),
        batch_sampler=chunks,
        num_workers=num_workers,
        pin_memory=pin_memory,
    )
    yield from loader
