"""Sequence and CNN-extra layer kinds: shapes and parameter counts vs torch, documented inits."""

from __future__ import annotations

import pytest
import torch

import nnspec
from nnspec.compile.infer import SHAPE_FNS
from nnspec.compile.layers import LAYER_BUILDERS
from nnspec.errors import ShapeError
from nnspec.spec import ExperimentSpec, ModelSpec
from nnspec.spec.layers import LAYER_SPECS

SEQ = (12, 6)  # (T, features)
CASES = [
    ((SEQ), {"lstm": 16}, (16,)),
    ((SEQ), {"lstm": 16, "bidirectional": True, "num_layers": 2, "dropout": 0.1}, (32,)),
    ((SEQ), {"gru": 8, "output": "sequence"}, (12, 8)),
    (
        (SEQ),
        {"rnn": 8, "nonlinearity": "relu", "bidirectional": True, "output": "sequence"},
        (12, 16),
    ),
    ((SEQ), {"multihead_attention": 3}, SEQ),
    ((SEQ), {"multihead_attention": 2, "causal": True, "bias": False}, SEQ),
    ((SEQ), {"transformer_encoder_layer": 2}, SEQ),
    ((SEQ), {"transformer_encoder_layer": 3, "norm_first": False, "causal": True}, SEQ),
    ((SEQ), {"positional_encoding": "sinusoidal"}, SEQ),
    ((SEQ), {"positional_encoding": "learned", "max_len": 20}, SEQ),
    ((SEQ), "cls_token", (13, 6)),
    ((SEQ), {"sequence_pool": "mean"}, (6,)),
    ((SEQ), {"sequence_pool": "last"}, (6,)),
    ((SEQ), {"sequence_pool": "max"}, (6,)),
    ((4, 7, 7), {"conv_transpose2d": 3, "kernel_size": 4, "stride": 2, "padding": 1}, (3, 14, 14)),
    (
        (4, 7, 7),
        {"conv_transpose2d": 2, "kernel_size": 3, "stride": 2, "output_padding": 1},
        (2, 16, 16),
    ),
    (
        (4, 9, 9),
        {"depthwise_separable_conv2d": 8, "kernel_size": 3, "stride": 2, "norm": "batch"},
        (8, 4, 4),
    ),
    (
        (4, 9, 9),
        {
            "depthwise_separable_conv2d": 6,
            "kernel_size": 3,
            "padding": "same",
            "depth_multiplier": 2,
        },
        (6, 9, 9),
    ),
    ((32, 5, 5), {"squeeze_excitation": 4}, (32, 5, 5)),
]


@pytest.mark.parametrize(("in_shape", "layer", "out_shape"), CASES, ids=[str(c[1]) for c in CASES])
def test_inferred_shape_and_params_match_the_built_module(in_shape, layer, out_shape) -> None:
    spec = ModelSpec(input_shape=in_shape, layers=[layer])
    (info,) = nnspec.infer_shapes(spec)
    assert info.out_shape == out_shape
    model = nnspec.build_model(spec).eval()
    with torch.no_grad():
        y = model(torch.randn(2, *in_shape))
    assert tuple(y.shape) == (2, *out_shape)
    assert info.params == sum(p.numel() for p in model.parameters())
    assert {n for n, _ in model.named_parameters()} == set(model.init_records)


def test_every_registered_kind_has_a_shape_function_and_a_builder() -> None:
    assert set(LAYER_SPECS) <= set(SHAPE_FNS) and set(LAYER_SPECS) <= set(LAYER_BUILDERS)


def _wide_lstm(**kw: object) -> torch.nn.Module:
    spec = ModelSpec(input_shape=(5, 64), layers=[{"lstm": 64, **kw}])
    return nnspec.build_model(spec, seed=1).layers[0].rnn


def test_recurrent_weights_are_orthogonal_per_gate() -> None:
    rnn = _wide_lstm(num_layers=2)
    eye = torch.eye(64)
    for name, p in rnn.named_parameters():
        if name.startswith("weight_hh"):
            for gate in p.detach().chunk(4):
                torch.testing.assert_close(gate.T @ gate, eye, atol=1e-5, rtol=0)


