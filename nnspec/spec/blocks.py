"""Reusable parametrised blocks, residual options and the CNN building-block layer kinds.

A block is defined once under ``model.blocks`` and used in a layer list by name::

    blocks:
      basic:
        params: {channels: int, stride: 1}         # `int`: required; `1`: an int defaulting to 1
        residual: true                             # out = relu(body(x) + shortcut(x))
        layers:
          - {conv2d: $channels, kernel_size: 3, stride: $stride, padding: 1}
          - {conv2d: $channels, kernel_size: 3, padding: 1, activation: identity}
    layers:
      - {block: basic, args: {channels: 128}, first: {stride: 2}, repeat: 2}

Block parameters are written ``$name``: OmegaConf/Hydra only interpolate ``${...}``, so a spec with
blocks still composes under Hydra. ``$$x`` is the literal string ``$x``. The block's layers are
kept as raw templates (they hold ``$name`` strings, so they cannot be validated before
substitution); each use validates them after substitution, and errors point at the template's
field path (``model.blocks.basic.layers.1.out_channels``) and name the use and repetition.
"""

# No `from __future__ import annotations` in the schema modules on the model's build path: pydantic
# would eval every field's annotation string one by one at import (bench/bench_import.py);
# forward references are quoted where needed.

import functools
from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Literal, Self, Union

from pydantic import BeforeValidator, Field, TypeAdapter, ValidationError
from pydantic import model_validator as _model_validator

from nnspec.errors import did_you_mean
from nnspec.spec.activations import ActivationSpec
from nnspec.spec.base import NonNegInt, PosInt, Spec, field_error
from nnspec.spec.layers import (
    IntOrPair,
    LayerBase,
    NormName,
    WeightLayer,
    _ConvBase,
    register_layer_spec,
)

__all__ = [
    "ParamType",
    "ParamDef",
    "ResidualSpec",
    "BlockDef",
    "BlockUse",
    "ConvTranspose2d",
    "DepthwiseSeparableConv2d",
    "SqueezeExcitation",
    "substitute",
    "check_args",
    "template_params",
]

ParamType = Literal["int", "float", "bool", "str", "ints", "any"]
_PARAM_PY_TYPES: Mapping[ParamType, Any] = MappingProxyType({
    "int": int,
    "float": float,
    "bool": bool,
    "str": str,
    "ints": tuple[int, ...],
    "any": Any,
})  # fmt: skip


@functools.cache
def _param_adapter(param_type: ParamType) -> TypeAdapter[Any]:
    # One adapter per parameter type: block arguments are checked before they are substituted.
    # Built on first use: building a TypeAdapter is not free and this module is on the import path
    # of `nnspec.build_model` (bench/bench_import.py).
    return TypeAdapter(_PARAM_PY_TYPES[param_type])


_PY_TO_PARAM: Mapping[type, ParamType] = {bool: "bool", int: "int", float: "float", str: "str"}


def _param_shorthand(value: Any) -> Any:
    # `int` -> required int; `1` -> int defaulting to 1; a mapping is the canonical form.
    if isinstance(value, str) and value in _PARAM_PY_TYPES:
        return {"type": value}
    if isinstance(value, (list, tuple)):
        return {"type": "ints", "default": value}
    if type(value) in _PY_TO_PARAM:
        return {"type": _PY_TO_PARAM[type(value)], "default": value}
    return value


class ParamDef(Spec):
    """One block parameter: its type and (optionally) its default."""

    type: ParamType = Field(
        default="any", description="int, float, bool, str, ints (a list) or any."
    )
    default: Any = Field(default=None, description="Value used when an argument is not given.")
    required: bool | None = Field(
        default=None, description="Default: required when there is no default."
    )

    @property
    def is_required(self) -> bool:
        return self.default is None if self.required is None else self.required


def _residual_shorthand(value: Any) -> Any:
    # `residual: true` means all defaults; `false` means no residual connection.
    if value is True:
        return {}
    if value is False:
        return None
    return value


