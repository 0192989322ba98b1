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

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nnspec.errors import DataError, Problem
from nnspec.run.arrays import NamedArrays
from nnspec.run.batches import Split, epoch_order
from nnspec.run.column_fit import fit_columns
from nnspec.run.columns import Columns
from nnspec.run.file_sources import TableData, user_table
from nnspec.run.images import ImageFolder, channel_moments, image_channels, image_data
from nnspec.run.input_checks import check_shape, flat_inputs, stream_check
from nnspec.run.iterables import IterData, IterSplit, scan
from nnspec.run.named import NamedSplit, is_named, named_data_spec
from nnspec.run.named_streams import NamedStreamSplit, prepare_named_data
from nnspec.run.sources import RawData, UserDataset, UserTable, load_source, user_data, user_dataset
from nnspec.run.splitting import split_indices as _split_indices
from nnspec.run.splitting import target_moments as _target_moments
from nnspec.run.streams import (
    IN_MEMORY_BYTES,
    ArrayRows,
    Prep,
    StreamData,
    StreamSplit,
    fit_moments,
    streams,
    unit_floor,
)
from nnspec.run.table_stream import ParquetPieces
from nnspec.run.targets import Raw, encode_targets, n_outputs, target_encoder
from nnspec.run.tokens import input_embeddings
from nnspec.spec.experiment import ExperimentSpec

__all__ = [
    "Split",
    "DataSplit",
    "DataInfo",
    "DataBundle",
    "prepare_data",
    "prepared",
    "epoch_order",
    "IN_MEMORY_BYTES",
    "UserTable",
    "user_data",
]


DataSplit = Split | StreamSplit | IterSplit | NamedSplit | NamedStreamSplit
"""A split in memory, streamed from a map-style source, or from an iterable one: each has ``y``
(the encoded targets), ``len``, ``head(k)`` and ``batches(sampler, device, workers=...)``."""


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
    # A model with named inputs: each input's per-sample shape (``input_shape`` is then the
    # shape of the table's dense features); with several outputs, each output's own description.
    inputs: dict[str, tuple[int, ...]] = field(default_factory=dict)
    outputs: dict[str, DataInfo] = field(default_factory=dict)


@dataclass(frozen=True)
class DataBundle:
    """Train/val/test splits plus the preprocessing that produced them."""

    train: DataSplit
    val: DataSplit | None
    test: DataSplit | None
    info: DataInfo


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
    return _as_moments(mean, std, which)