def test_lstm_forget_gate_bias_is_one_and_the_rest_zero() -> None:
    rnn = _wide_lstm()
    h = 64
    effective = rnn.bias_ih_l0.detach() + rnn.bias_hh_l0.detach()
    assert torch.all(effective[h : 2 * h] == 1.0)
    assert torch.all(effective[:h] == 0) and torch.all(effective[2 * h :] == 0)


def test_input_weights_follow_glorot_uniform_per_gate() -> None:
    w = _wide_lstm().weight_ih_l0.detach()
    for gate in w.chunk(4):  # (64, 64): limit = sqrt(6 / (64 + 64))
        limit = (6 / (64 + 64)) ** 0.5
        assert gate.abs().max() <= limit
        assert abs(gate.std().item() / (limit / 3**0.5) - 1) < 0.06


def test_init_statistics_inside_blocks_follow_the_rule_table() -> None:
    spec = ModelSpec.model_validate(
        {
            "input_shape": [256, 8, 8],
            "blocks": {
                "b": {
                    "params": {"c": "int"},
                    "residual": True,
                    "layers": [{"conv2d": "$c", "kernel_size": 3, "padding": 1}],
                }
            },
            "layers": [{"block": "b", "args": {"c": 256}, "repeat": 3}, "flatten", {"linear": 2}],
        }
    )
    model = nnspec.build_model(spec, seed=0)
    for r in range(3):
        key = f"layers.0.{r}.body.0.op.weight"
        w = model.get_parameter(key).detach()  # He normal: std = sqrt(2 / (256 * 9))
        assert abs(w.std().item() / (2 / (256 * 9)) ** 0.5 - 1) < 0.02
        assert model.init_records[key].reason == "auto: relu -> He (INIT-2)"


def test_zero_init_last_norm_sets_the_scale_to_zero() -> None:
    spec = ModelSpec.model_validate(
        {
            "input_shape": [4, 6, 6],
            "defaults": {"norm": "batch"},
            "blocks": {
                "b": {
                    "residual": {"zero_init_last_norm": True},
                    "layers": [
                        {"conv2d": 4, "kernel_size": 3, "padding": 1},
                        {"conv2d": 4, "kernel_size": 3, "padding": 1},
                    ],
                }
            },
            "layers": [{"block": "b"}, "flatten", {"linear": 2}],
        }
    )
    model = nnspec.build_model(spec).eval()
    assert torch.all(model.get_parameter("layers.0.0.body.1.norm.weight") == 0)
    assert torch.all(model.get_parameter("layers.0.0.body.0.norm.weight") == 1)
    x = torch.randn(3, 4, 6, 6)
    block_out = model.layers.get_submodule("0.0.post")(x)  # body adds 0: the block is relu(x)
    torch.testing.assert_close(block_out, torch.relu(x))


def test_squeeze_excitation_gate_lies_in_zero_one_and_preserves_shape() -> None:
    model = nnspec.build_model(ModelSpec(input_shape=(16, 4, 4), layers=["squeeze_excitation"]))
    se = model.layers[0]
    gate = se.gate(torch.randn(5, 16, 4, 4))
    assert gate.shape == (5, 16, 1, 1) and torch.all((gate > 0) & (gate < 1))


def test_transformer_defaults_are_pre_norm_gelu_and_layer_norm() -> None:
    model = nnspec.build_model(
        ModelSpec(input_shape=SEQ, layers=[{"transformer_encoder_layer": 2}])
    )
    enc = model.layers[0].layer
    assert enc.norm_first and isinstance(enc.norm1, torch.nn.LayerNorm)
    assert enc.activation is torch.nn.functional.gelu or "gelu" in str(enc.activation)


