"""A user's map-style ``Dataset`` of named items, for a model with named inputs or several
outputs: ``nnspec.train(spec, data=dataset)``, read item by item, never copied.

An item is ``(inputs, targets)``: ``inputs`` maps each name of ``model.inputs`` to that sample's
array (one array for a model with one ``input_shape``), ``targets`` maps each name of
``model.outputs`` to that sample's target (one value for a model with one output). Inputs are
read as :mod:`nnspec.run.named_arrays` reads arrays: an input an embedding reads is integer
ids (its ``num_embeddings: auto`` is the largest id + 1), the others features standardised per
input with the training split's statistics.

Before training, two passes through a ``DataLoader`` with ``data.num_workers`` workers: every
item's targets (kept in memory: the split is stratified on the first output's classes), then
every item's inputs in storage order and fixed chunks (:data:`~nnspec.run.streams.SCAN_ROWS`):
every item's names and shapes against item 0's, integer and non-negative ids, finite features,
and the training split's float64 mean and standard deviation
(:class:`~nnspec.run.streams.Moments`). Both passes return the problems they find to the
training process as data (every one at once, by dataset item), so the batches of training are
read from items already checked. ``data.in_memory``: ``no`` streams each split batch by
batch (:class:`NamedStreamSplit`, each batch read and standardised inside a worker); ``yes``
reads every item into memory once more after the passes; ``auto`` streams when the inputs
would take more than :data:`~nnspec.run.streams.IN_MEMORY_BYTES` as float32. Both ways use the
same statistics, so they train alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from nnspec.errors import DataError, Problem
from nnspec.run.arrays import NamedArrays, RawData
from nnspec.run.batches import INPUT, TARGET, Batch, EpochBatches
from nnspec.run.named import (
    NamedSplit,
    check_input_shapes,
    output_heads,
    output_targets,
    prepare_named,
)
from nnspec.run.named_arrays import (
    arrays_info,
    bind_names,
    check_values,
    collect_problems,
    encode_input,
    input_names,
    prepare_named_arrays,
    samples,
    value_problems,
    with_count,
)
from nnspec.run.sources import UserDataset
from nnspec.run.splitting import split_indices
from nnspec.run.streams import (
    SCAN_ROWS,
    Moments,
    ReaderSplit,
    streams,
    unit_floor,
)
from nnspec.run.targets import encode_targets
from nnspec.run.tokens import embedded_inputs
from nnspec.run.workers import own_generator, release_freed_buffers, release_heap, whole_batch
from nnspec.spec.experiment import ExperimentSpec

__all__ = ["ArrayItems", "NamedStreamSplit", "prepare_named_data", "prepare_named_dataset"]


def prepare_named_data(spec: ExperimentSpec, source: Any) -> tuple[list[Any], dict[str, Any]]:
    """The splits and DataInfo fields of a model with named inputs or several outputs, from
    what feeds it: the user's Dataset of named items or arrays by name (streamed, or in memory:
    :mod:`nnspec.run.named_arrays`), or a table (:func:`~nnspec.run.named.prepare_named`)."""
    if isinstance(source, UserDataset):
        return prepare_named_dataset(spec, source.dataset)
    if isinstance(source, NamedArrays) and spec.data.in_memory == "no":  # item by item
        return prepare_named_dataset(spec, ArrayItems(spec, source))
    if isinstance(source, NamedArrays):
        return prepare_named_arrays(spec, source)
    return prepare_named(spec, source)


def prepare_named_dataset(spec: ExperimentSpec, dataset: Any) -> tuple[list[Any], dict[str, Any]]:
    """Check, split and fit a Dataset of named items (see the module doc).

    Returns:
        The train, validation and test splits (None when empty) and the fields of the run's
        :class:`~nnspec.run.data.DataInfo`, as :func:`~nnspec.run.named.prepare_named` does.
    """
    outputs = output_targets(spec)
    shapes = _first_item(dataset, input_names(spec), tuple(outputs))
    check_input_shapes(spec, shapes)  # before any pass over the data
    ids = embedded_inputs(spec.model)
    items = _Items(dataset, shapes, ids, tuple(outputs))
    workers, n = spec.data.num_workers, len(dataset)
    y = _read_targets(items, workers)
    empty = RawData(np.empty((n, 0), np.float32), np.empty(0))
    targets = {name: encode_targets(RawData(empty.x, y[name]), out.task)
               for name, out in outputs.items()}  # fmt: skip
    first, (y0, _, _) = next(iter(outputs.values())), next(iter(targets.values()))
    tr, va, te = split_indices(n, y0 if y0.ndim == 1 else y0[:, 0], spec, first.task)
    meta = _fit_inputs(items, tr, spec.data.standardize, workers)
    encoded: dict[str, np.ndarray] = {}
    heads, y_first = output_heads(spec, outputs, targets, empty, tr, encoded)
    width = sum(int(np.prod(s)) for s in shapes.values())
    stream = streams(spec.data.in_memory, n * width * 4)
    whole = None if stream else _read_all(_NamedReader(items, np.arange(n), meta, {}), workers)

    def split(ix: np.ndarray) -> Any:
        if not len(ix):
            return None
        y_split = {k: torch.from_numpy(np.ascontiguousarray(v[ix])) for k, v in encoded.items()}
        if whole is not None:
            held = {k: t[torch.from_numpy(ix)] for k, t in whole.items()}
            return NamedSplit({**held, **y_split}, torch.from_numpy(y_first[ix]))
        return NamedStreamSplit(items, ix, meta, y_split, torch.from_numpy(y_first[ix]))

    return [split(tr), split(va), split(te)], arrays_info(spec, heads, shapes, meta)


class ArrayItems(torch.utils.data.Dataset[tuple[Any, Any]]):
    """Named arrays as a Dataset of named items (``data.in_memory: no``): each item is one row
    of every array, read when asked for (memory-mapped arrays stay on disk)."""

    def __init__(self, spec: ExperimentSpec, raw: NamedArrays) -> None:
        problems: list[Problem] = []
        outputs = tuple(output_targets(spec))
        root = ("data",)
        self.x = collect_problems(problems, lambda: bind_names(raw.x, input_names(spec), "x",
                                                               root))  # fmt: skip
        self.y = collect_problems(problems, lambda: bind_names(raw.y, outputs, "y", root))
        if problems:
            raise DataError(problems)
        self.n = samples({**{("x", k): v for k, v in self.x.items()},
                          **{("y", k): v for k, v in self.y.items()}}, root)  # fmt: skip
        self.one_x, self.one_y = input_names(spec) == (INPUT,), outputs == (TARGET,)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        x = {k: a[i] for k, a in self.x.items()}
        y = {k: a[i] for k, a in self.y.items()}
        return (x[INPUT] if self.one_x else x), (y[TARGET] if self.one_y else y)


def _item_problem(message: str, **kw: Any) -> Problem:
    return Problem(("data",), message, **kw)


def _first_item(
    dataset: Any, names: tuple[str, ...], outputs: tuple[str, ...]
) -> dict[str, tuple[int, ...]]:
    """Item 0's names checked against the model's (every problem at once); each input's
    per-sample shape."""
    if isinstance(dataset, torch.utils.data.IterableDataset) or not hasattr(dataset, "__len__"):
        raise DataError(_item_problem(
            "a model with named inputs or several outputs reads a map-style Dataset",
            expected="a Dataset with __len__ and __getitem__ returning (inputs, targets)",
            found=type(dataset).__name__,
            fix="give the Dataset __len__ and __getitem__, or pass arrays by name",
        ))  # fmt: skip
    if len(dataset) == 0:
        raise DataError(_item_problem("the Dataset has no items", expected="one or more"))
    item = dataset[0]
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        raise DataError(_item_problem("dataset item 0 is not an (inputs, targets) pair",
                                      expected="items (inputs by name, targets by name)",
                                      found=type(item).__name__))  # fmt: skip
    problems: list[Problem] = []
    x = collect_problems(problems, lambda: bind_names(item[0], names, "x", ("data",)))
    collect_problems(problems, lambda: bind_names(item[1], outputs, "y", ("data",)))
    if problems:
        raise DataError([p.located("dataset item 0", None, None) for p in problems])
    return {name: tuple(int(d) for d in a.shape) or (1,) for name, a in x.items()}


class _Items:
    """The user's Dataset read item by item, each item's names and shapes checked against item
    0's; a problem comes back as a :class:`Problem` (data, not an exception: DataLoader
    workers pass exceptions back as text)."""

    def __init__(
        self, dataset: Any, shapes: dict[str, tuple[int, ...]], ids: frozenset[str],
        outputs: tuple[str, ...],
    ) -> None:  # fmt: skip
        self.dataset, self.shapes, self.ids, self.outputs = dataset, shapes, ids, outputs

    def __len__(self) -> int:
        return len(self.dataset)

    def _named(self, given: Any, names: tuple[str, ...], key: str, i: int) -> Any:
        """Item ``i``'s inputs (``key`` x) or targets (y) by name, or a Problem."""
        try:
            return bind_names(given, names, key, ("data",))
        except DataError as e:
            return e.problems[0].located(f"dataset item {i}", None, None)

    def targets(self, rows: list[int]) -> dict[str, np.ndarray] | Problem:
        columns: dict[str, list[Any]] = {name: [] for name in self.outputs}
        for i in rows:
            y = self._named(self.dataset[i][1], self.outputs, "y", i)
            if isinstance(y, Problem):
                return y
            for name in self.outputs:
                columns[name].append(y[name])
        return {name: np.asarray(values) for name, values in columns.items()}

    def inputs(self, rows: np.ndarray) -> dict[str, np.ndarray] | Problem:
        """The inputs of ``rows``, one array per input (N, *shape)."""
        names = tuple(self.shapes)
        columns: dict[str, list[np.ndarray]] = {name: [] for name in names}
        for i in rows.tolist():
            x = self._inputs_of(self.dataset[i][0], names, i)
            if isinstance(x, Problem):
                return x
            for name, a in zip(names, x, strict=True):
                shape = self.shapes[name]
                if (tuple(a.shape) or (1,)) != shape:
                    return Problem(("data", "x", name), f"input '{name}' has another shape "
                                   "than dataset item 0's", expected=str(list(shape)),
                                   found=str(list(a.shape)), file=f"dataset item {i}")  # fmt: skip
                columns[name].append(a.reshape(shape))
        return {name: np.stack(values) for name, values in columns.items()}

    def _inputs_of(self, given: Any, names: tuple[str, ...], i: int) -> list[np.ndarray] | Problem:
        """Item ``i``'s input arrays in ``names`` order. The common case reads the names
        directly (once per item, in every batch); anything else goes through
        :func:`~nnspec.run.named_arrays.bind_names` for its message."""
        one = names == (INPUT,)
        try:
            if one == isinstance(given, Mapping) or (not one and len(given) != len(names)):
                raise KeyError  # a mapping for one input, one array for several, extra names
            values = [given] if one else [given[name] for name in names]
            return [v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
                    for v in values]  # fmt: skip
        except (KeyError, TypeError, ValueError):
            x = self._named(given, names, "x", i)
            return x if isinstance(x, Problem) else [x[name] for name in names]


