"""nnspec predict RUN_DIR|MODEL.onnx DATA.csv [--out=PREDICTIONS.csv]

Predict with a finished run, or with an ONNX file written by `nnspec export` (onnxruntime runs
the model; the run's preprocessing comes from the preprocess.json next to it). The CSV's
feature columns (the run's feature names, or every non-target column) are standardised with the
run's training statistics. Writes one row per input row: the prediction (class name or value)
and, for classification, one probability column per class. Default output:
RUN_DIR/predictions.csv.
"""

from __future__ import annotations

import csv
import io
from argparse import Namespace

from nnspec.cli.common import EXIT_OK, warm_start
from nnspec.run.rundir import finished_run
from nnspec.run.sources import data_file

__all__ = ["run"]


def run(args: Namespace) -> int:
    """``nnspec predict``: write predictions for a CSV file."""
    run_dir, data = args.run_dir, args.data
    onnx = run_dir.suffix == ".onnx"
    if not onnx:
        finished_run(run_dir)  # wrong paths are reported before the heavy imports
    data_file(data, field=("data",))
    warm_start("predict")
    from nnspec.files import atomic_write_bytes
    from nnspec.run.tasks import TASKS

    if onnx:
        from nnspec.run.export import load_exported

        predictor = load_exported(run_dir)
        run_dir = run_dir.parent
    else:
        from nnspec.run.predict import load_run

        predictor = load_run(run_dir)
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
    out = args.out or run_dir / "predictions.csv"
    atomic_write_bytes(out, buf.getvalue().encode())
    print(f"wrote {len(labels)} predictions to {out}")
    return EXIT_OK
