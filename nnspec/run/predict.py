"""Inference from a finished run: :func:`load_run` -> :class:`Predictor` (REPRO-3).

The predictor rebuilds the model from the run's ``spec.yaml``, loads ``model.pt`` with
``weights_only=True`` and applies the run's preprocessing (standardisation with the training
statistics, or int64 token ids checked against the input embedding; reshape to
``input_shape``) and postprocessing (softmax/sigmoid, label names, de-standardised regression
outputs).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nnspec.errors import CheckpointError, DataError, Problem
from nnspec.run.batches import Split
from nnspec.run.columns import Columns, encode_rows
from nnspec.run.data import DataInfo
from nnspec.run.images import read_images
from nnspec.run.manifest import verified_bytes
from nnspec.run.named import NamedSplit, encode_named
from nnspec.run.named_arrays import encode_arrays
from nnspec.run.rundir import finished_run
from nnspec.run.tasks import TASKS
from nnspec.run.tokens import input_embeddings, token_array
from nnspec.spec.experiment import ExperimentSpec

__all__ = [
    "EVAL_ATOL",
    "EVAL_RTOL",
    "Predictor",
    "evaluate_run",
    "evaluate_run_data",
    "info_from_json",
    "load_run",
    "read_csv_features",
    "read_run_json",
    "split_digest",
    "memory_digest",
]


class Predictor:
    """A trained model with its preprocessing.

    Example:
        >>> p = load_run("runs/iris_mlp/20250101-120000")  # doctest: +SKIP
        >>> p.predict(np.zeros((2, 4)))  # doctest: +SKIP
        array(['versicolor', 'versicolor'], dtype='<U10')
    """

    def __init__(self, spec: ExperimentSpec, model: torch.nn.Module, info: DataInfo, run_dir: Path):
        self.spec, self.model, self.info, self.run_dir = spec, model.eval(), info, run_dir

    @property
    def outputs(self) -> tuple[str, ...]:
        """The output names of a model with several (empty for one output)."""
        return tuple(self.info.outputs)

    def output(self, name: str) -> Predictor:
        """The predictor of one output of a model with several (its own task and classes)."""
        return _OutputView(self, name)

    def _inputs(self, x: Any) -> Any:
        if "arrays" in self.info.extra:  # trained on arrays by name: the same names (or .npz)
            return encode_arrays(x, self.info.extra["arrays"])
        if self.info.inputs or self.info.outputs:  # named inputs / several outputs: a table
            columns = Columns.from_json(self.info.extra["columns"])
            return encode_named(x, columns, self.info.inputs, (self.info.x_mean, self.info.x_std))
        if self.info.extra.get("columns"):  # a table: encoded with the run's fitted columns
            x = encode_rows(x, Columns.from_json(self.info.extra["columns"]))
        elif self.spec.data.source.startswith("images:") and isinstance(x, (str, Path, list)):
            x = read_images(x, self.info.input_shape, self.spec.data.images.fit)  # as trained
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

    def raw(self, x: Any) -> Any:
        """Model outputs (logits / standardised values) for inputs ``x``: an array, a CSV path,
        for a run trained on arrays by name a dict input name -> array (or an ``.npz`` path of
        such arrays), or for a run trained on an image folder, an image file, a folder of
        images (in the order of :func:`nnspec.run.images.image_files`) or a list of image
        files. Several outputs: a dict by output name."""
        with torch.inference_mode():
            out = self.model(self._inputs(x))
            return {k: v.float() for k, v in out.items()} if isinstance(out, dict) else out.float()

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
        class names for datasets that name their classes. Multilabel: one 0/1 per label. Binary and
        multilabel decide at the run's ``train.threshold``, as its metrics did. Several outputs:
        a dict output name -> that output's predictions.
        """
        if self.info.outputs:
            return {name: self.output(name).predict(x) for name in self.outputs}  # type: ignore[return-value]
        kind = TASKS[self.info.task]
        if kind.labels is None:  # regression: values in the targets' units
            out = self.raw(x)
            if self.info.y_mean is not None and self.info.y_std is not None:
                out = out * self.info.y_std + self.info.y_mean
            return out.numpy()
        p = torch.from_numpy(self._probabilities(x))
        idx = kind.labels(p, self.spec.train.threshold).numpy()  # the threshold the run scored
        if not kind.single_label:  # multilabel: one 0/1 per label
            return idx
        if self.info.class_values:
            return np.asarray(self.info.class_values, dtype=self.info.class_dtype or None)[idx]
        names = np.array(self.info.class_names)
        return names[idx] if len(names) else idx


