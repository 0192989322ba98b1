"""The model section: input shape, defaults for hidden layers, reusable blocks, the layer list."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from nnspec.spec.activations import ActivationSpec, ReLU
from nnspec.spec.base import PosInt, Prob, Spec, field_error
from nnspec.spec.init import InitSpec, Preset
from nnspec.spec.layers import (
    AlphaDropout,
    Dropout,
    Dropout2d,
    LayerBase,
    LayerSpec,
    NormName,
    WeightLayer,
)

__all__ = ["LayerDefaults", "BlockDef", "ModelSpec", "head_index"]


class LayerDefaults(Spec):
    """Inherited by every hidden weight layer that does not set the field itself (not by the head)."""

    activation: ActivationSpec = Field(default_factory=ReLU, description="Hidden activation (ACT-1).")
    norm: NormName = Field("none", description="Norm between weight op and activation (NORM-2).")
    init: InitSpec = Field(default_factory=Preset, description="`auto`: by activation (INIT-1).")
    dropout: Prob = Field(0.0, description="Dropout after each hidden activation.")
    bias: bool | None = Field(None, description="None: bias on unless batch norm follows.")


class BlockDef(Spec):
    """A named, reusable group of layers (filled in by the topology work; reserved here)."""

    params: dict[str, Any] = Field(default_factory=dict, description="Parameters and defaults.")
    layers: tuple[LayerSpec, ...] = Field(description="The block's layers.")


def head_index(layers: tuple[LayerBase, ...]) -> int | None:
    """Index of the head: the last weight layer of the top-level list (None if there is none)."""
    for i in range(len(layers) - 1, -1, -1):
        if isinstance(layers[i], WeightLayer):
            return i
    return None


class ModelSpec(Spec):
    """A network: per-sample ``input_shape`` and ``layers``; shapes of every layer are inferred."""

    input_shape: tuple[PosInt, ...] = Field(
        description="Shape of one sample without the batch dim: [features], [C, H, W], [T], ...",
        min_length=1,
    )
    defaults: LayerDefaults = Field(default_factory=LayerDefaults, description="Hidden-layer defaults.")
    blocks: dict[str, BlockDef] = Field(default_factory=dict, description="Reusable blocks.")
    layers: tuple[LayerSpec, ...] = Field(description="The layers, input to output.")

    @model_validator(mode="after")
    def _no_dropout_on_output(self) -> ModelSpec:
        # OUT-5: dropout on the output layer randomly zeroes logits/predictions.
        if not self.layers:
            raise field_error(("layers",), "a model needs at least one layer", [])
        msg = (
            "dropout on the output layer (OUT-5) randomly zeroes predictions; "
            "fix: remove it from the last layer and regularise the hidden layers instead"
        )
        last = len(self.layers) - 1
        if isinstance(self.layers[last], (Dropout, Dropout2d, AlphaDropout)):
            raise field_error(("layers", last, "kind"), msg, self.layers[last].kind)
        head = head_index(self.layers)
        if head is not None:
            dropout = getattr(self.layers[head], "dropout", None)
            if dropout:
                raise field_error(("layers", head, "dropout"), msg, dropout)
        return self