class ResidualSpec(Spec):
    """``out = post(body(x) + shortcut(x))`` (ARCH-9).

    ``style: post`` is the original ResNet (activation after the add); ``style: pre`` is the
    pre-activation ResNet: nothing after the add, and the body is expected to start with its own
    norm and activation (write e.g. ``[batch_norm, {activation: relu}, {conv2d: ...}]``).
    """

    style: Literal["post", "pre"] = Field(
        default="post", description="Activation after the add or not."
    )
    shortcut: Union[Literal["auto", "identity", "projection"], tuple[Any, ...]] = Field(
        default="auto",
        description="auto: identity when shapes match, else a 1x1 conv / linear projection with "
        "norm; identity: never project (a shape mismatch is an error); projection: always; or "
        "an explicit list of layers.",
    )
    activation: ActivationSpec | None = Field(
        default=None,
        description="Activation after the add; default: model.defaults.activation (post).",
    )
    projection_norm: NormName | None = Field(
        default=None, description="Norm of the automatic projection; default: model.defaults.norm."
    )
    zero_init_last_norm: bool = Field(
        default=False,
        description="Initialise the scale of the body's last norm to 0, so each block starts as "
        "the identity (Goyal et al. 2017).",
    )


class BlockDef(Spec):
    """A named, reusable group of layers with typed parameters."""

    params: dict[str, Annotated[ParamDef, BeforeValidator(_param_shorthand)]] = Field(
        default_factory=dict,
        description="Parameters: `name: int` (required), `name: 3` (default), or {type, default}.",
    )
    residual: Annotated[ResidualSpec | None, BeforeValidator(_residual_shorthand)] = Field(
        default=None, description="Make the block residual: true, or the options of ResidualSpec."
    )
    layers: tuple[Any, ...] = Field(
        description="The block's layers (layer mappings; `$name` refers to a parameter).",
        min_length=1,
    )

    @_model_validator(mode="after")
    def _known_params(self) -> Self:
        problems: list[tuple[tuple[str | int, ...], str, Any]] = []
        for loc, name in template_params(self.layers, ("layers",)):
            if name not in self.params:
                hint = did_you_mean(name, self.params)
                msg = f"unknown block parameter '${name}'" + (f"; {hint}" if hint else "")
                choices = ", ".join(f"${p}" for p in self.params) or "none declared"
                problems.append((loc, f"{msg} (parameters: {choices})", f"${name}"))
        if isinstance(self.residual, ResidualSpec) and isinstance(self.residual.shortcut, tuple):
            for loc, name in template_params(self.residual.shortcut, ("residual", "shortcut")):
                if name not in self.params:
                    problems.append((loc, f"unknown block parameter '${name}'", f"${name}"))
        if problems:
            loc, msg, found = problems[0]
            raise field_error(loc, msg, found)
        return self


def template_params(value: Any, loc: tuple[str | int, ...]) -> list[tuple[tuple, str]]:
    """Every ``$name`` reference in a raw template, with its location."""
    if isinstance(value, str):
        name = _param_name(value)
        return [(loc, name)] if name else []
    items: Any = ()
    if isinstance(value, Mapping):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    found: list[tuple[tuple, str]] = []
    for key, item in items:
        found += template_params(item, (*loc, key))
    return found


def _param_name(value: str) -> str | None:
    if value.startswith("$") and not value.startswith("$$") and len(value) > 1:
        return value[1:]
    return None


