"""Data preparation: split (DATA-7/8), encode targets, standardise with training statistics only
(DATA-4/5), reshape to the model's ``input_shape``; each split is then held in memory
(:class:`~nnspec.run.batches.Split`, batches by tensor slicing) or streamed
(:class:`~nnspec.run.streams.StreamSplit`, batches read through a DataLoader).

``data.in_memory``: ``yes`` loads every split; ``no`` streams every split; ``auto`` streams a
source that is read lazily (``npy:`` files and shard folders, a user's map-style ``Dataset``) when
its features would take more than :data:`IN_MEMORY_BYTES` as float32, and loads the rest. Either
way the statistics are fitted by the same pass (:func:`~nnspec.run.streams.fit_moments`, float64),
so a streamed and an in-memory run of one spec train on the same numbers.

Tables (CSV, Parquet, Arrow/Feather sources) are split first; then their columns are typed,
imputed and encoded with statistics of the training split only (:mod:`nnspec.run.columns`), and
the fitted columns are saved with the run. ``input_shape: auto`` takes the data's shape.

Inputs are float32 features, except for a model whose input feeds an ``embedding`` layer: then
they are int64 token ids, never standardised, checked against the embedding's ``num_embeddings``
(:mod:`nnspec.run.tokens`).

The per-epoch data order is a pure function of ``(seed, epoch)`` (:func:`epoch_order`), never of
process RNG state: resuming a killed run replays exactly the same batches.

Targets are always read into memory (one value per sample), for the index split (stratified for
classification), the class encoding and the metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, assert_never

import numpy as np
import torch

from nnspec.errors import DataError, Problem, SpecError
from nnspec.run.batches import Split, epoch_order
from nnspec.run.columns import Columns, fit_columns
from nnspec.run.images import ImageFolder, channel_moments, image_channels, image_data
from nnspec.run.sources import (
    RawData,
    TableData,
    UserDataset,
    UserTable,
    load_source,
    user_data,
    user_dataset,
    user_table,
)
from nnspec.run.streams import ArrayRows, Prep, StreamData, StreamSplit, fit_moments
from nnspec.run.tasks import TASKS
from nnspec.run.tokens import input_embeddings, token_array
from nnspec.spec.experiment import ExperimentSpec

__all__ = [
    "Split",
    "DataInfo",
    "DataBundle",
    "prepare_data",
    "epoch_order",
    "IN_MEMORY_BYTES",
    "UserTable",
    "user_data",
]

# in_memory: auto loads a lazily read source up to this size of float32 features [nnspec choice:
# a quarter of a small 4 GiB worker's memory, leaving room for the model and the loader]
IN_MEMORY_BYTES: Final = 1 << 30

Raw = RawData | TableData | StreamData


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

    train: Split | StreamSplit
    val: Split | StreamSplit | None
    test: Split | StreamSplit | None
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


def _encode_targets(raw: Raw, task: str) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """Encoded targets, class names and the original value of each class (empty when the data
    names its classes, or for numeric targets)."""
    y = raw.y
    if task == "classification" or (task == "binary" and y.ndim == 1):
        classes, codes = np.unique(y, return_inverse=True)
        names = raw.class_names if not isinstance(raw, TableData) else ()
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


def _numeric_targets(raw: Raw, task: str) -> np.ndarray:
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


def _n_outputs(task: str, y: np.ndarray, names: tuple[str, ...], raw: Raw) -> int:
    if task == "classification":
        meta = raw.meta if not isinstance(raw, TableData) else {}
        return int(meta.get("n_classes", len(names)))
    return int(y.shape[1])


def _moments(
    rows: Any, train: np.ndarray, on: bool, which: np.ndarray | None, check: Any, workers: int
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Float32 mean and std of the training rows (DATA-5: training split only), or None when
    off; constant features keep std 1, and only ``which`` inputs are standardised (a table's 0/1
    inputs keep mean 0, std 1). The pass runs anyway when ``check`` must see every row."""
    if not on and check is None:
        return None, None
    mean, std = fit_moments(rows, train, check or _no_check, workers)
    if not on:
        return None, None
    std = np.where(std > 1e-8, std, 1.0)
    if which is not None:
        mean, std = np.where(which, mean, 0.0), np.where(which, std, 1.0)
    return torch.from_numpy(mean.astype(np.float32)), torch.from_numpy(std.astype(np.float32))


def _no_check(chunk: np.ndarray, start: int) -> None:
    return None


def _target_moments(y: np.ndarray, train: np.ndarray, on: bool) -> tuple[np.ndarray, Any, Any]:
    """Regression targets standardised with the training split's float64 mean and std."""
    if not on:
        return y, None, None
    part = y[train].astype(np.float64)
    mean, std = part.mean(axis=0), part.std(axis=0)
    mean, std = mean.astype(np.float32), np.where(std > 1e-8, std, 1.0).astype(np.float32)
    return ((y - mean) / std).astype(np.float32), torch.from_numpy(mean), torch.from_numpy(std)


