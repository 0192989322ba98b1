"""Iterable sources: data read front to back in pieces, never by index: a user's
``torch.utils.data.IterableDataset`` of ``(x, y)`` samples (one piece) and Parquet datasets (every
row group of every file is a piece, see :mod:`nnspec.run.table_stream`).

**Hold-out rule.** Rows are numbered in source order (``0, 1, ...`` over the pieces in order);
row ``i`` belongs to the test split when ``i % 100 < round(100 * split.test)``, to validation
when it is below ``round(100 * (split.test + split.val))``, and to training otherwise. The rule
needs no pass and no memory, is the same on every pass, and gives each split its fraction to
within one percent; there is no stratification.

**One pass** (:func:`scan`) reads every row once: the targets of each split (kept in memory,
one value per sample, for class encoding and metrics), the float64 statistics of the training
rows, and the checks.

**Sharding and order.** An :class:`IterSplit`'s batches come from a ``DataLoader`` over a reader
that runs in each worker: a multi-piece source gives each (rank, worker) reader the pieces ``p``
with ``p % count == index`` (:func:`~nnspec.run.batches.shard_of`), a one-piece source the rows
``i`` with ``i % count == index``, so no row is read twice. Training takes the pieces in the order
``epoch_order(seed, epoch, pieces)`` and shuffles the rows of each chunk with the same seed; a
user's dataset with ``set_epoch(epoch)`` is told the epoch. The main process cuts what the
workers yield into batches of exactly ``batch_size`` rows (the drop rule of
:class:`~nnspec.run.batches.EpochBatches`), so an epoch has the steps the plan expects.
Validation and test parts are read in source order in the main process, so outputs line up with
their targets.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import torch

from nnspec.errors import DataError, Problem
from nnspec.run.batches import (
    INPUT,
    TARGET,
    Batch,
    EpochBatches,
    SeededEpochs,
    epoch_order,
    shard_of,
)
from nnspec.run.streams import SCAN_ROWS, Moments, Prep
from nnspec.run.workers import release_freed_buffers, release_heap

__all__ = [
    "HOLDOUT",
    "IterData",
    "IterSplit",
    "UserIterable",
    "Chunk",
    "has_target",
    "whole_numbers",
    "holdout_parts",
    "scan",
]

HOLDOUT: Final = 100  # rows per hold-out cycle (see the module doc) [nnspec choice]
Chunk = tuple[int, np.ndarray, np.ndarray]  # first row number, features, raw targets


def has_target(y: Any) -> np.ndarray:
    """Which rows have a target value (not None, not NaN): the others are left out."""
    y = np.asarray(y)
    if y.dtype.kind == "f":
        return ~np.isnan(y) if y.ndim == 1 else ~np.isnan(y).any(axis=tuple(range(1, y.ndim)))
    if y.dtype.kind == "O":
        return np.array([v is not None for v in y], dtype=bool)
    return np.ones(len(y), dtype=bool)


def whole_numbers(values: np.ndarray) -> np.ndarray:
    """Targets without empty cells in their plain form: floats that are all whole numbers
    (class labels) as int64, text as str; others as they are."""
    if values.dtype.kind == "O":
        return values.astype(str)
    if values.dtype.kind != "f":
        return values
    whole = np.all(np.mod(values, 1) == 0) and np.abs(values).max(initial=0) < 2**53
    return values.astype(np.int64) if whole else values


def holdout_parts(rows: np.ndarray, val: float, test: float) -> np.ndarray:
    """The split of each row number: 0 training, 1 validation, 2 test.

    Example:
        >>> holdout_parts(np.arange(5), val=0.2, test=0.1)[:1].tolist()
        [2]
    """
    cycle, n_test = rows % HOLDOUT, round(test * HOLDOUT)
    n_val = round((test + val) * HOLDOUT) - n_test
    return np.where(cycle < n_test, 2, np.where(cycle < n_test + n_val, 1, 0))


@dataclass(frozen=True)
class UserIterable:
    """A user's ``IterableDataset`` of ``(x, y)`` samples: one piece, rows numbered as they come."""

    dataset: Any
    sample_shape: tuple[int, ...]
    dtype: np.dtype[Any]
    by_piece: bool = False
    name = "the IterableDataset"

    @classmethod
    def of(cls, dataset: Any) -> UserIterable:
        for item in dataset:
            x = _pair(item, 0)[0]
            return cls(dataset, tuple(int(d) for d in x.shape), x.dtype)
        raise DataError(Problem(("data",), "the IterableDataset yields no samples"))

    def __len__(self) -> int:
        return 1

    def read(self, piece: int, epoch: int | None = None) -> Iterator[Chunk]:
        if epoch is not None and hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        xs: list[np.ndarray] = []
        ys: list[Any] = []
        start = 0
        for i, item in enumerate(self.dataset):
            x, y = _pair(item, i)
            xs.append(x)
            ys.append(y)
            if len(xs) == SCAN_ROWS:
                yield start, np.stack(xs), np.asarray(ys)
                start, xs, ys = start + len(xs), [], []
        if xs:
            yield start, np.stack(xs), np.asarray(ys)

    def where(self, row: int) -> str:
        return f"dataset sample {row}"