def _read_targets(items: _Items, workers: int) -> dict[str, np.ndarray]:
    loader = torch.utils.data.DataLoader(
        range(len(items)), batch_size=SCAN_ROWS, num_workers=workers, generator=own_generator(),
        collate_fn=items.targets, worker_init_fn=release_freed_buffers,  # batches of item numbers
    )  # fmt: skip
    parts = list(loader)
    bad = next((p for p in parts if isinstance(p, Problem)), None)
    if bad is not None:
        raise DataError(bad)
    y = {name: np.concatenate([p[name] for p in parts]) for name in items.outputs}
    check_values({}, y, ("data",))
    return y


class _Chunks(torch.utils.data.Dataset[Any]):
    """The inputs of chunk ``i`` (rows ``i * SCAN_ROWS ...``), stacked per input, or a Problem."""

    def __init__(self, items: _Items) -> None:
        self.items = items

    def __len__(self) -> int:
        return -(-len(self.items) // SCAN_ROWS)

    def __getitem__(self, i: int) -> Any:
        start = i * SCAN_ROWS
        return self.items.inputs(np.arange(start, min(start + SCAN_ROWS, len(self.items))))


class _InputStats:
    """What the inputs pass adds up over the chunks: each input's problem, bad-sample count and
    first bad item; the ids' largest value; the features' training-split moments."""

    def __init__(self, items: _Items) -> None:
        self.items = items
        self.found: dict[str, tuple[Problem, int, int]] = {}
        self.top = dict.fromkeys((n for n in items.shapes if n in items.ids), 0)
        self.moments = {name: Moments() for name in items.shapes if name not in items.ids}

    def add(self, chunk: dict[str, np.ndarray], start: int, mask: np.ndarray) -> None:
        for name, part in chunk.items():
            ids = name in self.items.ids
            problem, count, first = value_problems(name, part, ("data", "x", name), ids, start)
            if problem is not None:
                old = self.found.get(name)
                self.found[name] = (problem, count + (old[1] if old else 0),
                                    old[2] if old else first)  # fmt: skip
                continue
            flat = part.reshape(len(part), -1)
            if ids:
                self.top[name] = max(self.top[name], int(flat.max()))
            else:
                self.moments[name].add(flat[mask[start : start + len(flat)]])

    def meta(self, standardize: bool) -> dict[str, dict[str, Any]]:
        """Each input's saved fields (as named arrays'), once every chunk was added."""
        if self.found:
            raise DataError([with_count(p, count, first, "dataset item")
                             for p, count, first in self.found.values()])  # fmt: skip
        meta: dict[str, dict[str, Any]] = {}
        for name, shape in self.items.shapes.items():
            if name in self.top:
                meta[name] = {"kind": "ids", "shape": list(shape), "vocab": self.top[name] + 1}
                continue
            mean, std = self.moments[name].result(int(np.prod(shape)))
            mean, std = mean.astype(np.float32), unit_floor(std).astype(np.float32)
            meta[name] = {"kind": "features", "shape": list(shape),
                          "mean": mean.tolist() if standardize else None,
                          "std": std.tolist() if standardize else None}  # fmt: skip
        return meta


def _fit_inputs(
    items: _Items, train: np.ndarray, standardize: bool, workers: int
) -> dict[str, dict[str, Any]]:
    """The pass over every item's inputs, in storage order (see the module doc)."""
    mask = np.zeros(len(items), dtype=bool)
    mask[train] = True
    loader = torch.utils.data.DataLoader(
        _Chunks(items), batch_size=None, num_workers=workers, generator=own_generator(),
        worker_init_fn=release_freed_buffers,
    )  # fmt: skip
    stats = _InputStats(items)
    for start, chunk in zip(range(0, len(items), SCAN_ROWS), loader, strict=True):
        if isinstance(chunk, Problem):
            raise DataError(chunk)
        stats.add({name: np.asarray(part) for name, part in chunk.items()}, start, mask)
    release_heap()  # the pass's chunk-sized temporaries (see release_heap)
    return stats.meta(standardize)


def _read_all(reader: _NamedReader, workers: int) -> dict[str, torch.Tensor]:
    """Every item's inputs, standardised, in memory (``data.in_memory: yes``)."""
    sampler = EpochBatches(len(reader), SCAN_ROWS, seed=0, shuffle=False, drop_last_single=False)
    loader = torch.utils.data.DataLoader(
        reader, batch_sampler=sampler, num_workers=workers, collate_fn=whole_batch,
        worker_init_fn=release_freed_buffers, generator=own_generator(),
    )  # fmt: skip
    parts = list(loader)
    return {name: torch.cat([p[name] for p in parts]) for name in reader.meta}


class _NamedReader(torch.utils.data.Dataset[Batch]):
    """Positions of the Dataset as one batch mapping (the inputs prepared with ``meta``, the
    targets from ``targets``), read with one call inside a DataLoader worker."""

    def __init__(
        self, items: _Items, positions: np.ndarray, meta: dict[str, dict[str, Any]],
        targets: Mapping[str, torch.Tensor],
    ) -> None:  # fmt: skip
        self.items, self.positions, self.meta, self.targets = items, positions, meta, targets

    def __len__(self) -> int:
        return len(self.positions)

    def inputs_only(self) -> _NamedReader:
        return _NamedReader(self.items, self.positions, self.meta, {})

    def __getitems__(self, positions: list[int]) -> Batch:
        pos = np.asarray(positions, dtype=np.int64)
        arrays = self.items.inputs(self.positions[pos])
        if isinstance(arrays, Problem):  # the items changed since the checking pass
            raise DataError(arrays)
        batch = {name: encode_input(arrays[name], m) for name, m in self.meta.items()}
        index = torch.from_numpy(pos)
        batch.update({key: t[index] for key, t in self.targets.items()})
        return batch

    def __getitem__(self, position: int) -> Batch:
        return self.__getitems__([position])


class NamedStreamSplit(ReaderSplit):
    """One split of a Dataset of named items, read batch by batch (see the module doc).

    Args:
        items: the user's Dataset (checked reads).
        positions: the Dataset items of this split, in split order.
        meta: each input's saved fields (kind, shape, vocabulary or statistics).
        targets: the split's encoded targets by batch key (in memory).
        y: the first output's encoded targets (class counts, the head's bias).
    """

    def __init__(
        self, items: _Items, positions: np.ndarray, meta: dict[str, dict[str, Any]],
        targets: Mapping[str, torch.Tensor], y: torch.Tensor,
    ) -> None:  # fmt: skip
        self.reader = _NamedReader(items, positions, meta, targets)
        self.targets, self.y = targets, y