class _OutputView(Predictor):
    """One output of a model with several, predicted as a one-output run would be."""

    def __init__(self, parent: Predictor, name: str) -> None:
        super().__init__(parent.spec, parent.model, parent.info.outputs[name], parent.run_dir)
        self.parent, self.name = parent, name

    def raw(self, x: Any) -> Any:
        return self.parent.raw(x)[self.name]


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
    from nnspec.run.file_sources import data_file, table_features  # one reader for every table

    target = spec.data.target if spec.data.target is not None else ()
    targets = (target,) if isinstance(target, str) else tuple(target)
    return table_features(data_file(path, field=("data",)).resolve(), names, targets)


def info_from_json(meta: dict[str, Any], tensors: dict[str, torch.Tensor | None]) -> DataInfo:
    """The run's :class:`DataInfo` from ``preprocess.json`` and the standardisation tensors."""
    outputs = {
        name: info_from_json(head, {k: torch.tensor(head[k]) for k in ("y_mean", "y_std")
                                    if k in head})
        for name, head in meta.get("outputs", {}).items()
    }  # fmt: skip
    return DataInfo(
        inputs={k: tuple(v) for k, v in meta.get("inputs", {}).items()},
        outputs=outputs,
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
    """Load a finished run's model and preprocessing (``weights_only=True``).

    ``spec.yaml``, ``preprocess.json`` and ``model.pt`` are checked against the run's
    ``manifest.json`` (sha256) before they are parsed.

    Raises:
        CheckpointError: a file is missing, damaged, not what the run wrote, or its weights do
            not fit the spec's model.
    """
    from nnspec.compile import build_model
    from nnspec.io import load
    from nnspec.run.model import resolve_sizes

    run = Path(run_dir)
    files = finished_run(run)
    verified_bytes(run, files[0])
    spec = load(files[0])
    blob = _weights(run, files[1])
    info = _info(files[2], read_run_json(run, files[2]), blob)
    spec = resolve_sizes(spec, info)  # `auto` sizes as the run resolved them
    model = build_model(spec)
    try:
        model.load_state_dict(blob["model"])
    except (RuntimeError, KeyError, TypeError) as e:
        raise CheckpointError(
            Problem(
                ("run_dir",),
                f"{files[1]} does not fit the model of {files[0]}: {_first_line(e)}",
                fix="keep a run's model.pt and spec.yaml together (train the spec again)",
            )
        ) from e
    return Predictor(spec, model, info, run)


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0][:300] if lines else ''}"


def _weights(run: Path, path: Path) -> dict[str, Any]:
    """model.pt's tensors, verified, then loaded with ``weights_only=True``."""
    data = verified_bytes(run, path)
    try:
        blob = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(Problem(("run_dir",), f"cannot read {path}: {_first_line(e)}")) from e
    if not isinstance(blob, dict) or not isinstance(blob.get("model"), dict):
        raise CheckpointError(Problem(("run_dir",), f"{path} is not an nnspec model file"))
    return blob


