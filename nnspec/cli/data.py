"""nnspec data [SPEC.yaml] [key.path=value ...]

Open the spec's data as training would and print what the model will see: for a table source,
one row per feature column (type as given or inferred on the training split, missing cells in
the training split, distinct values, encoding, inputs it becomes), then the input width, the
number of outputs (classes or targets) and the rows used; for a model with named inputs or
several outputs, each input's shape (an embedded column's ids: [1]) and each output's task and
width. Every data, target or shape problem is
reported as training would report it (exit 2).
"""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path

from nnspec.cli.common import EXIT_OK, console, data_report, load_spec, one_spec

__all__ = ["run"]


def run(args: Namespace) -> int:
    """``nnspec data``: print the column table and the sizes the data gives."""
    from rich.table import Table

    path, overrides = one_spec(args, "data")
    spec, source = load_spec(path, overrides, config_dir=args.config_dir)
    base = Path(path).resolve().parent if path else None
    _, report = data_report(spec, source, base, sample=None)
    table = Table(title=f"{report.source}: {report.rows:,} rows", title_justify="left")
    for col in ("column", "type", "missing", "values", "encoding", "width"):
        table.add_column(col, justify="right" if col in ("missing", "values", "width") else "left")
    for c in report.columns:
        values = "" if c.cardinality is None else f"{c.cardinality:,}"
        table.add_row(c.name, c.kind, f"{c.missing:,}", values, c.encoding, str(c.width))
    outputs = f"{report.n_outputs} classes" if report.classes else f"{report.n_outputs} outputs"
    rows = f"{report.dropped:,} row{'s' * (report.dropped != 1)}"
    dropped = f"; {rows} without a target left out" if report.dropped else ""
    table.caption = f"input_shape {list(report.input_shape)}, {outputs}{dropped}"
    if report.inputs:  # a model with named inputs
        shown = ", ".join(f"{name} {list(shape)}" for name, shape in report.inputs)
        table.caption = f"inputs: {shown}; {outputs}{dropped}"
    if report.outputs:  # several outputs: each one's task and width
        shown = ", ".join(f"{name} ({task}, {width})" for name, task, width in report.outputs)
        table.caption = table.caption.replace(outputs, f"outputs: {shown}")
    table.caption_justify = "left"
    console().print(table)
    return EXIT_OK
