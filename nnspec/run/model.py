"""The model of a run: built from the spec, checked against the data, head bias set from the
training targets (INIT-7/8), and saved with its preprocessing for inference.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from nnspec.errors import Problem, SpecError
from nnspec.run.data import DataInfo
from nnspec.run.outputs import RunWriter
from nnspec.run.tasks import TASKS
from nnspec.spec.experiment import ExperimentSpec
from nnspec.spec.model import auto_sizes, head_index

__all__ = [
    "build_for_data",
    "expected_outputs",
    "init_head_bias",
    "save_model",
    "info_to_json",
    "resolve_sizes",
    "check_output_width",
]


def expected_outputs(info: DataInfo) -> int:
    """Output width the task needs (ARCH-1): C classes, 1 logit, K labels or K targets."""
    return 1 if info.task == "binary" else info.n_outputs


def resolve_sizes(spec: ExperimentSpec, info: DataInfo) -> ExperimentSpec:
    """``spec`` with its ``auto`` sizes taken from the data: ``input_shape`` is the data's
    per-sample shape, the head's ``out_features`` the classes or targets (ARCH-1).

    Example:
        >>> spec = ExperimentSpec(model={"input_shape": "auto", "layers": [{"linear": "auto"}]})
        >>> info = DataInfo(task="classification", input_shape=(7,), n_outputs=3)
        >>> m = resolve_sizes(spec, info).model
        >>> m.input_shape, m.layers[0].out_features
        ((7,), 3)
    """
    model = spec.model
    update: dict[str, Any] = {}
    for path, _ in auto_sizes(model):
        if path == ("input_shape",):
            update["input_shape"] = tuple(info.input_shape)
        elif path[0] == "inputs":
            inputs = dict(update.get("inputs", model.inputs))
            inputs[str(path[1])] = tuple(info.inputs[str(path[1])])
            update["inputs"] = inputs
        else:
            layers = list(update.get("layers", model.layers))
            i = int(path[1])
            size = _auto_size(spec, info, layers[i], path)
            layers[i] = layers[i].model_copy(update={str(path[2]): size})
            update["layers"] = tuple(layers)
    if not update:
        return spec
    return spec.model_copy(update={"model": model.model_copy(update=update)})


def _auto_size(spec: ExperimentSpec, info: DataInfo, layer: Any, path: tuple[Any, ...]) -> int:
    """An ``auto`` layer size: an output's width, or an embedded column's vocabulary."""
    if path[2] == "out_features":
        head = info.outputs.get(layer.name) if layer.name is not None else None
        return expected_outputs(head if head is not None else info)
    column = layer.inputs[0]
    vocab = info.extra.get("vocab", {})
    if column not in vocab:
        raise SpecError(
            Problem(
                ("model", *path),
                "num_embeddings: auto takes the vocabulary of the categorical column the "
                f"embedding reads, and '{column}' is not an embedded column of the data",
                expected=f"an input named after one of: {', '.join(vocab) or '(none)'}",
                found=column,
                fix="set num_embeddings to a number, or name the input after its column",
            )
        )
    return int(vocab[column])


def _check_output_widths(model: nn.Module, spec: ExperimentSpec, info: DataInfo) -> None:
    """Several outputs: each output's width fits its task (ARCH-1)."""
    shapes = getattr(model, "output_shape", None)
    if not isinstance(shapes, dict):
        return
    for name, head in info.outputs.items():
        want, shape = expected_outputs(head), shapes.get(name, ())
        got = int(shape[-1]) if len(shape) else 1
        if want != got:
            raise SpecError(
                Problem(("model", "outputs", name),
                        f"output '{name}' has the wrong width for its task (ARCH-1)",
                        expected=f"{want} ({head.task})", found=str(got),
                        fix=f"set out_features: {want} (or auto) on layer '{name}'")
            )  # fmt: skip


def _output_width(model: nn.Module, spec: ExperimentSpec, info: DataInfo) -> int:
    shape = getattr(model, "output_shape", None)
    if shape is None:  # a model without inferred shapes: one dry sample (token 0 for an embedding)
        dtype = torch.int64 if info.tokens else torch.float32
        with torch.no_grad():
            was = model.training
            model.eval()
            shape = tuple(model(torch.zeros(1, *spec.model.input_shape, dtype=dtype)).shape[1:])
            model.train(was)
    return int(shape[-1]) if len(shape) else 1


def _check_width(model: nn.Module, spec: ExperimentSpec, info: DataInfo) -> None:
    check_output_width(spec, info, _output_width(model, spec, info))


def check_output_width(spec: ExperimentSpec, info: DataInfo, got: int) -> None:
    """Refuse a model whose output width ``got`` does not fit the data (ARCH-1)."""
    want = expected_outputs(info)
    if want == got:
        return
    head = head_index(spec.model.layers)
    what = {"classification": f"{want} classes", "binary": "one logit (binary task)"}
    raise SpecError(
        Problem(
            (
                "model",
                "layers",
                head if head is not None else len(spec.model.layers) - 1,
                "out_features",
            ),
            "the output layer's width does not fit the data (ARCH-1)",
            expected=what.get(info.task, f"{want} outputs ({info.task} targets)"),
            found=str(got),
            fix=f"set the last layer's out_features to {want}",
        )
    )


