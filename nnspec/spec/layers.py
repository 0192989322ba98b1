"""Layer specs: one class per ``kind``, dispatched through :data:`LAYER_SPECS`.

Built-in kinds register here; user kinds register from Python with :func:`nnspec.register_layer`.
A layer list item may be written in canonical form (``{kind: linear, out_features: 128}``), as a
one-key shorthand (``{linear: 128}`` or ``{linear: {out_features: 128, dropout: 0.2}}``) or, for
kinds without a required field, as a bare name (``flatten``). Dumping always writes the canonical
form.
"""

# No `from __future__ import annotations` in the schema modules on the model's build path: pydantic
# would eval every field's annotation string one by one at import (bench/bench_import.py);
# forward references are quoted where needed.

from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import (
    Field,
    GetPydanticSchema,
    SerializeAsAny,
    SerializerFunctionWrapHandler,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    WrapSerializer,
    WrapValidator,
)
from pydantic_core import PydanticCustomError

from nnspec.errors import did_you_mean
from nnspec.registry import Registry
from nnspec.spec.activations import ActivationSpec
from nnspec.spec.base import NonNegInt, PosFloat, PosInt, Prob, Spec
from nnspec.spec.init import InitSpec

__all__ = [
    "LayerBase",
    "WeightLayer",
    "LAYER_SPECS",
    "LayerSpec",
    "NormName",
    "register_layer_spec",
    "layer_spec_json_types",
]

NormName = Literal["batch", "layer", "group", "instance", "none"]
IntOrPair = Union[PosInt, Annotated[tuple[PosInt, ...], Field(min_length=1)]]
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


class LayerBase(Spec):
    """Fields every layer has."""

    kind: str
    name: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        description="Module name in the state_dict and summary; defaults to the layer's index.",
    )
    trainable: bool = Field(default=True, description="False freezes the layer's parameters.")
    lr_scale: PosFloat = Field(
        default=1.0, description="Multiplier of the optimizer's lr for this layer."
    )
    inputs: tuple[str, ...] | None = Field(
        default=None,
        description="Names of the layers or model inputs feeding this one (branch/merge graphs); "
        "default: the previous layer.",
    )

    # The field a one-key shorthand fills: `{linear: 128}` -> out_features=128.
    shorthand_field: ClassVar[str | None] = None


class WeightLayer(LayerBase):
    """A layer with a weight op, run as weight op -> norm -> activation -> dropout (NORM-2).

    ``None`` in activation/norm/dropout/init/bias means "inherit": hidden layers take
    ``model.defaults``; the head (last weight layer) takes identity, no norm, no dropout, and a
    Glorot init scaled by 0.1 (INIT-9).
    """

    activation: ActivationSpec | None = Field(
        default=None, description="Activation after the norm."
    )
    norm: NormName | None = Field(
        default=None, description="Normalisation between weight op and activation."
    )
    dropout: Prob | None = Field(default=None, description="Dropout rate after the activation.")
    init: InitSpec | None = Field(
        default=None, description="Weight init; `auto` picks by activation (INIT-1)."
    )
    bias: bool | None = Field(
        default=None,
        description="Bias of the weight op; default: on, except when batch norm follows.",
    )


