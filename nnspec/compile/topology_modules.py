"""Modules, builders and initialisers of the topology kinds (CNN extras, sequence layers, merges).

Each kind registers a builder in :data:`LAYER_BUILDERS` and an initialiser in
:data:`LAYER_INITIALIZERS`; shape functions are in :mod:`nnspec.compile.blocks` and
:mod:`nnspec.compile.sequence`. Init choices (every parameter is set here and recorded):

* recurrent input weights: the layer's ``init`` (Glorot uniform by default), per gate block;
* recurrent hidden-to-hidden weights: ``recurrent_init`` (orthogonal by default), per gate block,
  so each gate's recurrence matrix has ``W^T W = I`` and neither shrinks nor grows the state;
* recurrent biases 0, except the LSTM forget gate's input bias = ``forget_bias`` (1 by default,
  Jozefowicz et al. 2015): the effective forget bias ``b_if + b_hf`` is 1;
* attention projections Glorot uniform per q/k/v block, biases 0; in Transformer layers the
  feed-forward layer before the activation is He (GELU -> He is a convention, INIT-1) and the one
  feeding the residual sum Glorot (INIT-4); LayerNorm scale 1, shift 0;
* learnt positional vectors and the CLS token: N(0, 0.02^2) (BERT/ViT practice);
* squeeze-excitation: fc1 (-> relu) He, fc2 (-> sigmoid) Glorot, biases 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from nnspec.compile.blocks import depthwise_part, se_hidden
from nnspec.compile.infer import LayerInfo
from nnspec.compile.initialize import InitRecord, initialize_layer, sample_
from nnspec.compile.layers import LAYER_BUILDERS, weight_block
from nnspec.compile.rules import PRESETS, ConstantRule, InitRule, NormalRule, resolve_init
from nnspec.compile.sequence import GATES, POSITION_STD, ff_width
from nnspec.registry import Registry
from nnspec.spec import blocks as B
from nnspec.spec import sequence as S
from nnspec.spec.activations import Identity
from nnspec.spec.layers import LayerBase

__all__ = [
    "Records",
    "LAYER_INITIALIZERS",
    "init_tensor",
    "Merge",
    "SqueezeExcitation",
    "Recurrent",
    "SelfAttention",
    "EncoderLayer",
    "PositionalEncoding",
    "ClsToken",
    "SequencePool",
    "sinusoidal_table",
]

Records = dict[str, InitRecord]
Initializer = Callable[[nn.Module, LayerBase, LayerInfo, torch.Generator], Records]
LAYER_INITIALIZERS: Registry[Initializer] = Registry("layer initializer")
"""kind -> initialiser(module, layer, info, generator) -> records, for the topology kinds."""

ZERO_BIAS = "bias = 0 (constant)"
ONE_SCALE = "norm scale = 1 (constant)"


def init_tensor(
    records: Records,
    name: str,
    tensor: torch.Tensor,
    rule: InitRule,
    reason: str,
    g: torch.Generator,
    source: str = "default",
) -> None:
    """Fill one tensor (or a view of one) by ``rule`` using ``g``; record it under ``name``."""
    sample_(tensor, rule, g)
    records[name] = InitRecord(rule.label, reason, source)


# ---- merges -------------------------------------------------------------------------------------


class Merge(nn.Module):
    """add / multiply / concat of the inputs, in the order named."""

    def __init__(self, kind: str, dim: int = 1) -> None:
        super().__init__()
        self.kind, self.dim = kind, dim

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        if self.kind == "concat":
            return torch.cat(xs, dim=self.dim)
        out = xs[0]
        for x in xs[1:]:
            out = out + x if self.kind == "add" else out * x
        return out

    def extra_repr(self) -> str:
        return self.kind + (f", dim={self.dim}" if self.kind == "concat" else "")


def _no_params(m: nn.Module, layer: LayerBase, info: LayerInfo, g: torch.Generator) -> Records:
    return {}


def _graph_only(layer: LayerBase, info: LayerInfo) -> nn.Module:
    raise TypeError("block uses are expanded by nnspec.spec.graph before anything is built")


# ---- CNN extras ---------------------------------------------------------------------------------


def _conv_transpose(layer: B.ConvTranspose2d, info: LayerInfo) -> nn.Module:
    op = nn.ConvTranspose2d(
        info.in_shape[0],
        layer.out_channels,
        layer.kernel_size,
        stride=layer.stride,
        padding=layer.padding,
        output_padding=layer.output_padding,
        groups=layer.groups,
        dilation=layer.dilation,
        bias=bool(info.settings and info.settings.bias),
    )
    return weight_block(op, layer, info)  # type: ignore[arg-type]


def _separable(layer: B.DepthwiseSeparableConv2d, info: LayerInfo) -> nn.Module:
    dw = depthwise_part(layer, info.in_shape[0])
    padding = 0 if dw.padding == "valid" else dw.padding
    op = nn.Sequential()
    op.add_module(
        "depthwise",
        nn.Conv2d(
            info.in_shape[0],
            dw.out_channels,
            dw.kernel_size,
            stride=dw.stride,
            padding=padding,
            dilation=dw.dilation,
            groups=dw.groups,
            bias=False,
        ),
    )
    bias = bool(info.settings and info.settings.bias)
    op.add_module("pointwise", nn.Conv2d(dw.out_channels, layer.out_channels, 1, bias=bias))
    return weight_block(op, layer, info)  # type: ignore[arg-type]


def _weight_layer_init(
    m: nn.Module, layer: LayerBase, info: LayerInfo, g: torch.Generator
) -> Records:
    # These weight layers hold only torch convs and norms, which the core initialiser knows.
    return initialize_layer(m, layer, info, g)


class SqueezeExcitation(nn.Module):
    """``x * sigmoid(fc2(relu(fc1(mean_hw(x)))))``, the two small layers as 1x1 convs (ARCH-10)."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """The per-channel weights in (0, 1), shape (B, C, 1, 1)."""
        squeezed = x.mean(dim=(2, 3), keepdim=True)
        return torch.sigmoid(self.fc2(torch.relu(self.fc1(squeezed))))


def _se_init(
    m: SqueezeExcitation, layer: LayerBase, info: LayerInfo, g: torch.Generator
) -> Records:
    rec: Records = {}
    init_tensor(
        rec, "fc1.weight", m.fc1.weight, PRESETS["he_normal"], "fc1 -> relu: He (INIT-2)", g
    )
    init_tensor(
        rec,
        "fc2.weight",
        m.fc2.weight,
        PRESETS["glorot_uniform"],
        "fc2 -> sigmoid: Glorot (INIT-4)",
        g,
    )
    for name in ("fc1.bias", "fc2.bias"):
        init_tensor(rec, name, m.get_parameter(name), PRESETS["zeros"], ZERO_BIAS, g, "constant")
    return rec


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


class SequencePool(nn.Module):
    """(B, T, E) -> (B, E): mean, max, the last step, or the first step (``cls``)."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "mean":
            return x.mean(dim=1)
        if self.mode == "max":
            return x.amax(dim=1)
        return x[:, -1] if self.mode == "last" else x[:, 0]

    def extra_repr(self) -> str:
        return f"mode={self.mode}"


def _positions(layer: S.PositionalEncoding, info: LayerInfo) -> nn.Module:
    return PositionalEncoding(layer, layer.max_len or info.in_shape[0], info.in_shape[1])


_TABLE: dict[str, tuple[Callable[..., nn.Module], Callable[..., Records]]] = {
    "conv_transpose2d": (_conv_transpose, _weight_layer_init),
    "depthwise_separable_conv2d": (_separable, _weight_layer_init),
    "squeeze_excitation": (
        lambda layer, info: SqueezeExcitation(info.in_shape[0], se_hidden(info.in_shape[0], layer)),
        _se_init,
    ),
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
    "sequence_pool": (lambda layer, info: SequencePool(layer.mode), _no_params),
    "add": (lambda layer, info: Merge("add"), _no_params),
    "multiply": (lambda layer, info: Merge("multiply"), _no_params),
    "concat": (lambda layer, info: Merge("concat", layer.dim), _no_params),
    "block": (_graph_only, _no_params),
}

for _kind, (_build, _init) in _TABLE.items():
    LAYER_BUILDERS.register(_kind, _build)
    LAYER_INITIALIZERS.register(_kind, _init)  # type: ignore[arg-type]