def read_run_json(run: Path, path: Path) -> dict[str, Any]:
    """A verified JSON object file of the run (preprocess.json, summary.json).

    Raises:
        CheckpointError: damaged, not JSON, or not an object; the message never quotes the file.
    """
    data = verified_bytes(run, path, limit=256 << 20)
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(
            Problem(("run_dir",), f"{path} is not valid JSON (at byte {getattr(e, 'pos', '?')})",
                    fix="restore the file from a copy of the run, or train again")
        ) from e  # fmt: skip
    if not isinstance(obj, dict):
        raise CheckpointError(Problem(("run_dir",), f"{path} is not a JSON object"))
    return obj


def _info(path: Path, meta: dict[str, Any], blob: dict[str, Any]) -> DataInfo:
    try:
        tensors = {k: blob.get(k) for k in ("x_mean", "x_std", "y_mean", "y_std")}
        return info_from_json(meta, tensors)
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(
            Problem(("run_dir",), f"{path} lacks the run's preprocessing ({type(e).__name__}: "
                    f"{str(e)[:80]})", fix="restore the file from a copy of the run")
        ) from e  # fmt: skip


EVAL_RTOL = 1e-4
"""Relative tolerance between a run's recorded test metrics and ``nnspec eval``'s recomputation
on the same weights and the same test data (checked by sha256) [nnspec choice]."""
EVAL_ATOL = 1e-5
"""Absolute tolerance of the same comparison (metrics near 0) [nnspec choice]."""


def split_digest(*tensors: torch.Tensor) -> str:
    """sha256 of a data split's tensors (shape, dtype and bytes): the run's test data as
    ``summary.json`` records it, so ``nnspec eval`` knows it compares like with like."""
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


def memory_digest(split: Any) -> str:
    """:func:`split_digest` of an in-memory split (named tensors in name order); "" for a
    streamed one (no digest recorded)."""
    if isinstance(split, NamedSplit):
        return split_digest(*(t for _, t in sorted(split.tensors.items())))
    if isinstance(split, Split):
        return split_digest(split.x, split.y)
    return ""


def evaluate_run(run_dir: str | Path) -> dict[str, float]:
    """Recompute the test metrics of a run: same data, same split, the saved weights, the same
    batches and precision as the run's own test evaluation."""
    return evaluate_run_data(run_dir)[0]


def evaluate_run_data(run_dir: str | Path) -> tuple[dict[str, float], str]:
    """:func:`evaluate_run`, and the digest (:func:`split_digest`) of the test data it used."""
    from nnspec.compile.plan import compile_plan
    from nnspec.run.batches import INPUT, EpochBatches
    from nnspec.run.data import prepare_data
    from nnspec.run.evaluation import evaluate_batches, target_stats
    from nnspec.run.heads import OutputMetrics, output_loss
    from nnspec.run.metrics import MetricSet

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
    if plan.outputs:  # several outputs
        loss_fn = output_loss(plan, bundle.info, bundle.train)
        metrics: Any = OutputMetrics(plan, bundle.info, loss_fn)
    else:
        loss_fn = plan.make_loss(bundle.info.n_outputs, target_stats(bundle))
        metrics = MetricSet(plan.metrics, bundle.info, plan.train.threshold)
    data, test = plan.data, bundle.test
    order = EpochBatches(len(test), data.eval_batch_size, seed=plan.seed, shuffle=False,
                         drop_last_single=False)  # fmt: skip
    batches = test.batches(order, torch.device("cpu"), workers=data.num_workers)
    cast = (torch.autocast("cpu", dtype=torch.bfloat16) if spec.train.precision == "bf16"
            else contextlib.nullcontext())  # fmt: skip
    with cast:
        evaluate_batches(predictor.model.eval(), loss_fn, batches, metrics,
                         tuple(bundle.info.inputs) or (INPUT,), tuple(plan.outputs))  # fmt: skip
    # the digest of an in-memory split, as the run recorded it (streamed splits record none)
    digest = memory_digest(test)
    return {"loss": metrics.compute_loss(), **metrics.compute()}, digest