def _check_shape(spec: ExperimentSpec, data_shape: tuple[int, ...]) -> tuple[int, ...]:
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
    if spec.model.input_shape == "auto":
        return data_shape
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
                expected=f"{list(data_shape)} (the per-sample shape of the data)",
                found=f"{list(shape)} = {int(np.prod(shape))} values",
                fix=f"set model.input_shape: {list(data_shape)} and adapt the layers to it, or "
                "choose a model made for this data",
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


def prepare_data(
    spec: ExperimentSpec,
    *,
    raw: RawData | TableData | StreamData | UserTable | UserDataset | None = None,
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
    elif isinstance(raw, UserDataset):
        raw = user_dataset(raw.dataset, spec.data.num_workers)
    elif isinstance(raw, ImageFolder):  # decoded to input_shape's size and colour mode
        raw = image_data(raw, spec)
    stream = _streamed(spec, raw)
    if isinstance(raw, StreamData) and not stream:
        raw = RawData(raw.rows.read(np.arange(len(raw.rows))), raw.y, raw.feature_names,
                      raw.class_names, raw.meta)  # fmt: skip
    y, names, values = _encode_targets(raw, spec.task)
    tr, va, te = _split_indices(len(y), y if y.ndim == 1 else y[:, 0], spec)
    rows, tokens, which, columns = _features(spec, raw, tr)
    shape = _check_shape(spec, rows.sample_shape)
    check = _stream_check(spec, raw) if isinstance(raw, StreamData) else None
    on = spec.data.standardize and not tokens  # token ids are categories: never standardised
    channels = image_channels(spec, raw, shape)  # images, augmented inputs: per channel
    if channels and on:
        x_mean, x_std = channel_moments(rows, tr, channels, check, spec.data.num_workers)
    else:
        x_mean, x_std = _moments(rows, tr, on, which, check, spec.data.num_workers)
    y_mean = y_std = None
    if spec.task == "regression":
        y, y_mean, y_std = _target_moments(y, tr, spec.data.standardize_target)
    prep = Prep(x_mean, x_std, shape, tokens)

    def split(ix: np.ndarray) -> Split | StreamSplit:
        targets = torch.from_numpy(y[ix])
        if stream:
            return StreamSplit(rows, ix, targets, prep)
        return Split(prep(rows.read(ix)), targets)

    extra: dict[str, Any] = {"base_dir": str(base) if base is not None else None}
    if columns is not None:
        extra["columns"] = columns.to_json()
    info = DataInfo(
        task=spec.task,
        input_shape=shape,
        n_outputs=_n_outputs(spec.task, y, names, raw),
        class_names=names,
        feature_names=columns.names if columns is not None else raw.feature_names,
        x_mean=x_mean,
        x_std=x_std,
        y_mean=y_mean,
        y_std=y_std,
        extra=extra,
        tokens=tokens,
        class_values=tuple(values.tolist()),
        class_dtype=values.dtype.str if len(values) else "",
    )
    return DataBundle(
        split(tr), split(va) if len(va) else None, split(te) if len(te) else None, info
    )


def _streamed(spec: ExperimentSpec, raw: Raw) -> bool:
    """Whether the splits are read batch by batch (``data.in_memory``, see the module doc)."""
    match spec.data.in_memory:
        case "yes":
            return False
        case "no":
            return True
        case "auto":
            return isinstance(raw, StreamData) and raw.nbytes > IN_MEMORY_BYTES
        case _ as never:
            assert_never(never)


def _features(
    spec: ExperimentSpec, raw: Raw, train: np.ndarray
) -> tuple[Any, bool, np.ndarray | None, Columns | None]:
    """The features as rows (flat per sample), whether they are token ids, which of them are
    standardised (None: all), and a table's fitted columns."""
    if isinstance(raw, TableData):  # typed columns, fitted on the training rows only (DATA-5)
        columns = fit_columns(raw.table, train, spec.data, raw.target_columns, raw.file)
        x = columns.encode(raw.table, raw.file)
        return ArrayRows(x, raw.file), False, columns.standardised(), columns
    if isinstance(raw, StreamData):
        rows = raw.rows
        if rows.dtype.kind not in "iufb":
            raise DataError(Problem(("data",), "features must be numbers", found=str(rows.dtype)))
        return rows, bool(input_embeddings(spec.model)), None, None
    x, tokens = _inputs(spec, raw)
    # the data's own per-sample shape (input_shape: auto keeps an image's (C, H, W))
    return ArrayRows(x.reshape(raw.x.shape)), tokens, None, None


def _stream_check(spec: ExperimentSpec, raw: StreamData) -> Any:
    """What the one pass over a lazily read source checks: token ids against the embeddings,
    or finite features (named by file and row)."""
    embeddings = input_embeddings(spec.model)
    rows, vocab = raw.rows, raw.meta.get("vocab_size")

    def check(chunk: np.ndarray, start: int) -> None:
        if embeddings:
            token_array(chunk, embeddings, vocab_size=vocab)
            return
        if chunk.dtype.kind != "f":
            return
        bad = ~np.isfinite(chunk).all(axis=1)
        if bad.any():
            raise DataError(
                Problem(
                    ("data", "source"),
                    f"{rows.where(start + int(np.argmax(bad)))}: NaN or inf features",
                    expected="finite numbers",
                    fix="clean or drop that sample",
                )
            )

    return check
