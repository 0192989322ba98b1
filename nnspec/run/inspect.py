"""What the data makes of a spec, without training: the column table of a table source (type,
missing cells, cardinality, encoding, width), the sizes that ``auto`` takes, and every data,
target and shape problem (``nnspec data``, ``validate --data``, ``summary --data``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nnspec.run.columns import Columns
from nnspec.run.data import DataBundle, prepare_data
from nnspec.run.file_sources import TableData, data_file, data_folder_or_file, load_table
from nnspec.run.model import check_output_width, expected_outputs, resolve_sizes
from nnspec.run.named import named_data_spec
from nnspec.run.sources import RawData, load_source
from nnspec.run.tables import TABLE_FORMATS
from nnspec.spec.experiment import ExperimentSpec

__all__ = ["ColumnRow", "DataReport", "inspect_data", "SAMPLE_ROWS"]

# `validate --data` reads this many rows of a table: enough to type the columns and find the
# common problems, without reading a large file to its end.
SAMPLE_ROWS = 10_000


@dataclass(frozen=True)
class ColumnRow:
    """One feature column as the model will see it."""

    name: str
    kind: str
    missing: int
    cardinality: int | None
    encoding: str
    width: int


@dataclass(frozen=True)
class DataReport:
    """The data of a spec: where from, how many rows, its columns and the sizes it gives."""

    source: str
    rows: int
    sampled: bool  # only the first rows of the table were read
    dropped: int  # rows left out because their target was missing
    columns: tuple[ColumnRow, ...]
    input_shape: tuple[int, ...]
    n_outputs: int
    classes: tuple[str, ...]
    # a model with named inputs: each input's shape; with several outputs: (name, task, width)
    inputs: tuple[tuple[str, tuple[int, ...]], ...] = ()
    outputs: tuple[tuple[str, str, int], ...] = ()

    @property
    def width(self) -> int:
        return sum(c.width for c in self.columns)


def inspect_data(
    spec: ExperimentSpec, base: Path | None = None, *, sample: int | None = None
) -> tuple[ExperimentSpec, DataReport]:
    """Load and prepare the spec's data as training would; resolve ``auto`` sizes; check that the
    model's input and output fit the data (shape inference only: no weight is allocated).

    Args:
        spec: the experiment.
        base: folder relative data paths resolve against (the spec file's).
        sample: read only the first rows of a table source.

    Returns:
        The spec with concrete sizes, and the report.

    Raises:
        DataError / SpecError / ShapeError: every problem found, as training would raise it.
    """
    from nnspec.compile import infer_shapes

    raw = _load(named_data_spec(spec), base, sample)  # several outputs: their target columns
    bundle = prepare_data(spec, raw=raw, base=base)
    resolved = resolve_sizes(spec, bundle.info)
    infos = infer_shapes(resolved.model)
    top = [i for i in infos if i.depth == 0]
    if top and resolved.model.outputs is None and not bundle.info.inputs:
        out = top[-1].out_shape
        check_output_width(resolved, bundle.info, int(out[-1]) if out else 1)
    return resolved, _report(spec, raw, bundle, sample)


def _load(spec: ExperimentSpec, base: Path | None, sample: int | None) -> RawData | TableData:
    prefix, _, path = spec.data.source.partition(":")
    if (
        prefix in TABLE_FORMATS
        and sample is not None
        and not data_folder_or_file(path, base).is_dir()
    ):
        return load_table(data_file(path, base), prefix, spec.data, max_rows=sample)
    return load_source(spec.data, spec.seed, base)


def _report(
    spec: ExperimentSpec, raw: RawData | TableData, bundle: DataBundle, sample: int | None
) -> DataReport:
    info = bundle.info
    rows = sum(len(s) for s in (bundle.train, bundle.val, bundle.test) if s is not None)
    if isinstance(raw, TableData):
        fitted = Columns.from_json(info.extra["columns"])
        columns = tuple(
            ColumnRow(c.name, c.kind, c.missing, c.cardinality if c.kind != "numeric" else None,
                      c.encoding(), len(c.names))
            for c in fitted.columns
        )  # fmt: skip
        sampled, dropped = sample is not None and rows + raw.dropped >= sample, raw.dropped
    else:
        width = len(info.feature_names) if info.feature_names else 0
        columns = tuple(
            ColumnRow(n, "numeric", 0, None, "standardised" if info.x_mean is not None else "as is",
                      1)
            for n in info.feature_names
        ) if width else ()  # fmt: skip
        sampled, dropped = False, 0
    outputs = tuple((n, o.task, expected_outputs(o)) for n, o in info.outputs.items())
    return DataReport(
        spec.data.source, rows, sampled, dropped, columns, info.input_shape, info.n_outputs,
        info.class_names, tuple(info.inputs.items()), outputs,
    )  # fmt: skip
