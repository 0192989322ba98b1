"""Inference from a finished run: :func:`load_run` -> :class:`Predictor` (REPRO-3).

The predictor rebuilds the model from the run's ``spec.yaml``, loads ``model.pt`` with
``weights_only=True`` and applies the run's preprocessing (standardisation with the training
statistics, or int64 token ids checked against the input embedding; reshape to
``input_shape``) and postprocessing (softmax/sigmoid, label names, de-standardised regression
outputs).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nnspec.errors import CheckpointError, DataError, Problem
from nnspec.run.columns import Columns, encode_rows
from nnspec.run.data import DataInfo
from nnspec.run.rundir import finished_run
from nnspec.run.tasks import TASKS
from nnspec.run.tokens import input_embeddings, token_array
from nnspec.spec.experiment import ExperimentSpec

__all__ = ["Predictor", "load_run", "evaluate_run", "read_csv_features", "info_from_json"]


class Predictor:
    """A trained model with its preprocessing.

    Example:
        >>> p = load_run("runs/iris_mlp/20250101-120000")  # doctest: +SKIP
        >>> p.predict(np.zeros((2, 4)))  # doctest: +SKIP
        array(['versicolor', 'versicolor'], dtype='<U10')
    """

    def __init__(self, spec: ExperimentSpec, model: torch.nn.Module, info: DataInfo, run_dir: Path):
        self.spec, self.model, self.info, self.run_dir = spec, model.eval(), info, run_dir

    def _inputs(self, x: Any) -> torch.Tensor:
        if self.info.extra.get("columns"):  # a table: encoded with the run's fitted columns
            x = encode_rows(x, Columns.from_json(self.info.extra["columns"]))
        elif isinstance(x, (str, Path)):
            x = read_csv_features(Path(x), self.info.feature_names, self.spec)
        arr = np.asarray(x.numpy() if isinstance(x, torch.Tensor) else x)
        flat = arr.reshape(arr.shape[0], -1)
        width = int(np.prod(self.info.input_shape))
        if flat.shape[1] != width:
            what = "token ids" if self.info.tokens else "features"
            raise DataError(
                Problem(
                    ("data",),
                    "inputs do not fit the model",
                    expected=f"{width} {what} per sample "
                    f"(input_shape {list(self.info.input_shape)})",
                    found=str(flat.shape[1]),
                )
            )
        if self.info.tokens:  # int64 ids in the embedding's range; never standardised
            tokens = token_array(flat, input_embeddings(self.spec.model))
            return torch.from_numpy(tokens).reshape(len(tokens), *self.info.input_shape)
        t = torch.from_numpy(np.ascontiguousarray(_floats(flat)))
        if self.info.x_mean is not None and self.info.x_std is not None:
            t = (t - self.info.x_mean) / self.info.x_std
        return t.reshape(len(t), *self.info.input_shape)

    def raw(self, x: Any) -> torch.Tensor:
        """Model outputs (logits / standardised values) for inputs ``x`` (array or CSV path)."""
        with torch.inference_mode():
            return self.model(self._inputs(x)).float()

    def predict_proba(self, x: Any) -> np.ndarray:
        """Class probabilities, one column per class as scikit-learn's ``predict_proba``.

        Classification: softmax rows, shape (n, classes). Binary: shape (n, 2), the columns
        P(first class) and P(second class) in the order of ``info.class_names`` (the model's one
        logit gives the second). Multilabel: one sigmoid per label, shape (n, labels).
        """
        p = self._probabilities(x)
        if self.info.task == "binary" and p.shape[1] == 1:
            return np.concatenate([1.0 - p, p], axis=1)
        return p

    def _probabilities(self, x: Any) -> np.ndarray:
        to_probabilities = TASKS[self.info.task].probabilities
        if to_probabilities is not None:
            return to_probabilities(self.raw(x)).numpy()
        raise DataError(Problem(("task",), "predict_proba needs a classification task"))

    def predict(self, x: Any) -> np.ndarray:
        """Labels for classification, values in original units for regression.

        Labels come back as the training targets had them: the same values and dtype for the
        user's own labels (ints stay ints, strings strings, bools bools; CSV labels are text), the
        class names for datasets that name their classes. Multilabel: one 0/1 per label.
        """
        kind = TASKS[self.info.task]
        if kind.labels is None:  # regression: values in the targets' units
            out = self.raw(x)
            if self.info.y_mean is not None and self.info.y_std is not None:
                out = out * self.info.y_std + self.info.y_mean
            return out.numpy()
        idx = kind.labels(torch.from_numpy(self._probabilities(x))).numpy()
        if not kind.single_label:  # multilabel: one 0/1 per label
            return idx
        if self.info.class_values:
            return np.asarray(self.info.class_values, dtype=self.info.class_dtype or None)[idx]
        names = np.array(self.info.class_names)
        return names[idx] if len(names) else idx


def _floats(flat: np.ndarray) -> np.ndarray:
    try:
        return flat.astype(np.float32)
    except (TypeError, ValueError) as e:
        raise DataError(
            Problem(("data",), f"inputs must be numbers: {e}", found=str(flat.dtype))
        ) from e


def read_csv_features(path: Path, names: tuple[str, ...], spec: ExperimentSpec) -> np.ndarray:
    """Feature columns of a CSV for prediction: the run's feature names in order, or every
    column except the spec's target columns when the run's features were unnamed."""
    from nnspec.run.sources import data_file, table_features  # one reader for every table

    target = spec.data.target if spec.data.target is not None else ()
    targets = (target,) if isinstance(target, str) else tuple(target)
    return table_features(data_file(path, field=("data",)).resolve(), names, targets)


def info_from_json(meta: dict[str, Any], tensors: dict[str, torch.Tensor | None]) -> DataInfo:
    """The run's :class:`DataInfo` from ``preprocess.json`` and the standardisation tensors."""
    return DataInfo(
        task=meta["task"],
        input_shape=tuple(meta["input_shape"]),
        n_outputs=meta["n_outputs"],
        class_names=tuple(meta["class_names"]),
        feature_names=tuple(meta["feature_names"]),
        extra=meta.get("extra", {}),
        tokens=bool(meta.get("tokens", False)),  # absent in runs saved before token inputs
        # absent in runs saved before labels kept their type: those predict class names
        class_values=tuple(meta.get("class_values", ())),
        class_dtype=str(meta.get("class_dtype", "")),
        **{k: tensors.get(k) for k in ("x_mean", "x_std", "y_mean", "y_std")},
    )


