"""Data for a model with named inputs or several outputs, from a table source (the user's
arrays bound by name: :mod:`nnspec.run.named_arrays`).

The table's columns are typed and encoded as for a plain model (:mod:`nnspec.run.columns`,
fitted on the training split only), then bound to the model's named inputs:

- a name of ``model.inputs`` that is a categorical column of the table is that column's
  category ids, int64 of shape ``(1,)`` (an ``embedding`` reads them; its
  ``num_embeddings: auto`` is the column's vocabulary, ``unknown`` and ``missing`` ids included);
- the one other name is the rest of the table's features, encoded and standardised as a plain
  model's ``input_shape: auto`` input (``auto`` takes their width).

Each output of ``model.outputs`` (a mapping) predicts its own target column with its own task;
its encoded targets are the batch key :func:`target_key` (``target.<output>``). A model with
named inputs and one output keeps the batch key ``target`` and the experiment's task.

Splits are held in memory (:class:`NamedSplit`): batches are views of one gather per epoch, in
the order of :class:`~nnspec.run.batches.EpochBatches`, as for :class:`~nnspec.run.batches.Split`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from nnspec.errors import DataError, Problem
from nnspec.run.arrays import RawData
from nnspec.run.batches import INPUT, TARGET, Batch, EpochBatches, target_key
from nnspec.run.column_fit import fit_columns
from nnspec.run.columns import Columns
from nnspec.run.file_sources import TableData
from nnspec.run.iterables import IterData
from nnspec.run.splitting import split_indices, target_moments
from nnspec.run.streams import unit_floor
from nnspec.run.targets import encode_targets, n_outputs
from nnspec.spec.experiment import ExperimentSpec
from nnspec.spec.heads import OutputSpec, declared_outputs

__all__ = [
    "NamedSplit",
    "is_named",
    "output_targets",
    "named_data_spec",
    "prepare_named",
    "encode_named",
    "check_input_shapes",
    "output_heads",
]


def is_named(spec: ExperimentSpec) -> bool:
    """Whether the model takes named inputs or declares several outputs (this module's data)."""
    return spec.model.inputs is not None or declared_outputs(spec.model) is not None


def output_targets(spec: ExperimentSpec) -> dict[str, OutputSpec]:
    """The model's declared outputs (name -> spec); one output named ``target`` otherwise."""
    outputs = declared_outputs(spec.model)
    if outputs is None:
        return {TARGET: OutputSpec(task=spec.task)}
    return dict(outputs)


def named_data_spec(spec: ExperimentSpec) -> ExperimentSpec:
    """``spec`` whose ``data.target`` lists the declared outputs' target columns."""
    outputs = declared_outputs(spec.model)
    if outputs is None:
        return spec
    targets = tuple(out.target_column(name) for name, out in outputs.items())
    return spec.model_copy(update={"data": spec.data.model_copy(update={"target": targets})})


@dataclass(frozen=True)
class NamedSplit:
    """One split in memory as named tensors: the model's inputs and the encoded targets.

    ``y`` is the first output's encoded targets (class counts, the head's bias).
    """

    tensors: Mapping[str, torch.Tensor]
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def head(self, k: int) -> Batch:
        """The first ``k`` samples (split order) as one batch."""
        return {name: t[:k] for name, t in self.tensors.items()}

    def to(self, device: torch.device) -> NamedSplit:
        moved = {name: t.to(device) for name, t in self.tensors.items()}
        return NamedSplit(moved, self.y.to(device))

    def batches(
        self, sampler: EpochBatches, device: torch.device, *, workers: int = 0
    ) -> Iterable[Batch]:
        """The batches of ``sampler``'s current epoch, each time the result is iterated."""
        return _NamedSlices(self.to(device), sampler)


class _NamedSlices:
    def __init__(self, split: NamedSplit, sampler: EpochBatches) -> None:
        self.split, self.sampler = split, sampler

    def __iter__(self) -> Iterator[Batch]:
        tensors, sampler = self.split.tensors, self.sampler
        positions, sizes = sampler.local()
        if sampler.shuffle or sampler.world_size > 1:
            tensors = {name: t[positions] for name, t in tensors.items()}
        start = 0
        for size in sizes:
            yield {name: t[start : start + size] for name, t in tensors.items()}
            start += size


def _input_names(spec: ExperimentSpec, columns: list[str]) -> tuple[frozenset[str], str | None]:
    """The inputs that are embedded columns, and the one input of the other features."""
    if spec.model.inputs is None:  # one input (input_shape), several outputs
        return frozenset(), INPUT
    inputs = spec.model.inputs
    embedded = frozenset(n for n in inputs if n in columns)
    rest = [n for n in inputs if n not in columns]
    if len(rest) > 1:
        raise DataError(
            Problem(
                ("model", "inputs"),
                "a model trained on a table takes one input of features plus one input per "
                "categorical column it embeds",
                expected=f"input names among the table's columns ({', '.join(columns[:8])}) and "
                "one other name",
                found=", ".join(rest) if rest else "no named inputs",
                fix="name each embedded input after its column",
            )
        )
    return embedded, (rest[0] if rest else None)


def _encoded_targets(
    raw: TableData, outputs: dict[str, OutputSpec]
) -> dict[str, tuple[np.ndarray, tuple[str, ...], np.ndarray]]:
    """Each output's encoded targets, class names and class values."""
    y = raw.y.reshape(len(raw.y), -1)
    found = {}
    for j, (name, out) in enumerate(outputs.items()):
        one = replace(raw, y=y[:, j], target_columns=(raw.target_columns[j],))
        found[name] = encode_targets(one, out.task)
    return found


def prepare_named(spec: ExperimentSpec, raw: Any) -> tuple[list[NamedSplit | None], dict[str, Any]]:
    """Split, encode and standardise a table for a model with named inputs or outputs.

    Returns:
        The train, validation and test splits (None when empty) and the fields of the run's
        :class:`~nnspec.run.data.DataInfo` (``outputs``: each output's fields).
    """
    table = _require_table(spec, raw)
    outputs = output_targets(spec)
    targets = _encoded_targets(table, outputs)
    first, (y0, _, _) = next(iter(outputs.values())), next(iter(targets.values()))
    tr, va, te = split_indices(len(y0), y0 if y0.ndim == 1 else y0[:, 0], spec, first.task)
    embed, rest = _input_names(spec, list(table.table.column_names))
    columns = fit_columns(table.table, tr, spec.data, table.target_columns, table.file, embed)
    _check_embedded(columns, embed)
    x = columns.encode(table.table, table.file)
    x_mean, x_std = _moments(x, tr, columns, spec.data.standardize)
    if x_mean is not None and x_std is not None:
        x = (x - x_mean.numpy()) / x_std.numpy()
    tensors: dict[str, np.ndarray] = dict(columns.encode_ids(table.table))
    shapes = {c: (1,) for c in tensors}
    if rest is not None:
        tensors[rest], shapes[rest] = x.astype(np.float32), (x.shape[1],)
    check_input_shapes(spec, shapes)
    heads, y_first = output_heads(spec, outputs, targets, table, tr, tensors)

    def split(ix: np.ndarray) -> NamedSplit | None:
        if not len(ix):
            return None
        return NamedSplit({k: torch.from_numpy(np.ascontiguousarray(v[ix]))
                           for k, v in tensors.items()}, torch.from_numpy(y_first[ix]))  # fmt: skip

    one = heads.pop(TARGET, None)  # named inputs, one output: its fields are the run's
    info = dict(one or next(iter(heads.values())))
    vocab = {c.name: c.vocab_size for c in columns.embedded}
    info.update(input_shape=shapes.get(rest, (0,)) if rest else (0,),
                inputs=shapes if spec.model.inputs is not None else {}, outputs=heads,
                feature_names=columns.names, x_mean=x_mean, x_std=x_std,
                extra={"columns": columns.to_json(), "vocab": vocab})  # fmt: skip
    return [split(tr), split(va), split(te)], info


def _require_table(spec: ExperimentSpec, raw: Any) -> TableData:
    if isinstance(raw, IterData):  # a Parquet dataset streamed by row group
        raise DataError(
            Problem(
                ("data", "in_memory"),
                "a model with named inputs or several outputs reads a Parquet dataset whole; "
                "streamed by row group, it feeds models with one input and one output",
                expected="yes", found=spec.data.in_memory,
                fix="set data.in_memory: yes, or pass a Dataset of ({input: array}, "
                "{output: target}) items to nnspec.train (read item by item)",
            )
        )  # fmt: skip
    if not isinstance(raw, TableData):
        raise DataError(
            Problem(
                ("data", "source"),
                "a model with named inputs or several outputs trains on a table or on arrays "
                "by name",
                expected="a csv:, parquet:, arrow: or feather: source, a DataFrame, or "
                "data={'x': {input: array}, 'y': {output: array}}",
                found=spec.data.source,
            )
        )
    return raw


def output_heads(
    spec: ExperimentSpec, outputs: dict[str, OutputSpec],
    targets: dict[str, tuple[np.ndarray, tuple[str, ...], np.ndarray]], table: TableData | RawData,
    train: np.ndarray, tensors: dict[str, np.ndarray],
) -> tuple[dict[str, dict[str, Any]], np.ndarray]:  # fmt: skip
    """Each output's encoded targets into ``tensors`` (regression: standardised with training
    statistics, DATA-5) and its DataInfo fields; the first output's targets."""
    heads, first = {}, None
    declared = declared_outputs(spec.model) is not None
    for name, out in outputs.items():
        y, names, values = targets[name]
        y_mean = y_std = None
        if out.task == "regression":
            y, y_mean, y_std = target_moments(y, train, spec.data.standardize_target)
        tensors[target_key(name) if declared else TARGET] = y
        first = y if first is None else first
        heads[name] = dict(task=out.task, input_shape=(), class_names=names,
                           n_outputs=n_outputs(out.task, y, names, table), y_mean=y_mean,
                           y_std=y_std, class_values=tuple(values.tolist()),
                           class_dtype=values.dtype.str if len(values) else "")  # fmt: skip
    assert first is not None  # outputs is never empty
    return heads, first


def _moments(
    x: np.ndarray, train: np.ndarray, columns: Columns, on: bool
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Float32 mean and std of the training rows' numeric inputs (DATA-5), float64 sums."""
    if not on or x.shape[1] == 0:
        return None, None
    part = x[train].astype(np.float64)
    mean, std = part.mean(axis=0), part.std(axis=0)
    std = unit_floor(std)
    which = columns.standardised()
    mean, std = np.where(which, mean, 0.0), np.where(which, std, 1.0)
    return torch.from_numpy(mean.astype(np.float32)), torch.from_numpy(std.astype(np.float32))


def _check_embedded(columns: Columns, embed: frozenset[str]) -> None:
    bad = [c.name for c in columns.columns if c.name in embed and c.kind != "categorical"]
    if bad:
        raise DataError(
            Problem(
                ("model", "inputs", bad[0]),
                f"input '{bad[0]}' is a column the model embeds, but it is not categorical",
                fix=f"set data.columns.{bad[0]}: categorical, or rename the input",
            )
        )


def check_input_shapes(spec: ExperimentSpec, shapes: dict[str, tuple[int, ...]]) -> None:
    problems = [
        Problem(("model", "inputs", name), f"input '{name}' does not fit the data",
                expected=str(list(shapes[name])), found=str(list(declared)),
                fix=f"set model.inputs.{name}: auto")
        for name, declared in (spec.model.inputs or {INPUT: spec.model.input_shape}).items()
        if declared not in ("auto", None) and tuple(declared) != shapes.get(name)
    ]  # fmt: skip
    if problems:
        raise DataError(problems)


def encode_named(
    rows: object, columns: Columns, inputs: Mapping[str, Any], moments: tuple[Any, Any]
) -> torch.Tensor | dict[str, torch.Tensor]:
    """Prediction rows (a table file, a pyarrow Table, a DataFrame or a dict column -> values)
    as the model's inputs, with the run's fitted columns and training statistics: a dict by
    input name (``inputs``: the run's named inputs), or the one features tensor."""
    from nnspec.run.columns import as_table

    table = as_table(rows)
    where = str(rows) if isinstance(rows, str) else "rows"
    x = torch.from_numpy(columns.encode(table, where))
    mean, std = moments
    if mean is not None and std is not None:
        x = (x - mean) / std
    if not inputs:
        return x
    ids = {name: torch.from_numpy(v) for name, v in columns.encode_ids(table, where).items()}
    return {name: ids[name] if name in ids else x for name in inputs}
