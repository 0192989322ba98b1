"""Modules, builders and initialisers of the sequence kinds (batch-first, samples (T, E)).

Init choices (every parameter is set here and recorded):

* recurrent input weights: the layer's ``init`` (Glorot uniform by default), per gate block;
* recurrent hidden-to-hidden weights: ``recurrent_init`` (orthogonal by default), per gate block,
  so each gate's recurrence matrix has ``W^T W = I`` and neither shrinks nor grows the state;
* recurrent biases 0, except the LSTM forget gate's input bias = ``forget_bias`` (1 by default,
  Jozefowicz et al. 2015): the effective forget bias ``b_if + b_hf`` is 1;
* attention projections Glorot uniform per q/k/v block, biases 0; in Transformer layers the
  feed-forward layer before the activation is He (GELU -> He is a convention, INIT-1) and the one
  feeding the residual sum Glorot (INIT-4); LayerNorm scale 1, shift 0;
* learnt positional vectors and the CLS token: N(0, 0.02^2) (BERT/ViT practice).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from types import MappingProxyType

import torch
from torch import nn

from nnspec.compile.infer import LayerInfo
from nnspec.compile.initialize import (
    LAYER_INITIALIZERS,
    ONE_SCALE,
    ZERO_BIAS,
    Records,
    init_tensor,
    no_params,
)
from nnspec.compile.layers import LAYER_BUILDERS
from nnspec.compile.rules import PRESETS, ConstantRule, NormalRule, resolve_init
from nnspec.compile.sequence import GATES, POSITION_STD, ff_width
from nnspec.spec import sequence as S
from nnspec.spec.activations import Identity
from nnspec.spec.layers import LayerBase

__all__ = [
    "Recurrent",
    "SelfAttention",
    "EncoderLayer",
    "PositionalEncoding",
    "ClsToken",
    "SequencePool",
    "sinusoidal_table",
]

# ---- recurrent layers ---------------------------------------------------------------------------

_TORCH_RNN: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class Recurrent(nn.Module):
    """A batch-first torch RNN/LSTM/GRU returning the sequence or the top layer's last state."""

    def __init__(self, layer: S.RNN | S.LSTM | S.GRU, input_size: int) -> None:
        super().__init__()
        kwargs = {"nonlinearity": layer.nonlinearity} if isinstance(layer, S.RNN) else {}
        self.rnn = _TORCH_RNN[layer.kind](
            input_size,
            layer.hidden_size,
            num_layers=layer.num_layers,
            batch_first=True,
            dropout=layer.dropout,
            bidirectional=layer.bidirectional,
            **kwargs,
        )
        self.last = layer.output == "last"
        self.dirs = 2 if layer.bidirectional else 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, state = self.rnn(x)
        if not self.last:
            return out
        h_n = state[0] if isinstance(state, tuple) else state  # LSTM: (h_n, c_n)
        # h_n is (num_layers * dirs, B, H); the top layer's forward (time T) and backward (time 1)
        # states are its last `dirs` rows.
        return torch.cat(list(h_n[-self.dirs :]), dim=-1)


def _recurrent_init(
    m: Recurrent, layer: S.RNN | S.LSTM | S.GRU, info: LayerInfo, g: torch.Generator
) -> Records:
    rec: Records = {}
    w_in = resolve_init(layer.init, Identity(), is_head=False)
    w_hh = resolve_init(layer.recurrent_init, Identity(), is_head=False)
    for name, p in m.rnn.named_parameters():
        full = f"rnn.{name}"
        if name.startswith("weight"):
            r = w_in if name.startswith("weight_ih") else w_hh
            for gate in p.data.chunk(GATES[layer.kind], dim=0):  # one (H, in) block per gate
                init_tensor(rec, full, gate, r.rule, f"{r.reason}, per gate", g, r.source)
            continue
        init_tensor(rec, full, p, PRESETS["zeros"], ZERO_BIAS, g, "constant")
        if isinstance(layer, S.LSTM) and name.startswith("bias_ih"):
            h = layer.hidden_size  # torch's gate order: input, forget, cell, output
            why = f"forget-gate bias {layer.forget_bias:g} (Jozefowicz et al.), other gates 0"
            init_tensor(
                rec, full, p.data[h : 2 * h], ConstantRule(layer.forget_bias), why, g, "default"
            )
    return rec