def load_run(run_dir: str | Path) -> Predictor:
    """Load a finished run's model and preprocessing (``weights_only=True``)."""
    from nnspec.compile import build_model
    from nnspec.io import load
    from nnspec.run.model import resolve_sizes

    run = Path(run_dir)
    files = finished_run(run)
    spec = load(files[0])
    meta = json.loads(files[2].read_text())
    try:
        blob = torch.load(files[1], map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(Problem(("run_dir",), f"cannot read {files[1]}: {e}")) from e
    info = info_from_json(meta, {k: blob.get(k) for k in ("x_mean", "x_std", "y_mean", "y_std")})
    spec = resolve_sizes(spec, info)  # `auto` sizes as the run resolved them
    model = build_model(spec)
    model.load_state_dict(blob["model"])
    return Predictor(spec, model, info, run)


def evaluate_run(run_dir: str | Path) -> dict[str, float]:
    """Recompute the test metrics of a run: same data, same split, the saved weights."""
    from nnspec.compile.plan import compile_plan
    from nnspec.run.data import prepare_data
    from nnspec.run.loop import target_stats
    from nnspec.run.metrics import compute_metrics

    predictor = load_run(run_dir)
    spec = predictor.spec
    if spec.data.source == "user":
        raise DataError(
            Problem(("data", "source"), "the run was trained on user data; evaluate it in Python")
        )
    base = predictor.info.extra.get("base_dir")
    bundle = prepare_data(spec, base=Path(base) if base else None)
    if bundle.test is None:
        raise DataError(Problem(("data", "split", "test"), "the run has no test split"))
    plan = compile_plan(spec)
    loss_fn = plan.make_loss(bundle.info.n_outputs, target_stats(bundle))
    with torch.inference_mode():
        out = predictor.model(bundle.test.x).float()
        metrics = {"loss": float(loss_fn(out, bundle.test.y))}
    metrics.update(compute_metrics(out, bundle.test.y, bundle.info, plan.metrics))
    return metrics
