"""Token inputs: which embeddings read the model input, and checking ids against their tables.

A model whose input feeds an ``embedding`` layer is trained on int64 token ids; everything else
on float32 features. The trainer, the predictor and the checks all go through
:func:`token_array`, so a bad id is a :class:`~nnspec.errors.DataError` naming the layer and the
largest id found, never an ``IndexError`` from inside torch.
"""

from __future__ import annotations

import numpy as np

from nnspec.errors import DataError, Problem, format_path
from nnspec.spec.layers import Embedding
from nnspec.spec.model import ModelSpec

__all__ = ["InputEmbeddings", "embedded_inputs", "input_embeddings", "token_array"]

InputEmbeddings = tuple[tuple[tuple[str | int, ...], Embedding], ...]
"""(spec path, layer) of every embedding that reads the model input."""


def input_embeddings(model: ModelSpec) -> InputEmbeddings:
    """The ``embedding`` layers that read the model input, with their spec paths.

    A model whose input feeds an embedding takes int64 token ids instead of float features.

    Example:
        >>> m = ModelSpec(input_shape=(5,), layers=[
        ...     {"kind": "embedding", "num_embeddings": 9, "embedding_dim": 4}, {"lstm": 3}])
        >>> [(p, e.num_embeddings) for p, e in input_embeddings(m)]
        [(('model', 'layers', 0), 9)]
    """
    if not model.is_graph:
        first = model.layers[0]
        return ((("model", "layers", 0), first),) if isinstance(first, Embedding) else ()
    graph = model.graph()
    fed = {f"inputs.{name}" for name in graph.inputs}
    return tuple(
        (("model", *node.path), node.layer)
        for node in graph.nodes
        if isinstance(node.layer, Embedding) and fed.intersection(node.inputs)
    )


def embedded_inputs(model: ModelSpec) -> frozenset[str]:
    """The names of the model inputs an ``embedding`` reads (``input`` for a model with one
    ``input_shape``): they take int64 ids, the other inputs float features.

    Example:
        >>> m = ModelSpec(inputs={"f": [3], "city": [1]}, layers=[
        ...     {"kind": "embedding", "num_embeddings": 9, "embedding_dim": 2, "inputs": ["city"]},
        ...     {"kind": "flatten", "name": "flat"}, {"kind": "concat", "inputs": ["f", "flat"]}])
        >>> sorted(embedded_inputs(m))
        ['city']
    """
    if not model.is_graph:
        return frozenset({"input"}) if input_embeddings(model) else frozenset()
    nodes = model.graph().nodes
    return frozenset(
        i.removeprefix("inputs.") for node in nodes if isinstance(node.layer, Embedding)
        for i in node.inputs if i.startswith("inputs.")
    )  # fmt: skip


def _not_whole(x: np.ndarray) -> DataError | None:
    if x.dtype.kind in "iu":
        return None
    try:
        values = x.astype(np.float64)
    except (TypeError, ValueError):
        values = np.full(x.shape, np.nan)
    bad = ~(np.isfinite(values) & (values == np.round(values)))
    if not bad.any():
        return None
    row, col = (int(i[0]) for i in np.nonzero(bad))
    cell = x[row, col]
    value = cell.item() if isinstance(cell, np.generic) else cell  # 0.5, not np.float64(0.5)
    return DataError(
        Problem(
            ("data",),
            "the model reads its input with an embedding, so the inputs must be integer token ids",
            expected="whole numbers 0 .. num_embeddings-1",
            found=f"{value!r} (sample {row}, position {col})",
            fix="feed token ids, or start the model with a layer that takes features (linear)",
        )
    )


def token_array(
    x: np.ndarray,
    embeddings: InputEmbeddings,
    *,
    vocab_size: int | None = None,
) -> np.ndarray:
    """Check and convert inputs ``(N, ...)`` to int64 token ids for the input ``embeddings``.

    Ids must be whole numbers in ``[0, num_embeddings)`` of every input embedding; an id outside
    would be an ``IndexError`` deep inside ``torch.nn.functional.embedding``.

    Args:
        x: the inputs (any numeric dtype).
        embeddings: :func:`input_embeddings` of the model.
        vocab_size: the vocabulary the source declares (checked even when the data at hand
            does not use its largest ids).

    Raises:
        DataError: non-integer values, negative ids, or ids beyond an embedding's table.
    """
    err = _not_whole(x.reshape(len(x), -1)) if x.size else None
    if err is not None:
        raise err
    tokens = x.astype(np.int64)
    if not tokens.size:
        return tokens
    lo, hi = int(tokens.min()), int(tokens.max())
    top = max(hi, (vocab_size or 0) - 1)
    declared = f"; the source's vocabulary has {vocab_size} ids" if top > hi else ""
    problems = [
        Problem(
            (*path, "num_embeddings"),
            f"token ids do not fit {format_path(path)} (embedding, num_embeddings "
            f"{layer.num_embeddings}): max token found {hi}{declared}",
            expected=f"token ids 0..{layer.num_embeddings - 1}",
            found=f"max token {hi}",
            fix=f"set num_embeddings: {top + 1} (the vocabulary size) or more",
        )
        for path, layer in embeddings
        if top >= layer.num_embeddings
    ]
    if lo < 0:
        problems.append(
            Problem(("data",), "token ids must not be negative", expected="ids >= 0",
                    found=f"min token {lo}", fix="map the tokens to ids 0 .. vocabulary size-1")
        )  # fmt: skip
    if problems:
        raise DataError(problems)
    return tokens
