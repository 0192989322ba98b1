"""Shape functions of the sequence kinds (pure Python, no torch); samples are (T, E), batch-first.

Parameter counts follow torch's modules exactly: a recurrent layer has, per layer and direction,
``G*H*in + G*H*H + 2*G*H`` parameters (G = 1 rnn, 4 lstm, 3 gru: torch keeps both an input and a
hidden bias); attention has ``4 E^2 + 4 E``. Builders and the documented init choices live in
:mod:`nnspec.compile.topology_modules`.
"""

from __future__ import annotations

from nnspec.compile.infer import SHAPE_FNS, LayerSite, Shape, ShapeResult
from nnspec.compile.rules import resolve_init
from nnspec.compile.windows import divisors, require_rank
from nnspec.spec import sequence as S
from nnspec.spec.activations import Identity
from nnspec.spec.layers import LayerBase

__all__ = ["GATES", "POSITION_STD", "ff_width", "recurrent_params"]

GATES = {"rnn": 1, "lstm": 4, "gru": 3}
"""Gate blocks stacked in torch's recurrent weight matrices."""
POSITION_STD = 0.02
"""Std of learnt positional vectors and the CLS token (BERT/ViT practice; a documented constant)."""


def _need_sequence(shape: Shape, site: LayerSite) -> bool:
    fix = "insert {kind: embedding, ...} first" if len(shape) == 1 else "reshape to (T, features)"
    return require_rank(shape, site, 2, "a 2-D sequence input (T, features)", fix)


def recurrent_params(layer: S.RNN | S.LSTM | S.GRU, features: int) -> int:
    """Exact parameter count of a torch RNN/LSTM/GRU.

    Example:
        >>> recurrent_params(S.LSTM(hidden_size=32, bidirectional=True), 16)
        12800
    """
    g, h, dirs = GATES[layer.kind], layer.hidden_size, 2 if layer.bidirectional else 1
    total = 0
    for k in range(layer.num_layers):
        width_in = features if k == 0 else h * dirs
        total += dirs * (g * h * width_in + g * h * h + 2 * g * h)
    return total


def _recurrent(layer: S.RNN | S.LSTM | S.GRU, shape: Shape, site: LayerSite) -> ShapeResult | None:
    if not _need_sequence(shape, site):
        return None
    width = layer.hidden_size * (2 if layer.bidirectional else 1)
    out = (shape[0], width) if layer.output == "sequence" else (width,)
    w_in = resolve_init(layer.init, Identity(), is_head=False)
    w_hh = resolve_init(layer.recurrent_init, Identity(), is_head=False)
    reason = "input weights per gate; recurrent weights per gate (orthogonal by default)"
    if isinstance(layer, S.LSTM):
        reason += f"; forget-gate bias {layer.forget_bias:g}"
    return ShapeResult(
        out,
        recurrent_params(layer, shape[1]),
        norm=None,
        init=f"{w_in.rule.label} / {w_hh.rule.label}",
        init_reason=reason,
    )


def _heads_ok(
    layer: S.MultiheadAttention | S.TransformerEncoderLayer, shape: Shape, site: LayerSite
) -> bool:
    if shape[1] % layer.num_heads == 0:
        return True
    site.error(
        "num_heads",
        f"{site.kind}: num_heads must divide the model width",
        expected=f"a divisor of E={shape[1]}",
        found=f"num_heads {layer.num_heads}",
        fix=f"use num_heads in {divisors(shape[1])}, or change the embedding size",
    )
    return False


def _attention_params(e: int, bias: bool) -> int:
    return 4 * e * e + (4 * e if bias else 0)


def _attention(layer: S.MultiheadAttention, shape: Shape, site: LayerSite) -> ShapeResult | None:
    if not (_need_sequence(shape, site) and _heads_ok(layer, shape, site)):
        return None
    return ShapeResult(
        shape,
        _attention_params(shape[1], layer.bias),
        init="glorot_uniform",
        init_reason="attention projections: Glorot per q/k/v (INIT-4)",
    )


def ff_width(layer: S.TransformerEncoderLayer, e: int) -> int:
    """Feed-forward width: ``dim_feedforward`` or 4 E (the Transformer paper's ratio)."""
    return layer.dim_feedforward or 4 * e


def _encoder(layer: S.TransformerEncoderLayer, shape: Shape, site: LayerSite) -> ShapeResult | None:
    if not (_need_sequence(shape, site) and _heads_ok(layer, shape, site)):
        return None
    e, ff = shape[1], ff_width(layer, shape[1])
    params = _attention_params(e, True) + (e * ff + ff) + (ff * e + e) + 4 * e
    return ShapeResult(
        shape,
        params,
        activation=layer.activation,
        norm="layer",
        init="glorot_uniform / he_normal",
        init_reason="attention Glorot (INIT-4); feed-forward He (INIT-1)",
    )


def _positions(layer: S.PositionalEncoding, shape: Shape, site: LayerSite) -> ShapeResult | None:
    if not _need_sequence(shape, site):
        return None
    max_len = layer.max_len or shape[0]
    if shape[0] > max_len:
        site.error(
            "max_len",
            "positional_encoding: sequence longer than max_len",
            expected=f"T <= {max_len}",
            found=site.from_prev(shape),
            fix=f"set max_len: {shape[0]} or more",
        )
        return None
    if layer.encoding == "sinusoidal":
        return ShapeResult(shape)
    return ShapeResult(
        shape,
        max_len * shape[1],
        init=f"normal(std={POSITION_STD:g})",
        init_reason="learnt positions (BERT practice)",
    )


def _cls_token(layer: S.ClsToken, shape: Shape, site: LayerSite) -> ShapeResult | None:
    if not _need_sequence(shape, site):
        return None
    return ShapeResult(
        (shape[0] + 1, shape[1]),
        shape[1],
        init=f"normal(std={POSITION_STD:g})",
        init_reason="CLS token (ViT practice)",
    )


def _pool(layer: LayerBase, shape: Shape, site: LayerSite) -> ShapeResult | None:
    return ShapeResult((shape[1],)) if _need_sequence(shape, site) else None


for _kind, _fn in {
    "rnn": _recurrent,
    "lstm": _recurrent,
    "gru": _recurrent,
    "multihead_attention": _attention,
    "transformer_encoder_layer": _encoder,
    "positional_encoding": _positions,
    "cls_token": _cls_token,
    "sequence_pool": _pool,
}.items():
    SHAPE_FNS.register(_kind, _fn)  # type: ignore[arg-type]