def _pair(item: Any, i: int) -> tuple[np.ndarray, Any]:
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        raise DataError(Problem(("data",), f"dataset sample {i} is not an (x, y) pair",
                                found=type(item).__name__))  # fmt: skip
    x, y = item
    x = x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return x, (y.numpy() if isinstance(y, torch.Tensor) else y)


@dataclass(frozen=True)
class IterData:
    """An iterable source before its pass: the pieces and the hold-out fractions."""

    pieces: Any  # UserIterable, ParquetPieces
    val: float
    test: float
    feature_names: tuple[str, ...] = ()
    class_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scanned:
    """What the one pass found: each split's raw targets and the training statistics."""

    y: tuple[np.ndarray, np.ndarray, np.ndarray]  # training, validation, test (source order)
    mean: np.ndarray
    std: np.ndarray


def scan(data: IterData, check: Callable[[np.ndarray, int], None]) -> Scanned:
    """The one pass over every piece in order (see the module doc)."""
    moments, ys = Moments(), ([], [], [])  # type: tuple[Moments, tuple[list[Any], ...]]
    unlabelled = 0
    for piece in range(len(data.pieces)):
        for start, x, y in data.pieces.read(piece):
            flat = x.reshape(len(x), -1)
            check(flat, start)
            labelled = has_target(y)
            unlabelled += len(y) - int(labelled.sum())
            parts = np.where(labelled, holdout_parts(start + np.arange(len(x)), data.val,
                                                     data.test), -1)  # fmt: skip
            moments.add(flat[parts == 0])
            for p in range(3):
                ys[p].append(np.asarray(y)[parts == p])
    release_heap()  # the pass's chunk-sized temporaries (see release_heap)
    if unlabelled:
        total = unlabelled + sum(len(part) for p in ys for part in p)
        warnings.warn(f"{data.pieces.name}: {unlabelled} of {total} rows have no target value "
                      "and were left out", stacklevel=2)  # fmt: skip
    width = int(np.prod(data.pieces.sample_shape))
    mean, std = moments.result(width)
    empty = np.zeros(0)
    joined = tuple(whole_numbers(np.concatenate(part)) if part else empty for part in ys)
    return Scanned((joined[0], joined[1], joined[2]), mean, std)


class _PartReader(torch.utils.data.IterableDataset[Batch]):
    """Runs in each DataLoader worker: this reader's shard of one split, as batch mappings of at
    most a chunk's rows (encoded targets, standardised inputs)."""

    def __init__(self, split: IterSplit, sampler: EpochBatches) -> None:
        self.split, self.sampler = split, sampler

    def __iter__(self) -> Iterator[Batch]:
        split, sampler = self.split, self.sampler
        pieces = split.data.pieces
        index, count = shard_of(sampler.rank, sampler.world_size)
        n = len(pieces)
        order = epoch_order(sampler.seed, sampler.epoch, n) if sampler.shuffle else torch.arange(n)
        mine = order.tolist()[index::count] if pieces.by_piece else order.tolist()
        gen = torch.Generator().manual_seed(sampler.seed * 1_000_003 + sampler.epoch)
        for piece in mine:
            epoch = sampler.epoch if sampler.shuffle else None
            for start, x, y in pieces.read(piece, epoch):
                rows = start + np.arange(len(x))
                keep = holdout_parts(rows, split.data.val, split.data.test) == split.part
                keep &= has_target(y)
                if not pieces.by_piece:
                    keep &= rows % count == index
                if not keep.any():
                    continue
                xb, yb = split.prep(x[keep]), split.encode(whole_numbers(np.asarray(y)[keep]))
                if sampler.shuffle:
                    perm = torch.randperm(len(yb), generator=gen)
                    xb, yb = xb[perm], yb[perm]
                yield {INPUT: xb, TARGET: yb}


