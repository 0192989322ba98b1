"""A user's map-style ``Dataset`` of named items, for a model with named inputs or several
outputs: ``nnspec.train(spec, data=dataset)``, read item by item, never copied.

An item is ``(inputs, targets)``: ``inputs`` maps each name of ``model.inputs`` to that sample's
array (one array for a model with one ``input_shape``), ``targets`` maps each name of
``model.outputs`` to that sample's target (one value for a model with one output). Inputs are
read as :mod:`nnspec.run.named_arrays` reads arrays: integer arrays are ids (an embedding's
``num_embeddings: auto`` is the largest id + 1), the others features standardised per input
with the training split's statistics.

Before training, two passes through a ``DataLoader`` with ``data.num_workers`` workers: every
item's targets (kept in memory: the split is stratified on the first output's classes), then
every item's inputs in storage order and fixed chunks (:data:`~nnspec.run.streams.SCAN_ROWS`):
the ids' range, finite features, and the training split's float64 mean and standard deviation
(:class:`~nnspec.run.streams.Moments`). ``data.in_memory``: ``no`` streams each split batch by
batch (:class:`NamedStreamSplit`, each batch read and standardised inside a worker); ``yes``
reads every item into memory once more after the passes; ``auto`` streams when the inputs
would take more than :data:`~nnspec.run.streams.IN_MEMORY_BYTES` as float32. Both ways use the
same statistics, so they train alike.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from nnspec.errors import DataError, Problem
from nnspec.run.arrays import RawData
from nnspec.run.batches import INPUT, TARGET, Batch, EpochBatches
from nnspec.run.named import NamedSplit, _check_shapes, _heads, output_targets
from nnspec.run.named_arrays import _bound, _check_values, _collect, arrays_info
from nnspec.run.splitting import split_indices
from nnspec.run.streams import (
    SCAN_ROWS,
    Moments,
    ReaderSplit,
    _own_generator,
    _whole,
    release_freed_buffers,
    release_heap,
    streams,
)
from nnspec.run.targets import encode_targets
from nnspec.spec.experiment import ExperimentSpec

__all__ = ["NamedStreamSplit", "prepare_named_dataset"]


def prepare_named_dataset(
    spec: ExperimentSpec, dataset: Any
) -> tuple[list[Any], dict[str, Any]]:
    """Check, split and fit a Dataset of named items (see the module doc).

    Returns:
        The train, validation and test splits (None when empty) and the fields of the run's
        :class:`~nnspec.run.data.DataInfo`, as :func:`~nnspec.run.named.prepare_named` does.
    """
    outputs = output_targets(spec)
    names = tuple(spec.model.inputs) if spec.model.inputs is not None else (INPUT,)
    kinds = _first_item(dataset, names, tuple(outputs))
    workers, n = spec.data.num_workers, len(dataset)
    y = _read_targets(dataset, tuple(outputs), workers)
    empty = RawData(np.empty((n, 0), np.float32), np.empty(0))
    targets = {name: encode_targets(RawData(empty.x, y[name]), out.task)
               for name, out in outputs.items()}  # fmt: skip
    first, (y0, _, _) = next(iter(outputs.values())), next(iter(targets.values()))
    tr, va, te = split_indices(n, y0 if y0.ndim == 1 else y0[:, 0], spec, first.task)
    meta = _fit_inputs(dataset, kinds, tr, spec.data.standardize, workers)
    shapes = {name: tuple(m["shape"]) for name, m in meta.items()}
    _check_shapes(spec, shapes)
    encoded: dict[str, np.ndarray] = {}
    heads, y_first = _heads(spec, outputs, targets, empty, tr, encoded)  # type: ignore[arg-type]
    width = sum(int(np.prod(s)) for s in shapes.values())
    stream = streams(spec.data.in_memory, n * width * 4)
    whole = None if stream else _read_all(_NamedReader(dataset, np.arange(n), meta, {}), workers)

    def split(ix: np.ndarray) -> Any:
        if not len(ix):
            return None
        y_split = {k: torch.from_numpy(np.ascontiguousarray(v[ix])) for k, v in encoded.items()}
        if whole is not None:
            held = {k: t[torch.from_numpy(ix)] for k, t in whole.items()}
            return NamedSplit({**held, **y_split}, torch.from_numpy(y_first[ix]))
        return NamedStreamSplit(dataset, ix, meta, y_split, torch.from_numpy(y_first[ix]))

    return [split(tr), split(va), split(te)], arrays_info(spec, heads, shapes, meta)


def _first_item(dataset: Any, names: tuple[str, ...], outputs: tuple[str, ...]) -> dict[str, Any]:
    """Item 0's names checked against the model's (every problem at once); each input's
    per-sample shape and whether it is ids."""
    if len(dataset) == 0:
        raise DataError(Problem(("data",), "the Dataset has no items", expected="one or more"))
    item = dataset[0]
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        raise DataError(Problem(("data",), "dataset item 0 is not an (inputs, targets) pair",
                                expected="items (inputs by name, targets by name)",
                                found=type(item).__name__))  # fmt: skip
    problems: list[Problem] = []
    x = _collect(problems, lambda: _bound(item[0], names, "x", "input", "model.inputs", ("data",)))
    _collect(problems, lambda: _bound(item[1], outputs, "y", "output", "model.outputs",
                                      ("data",)))  # fmt: skip
    if problems:
        raise DataError([p.located("dataset item 0", None, None) for p in problems])
    found = {}
    for name, a in x.items():
        if a.dtype.kind not in "iufb":
            problems.append(Problem(("data", "x", name), f"input '{name}' is not numbers",
                                    found=str(a.dtype), file="dataset item 0"))  # fmt: skip
        found[name] = {"ids": a.dtype.kind in "iu", "shape": tuple(a.shape) or (1,)}
    if problems:
        raise DataError(problems)
    return found


def _targets_of(outputs: tuple[str, ...], items: list[Any]) -> dict[str, np.ndarray]:
    """A DataLoader worker's collate of the targets pass: each output's targets, stacked."""
    one = outputs == (TARGET,)
    columns: dict[str, list[Any]] = {name: [] for name in outputs}
    for _, y in items:
        for name in outputs:
            value = y if one else y[name]
            columns[name].append(value.numpy() if isinstance(value, torch.Tensor) else value)
    return {name: np.asarray(values) for name, values in columns.items()}


def _read_targets(dataset: Any, outputs: tuple[str, ...], workers: int) -> dict[str, np.ndarray]:
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=SCAN_ROWS, num_workers=workers, generator=_own_generator(),
        collate_fn=functools.partial(_targets_of, outputs), worker_init_fn=release_freed_buffers,
    )  # fmt: skip
    parts = list(loader)
    y = {name: np.concatenate([p[name] for p in parts]) for name in outputs}
    _check_values({}, y, ("data",))
    return y


class _Chunks(torch.utils.data.Dataset[dict[str, np.ndarray]]):
    """The inputs of chunk ``i`` (rows ``i * SCAN_ROWS ...``), stacked per input."""

    def __init__(self, reader: _NamedReader) -> None:
        self.reader = reader

    def __len__(self) -> int:
        return -(-len(self.reader.dataset) // SCAN_ROWS)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        start = i * SCAN_ROWS
        rows = np.arange(start, min(start + SCAN_ROWS, len(self.reader.dataset)))
        return self.reader.stacked(rows)


def _fit_inputs(
    dataset: Any, kinds: dict[str, Any], train: np.ndarray, standardize: bool, workers: int
) -> dict[str, dict[str, Any]]:
    """The pass over every item's inputs: each input's saved fields (as named arrays')."""
    mask = np.zeros(len(dataset), dtype=bool)
    mask[train] = True
    shapes = {name: k["shape"] for name, k in kinds.items()}
    reader = _NamedReader(dataset, np.arange(len(dataset)), {}, {}, shapes)
    loader = torch.utils.data.DataLoader(
        _Chunks(reader), batch_size=None, num_workers=workers, generator=_own_generator(),
        worker_init_fn=release_freed_buffers,
    )  # fmt: skip
    moments = {name: Moments() for name, k in kinds.items() if not k["ids"]}
    top = dict.fromkeys((name for name, k in kinds.items() if k["ids"]), 0)
    problems: list[Problem] = []
    for start, chunk in zip(range(0, len(dataset), SCAN_ROWS), loader, strict=True):
        for name, part in chunk.items():
            part = np.asarray(part)
            flat = part.reshape(len(part), -1)
            if name in top:
                top[name] = max(top[name], int(flat.max()) if flat.size else 0)
            else:
                moments[name].add(flat[mask[start : start + len(flat)]])
            try:
                _check_values({name: part}, {}, ("data",))
            except DataError as e:  # sample numbers within the chunk -> the dataset's items
                problems += [_in_dataset(p, start) for p in e.problems]
    release_heap()  # the pass's chunk-sized temporaries (see release_heap)
    if problems:
        raise DataError(_first_per_path(problems))
    meta: dict[str, dict[str, Any]] = {}
    for name, k in kinds.items():
        shape = list(k["shape"])
        if k["ids"]:
            meta[name] = {"kind": "ids", "shape": shape, "vocab": top[name] + 1}
            continue
        mean, std = moments[name].result(int(np.prod(k["shape"])))
        std = np.where(std > 1e-8, std, 1.0)
        on = standardize
        meta[name] = {"kind": "features", "shape": shape,
                      "mean": mean.astype(np.float32).tolist() if on else None,
                      "std": std.astype(np.float32).tolist() if on else None}  # fmt: skip
    return meta


def _in_dataset(problem: Problem, start: int) -> Problem:
    """A chunk's problem with its sample number made the dataset item's."""
    import re

    message = re.sub(r"sample (\d+)", lambda m: f"dataset item {start + int(m.group(1))}",
                     problem.message)  # fmt: skip
    return Problem(problem.path, message, problem.expected, problem.found, problem.fix)


def _first_per_path(problems: list[Problem]) -> list[Problem]:
    seen: dict[tuple[Any, ...], Problem] = {}
    for p in problems:
        seen.setdefault(p.path, p)
    return list(seen.values())


def _read_all(reader: _NamedReader, workers: int) -> dict[str, torch.Tensor]:
    """Every item's inputs, standardised, in memory (``data.in_memory: yes``)."""
    sampler = EpochBatches(len(reader), SCAN_ROWS, seed=0, shuffle=False, drop_last_single=False)
    loader = torch.utils.data.DataLoader(
        reader, batch_sampler=sampler, num_workers=workers, collate_fn=_whole,
        worker_init_fn=release_freed_buffers, generator=_own_generator(),
    )  # fmt: skip
    parts = list(loader)
    return {name: torch.cat([p[name] for p in parts]) for name in reader.meta}


class _NamedReader(torch.utils.data.Dataset[Batch]):
    """Positions of the Dataset as one batch mapping (the inputs prepared with ``meta``, the
    targets from ``targets``), read with one call inside a DataLoader worker."""

    def __init__(
        self, dataset: Any, positions: np.ndarray, meta: dict[str, dict[str, Any]],
        targets: Mapping[str, torch.Tensor], shapes: dict[str, tuple[int, ...]] | None = None,
    ) -> None:  # fmt: skip
        self.dataset, self.positions, self.meta, self.targets = dataset, positions, meta, targets
        self.shapes = shapes or {name: tuple(m["shape"]) for name, m in meta.items()}

    def __len__(self) -> int:
        return len(self.positions)

    def stacked(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """The inputs of the Dataset's ``rows``, one array per input (N, *shape)."""
        one = tuple(self.shapes) == (INPUT,)
        out = {name: [] for name in self.shapes}  # type: dict[str, list[Any]]
        for i in rows.tolist():
            x = self.dataset[i][0]
            for name in self.shapes:
                value = x if one else x[name]
                out[name].append(value.numpy() if isinstance(value, torch.Tensor) else value)
        stacked = {}
        for name, values in out.items():
            try:
                a = np.asarray(values)
            except ValueError:  # items of different shapes
                a = np.asarray([np.shape(v) for v in values], dtype=object)
            shape = self.shapes[name]
            if a.shape[1:] not in (shape, ()) or (a.shape[1:] == () and shape != (1,)):
                bad = next(k for k, v in enumerate(values) if np.shape(v) not in (shape, ()))
                raise DataError(Problem(
                    ("data", "x", name), f"dataset item {int(rows[bad])}: input '{name}' has "
                    "another shape than item 0's", expected=str(list(shape)),
                    found=str(list(np.shape(values[bad]))),
                ))  # fmt: skip
            stacked[name] = a.reshape(len(a), *shape)
        return stacked

    def __getitems__(self, positions: list[int]) -> Batch:
        pos = np.asarray(positions, dtype=np.int64)
        arrays = self.stacked(self.positions[pos])
        batch: dict[str, torch.Tensor] = {}
        for name, m in self.meta.items():
            a = arrays[name]
            if m["kind"] == "ids":
                batch[name] = torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64))
                continue
            flat = torch.from_numpy(np.ascontiguousarray(a.reshape(len(a), -1), np.float32))
            if m["mean"] is not None:
                flat = (flat - torch.tensor(m["mean"])) / torch.tensor(m["std"])
            batch[name] = flat.reshape(len(a), *m["shape"])
        index = torch.from_numpy(pos)
        batch.update({key: t[index] for key, t in self.targets.items()})
        return batch

    def __getitem__(self, position: int) -> Batch:
        return self.__getitems__([position])


class NamedStreamSplit(ReaderSplit):
    """One split of a Dataset of named items, read batch by batch (see the module doc).

    Args:
        dataset: the user's Dataset.
        positions: the Dataset items of this split, in split order.
        meta: each input's saved fields (kind, shape, vocabulary or statistics).
        targets: the split's encoded targets by batch key (in memory).
        y: the first output's encoded targets (class counts, the head's bias).
    """

    def __init__(
        self, dataset: Any, positions: np.ndarray, meta: dict[str, dict[str, Any]],
        targets: Mapping[str, torch.Tensor], y: torch.Tensor,
    ) -> None:  # fmt: skip
        self.reader = _NamedReader(dataset, positions, meta, targets)
        self.targets, self.y = targets, y