# ---- attention ----------------------------------------------------------------------------------


def _causal_mask(t: int, device: torch.device) -> torch.Tensor:
    return torch.ones(t, t, dtype=torch.bool, device=device).triu(1)  # True = a future position


class SelfAttention(nn.Module):
    """Self-attention on (B, T, E) with torch's MultiheadAttention."""

    def __init__(self, layer: S.MultiheadAttention, embed_dim: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(
            embed_dim, layer.num_heads, dropout=layer.dropout, bias=layer.bias, batch_first=True
        )
        self.causal = layer.causal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = _causal_mask(x.shape[1], x.device) if self.causal else None
        return self.attn(x, x, x, need_weights=False, attn_mask=mask, is_causal=self.causal)[0]


def _init_attention(
    rec: Records, prefix: str, attn: nn.MultiheadAttention, g: torch.Generator
) -> None:
    glorot, why = PRESETS["glorot_uniform"], "attention projection: Glorot per q/k/v (INIT-4)"
    for block in attn.in_proj_weight.data.chunk(3, dim=0):
        init_tensor(rec, f"{prefix}in_proj_weight", block, glorot, why, g)
    init_tensor(rec, f"{prefix}out_proj.weight", attn.out_proj.weight, glorot, why, g)
    if attn.in_proj_bias is not None:
        for name in ("in_proj_bias", "out_proj.bias"):
            init_tensor(
                rec,
                f"{prefix}{name}",
                attn.get_parameter(name),
                PRESETS["zeros"],
                ZERO_BIAS,
                g,
                "constant",
            )


def _attention_init(
    m: SelfAttention, layer: LayerBase, info: LayerInfo, g: torch.Generator
) -> Records:
    rec: Records = {}
    _init_attention(rec, "attn.", m.attn, g)
    return rec


class EncoderLayer(nn.Module):
    """torch's TransformerEncoderLayer (batch-first), with an optional causal mask."""

    def __init__(self, layer: S.TransformerEncoderLayer, d_model: int) -> None:
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(
            d_model,
            layer.num_heads,
            ff_width(layer, d_model),
            layer.dropout,
            activation=layer.activation,
            layer_norm_eps=layer.layer_norm_eps,
            batch_first=True,
            norm_first=layer.norm_first,
        )
        self.causal = layer.causal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.causal:
            return self.layer(x)
        return self.layer(x, src_mask=_causal_mask(x.shape[1], x.device), is_causal=True)


def _encoder_init(
    m: EncoderLayer, layer: S.TransformerEncoderLayer, info: LayerInfo, g: torch.Generator
) -> Records:
    rec: Records = {}
    enc = m.layer
    _init_attention(rec, "layer.self_attn.", enc.self_attn, g)
    init_tensor(
        rec,
        "layer.linear1.weight",
        enc.linear1.weight,
        PRESETS["he_normal"],
        f"feed-forward -> {layer.activation}: He (INIT-1, convention for gelu)",
        g,
    )
    init_tensor(
        rec,
        "layer.linear2.weight",
        enc.linear2.weight,
        PRESETS["glorot_uniform"],
        "feed-forward output -> residual sum: Glorot (INIT-4)",
        g,
    )
    for name in ("linear1.bias", "linear2.bias", "norm1.bias", "norm2.bias"):
        p = enc.get_parameter(name)
        init_tensor(rec, f"layer.{name}", p, PRESETS["zeros"], ZERO_BIAS, g, "constant")
    for name in ("norm1.weight", "norm2.weight"):
        p = enc.get_parameter(name)
        init_tensor(rec, f"layer.{name}", p, ConstantRule(1.0), ONE_SCALE, g, "constant")
    return rec


# ---- positions, CLS token, pooling --------------------------------------------------------------


def sinusoidal_table(length: int, dim: int) -> torch.Tensor:
    """Vaswani et al.: ``P[t, 2i] = sin(t / 10000^(2i/d))``, ``P[t, 2i+1] = cos(t / 10000^(2i/d))``.

    Example:
        >>> sinusoidal_table(4, 6)[0].tolist()
        [0.0, 1.0, 0.0, 1.0, 0.0, 1.0]
    """
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq)[:, : dim // 2]
    return table


class PositionalEncoding(nn.Module):
    """``dropout(x + P[:T])``; P fixed (sinusoidal, a non-persistent buffer) or learnt."""

    def __init__(self, layer: S.PositionalEncoding, length: int, dim: int) -> None:
        super().__init__()
        if layer.encoding == "learned":
            self.table = nn.Parameter(torch.empty(length, dim))
        else:
            self.register_buffer("table", sinusoidal_table(length, dim), persistent=False)
        self.drop = nn.Dropout(layer.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(x + self.table[: x.shape[1]])


class ClsToken(nn.Module):
    """Prepends a learnt vector: (B, T, E) -> (B, T + 1, E)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.token = nn.Parameter(torch.empty(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.token.expand(x.shape[0], 1, -1), x], dim=1)


def _normal_init(m: nn.Module, layer: LayerBase, info: LayerInfo, g: torch.Generator) -> Records:
    rec: Records = {}
    why = f"N(0, {POSITION_STD:g}^2) (BERT/ViT practice; constant)"
    for name, p in m.named_parameters():
        init_tensor(rec, name, p, NormalRule(POSITION_STD), why, g, "constant")
    return rec


# (B, T, E) -> (B, E) for each SequencePool mode; drift-tested against the spec's Literal.
POOLS: Mapping[str, Callable[[torch.Tensor], torch.Tensor]] = MappingProxyType(
    {
        "mean": lambda x: x.mean(dim=1),
        "max": lambda x: x.amax(dim=1),
        "last": lambda x: x[:, -1],
        "cls": lambda x: x[:, 0],  # the token ClsToken prepended
    }
)


class SequencePool(nn.Module):
    """(B, T, E) -> (B, E): mean, max, the last step, or the first step (``cls``)."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode  # a key of POOLS; the table is looked up per call so the module pickles

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return POOLS[self.mode](x)

    def extra_repr(self) -> str:
        return f"mode={self.mode}"


def _positions(layer: S.PositionalEncoding, info: LayerInfo) -> nn.Module:
    return PositionalEncoding(layer, layer.max_len or info.in_shape[0], info.in_shape[1])


_TABLE = {
    "rnn": (lambda layer, info: Recurrent(layer, info.in_shape[1]), _recurrent_init),
    "lstm": (lambda layer, info: Recurrent(layer, info.in_shape[1]), _recurrent_init),
    "gru": (lambda layer, info: Recurrent(layer, info.in_shape[1]), _recurrent_init),
    "multihead_attention": (
        lambda layer, info: SelfAttention(layer, info.in_shape[1]),
        _attention_init,
    ),
    "transformer_encoder_layer": (
        lambda layer, info: EncoderLayer(layer, info.in_shape[1]),
        _encoder_init,
    ),
    "positional_encoding": (_positions, _normal_init),
    "cls_token": (lambda layer, info: ClsToken(info.in_shape[1]), _normal_init),
    "sequence_pool": (lambda layer, info: SequencePool(layer.mode), no_params),
}

for _kind, (_build, _init) in _TABLE.items():
    LAYER_BUILDERS.register(_kind, _build)
    LAYER_INITIALIZERS.register(_kind, _init)  # type: ignore[arg-type]
