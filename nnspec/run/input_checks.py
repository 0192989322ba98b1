"""What the data must be for the model's one input: the input shape against the data's
per-sample shape (:func:`check_shape`), flat inputs of in-memory arrays, token ids for an input
embedding (:func:`flat_inputs`), and the check a lazily read source's one pass applies to every
chunk (:func:`stream_check`). Used by :mod:`nnspec.run.data`."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnspec.errors import DataError, Problem, SpecError
from nnspec.run.arrays import RawData
from nnspec.run.tokens import input_embeddings, token_array
from nnspec.spec.experiment import ExperimentSpec

__all__ = ["check_shape", "flat_inputs", "stream_check"]


def check_shape(spec: ExperimentSpec, data_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The model's input shape: the data's per-sample shape for ``auto``, else checked."""
    if spec.model.input_shape is None or spec.model.outputs is not None:
        # named inputs and declared outputs go through nnspec.run.named; a list of output names
        # says nothing of what each output is trained for
        names = list(spec.model.outputs or ())
        raise SpecError(
            Problem(
                ("model", "outputs"),
                "a model with several outputs needs each output's task to be trained",
                expected="outputs as a mapping name -> {task, target, loss, weight, metrics}",
                found=f"a list of names: {names}",
                fix="write e.g. outputs: {" + ", ".join(f"{n}: {{task: regression}}" for n in
                                                         names[:2]) + "}",
            )
        )  # fmt: skip
    if spec.model.input_shape == "auto":
        return data_shape
    shape = tuple(spec.model.input_shape)
    per_sample = int(np.prod(data_shape))
    if int(np.prod(shape)) != per_sample:
        # A DataError, not a SpecError: the spec is valid on its own; it is this data (e.g. a
        # `data=wine` override under the digits CNN) that it does not fit.
        raise DataError(
            Problem(
                ("model", "input_shape"),
                f"input_shape does not fit the data: {spec.data.source} has {per_sample} values "
                "per sample",
                expected=f"{list(data_shape)} (the per-sample shape of the data)",
                found=f"{list(shape)} = {int(np.prod(shape))} values",
                fix=f"set model.input_shape: {list(data_shape)} and adapt the layers to it, or "
                "choose a model made for this data",
            )
        )
    return shape


def flat_inputs(spec: ExperimentSpec, raw: RawData) -> tuple[np.ndarray, bool]:
    """Flat per-sample inputs: int64 tokens for an input embedding, float32 features otherwise."""
    embeddings = input_embeddings(spec.model)
    vocab = raw.meta.get("vocab_size")
    flat = raw.x.reshape(raw.x.shape[0], -1)
    if embeddings:
        return token_array(flat, embeddings, vocab_size=vocab), True
    if vocab is not None:
        first = spec.model.layers[0]
        raise DataError(
            Problem(
                ("model", "layers", 0),
                f"{spec.data.source} produces integer token ids (vocabulary {vocab}); the model "
                "must read them with an embedding",
                expected="an embedding first layer",
                found=f"{getattr(first, 'kind', type(first).__name__)} first",
                fix=f"start the layers with {{kind: embedding, num_embeddings: {vocab}, "
                "embedding_dim: 32}",
            )
        )
    try:
        return flat.astype(np.float32), False
    except (TypeError, ValueError) as e:
        raise DataError(
            Problem(("data",), f"features must be numbers: {e}", found=str(flat.dtype))
        ) from e


def stream_check(spec: ExperimentSpec, rows: Any, meta: dict[str, Any]) -> Any:
    """What the one pass over a lazily read source checks: token ids against the embeddings,
    or finite features (named by file and row)."""
    embeddings = input_embeddings(spec.model)
    vocab = meta.get("vocab_size")

    def check(chunk: np.ndarray, start: int) -> None:
        if embeddings:
            token_array(chunk, embeddings, vocab_size=vocab)
            return
        if chunk.dtype.kind != "f":
            return
        bad = ~np.isfinite(chunk).all(axis=1)
        if bad.any():
            raise DataError(
                Problem(
                    ("data", "source"),
                    f"{rows.where(start + int(np.argmax(bad)))}: NaN or inf features",
                    expected="finite numbers",
                    fix="clean or drop that sample",
                )
            )

    return check