def test_causal_attention_ignores_the_future() -> None:
    model = nnspec.build_model(
        ModelSpec(input_shape=SEQ, layers=[{"multihead_attention": 2, "causal": True}])
    ).eval()
    x = torch.randn(1, *SEQ)
    y = x.clone()
    y[:, 7:] = torch.randn(1, 5, 6)
    with torch.no_grad():
        torch.testing.assert_close(model(x)[:, :7], model(y)[:, :7])


def test_sequence_layer_on_a_flat_input_gets_a_fix() -> None:
    with pytest.raises(ShapeError) as info:
        nnspec.infer_shapes(ModelSpec(input_shape=(8,), layers=[{"lstm": 4}, {"linear": 2}]))
    (p,) = info.value.problems
    assert p.message == "lstm: wrong input rank"
    assert p.fix == "insert {kind: embedding, ...} first"


def test_heads_must_divide_the_width() -> None:
    with pytest.raises(ShapeError) as info:
        nnspec.infer_shapes(ModelSpec(input_shape=(4, 6), layers=[{"multihead_attention": 4}]))
    (p,) = info.value.problems
    assert p.path == ("model", "layers", 0, "num_heads")
    assert p.fix == "use num_heads in [1, 2, 3, 6], or change the embedding size"


def test_recurrent_dropout_needs_stacked_layers() -> None:
    with pytest.raises(ValueError, match="needs num_layers > 1"):
        ModelSpec(input_shape=SEQ, layers=[{"lstm": 4, "dropout": 0.2}])


def test_gradient_clipping_defaults_on_for_recurrent_and_attention_models() -> None:
    rnn = ExperimentSpec.model_validate(
        {"model": {"input_shape": [5, 3], "layers": [{"gru": 8}, {"linear": 2}]}}
    )
    assert rnn.train.clip_grad.kind == "norm" and rnn.train.clip_grad.max_norm == 1.0
    mlp = ExperimentSpec.model_validate({"model": {"input_shape": [5], "layers": [{"linear": 2}]}})
    assert mlp.train.clip_grad.kind == "none"
    chosen = ExperimentSpec.model_validate(
        {
            "model": {"input_shape": [5, 3], "layers": [{"gru": 8}, {"linear": 2}]},
            "train": {"clip_grad": {"kind": "value", "value": 0.5}},
        }
    )
    assert chosen.train.clip_grad.kind == "value"


def test_token_classifier_embedding_lstm_attention_pool() -> None:
    spec = ModelSpec.model_validate({
        "input_shape": [10],
        "layers": [
            {"kind": "embedding", "num_embeddings": 20, "embedding_dim": 8},
            {"lstm": 8, "output": "sequence"},
            "layer_norm",
            {"multihead_attention": 2},
            "cls_token",
            {"sequence_pool": "cls"},
            {"linear": 3},
        ],
    })  # fmt: skip
    infos = nnspec.infer_shapes(spec)
    assert [i.out_shape for i in infos] == [(10, 8), (10, 8), (10, 8), (10, 8), (11, 8), (8,), (3,)]
    model = nnspec.build_model(spec).eval()
    tokens = torch.randint(0, 20, (4, 10))
    assert model(tokens).shape == (4, 3)
    assert sum(i.params for i in infos) == sum(p.numel() for p in model.parameters())


def test_every_sequence_pool_mode_has_a_pooling_function() -> None:
    # drift test: the spec's Literal and the compiler's table name the same modes
    from typing import get_args

    from nnspec.compile.sequence_modules import POOLS, SequencePool
    from nnspec.spec.sequence import SequencePool as PoolSpec

    assert set(POOLS) == set(get_args(PoolSpec.model_fields["mode"].annotation))
    x = torch.arange(24.0).reshape(2, 3, 4)
    got = {mode: SequencePool(mode)(x) for mode in POOLS}
    assert torch.equal(got["mean"], x.mean(dim=1))
    assert torch.equal(got["max"], x[:, -1])  # increasing values: the max is the last step
    assert torch.equal(got["last"], x[:, -1])
    assert torch.equal(got["cls"], x[:, 0])
