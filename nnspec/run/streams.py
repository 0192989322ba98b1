"""Streamed splits: samples read batch by batch from a map-style source through
``torch.utils.data.DataLoader``, never the whole split in memory.

A map-style source is a :class:`Rows`: ``len``, the per-sample shape and dtype, and ``read(idx)``
for the features of any rows. Built in: :class:`ArrayRows` (an array, e.g. a memory-mapped
``.npy``), :class:`ShardRows` (a folder of memory-mapped ``.npy`` shards) and
:class:`DatasetRows` (the user's own ``torch.utils.data.Dataset`` of ``(x, y)`` items, used as it
is). Targets are always read into memory (one value per sample: stratified index splits, class
encoding and the metrics need them); features never are.

:class:`StreamSplit` is one split of such a source: its positions, its encoded targets, and the
preprocessing fitted on the training split. Its batches come from a ``DataLoader`` whose batch
sampler is the split's :class:`~nnspec.run.batches.EpochBatches`, with ``num_workers`` worker
processes (started for each pass), pinned memory when the device is CUDA, and each batch read
and standardised inside the worker with one call (``__getitems__``).

:func:`fit_moments` is the one full pass over the data, in storage order and fixed chunks: it
checks that features are finite and returns the training split's mean and standard deviation,
accumulated in float64. The in-memory path calls it on its array too, so streamed and in-memory
runs see the same statistics, bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import numpy as np
import torch

from nnspec.errors import DataError, Problem
from nnspec.run.batches import INPUT, TARGET, Batch, EpochBatches
from nnspec.run.workers import own_generator, release_freed_buffers, release_heap, worker_batches

__all__ = [
    "SCAN_ROWS",
    "IN_MEMORY_BYTES",
    "streams",
    "Rows",
    "ArrayRows",
    "read_rows",
    "DatasetRows",
    "StreamData",
    "ReaderSplit",
    "StreamSplit",
    "Prep",
    "fit_moments",
    "Moments",
    "unit_floor",
]

SCAN_ROWS: Final = 8192  # rows per chunk of a full pass (statistics, checks) [nnspec choice]
# in_memory: auto loads a lazily read source up to this size of float32 features [nnspec choice:
# a quarter of a small 4 GiB worker's memory, leaving room for the model and the loader]
IN_MEMORY_BYTES: Final = 1 << 30


def streams(in_memory: str, nbytes: int) -> bool:
    """Whether a lazily read source of ``nbytes`` float32 features is streamed under
    ``data.in_memory`` (``auto``: above :data:`IN_MEMORY_BYTES`)."""
    return in_memory == "no" or (in_memory == "auto" and nbytes > IN_MEMORY_BYTES)


class Rows(Protocol):
    """A map-style source of samples' features (see the module doc)."""

    sample_shape: tuple[int, ...]
    dtype: np.dtype[Any]

    def __len__(self) -> int: ...

    def read(self, idx: np.ndarray) -> np.ndarray:
        """Features of rows ``idx`` (any order), shaped ``(len(idx), *sample_shape)``."""
        ...

    def where(self, row: int) -> str:
        """Where row ``row`` lives, for error messages (file and row)."""
        ...


@dataclass(frozen=True)
class ArrayRows:
    """Rows of an array (in memory, or a memory-mapped ``.npy`` read on demand)."""

    x: np.ndarray
    name: str = "data"

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x.shape[1:])

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.x.dtype

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def read(self, idx: np.ndarray) -> np.ndarray:
        return read_rows(self.x, idx)

    def where(self, row: int) -> str:
        return f"{self.name}: sample {row}"


def read_rows(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``x[idx]`` read in ascending row order (sequential pages of a memory-mapped file), one
    slice for a run of consecutive rows."""
    if len(idx) and idx[-1] - idx[0] == len(idx) - 1 and bool(np.all(np.diff(idx) == 1)):
        return np.asarray(x[int(idx[0]) : int(idx[-1]) + 1])
    if not isinstance(x, np.memmap):  # in memory: one gather, no sorted copy to scatter from
        return x[idx]
    order = np.argsort(idx, kind="stable")
    out = np.empty((len(idx), *x.shape[1:]), dtype=x.dtype)
    out[order] = x[idx[order]]
    return out


@dataclass(frozen=True)
class DatasetRows:
    """The user's map-style ``Dataset`` of ``(x, y)`` items, read item by item, never copied."""

    dataset: Any
    sample_shape: tuple[int, ...]
    dtype: np.dtype[Any]

    @classmethod
    def of(cls, dataset: Any) -> DatasetRows:
        x, _ = _item(dataset, 0)
        return cls(dataset, tuple(int(d) for d in x.shape), x.dtype)

    def __len__(self) -> int:
        return len(self.dataset)

    def read(self, idx: np.ndarray) -> np.ndarray:
        out = np.empty((len(idx), *self.sample_shape), dtype=self.dtype)
        for k, i in enumerate(idx.tolist()):
            out[k] = _item(self.dataset, i)[0]
        return out

    def where(self, row: int) -> str:
        return f"dataset item {row}"

    def labels(self, workers: int) -> np.ndarray:
        """Every item's target, in one pass (through a DataLoader with ``workers``)."""
        targets = getattr(self.dataset, "targets", None)  # torchvision's convention: no pass
        if targets is not None and len(targets) == len(self):
            return np.asarray(targets)
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_size=SCAN_ROWS, num_workers=workers, collate_fn=_targets_only,
            worker_init_fn=release_freed_buffers, generator=own_generator(),
        )  # fmt: skip
        return np.concatenate([np.asarray(part) for part in loader])