def _as_moments(
    mean: np.ndarray, std: np.ndarray, which: np.ndarray | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Float32 mean and std, constant features' std 1, only ``which`` inputs standardised."""
    std = unit_floor(std)
    if which is not None:
        mean, std = np.where(which, mean, 0.0), np.where(which, std, 1.0)
    return torch.from_numpy(mean.astype(np.float32)), torch.from_numpy(std.astype(np.float32))


def _no_check(chunk: np.ndarray, start: int) -> None:
    return None


def prepare_data(
    spec: ExperimentSpec,
    *,
    raw: Raw | NamedArrays | IterData | UserTable | UserDataset | None = None,
    base: Path | None = None,
) -> DataBundle:
    """Load (unless ``raw`` is given), split, encode, standardise and reshape the data.

    Args:
        spec: the experiment (data section, task, seed, model input shape).
        raw: user data (``nnspec.train(spec, data=...)``); default: ``data.source``.
        base: folder relative file paths resolve against.
    """
    if is_named(spec) or isinstance(raw, NamedArrays):  # bound to the model's inputs by name
        return _named_bundle(spec, raw, base)
    raw = _source(spec, raw, base)
    if isinstance(raw, IterData):
        return _iterable_bundle(spec, raw, base)
    stream = _streamed(spec, raw)
    if isinstance(raw, StreamData) and not stream:  # loaded: the fast path
        rows = raw.rows.read(np.arange(len(raw.rows)))
        raw = RawData(rows, raw.y, raw.feature_names, raw.class_names, raw.meta)
    y, names, values = encode_targets(raw, spec.task)
    tr, va, te = _split_indices(len(y), y if y.ndim == 1 else y[:, 0], spec)
    rows, tokens, which, columns = _features(spec, raw, tr)
    shape = check_shape(spec, rows.sample_shape)
    check = stream_check(spec, raw.rows, raw.meta) if isinstance(raw, StreamData) else None
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
        return Split(prepared(rows, ix, prep), targets)

    extra: dict[str, Any] = {"base_dir": str(base) if base is not None else None}
    if columns is not None:
        extra["columns"] = columns.to_json()
    features = columns.names if columns is not None else getattr(raw, "feature_names", ())
    info = _info(spec, shape, (y, names, values), raw, features, (x_mean, x_std, y_mean, y_std),
                 extra, tokens)  # fmt: skip
    return DataBundle(
        split(tr), split(va) if len(va) else None, split(te) if len(te) else None, info
    )


def prepared(rows: Any, ix: np.ndarray, prep: Prep) -> torch.Tensor:
    """Rows ``ix`` as model inputs, standardised in the copy read for them (a split read into
    memory is held once, not twice), or into a new tensor when the read is a slice of an
    in-memory array (the user's own, left as given)."""
    x = rows.read(ix)
    source = rows.x if isinstance(rows, ArrayRows) else None
    return prep(x, in_place=source is None or not np.may_share_memory(x, source))


def _named_bundle(spec: ExperimentSpec, raw: Any, base: Path | None) -> DataBundle:
    spec = named_data_spec(spec)  # data.target: the outputs' target columns
    direct = isinstance(raw, (UserDataset, NamedArrays))  # the user's, read by name as they are
    splits, fields = prepare_named_data(spec, raw if direct else _source(spec, raw, base))
    outputs = {name: DataInfo(**head) for name, head in fields.pop("outputs").items()}
    fields["extra"]["base_dir"] = str(base) if base is not None else None
    return DataBundle(*splits, DataInfo(**fields, outputs=outputs))  # type: ignore[arg-type]


def _source(spec: ExperimentSpec, raw: Any, base: Path | None) -> Raw | IterData:
    """``data.source`` loaded, or the user's data made a source."""
    raw = raw if raw is not None else load_source(spec.data, spec.seed, base)
    if isinstance(raw, UserTable):
        return user_table(raw.table, spec.data)
    if isinstance(raw, UserDataset):
        return user_dataset(raw.dataset, spec.data)
    if isinstance(raw, ImageFolder):  # decoded to input_shape's size and colour mode
        return image_data(raw, spec)
    return raw


def _streamed(spec: ExperimentSpec, raw: Raw) -> bool:
    """Whether the splits are read batch by batch (``data.in_memory``, see the module doc)."""
    if spec.data.in_memory == "no":
        return True
    return isinstance(raw, StreamData) and streams(spec.data.in_memory, raw.nbytes)


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
    x, tokens = flat_inputs(spec, raw)
    # the data's own per-sample shape (input_shape: auto keeps an image's (C, H, W))
    return ArrayRows(x.reshape(raw.x.shape)), tokens, None, None


def _info(
    spec: ExperimentSpec,
    shape: tuple[int, ...],
    targets: tuple[np.ndarray, tuple[str, ...], np.ndarray],
    raw: Any,
    features: tuple[str, ...],
    moments: tuple[torch.Tensor | None, ...],
    extra: dict[str, Any],
    tokens: bool,
) -> DataInfo:
    y, names, values = targets
    x_mean, x_std, y_mean, y_std = moments
    return DataInfo(
        task=spec.task,
        input_shape=shape,
        n_outputs=n_outputs(spec.task, y, names, raw),
        class_names=names,
        feature_names=features,
        x_mean=x_mean,
        x_std=x_std,
        y_mean=y_mean,
        y_std=y_std,
        extra=extra,
        tokens=tokens,
        class_values=tuple(values.tolist()),
        class_dtype=values.dtype.str if len(values) else "",
    )


def _iterable_bundle(spec: ExperimentSpec, raw: IterData, base: Path | None) -> DataBundle:
    """An iterable source: one pass (targets of each split, training statistics), then splits
    that read it again per epoch (:mod:`nnspec.run.iterables`)."""
    if spec.data.split.stratify:
        raise DataError(
            Problem(
                ("data", "split", "stratify"),
                "an iterable source is split by the hold-out rule (row i % 100), which cannot "
                "stratify",
                fix="leave split.stratify unset, or pass a map-style Dataset",
            )
        )
    if isinstance(raw.pieces, ParquetPieces):  # a table: its columns, one pass
        fitted = raw.pieces.fitted(spec.data, raw.val, raw.test)
        names = fitted.columns.names if fitted.columns is not None else ()
        raw = replace(raw, pieces=fitted, feature_names=names)
    pieces = raw.pieces
    scanned = scan(raw, stream_check(spec, pieces, {}))
    counts = [len(part) for part in scanned.y]
    if not counts[0]:
        raise DataError(Problem(("data", "split"), "the hold-out rule left no training rows",
                                found=f"{sum(counts)} rows"))  # fmt: skip
    y_all = np.concatenate(scanned.y)
    flat = RawData(np.empty((len(y_all), 0)), y_all, raw.feature_names, raw.class_names)
    y, names, values = encode_targets(flat, spec.task)
    shape = check_shape(spec, pieces.sample_shape)
    tokens = bool(input_embeddings(spec.model))
    columns = pieces.columns if isinstance(pieces, ParquetPieces) else None
    which = columns.standardised() if columns is not None else None
    x_mean = x_std = y_mean = y_std = None
    if spec.data.standardize and not tokens:
        x_mean, x_std = _as_moments(scanned.mean, scanned.std, which)
    if spec.task == "regression":
        y, y_mean, y_std = _target_moments(y, np.arange(counts[0]), spec.data.standardize_target)
    encode = target_encoder(spec.task, y_all, y_mean, y_std)
    prep = Prep(x_mean, x_std, shape, tokens)
    bounds = np.cumsum([0, *counts])
    splits = [
        IterSplit(raw, p, torch.from_numpy(y[bounds[p] : bounds[p + 1]]), prep, encode)
        if counts[p] else None
        for p in range(3)
    ]  # fmt: skip
    extra: dict[str, Any] = {"base_dir": str(base) if base is not None else None}
    if columns is not None:
        extra["columns"] = columns.to_json()
    moments = (x_mean, x_std, y_mean, y_std)
    info = _info(spec, shape, (y, names, values), flat, raw.feature_names, moments, extra, tokens)
    return DataBundle(splits[0], splits[1], splits[2], info)  # type: ignore[arg-type]