def init_head_bias(model: nn.Module, info: DataInfo, y_train: torch.Tensor, loss: str) -> None:
    """Set the head's bias from the training targets.

    INIT-7: regression -> per-target mean (median for an L1 loss). INIT-8: classification ->
    log class priors; binary/multilabel -> ln(n_pos / n_neg) per output. Empty classes keep a
    finite bias (counts are clamped to 1).
    """
    head = getattr(model, "head", None)
    _init_bias(getattr(head, "bias", None), info, y_train, loss)


def _init_bias(bias: torch.Tensor | None, info: DataInfo, y_train: torch.Tensor, loss: str) -> None:
    if bias is None:
        return
    with torch.no_grad():
        y = y_train.to(bias.device)
        kind = TASKS[info.task]
        if kind.counts is not None and kind.prior_logits is not None:
            value = kind.prior_logits(kind.counts(y, bias.numel()), len(y))
        else:
            value = y.float().median(0).values if loss == "mae" else y.float().mean(0)
        bias.copy_(value.reshape(bias.shape))


def build_for_data(
    spec: ExperimentSpec, info: DataInfo,
    y_train: torch.Tensor | Mapping[str, torch.Tensor] | None = None,
) -> nn.Module:  # fmt: skip
    """Build the spec's model (seeded by ``spec.seed``) and check its output width; the training
    targets (several outputs: each output's, by name) set the head's bias."""
    from nnspec.compile import build_model

    spec = resolve_sizes(spec, info)  # `auto` sizes from the data
    model = build_model(spec)  # seeded by spec.seed, as nnspec.build_model and nnspec.compile
    if info.outputs:
        _check_output_widths(model, spec, info)
        if isinstance(y_train, Mapping):
            _init_output_biases(model, spec, info, y_train)
        return model
    _check_width(model, spec, info)
    if isinstance(y_train, torch.Tensor):
        from nnspec.spec.optim import resolve_loss_kind

        init_head_bias(model, info, y_train, resolve_loss_kind(spec.task, spec.loss))
    return model


def _init_output_biases(
    model: nn.Module, spec: ExperimentSpec, info: DataInfo, targets: Mapping[str, torch.Tensor]
) -> None:
    """INIT-7/8 for each output whose layer (named as the output) is a head of the model."""
    from nnspec.spec.heads import declared_outputs
    from nnspec.spec.optim import resolve_loss_kind

    declared = declared_outputs(spec.model) or {}
    heads = set(getattr(model, "head_names", ()))
    for layer in spec.model.layers:
        out = declared.get(layer.name) if layer.name is not None else None
        node = f"layers.{layer.name}"  # a named layer's module path (its graph node id)
        if out is not None and node in heads and layer.name in targets:
            ops = model.get_submodule(node).modules()
            op = next((m for m in ops if isinstance(m, nn.Linear)), None)  # the weight op
            loss = resolve_loss_kind(out.task, out.loss)
            _init_bias(getattr(op, "bias", None), info.outputs[layer.name], targets[layer.name],
                       loss)  # fmt: skip


def info_to_json(info: DataInfo) -> dict[str, Any]:
    """The JSON part of the preprocessing (tensors go to model.pt)."""
    return {
        "task": info.task,
        "input_shape": list(info.input_shape),
        "n_outputs": info.n_outputs,
        "class_names": list(info.class_names),
        "feature_names": list(info.feature_names),
        "extra": info.extra,
        "tokens": info.tokens,
        "class_values": list(info.class_values),
        "class_dtype": info.class_dtype,
        **({"inputs": {k: list(v) for k, v in info.inputs.items()}} if info.inputs else {}),
        **(
            {"outputs": {k: _head_json(v) for k, v in info.outputs.items()}} if info.outputs else {}
        ),
    }


def _head_json(info: DataInfo) -> dict[str, Any]:
    """One output's description: its targets' scaling goes with it (small: per target)."""
    scale = {
        k: getattr(info, k).tolist() for k in ("y_mean", "y_std") if getattr(info, k) is not None
    }
    return {**info_to_json(info), **scale}


def save_model(
    writer: RunWriter, model: nn.Module, info: DataInfo, state: dict[str, Any] | None = None
) -> None:
    """Write model.pt (weights + standardisation tensors) and preprocess.json; ``state``: the
    weights when ``model.state_dict()`` is not the full one (FSDP's gathered state)."""
    tensors = {k: getattr(info, k) for k in ("x_mean", "x_std", "y_mean", "y_std")}
    weights = state if state is not None else model.state_dict()
    writer.save_torch(
        "model.pt", {"model": weights, **{k: v for k, v in tensors.items() if v is not None}}
    )
    writer.write_text("preprocess.json", json.dumps(info_to_json(info), indent=2) + "\n")