def _whole(batch: Any) -> Any:
    return batch


class IterSplit:
    """One split of an iterable source (see the module doc).

    Args:
        data: the source and its hold-out fractions.
        part: 0 training, 1 validation, 2 test.
        y: the split's encoded targets, in source order.
        prep: standardisation, shape, dtype.
        encode: raw targets -> encoded targets (the run's class encoding or scaling).
    """

    def __init__(
        self,
        data: IterData,
        part: int,
        y: torch.Tensor,
        prep: Prep,
        encode: Callable[[np.ndarray], torch.Tensor],
    ) -> None:
        self.data, self.part, self.y, self.prep, self.encode = data, part, y, prep, encode

    def __len__(self) -> int:
        return len(self.y)

    @property
    def x(self) -> torch.Tensor:
        raise DataError(Problem(("data", "source"), "this split is streamed from an iterable "
                                "source; this command needs the whole split in memory",
                                fix="pass (x, y) arrays or a map-style Dataset"))  # fmt: skip

    def head(self, k: int) -> Batch:
        """The first ``k`` samples (source order) as one batch."""
        sampler = EpochBatches(len(self), k, seed=0, shuffle=False, drop_last_single=False)
        for batch in _PartReader(self, sampler):
            return {name: t[:k] for name, t in batch.items()}
        return {INPUT: torch.zeros(0), TARGET: self.y[:0]}

    def batches(
        self, sampler: EpochBatches, device: torch.device, *, workers: int = 0
    ) -> Iterable[Batch]:
        """Batches of exactly ``sampler.batch_size // world_size`` rows, each time iterated."""
        training = sampler.shuffle

        def loader(generator: torch.Generator) -> Iterable[Batch]:
            return torch.utils.data.DataLoader(
                _PartReader(self, sampler),
                batch_size=None,
                num_workers=workers if training else 0,  # evaluation: source order (module doc)
                collate_fn=_whole,
                pin_memory=device.type == "cuda",
                worker_init_fn=release_freed_buffers,
                generator=generator,
            )

        size = max(1, sampler.batch_size // sampler.world_size)
        chunks = SeededEpochs(loader, sampler)
        return _Rebatched(chunks, size, len(sampler) if training else None, device)


class _Rebatched:
    """Chunks cut into batches of ``size`` rows; ``limit``: at most that many batches (the
    plan's steps per epoch: a last batch too small to train on is dropped)."""

    def __init__(self, chunks: Iterable[Batch], size: int, limit: int | None, device: Any) -> None:
        self.chunks, self.size, self.limit, self.device = chunks, size, limit, device

    def __iter__(self) -> Iterator[Batch]:
        held: list[Batch] = []
        rows, made, size = 0, 0, self.size
        for chunk in self.chunks:
            held.append(chunk)
            rows += len(chunk[TARGET])
            if rows < size:
                continue
            joined = {k: torch.cat([c[k] for c in held]) for k in chunk}
            start = 0
            while rows - start >= size:
                yield self._moved({k: v[start : start + size] for k, v in joined.items()})
                made, start = made + 1, start + size
                if self.limit is not None and made >= self.limit:
                    return
            held = [{k: v[start:] for k, v in joined.items()}] if rows > start else []
            rows -= start
        if rows and (self.limit is None or made < self.limit):
            yield self._moved({k: torch.cat([c[k] for c in held]) for k in held[0]})

    def _moved(self, batch: Batch) -> Batch:
        if self.device.type == "cpu":
            return batch
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