def _item(dataset: Any, i: int) -> tuple[np.ndarray, Any]:
    item = dataset[i]
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        raise DataError(
            Problem(
                ("data",),
                f"dataset item {i} is not an (x, y) pair",
                expected="a Dataset whose items are (features, target)",
                found=type(item).__name__,
            )
        )
    x = item[0]
    return (x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)), item[1]


def _targets_only(items: list[Any]) -> np.ndarray:
    return np.asarray([y.item() if isinstance(y, torch.Tensor) and y.ndim == 0 else
                       np.asarray(y) for _, y in items])  # fmt: skip


@dataclass(frozen=True)
class StreamData:
    """A map-style source before splitting: lazily read features, targets in memory."""

    rows: Any  # a Rows
    y: np.ndarray
    feature_names: tuple[str, ...] = ()
    class_names: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        """The features' size as float32 (what loading them into memory would take)."""
        return len(self.rows) * int(np.prod(self.rows.sample_shape)) * 4


def unit_floor(std: np.ndarray) -> np.ndarray:
    """Standard deviations with the constant features' (at most 1e-8) set to 1, so
    standardising leaves them centred instead of dividing by zero."""
    return np.where(std > 1e-8, std, 1.0)


class Moments:
    """Running float64 mean and sum of squared deviations per feature, merged chunk by chunk
    with Chan et al.'s pairwise update (the result depends only on the chunks' contents and
    order)."""

    def __init__(self) -> None:
        self.count = 0
        self.mean: np.ndarray | None = None
        self.m2: np.ndarray | None = None

    def add(self, part: np.ndarray) -> None:
        """Add the rows of a 2-D chunk (converted to float64)."""
        if not len(part):
            return
        part = part.astype(np.float64)
        n_b, mean_b = len(part), part.mean(axis=0)
        m2_b = ((part - mean_b) ** 2).sum(axis=0)
        if self.mean is None or self.m2 is None:
            self.count, self.mean, self.m2 = n_b, mean_b, m2_b
            return
        delta, total = mean_b - self.mean, self.count + n_b
        self.mean = self.mean + delta * (n_b / total)
        self.m2 = self.m2 + m2_b + delta**2 * (self.count * n_b / total)
        self.count = total

    def result(self, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Mean and population standard deviation (zeros and ones when no row was added)."""
        if self.mean is None or self.m2 is None:
            return np.zeros(width), np.ones(width)
        return self.mean, np.sqrt(self.m2 / self.count)


def fit_moments(
    rows: Any, train: np.ndarray, check: Callable[[np.ndarray, int], None], workers: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (population, float64) of the rows in ``train``, flattened
    per sample, in one pass over every row in storage order (chunks of :data:`SCAN_ROWS`);
    ``check(chunk, first_row)`` sees every chunk (finite features, token ids)."""
    mask = np.zeros(len(rows), dtype=bool)
    mask[train] = True
    moments = Moments()
    for start, chunk in _chunks(rows, workers):
        flat = chunk.reshape(len(chunk), -1)
        check(flat, start)
        moments.add(flat[mask[start : start + len(flat)]])
    release_heap()
    return moments.result(int(np.prod(rows.sample_shape)))


def _chunks(rows: Any, workers: int) -> Iterator[tuple[int, np.ndarray]]:
    n = len(rows)
    if isinstance(rows, DatasetRows) and workers > 0:  # read items in parallel
        ds = _Chunked(rows)
        loader = torch.utils.data.DataLoader(
            ds, batch_size=None, num_workers=workers, worker_init_fn=release_freed_buffers,
            generator=own_generator(),
        )  # fmt: skip
        for start, chunk in zip(range(0, n, SCAN_ROWS), loader, strict=True):
            yield start, np.asarray(chunk)
        return
    for start in range(0, n, SCAN_ROWS):
        yield start, rows.read(np.arange(start, min(start + SCAN_ROWS, n)))


class _Chunked(torch.utils.data.Dataset[np.ndarray]):
    def __init__(self, rows: Any) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return -(-len(self.rows) // SCAN_ROWS)

    def __getitem__(self, i: int) -> np.ndarray:
        start = i * SCAN_ROWS
        return self.rows.read(np.arange(start, min(start + SCAN_ROWS, len(self.rows))))


@dataclass(frozen=True)
class Prep:
    """What turns read features into model inputs: per-feature float32 ``mean``/``std``
    (``None``: not standardised), the model's input shape, and int64 token ids."""

    mean: torch.Tensor | None
    std: torch.Tensor | None
    shape: tuple[int, ...]
    tokens: bool = False

    def __call__(self, x: np.ndarray, *, in_place: bool = False) -> torch.Tensor:
        """Model inputs from read features; ``in_place``: ``x`` is the caller's own copy, which
        may be standardised where it is (a whole split read into memory: no second copy)."""
        flat = torch.from_numpy(np.ascontiguousarray(x)).reshape(len(x), -1)
        if self.tokens:
            return flat.long().reshape(len(x), *self.shape)
        own = in_place or flat.dtype != torch.float32  # .float() below makes a copy
        flat = flat.float()
        if self.mean is not None and self.std is not None:
            flat = flat.sub_(self.mean).div_(self.std) if own else (flat - self.mean) / self.std
        return flat.reshape(len(x), *self.shape)


class _SplitReader(torch.utils.data.Dataset[Batch]):
    """A split as a DataLoader dataset whose batched read returns a whole batch mapping (the
    targets too unless ``with_targets`` is off: see :func:`worker_batches`)."""

    def __init__(
        self, rows: Any, positions: np.ndarray, y: torch.Tensor, prep: Prep,
        with_targets: bool = True,
    ) -> None:  # fmt: skip
        self.rows, self.positions, self.y, self.prep = rows, positions, y, prep
        self.with_targets = with_targets

    def __len__(self) -> int:
        return len(self.positions)

    def inputs_only(self) -> _SplitReader:
        return _SplitReader(self.rows, self.positions, self.y, self.prep, with_targets=False)

    def __getitems__(self, positions: list[int]) -> Batch:
        pos = np.asarray(positions, dtype=np.int64)
        x = self.rows.read(self.positions[pos])
        if not self.with_targets:
            return {INPUT: self.prep(x)}
        return {INPUT: self.prep(x), TARGET: self.y[torch.from_numpy(pos)]}

    def __getitem__(self, position: int) -> Batch:
        return self.__getitems__([position])


class ReaderSplit:
    """A streamed split: a reader Dataset (``reader``) whose ``__getitems__`` returns a whole
    prepared batch, and the split's encoded targets in memory (``targets``, by batch key); its
    length, first rows, and the batches of an epoch read in workers."""

    reader: Any  # a Dataset with __getitems__ and inputs_only()
    targets: Mapping[str, torch.Tensor]

    def __len__(self) -> int:
        return len(self.reader)  # type: ignore[arg-type]

    def head(self, k: int) -> Batch:
        """The first ``k`` samples (split order) as one batch."""
        return self.reader.__getitems__(list(range(min(k, len(self)))))  # type: ignore[attr-defined]

    def batches(
        self, sampler: EpochBatches, device: torch.device, *, workers: int = 0
    ) -> Iterable[Batch]:
        """The batches of ``sampler``'s current epoch, each time the result is iterated."""
        if device.type == "cpu":  # the workers send the inputs alone (see worker_batches)
            return worker_batches(self.reader.inputs_only(), sampler, device, workers,
                                  self.targets)  # fmt: skip
        return worker_batches(self.reader, sampler, device, workers)


class StreamSplit(ReaderSplit):
    """One split of a map-style source, read batch by batch (see the module doc).

    Args:
        rows: the source.
        positions: the source rows of this split, in split order.
        y: their encoded targets (in memory).
        prep: standardisation, shape, dtype.
    """

    def __init__(self, rows: Any, positions: np.ndarray, y: torch.Tensor, prep: Prep) -> None:
        self.reader = _SplitReader(rows, positions, y, prep)
        self.targets, self.y = {TARGET: y}, y

    @property
    def x(self) -> torch.Tensor:
        raise DataError(
            Problem(
                ("data", "in_memory"),
                f"this split is streamed ({len(self)} samples read batch by batch); this "
                "command needs the whole split in memory",
                fix="set data.in_memory: yes (or use a smaller source)",
            )
        )
