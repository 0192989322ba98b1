"""Sequence layer kinds: recurrent layers, attention, positional encodings, sequence pooling.

Sequences are batch-first: one sample is ``(T, features)``; token ids are ``(T,)`` and go through
``embedding`` first. Recurrent weights are initialised orthogonally and the LSTM forget-gate bias to
1 by default (Saxe et al. 2014; Jozefowicz et al. 2015) - documented choices, overridable per layer.
Models holding any of these kinds get gradient clipping by global norm 1.0 unless the spec sets
``train.clip_grad`` itself (TRAIN-6, see :func:`needs_clipping`).
"""

# No `from __future__ import annotations` in the schema modules on the model's build path: pydantic
# would eval every field's annotation string one by one at import (bench/bench_import.py);
# forward references are quoted where needed.

from typing import TYPE_CHECKING, ClassVar, Literal, Self

from pydantic import Field, model_validator

from nnspec.spec.base import PosFloat, PosInt, Prob, field_error
from nnspec.spec.init import InitSpec, Preset
from nnspec.spec.layers import LayerBase, register_layer_spec

if TYPE_CHECKING:
    from nnspec.spec.model import ModelSpec

__all__ = [
    "RNN",
    "LSTM",
    "GRU",
    "MultiheadAttention",
    "TransformerEncoderLayer",
    "PositionalEncoding",
    "ClsToken",
    "SequencePool",
    "SEQUENCE_KINDS",
    "needs_clipping",
]


class _Recurrent(LayerBase):
    """Shared fields of rnn/lstm/gru: input (T, F) -> (T, H*dirs) or (H*dirs,)."""

    hidden_size: PosInt = Field(description="Hidden state width per direction.")
    num_layers: PosInt = Field(default=1, description="Stacked recurrent layers.")
    bidirectional: bool = Field(default=False, description="Run a second layer backwards in time.")
    dropout: Prob = Field(
        default=0.0, description="Dropout between stacked layers (needs num_layers > 1)."
    )
    output: Literal["sequence", "last"] = Field(
        default="last",
        description="sequence: every step's output (T, H*dirs); last: the final hidden state of "
        "the top layer (forward direction at T, backward direction at 1), (H*dirs,).",
    )
    init: InitSpec = Field(
        default_factory=lambda: Preset(kind="glorot_uniform"),
        description="Input-to-hidden weights (Keras' default kernel init).",
    )
    recurrent_init: InitSpec = Field(
        default_factory=lambda: Preset(kind="orthogonal"),
        description="Hidden-to-hidden weights: orthogonal keeps the recurrence norm-preserving.",
    )
    shorthand_field: ClassVar[str | None] = "hidden_size"

    @model_validator(mode="after")
    def _dropout_needs_layers(self) -> Self:
        if self.dropout > 0 and self.num_layers == 1:
            raise field_error(
                ("dropout",),
                "dropout acts between stacked recurrent layers and needs num_layers > 1; "
                "fix: add a dropout layer after this one instead",
                self.dropout,
            )
        return self


class RNN(_Recurrent):
    kind: Literal["rnn"] = "rnn"
    nonlinearity: Literal["tanh", "relu"] = Field(default="tanh", description="Cell nonlinearity.")


class LSTM(_Recurrent):
    kind: Literal["lstm"] = "lstm"
    forget_bias: float = Field(
        default=1.0,
        description="Initial forget-gate bias: 1 lets gradients flow early in training.",
    )


class GRU(_Recurrent):
    kind: Literal["gru"] = "gru"


class MultiheadAttention(LayerBase):
    """Self-attention over (T, E) -> (T, E); E must be divisible by num_heads."""

    kind: Literal["multihead_attention"] = "multihead_attention"
    num_heads: PosInt = Field(description="Attention heads.")
    dropout: Prob = Field(default=0.0, description="Dropout on the attention weights.")
    bias: bool = Field(default=True, description="Biases of the projections.")
    causal: bool = Field(default=False, description="Mask future positions (decoder-style).")
    shorthand_field: ClassVar[str | None] = "num_heads"


class TransformerEncoderLayer(LayerBase):
    """One Transformer encoder layer on (T, E): self-attention + feed-forward, each residual.

    Pre-norm by default (LayerNorm before each sub-layer; trains without warmup tricks, Xiong et al.
    2020), GELU in the feed-forward (BERT/GPT practice), LayerNorm (NORM-3).
    """

    kind: Literal["transformer_encoder_layer"] = "transformer_encoder_layer"
    num_heads: PosInt = Field(description="Attention heads; must divide the model width E.")
    dim_feedforward: PosInt | None = Field(
        default=None, description="Feed-forward width; default 4 * E."
    )
    dropout: Prob = Field(
        default=0.1, description="Dropout in attention and feed-forward (REG: 0.1)."
    )
    activation: Literal["gelu", "relu"] = Field(
        default="gelu", description="Feed-forward activation."
    )
    norm_first: bool = Field(default=True, description="Pre-norm (True) or post-norm (False).")
    layer_norm_eps: PosFloat = Field(default=1e-5, description="LayerNorm epsilon.")
    causal: bool = Field(default=False, description="Mask future positions.")
    shorthand_field: ClassVar[str | None] = "num_heads"


class PositionalEncoding(LayerBase):
    """Adds position information to (T, E): fixed sinusoids (Vaswani et al.) or learnt vectors."""

    kind: Literal["positional_encoding"] = "positional_encoding"
    encoding: Literal["sinusoidal", "learned"] = Field(
        default="sinusoidal", description="Which encoding."
    )
    max_len: PosInt | None = Field(
        default=None, description="Longest sequence; default: the input's T."
    )
    dropout: Prob = Field(default=0.0, description="Dropout after adding the encoding.")
    shorthand_field: ClassVar[str | None] = "encoding"


class ClsToken(LayerBase):
    """Prepends one learnt vector to the sequence: (T, E) -> (T + 1, E); pool it with mode cls."""

    kind: Literal["cls_token"] = "cls_token"


class SequencePool(LayerBase):
    """(T, E) -> (E,): mean over time, the last step, or the first step (a prepended CLS token)."""

    kind: Literal["sequence_pool"] = "sequence_pool"
    mode: Literal["mean", "last", "cls", "max"] = Field(default="mean", description="How to pool.")
    shorthand_field: ClassVar[str | None] = "mode"


SEQUENCE_KINDS: tuple[type[LayerBase], ...] = (
    RNN, LSTM, GRU, MultiheadAttention, TransformerEncoderLayer, PositionalEncoding, ClsToken,
    SequencePool,
)  # fmt: skip
for _cls in SEQUENCE_KINDS:
    register_layer_spec(_cls)

# Layers whose presence turns gradient clipping on by default (TRAIN-6).
_CLIPPED: tuple[type[LayerBase], ...] = (
    RNN,
    LSTM,
    GRU,
    MultiheadAttention,
    TransformerEncoderLayer,
)


def needs_clipping(model: "ModelSpec") -> bool:
    """True when the model holds recurrent or attention layers (TRAIN-6: clip by norm 1.0).

    Example:
        >>> from nnspec.spec import ModelSpec
        >>> needs_clipping(ModelSpec(input_shape=(5, 3), layers=[{"lstm": 8}, {"linear": 2}]))
        True
    """
    layers = [n.layer for n in model.graph().nodes] if model.is_graph else list(model.layers)
    return any(isinstance(layer, _CLIPPED) for layer in layers)