def _auto_or(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    # `auto` passes as is; anything else is validated as the declared type, so a bad value gets
    # that type's own error (`must be greater than 0`), not a union's two errors.
    return value if value == "auto" else handler(value)


def _auto_or_dump(value: Any, handler: SerializerFunctionWrapHandler) -> Any:
    return value if value == "auto" else handler(value)


def auto_or(schema_type: Any) -> GetPydanticSchema:
    """Validate as ``schema_type`` (its own error messages), the union with ``auto`` being for
    type checkers only; :func:`_auto_or` lets ``auto`` through first."""
    return GetPydanticSchema(lambda _type, handler: handler.generate_schema(schema_type))


# A positive int or `auto` (a size the run layer takes from the data before compiling).
AutoPosInt = Annotated[
    Union[PosInt, Literal["auto"]],
    auto_or(PosInt),
    WrapValidator(_auto_or),
    WrapSerializer(_auto_or_dump),
    WithJsonSchema({"anyOf": [{"type": "integer", "exclusiveMinimum": 0}, {"const": "auto"}]}),
]


class Linear(WeightLayer):
    kind: Literal["linear"] = "linear"
    # `auto` on the last layer: the number of classes or targets, taken from the data.
    out_features: AutoPosInt = Field(description="Output width.")
    shorthand_field: ClassVar[str | None] = "out_features"


class _ConvBase(WeightLayer):
    out_channels: PosInt = Field(description="Output channels.")
    kernel_size: IntOrPair = Field(description="Kernel size (int or one per spatial dim).")
    stride: IntOrPair = Field(default=1, description="Stride.")
    padding: Union[NonNegInt, tuple[NonNegInt, ...], Literal["same", "valid"]] = Field(
        default=0,
        description="Zero padding: int, per-dim tuple, 'same' (stride 1 only) or 'valid'.",
    )
    dilation: IntOrPair = Field(default=1, description="Dilation.")
    groups: PosInt = Field(
        default=1, description="Groups; in and out channels must be divisible by it."
    )
    shorthand_field: ClassVar[str | None] = "out_channels"


class Conv1d(_ConvBase):
    kind: Literal["conv1d"] = "conv1d"


class Conv2d(_ConvBase):
    kind: Literal["conv2d"] = "conv2d"


class _PoolBase(LayerBase):
    kernel_size: IntOrPair = Field(description="Window size.")
    stride: IntOrPair | None = Field(
        default=None, description="Stride; default: kernel_size (as torch)."
    )
    padding: Union[NonNegInt, tuple[NonNegInt, ...]] = Field(
        default=0, description="Implicit padding."
    )
    shorthand_field: ClassVar[str | None] = "kernel_size"


class MaxPool1d(_PoolBase):
    kind: Literal["max_pool1d"] = "max_pool1d"


class MaxPool2d(_PoolBase):
    kind: Literal["max_pool2d"] = "max_pool2d"


class AvgPool1d(_PoolBase):
    kind: Literal["avg_pool1d"] = "avg_pool1d"


class AvgPool2d(_PoolBase):
    kind: Literal["avg_pool2d"] = "avg_pool2d"


class AdaptiveAvgPool1d(LayerBase):
    kind: Literal["adaptive_avg_pool1d"] = "adaptive_avg_pool1d"
    output_size: PosInt = Field(default=1, description="Output length; 1 = global average pooling.")
    shorthand_field: ClassVar[str | None] = "output_size"


class AdaptiveAvgPool2d(LayerBase):
    kind: Literal["adaptive_avg_pool2d"] = "adaptive_avg_pool2d"
    output_size: IntOrPair = Field(
        default=1, description="Output size; 1 = global average pooling."
    )
    shorthand_field: ClassVar[str | None] = "output_size"


class Flatten(LayerBase):
    kind: Literal["flatten"] = "flatten"


class Reshape(LayerBase):
    kind: Literal["reshape"] = "reshape"
    shape: tuple[int, ...] = Field(description="Per-sample shape; one entry may be -1.")
    shorthand_field: ClassVar[str | None] = "shape"


class _DropoutBase(LayerBase):
    p: Prob = Field(default=0.5, description="Drop probability.")
    shorthand_field: ClassVar[str | None] = "p"


class Dropout(_DropoutBase):
    kind: Literal["dropout"] = "dropout"


class Dropout2d(_DropoutBase):
    kind: Literal["dropout2d"] = "dropout2d"


class AlphaDropout(_DropoutBase):
    kind: Literal["alpha_dropout"] = "alpha_dropout"


class BatchNorm(LayerBase):
    """BatchNorm1d/2d picked from the input rank."""

    kind: Literal["batch_norm"] = "batch_norm"
    eps: PosFloat = Field(default=1e-5, description="Added to the variance.")
    momentum: Prob = Field(
        default=0.1, description="Running-statistics momentum (torch's convention)."
    )


class LayerNorm(LayerBase):
    """Normalises over the trailing ``ndim`` dims (default: the last one)."""

    kind: Literal["layer_norm"] = "layer_norm"
    eps: PosFloat = Field(default=1e-5, description="Added to the variance.")
    ndim: PosInt = Field(default=1, description="How many trailing dims to normalise over.")
    elementwise_affine: bool = Field(default=True, description="Learnt scale and shift.")


class GroupNorm(LayerBase):
    kind: Literal["group_norm"] = "group_norm"
    num_groups: PosInt = Field(default=32, description="Groups; must divide the channels.")
    eps: PosFloat = Field(default=1e-5, description="Added to the variance.")
    shorthand_field: ClassVar[str | None] = "num_groups"


class InstanceNorm(LayerBase):
    kind: Literal["instance_norm"] = "instance_norm"
    eps: PosFloat = Field(default=1e-5, description="Added to the variance.")
    affine: bool = Field(default=True, description="Learnt scale and shift.")


class ActivationLayer(LayerBase):
    kind: Literal["activation"] = "activation"
    activation: ActivationSpec = Field(description="The activation to apply.")
    shorthand_field: ClassVar[str | None] = "activation"


class Embedding(LayerBase):
    kind: Literal["embedding"] = "embedding"
    num_embeddings: AutoPosInt = Field(
        description="Vocabulary size; `auto`: the vocabulary of the categorical column it reads."
    )
    embedding_dim: PosInt = Field(description="Vector size.")
    padding_idx: NonNegInt | None = Field(
        default=None, description="Index whose vector stays zero."
    )
    init: InitSpec | None = Field(
        default=None, description="Default: normal with std 1 (as torch)."
    )


class IdentityLayer(LayerBase):
    kind: Literal["identity"] = "identity"


LAYER_SPECS: Registry[type[LayerBase]] = Registry("layer kind")


def register_layer_spec(cls: type[LayerBase]) -> type[LayerBase]:
    """Add a layer spec class under its ``kind`` default; duplicates raise."""
    kind = cls.model_fields["kind"].default
    if not isinstance(kind, str):
        raise TypeError(f"{cls.__name__}.kind needs a Literal default naming the kind")
    return LAYER_SPECS.register(kind, cls)


for _cls in (
    Linear, Conv1d, Conv2d, MaxPool1d, MaxPool2d, AvgPool1d, AvgPool2d, AdaptiveAvgPool1d,
    AdaptiveAvgPool2d, Flatten, Reshape, Dropout, Dropout2d, AlphaDropout, BatchNorm, LayerNorm,
    GroupNorm, InstanceNorm, ActivationLayer, Embedding, IdentityLayer,
):  # fmt: skip
    register_layer_spec(_cls)


def normalize_layer(value: Any) -> Any:
    """Turn the shorthand forms into the canonical mapping (``{kind: ..., ...}``)."""
    if isinstance(value, str) and value in LAYER_SPECS:
        return {"kind": value}
    if not isinstance(value, dict) or "kind" in value:
        return value
    kinds = [k for k in value if k in LAYER_SPECS]
    if len(kinds) > 1:  # `{linear: 64, activation: relu}`, `{lstm: 8, dropout: 0.1}`: fields there
        kinds = [k for k in kinds if not any(k in LAYER_SPECS[o].model_fields for o in kinds)]
    if len(kinds) != 1:
        return value
    key = kinds[0]
    rest = {k: v for k, v in value.items() if k != key}
    arg = value[key]
    if isinstance(arg, dict) and not rest:
        return {"kind": key, **arg}  # `{linear: {out_features: 64, ...}}`
    if arg is None:
        return {"kind": key, **rest}
    field = LAYER_SPECS[key].shorthand_field
    if field is None:
        raise PydanticCustomError(
            "layer_shorthand",
            # pydantic replaces `{kind}` from the context and keeps other braces as written
            "layer kind '{kind}' has no one-value shorthand; write {kind: {kind}, ...}",
            {"kind": key},
        )
    return {"kind": key, field: arg, **rest}  # `{conv2d: 32, kernel_size: 3}`


def _validate_layer(value: Any, handler: ValidatorFunctionWrapHandler) -> LayerBase:
    if isinstance(value, LayerBase):
        return value
    value = normalize_layer(value)
    if not isinstance(value, dict):
        # the value itself is the problem's `found` (nnspec.io.problems), not part of the text
        raise PydanticCustomError("layer_type", "a layer must be a mapping with a 'kind'")
    kind = value.get("kind")
    if kind is None:
        for key in value:  # `{conv2dd: 32}`: a misspelt shorthand kind
            hint = did_you_mean(key, LAYER_SPECS)
            if hint:
                raise PydanticCustomError(
                    "unknown_layer_kind",
                    "unknown layer kind '{kind}'; {hint}",
                    {"kind": key, "hint": hint, "expected": ", ".join(sorted(LAYER_SPECS))},
                )
        raise PydanticCustomError(
            "layer_kind_missing",
            "layer has no 'kind'; write e.g. {kind: linear, out_features: 64}",
            {"expected": ", ".join(sorted(LAYER_SPECS))},
        )
    if not isinstance(kind, str) or kind not in LAYER_SPECS:  # `kind: [linear]` is no kind
        hint = did_you_mean(kind, LAYER_SPECS)
        raise PydanticCustomError(
            "unknown_layer_kind",
            "unknown layer kind '{kind}'" + ("; {hint}" if hint else ""),
            {"kind": kind, "hint": hint or "", "expected": ", ".join(sorted(LAYER_SPECS))},
        )
    # A nested ValidationError keeps its own locations (model.layers.3.out_features).
    return LAYER_SPECS[kind].model_validate(value)


def layer_spec_json_types() -> Any:
    """Union of the registered layer classes, for the JSON Schema of ``nnspec schema``."""
    return Union[tuple(LAYER_SPECS.values())]  # type: ignore[return-value]


LayerSpec = Annotated[SerializeAsAny[LayerBase], WrapValidator(_validate_layer)]
"""One layer of any registered kind (built-in or user-registered)."""

__all__ += [c.__name__ for c in LAYER_SPECS.values()]