def substitute(value: Any, args: Mapping[str, Any]) -> Any:
    """Replace every ``$name`` string in a raw template by ``args[name]``; ``$$x`` -> ``$x``.

    Example:
        >>> substitute({"conv2d": "$c", "name": "$$c"}, {"c": 64})
        {'conv2d': 64, 'name': '$c'}
    """
    if isinstance(value, str):
        name = _param_name(value)
        if name is not None:
            return args[name]
        return value[1:] if value.startswith("$$") else value
    if isinstance(value, Mapping):
        return {k: substitute(v, args) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [substitute(v, args) for v in value]
    return value


def check_args(
    block: BlockDef, name: str, given: Mapping[str, Any], loc: tuple[str | int, ...]
) -> tuple[dict[str, Any], list[tuple[tuple, str, Any]]]:
    """Validate a use's arguments against the block's parameters; fill in defaults.

    Returns the complete argument mapping and a list of ``(loc, message, found)`` problems.
    """
    problems: list[tuple[tuple, str, Any]] = []
    for key in given:
        if key not in block.params:
            hint = did_you_mean(key, block.params)
            choices = ", ".join(block.params) or "none"
            msg = f"block '{name}' has no parameter '{key}'" + (f"; {hint}" if hint else "")
            problems.append(((*loc, key), f"{msg} (parameters: {choices})", key))
    values: dict[str, Any] = {}
    for pname, pdef in block.params.items():
        if pname not in given:
            if pdef.is_required:
                problems.append((loc, f"block '{name}' needs the argument '{pname}'", None))
            values[pname] = pdef.default
            continue
        try:
            _param_adapter(pdef.type).validate_python(given[pname], strict=pdef.type != "ints")
        except ValidationError:
            msg = f"argument '{pname}' of block '{name}' must be of type {pdef.type}"
            problems.append(((*loc, pname), msg, given[pname]))
        values[pname] = given[pname]
    return values, problems


class BlockUse(LayerBase):
    """Use of a block: ``{block: NAME, args: {...}, repeat: N, first: {...}}``.

    ``first`` overrides arguments of the first repetition only (e.g. ``{stride: 2}`` for the block
    that downsamples). ``trainable: false`` freezes every layer of every repetition; ``lr_scale``
    multiplies theirs.
    """

    kind: Literal["block"] = "block"
    block: str = Field(description="Name of the block in model.blocks.")
    args: dict[str, Any] = Field(default_factory=dict, description="Arguments of every repetition.")
    repeat: PosInt = Field(default=1, description="How many times the block is stacked.")
    first: dict[str, Any] = Field(
        default_factory=dict, description="Arguments that differ in the first repetition."
    )
    shorthand_field: ClassVar[str | None] = "block"


class ConvTranspose2d(WeightLayer):
    """Transposed 2-D convolution (upsampling); output size as in torch's ConvTranspose2d."""

    kind: Literal["conv_transpose2d"] = "conv_transpose2d"
    out_channels: PosInt = Field(description="Output channels.")
    kernel_size: IntOrPair = Field(description="Kernel size.")
    stride: IntOrPair = Field(default=1, description="Stride (upsampling factor).")
    padding: Union[NonNegInt, tuple[NonNegInt, ...]] = Field(
        default=0, description="Implicit padding."
    )
    output_padding: Union[NonNegInt, tuple[NonNegInt, ...]] = Field(
        default=0, description="Extra size added to one side of the output (must be < stride)."
    )
    dilation: IntOrPair = Field(default=1, description="Dilation.")
    groups: PosInt = Field(
        default=1, description="Groups; in and out channels must be divisible by it."
    )
    shorthand_field: ClassVar[str | None] = "out_channels"


class DepthwiseSeparableConv2d(_ConvBase):
    """Depthwise conv (one filter per input channel) then a 1x1 pointwise conv (MobileNet).

    ``groups`` must stay 1 (the depthwise conv has groups = in_channels by definition); norm and
    activation follow the pointwise conv, as for any weight layer.
    """

    kind: Literal["depthwise_separable_conv2d"] = "depthwise_separable_conv2d"
    depth_multiplier: PosInt = Field(
        default=1, description="Depthwise output channels per input channel."
    )

    @_model_validator(mode="after")
    def _no_groups(self) -> Self:
        if self.groups != 1:
            msg = "depthwise_separable_conv2d sets its own groups (= input channels); remove groups"
            raise field_error(("groups",), msg, self.groups)
        return self


class SqueezeExcitation(LayerBase):
    """Channel attention (ARCH-10): x * sigmoid(W2 relu(W1 avgpool(x))); shape preserving."""

    kind: Literal["squeeze_excitation"] = "squeeze_excitation"
    reduction: PosInt = Field(
        default=16, description="Hidden width = channels // reduction (SE paper: 16)."
    )
    min_hidden: PosInt = Field(default=8, description="Lower bound of the hidden width.")
    shorthand_field: ClassVar[str | None] = "reduction"


for _cls in (BlockUse, ConvTranspose2d, DepthwiseSeparableConv2d, SqueezeExcitation):
    register_layer_spec(_cls)
