"""nnspec predict RUN_DIR|MODEL.onnx DATA.csv|IMAGES [--out=PREDICTIONS.csv]

Predict with a finished run, or with an ONNX file written by `nnspec export` (onnxruntime runs
the model; the run's preprocessing comes from the preprocess.json next to it). The CSV's
feature columns (the run's feature names, or every non-target column) are standardised with the
run's training statistics. Writes one row per input row: the prediction (class name or value)
and, for classification, one probability column per class. Default output:
RUN_DIR/predictions.csv. A run trained on an image folder predicts an image file or a folder of
images (nested folders too), one row per file, its path in a `file` column. A model with
several outputs writes one column group per output: `<output>` (the prediction) and, for
classification, `<output>_p_<class>`.
"""

from __future__ import annotations

import csv
import io
from argparse import Namespace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnspec.cli.common import EXIT_OK, UsageError, warm_start
from nnspec.run.file_sources import data_file
from nnspec.run.rundir import finished_run

if TYPE_CHECKING:
    from nnspec.spec.experiment import ExperimentSpec

__all__ = ["run"]


def run(args: Namespace) -> int:
    """``nnspec predict``: write predictions for a CSV file (or images)."""
    run_dir, data = args.run_dir, args.data
    onnx = run_dir.suffix == ".onnx"
    if not onnx:
        finished_run(run_dir)  # wrong paths are reported before the heavy imports
    if not data.is_dir():  # a folder: the images of a run trained on an image folder
        data_file(data, field=("data",))
    if args.out is not None and args.out.is_dir():
        raise UsageError(f"--out {args.out} is a folder; name the file to write (fix: --out "
                         f"{args.out / 'predictions.csv'})")  # fmt: skip
    warm_start("predict")
    from nnspec.files import atomic_write_bytes

    if onnx:
        from nnspec.run.export import load_exported

        predictor = load_exported(run_dir)
        run_dir = run_dir.parent
    else:
        from nnspec.run.predict import load_run

        predictor = load_run(run_dir)
    files = _image_files(predictor.spec, data)
    if files:  # decoded once, as the run's training images were
        from nnspec.run.images import read_images

        spec = predictor.spec
        data = read_images(files, predictor.info.input_shape, spec.data.images.fit)
    views = [(f"{n}", predictor.output(n)) for n in predictor.outputs] or [("", predictor)]
    groups = [_group(prefix, view, data) for prefix, view in views]
    columns = ["file"] if files else []
    for header, _ in groups:
        columns += header
    labels = groups[0][1]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for i in range(len(labels)):
        row = [str(files[i])] if files else []
        for _, rows in groups:
            row += rows[i]
        writer.writerow(row)
    out = args.out or run_dir / "predictions.csv"
    try:
        atomic_write_bytes(out, buf.getvalue().encode())
    except OSError as e:
        from nnspec.run.outputs import write_error

        raise write_error(out, e) from e
    print(f"wrote {len(labels)} predictions to {out}")
    return EXIT_OK


def _group(prefix: str, predictor: Any, data: Any) -> tuple[list[str], list[list[Any]]]:
    """One output's columns (``prediction`` and ``p_<class>``, named ``<output>`` and
    ``<output>_p_<class>`` for an output of a model with several) and its rows of cells."""
    from nnspec.run.tasks import TASKS

    labels = predictor.predict(data)
    header = [prefix or "prediction"]
    rows = [list(v) if getattr(v, "ndim", 0) else [v] for v in labels]
    if len(rows) and len(rows[0]) > 1:  # several targets / labels: one column each
        header = [f"{header[0]}_{j}" for j in range(len(rows[0]))]
    if TASKS[predictor.info.task].single_label:
        proba = predictor.predict_proba(data)
        names = predictor.info.class_names
        shown = names if proba.shape[1] == len(names) else names[1:]
        header += [f"{prefix}_p_{n}" if prefix else f"p_{n}" for n in shown]
        rows = [r + [f"{p:.6g}" for p in proba[i]] for i, r in enumerate(rows)]
    return header, rows


def _image_files(spec: ExperimentSpec, data: Path) -> list[Path]:
    """The image files to predict (one row each, named in the output), for a run trained on an
    image folder; empty for the other runs."""
    if not spec.data.source.startswith("images:"):
        return []
    from nnspec.run.images import image_files

    return image_files(data)
