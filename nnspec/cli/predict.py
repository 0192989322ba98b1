"""nnspec predict RUN_DIR DATA.csv [--out=PREDICTIONS.csv]

Predict with a finished run: the CSV's feature columns (the run's feature names, or every
non-target column) are standardised with the run's training statistics. Writes one row per input
row: the prediction (class name or value) and, for classification, one probability column per
class. Default output: RUN_DIR/predictions.csv.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from nnspec.cli.common import EXIT_OK, UsageError, parse_invocation, warm_start
from nnspec.run.rundir import finished_run
from nnspec.run.sources import data_file

__all__ = ["main"]


def main(argv: list[str]) -> int:
    """``nnspec predict``: write predictions for a CSV file."""
    inv = parse_invocation("predict", argv, values=frozenset({"out"}))
    if len(inv.specs) != 2:
        raise UsageError("usage: nnspec predict RUN_DIR DATA.csv [--out=FILE]")
    run, data = Path(inv.specs[0]), Path(inv.specs[1])
    finished_run(run)  # wrong paths are reported before the heavy imports
    data_file(data, field=("data",))
    warm_start("predict")
    from nnspec.files import atomic_write_bytes
    from nnspec.run.predict import load_run
    from nnspec.run.tasks import TASKS

    predictor = load_run(run)
    labels = predictor.predict(data)
    columns = ["prediction"]
    proba = None
    if TASKS[predictor.info.task].single_label:
        proba = predictor.predict_proba(data)
        names = predictor.info.class_names
        columns += [f"p_{n}" for n in (names if proba.shape[1] == len(names) else names[1:])]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for i, label in enumerate(labels):
        row = list(label) if getattr(label, "ndim", 0) else [label]
        writer.writerow(row + ([f"{p:.6g}" for p in proba[i]] if proba is not None else []))
    out = (
        Path(str(inv.flags["out"]))
        if isinstance(inv.flags.get("out"), str)
        else run / "predictions.csv"
    )
    atomic_write_bytes(out, buf.getvalue().encode())
    print(f"wrote {len(labels)} predictions to {out}")
    return EXIT_OK
