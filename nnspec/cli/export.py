"""nnspec export RUN_DIR [--format onnx|exported-program|torchscript] [--out DIR]

Export a finished run's model (its best weights) for another runtime. The folder (default
RUN_DIR/export) gets the model file (model.onnx, model.pt2 or model.torchscript.pt), the run's
preprocessing as preprocess.json (standardisation and encoders, as data) and spec.yaml. The
exported graph takes the tensor the model takes (inputs after preprocessing), with a dynamic
batch dimension. `nnspec predict EXPORT/model.onnx DATA.csv` predicts with the ONNX file and that
preprocessing (needs the onnx extra: pip install 'nnspec[onnx]').

Exit codes: 0 exported, 2 not a finished run or a missing extra, 1 an internal error.
"""

from __future__ import annotations

from argparse import Namespace

from nnspec.cli.common import EXIT_OK
from nnspec.run.rundir import finished_run

__all__ = ["run"]


def run(args: Namespace) -> int:
    """``nnspec export``: write the run's model in the chosen format."""
    finished_run(args.path)  # a wrong path is reported before torch is imported
    from nnspec.run.export import export_run

    path = export_run(args.path, args.format, args.out)
    print(f"exported {args.format} to {path} (with preprocess.json and spec.yaml)")
    return EXIT_OK
