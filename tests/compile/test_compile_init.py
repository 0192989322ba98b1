"""Init rules: the activation table, sampling statistics, documented constants, INIT-6 refusal."""

from __future__ import annotations

import math
from typing import Any, get_args

import pytest
import torch

from nnspec.compile import ACTIVATION_BUILDERS, DEFAULT_INIT, PRESETS, build_model, infer_shapes
from nnspec.compile.rules import fans
from nnspec.errors import SpecError
from nnspec.spec import ModelSpec
from nnspec.spec.activations import ActivationName
from nnspec.spec.init import INIT_PRESETS

FAN_IN, FAN_OUT = 512, 256  # 131,072 weights: relative SE of a std ~0.2 %, so 2 % never flakes


def _model(layers: list[Any], input_shape: tuple[int, ...] = (FAN_IN,), **model: Any) -> ModelSpec:
    return ModelSpec.model_validate({"input_shape": input_shape, "layers": layers, **model})


def _hidden_weight(act: Any, **layer: Any) -> torch.Tensor:
    spec = _model(
        [{"kind": "linear", "out_features": FAN_OUT, "activation": act, **layer}, {"linear": 1}]
    )
    return (
        build_model(spec, generator=torch.Generator().manual_seed(1)).layers[0].op.weight.detach()
    )


def _he(a: float = 0.0) -> float:
    return math.sqrt(2.0 / ((1 + a * a) * FAN_IN))


GLOROT = math.sqrt(2.0 / (FAN_IN + FAN_OUT))
# Expected std per activation, written out here from the formulas (INIT-2/3/4), independent of the
# table under test.
EXPECTED_STD: dict[str, float] = {
    "relu": _he(),
    "leaky_relu": _he(0.01),
    "prelu": _he(0.25),
    "rrelu": _he((1 / 8 + 1 / 3) / 2),
    "gelu": _he(),
    "silu": _he(),
    "mish": _he(),
    "softplus": _he(),
    "selu": math.sqrt(1.0 / FAN_IN),
    "elu": math.sqrt(1.0 / FAN_IN),
    "tanh": GLOROT,
    "sigmoid": GLOROT,
    "softmax": GLOROT,
    "log_softmax": GLOROT,
    "identity": GLOROT,
}


def test_activation_tables_do_not_drift() -> None:
    names = set(get_args(ActivationName))
    assert names == set(DEFAULT_INIT) == set(ACTIVATION_BUILDERS) == set(EXPECTED_STD)


def test_presets_cover_the_spec_literal() -> None:
    assert set(PRESETS) | {"auto"} == set(INIT_PRESETS)


@pytest.mark.parametrize("act", sorted(EXPECTED_STD))
def test_auto_init_std_matches_the_formula(act: str) -> None:
    w = _hidden_weight(act)
    assert w.numel() >= 100_000
    assert abs(w.std().item() / EXPECTED_STD[act] - 1) < 0.02


@pytest.mark.parametrize("slope", [0.1, 0.3])
def test_leaky_relu_slope_feeds_he(slope: float) -> None:
    w = _hidden_weight({"kind": "leaky_relu", "negative_slope": slope})
    assert abs(w.std().item() / _he(slope) - 1) < 0.02


def test_glorot_auto_is_uniform_with_the_paper_limit() -> None:
    w = _hidden_weight("tanh")
    limit = math.sqrt(6.0 / (FAN_IN + FAN_OUT))
    assert w.abs().max().item() <= limit
    assert w.abs().max().item() >= 0.99 * limit


FAMILY_VAR = {"he": 2.0 / FAN_IN, "lecun": 1.0 / FAN_IN, "glorot": 2.0 / (FAN_IN + FAN_OUT)}


@pytest.mark.parametrize("family", sorted(FAMILY_VAR))
@pytest.mark.parametrize("dist", ["normal", "uniform", "truncated_normal"])
def test_presets_have_the_target_variance(family: str, dist: str) -> None:
    w = _hidden_weight("relu", init=f"{family}_{dist}")
    std = math.sqrt(FAMILY_VAR[family])
    assert abs(w.std().item() / std - 1) < 0.02  # INIT-5: same variance for every distribution
    if dist == "uniform":
        assert math.sqrt(3) * std * 0.99 <= w.abs().max().item() <= math.sqrt(3) * std
    if dist == "truncated_normal":
        assert w.abs().max().item() <= 2 * std / 0.87962566103423978 + 1e-6


def test_general_variance_scaling_rule() -> None:
    rule = {"kind": "variance_scaling", "scale": 3.0, "mode": "fan_out", "distribution": "uniform"}
    w = _hidden_weight("relu", init=rule)
    assert abs(w.std().item() / math.sqrt(3.0 / FAN_OUT) - 1) < 0.02


def test_fans_follow_the_torch_layout() -> None:
    # INIT-10: Linear(100, 1000) stores (1000, 100): He uses fan_in = 100.
    spec = _model([{"linear": 1000}, {"linear": 1}], input_shape=(100,))
    w = build_model(spec).layers[0].op.weight
    assert abs(w.std().item() / math.sqrt(2 / 100) - 1) < 0.02
    assert fans((128, 64, 3, 3)) == (576, 1152)


def test_grouped_conv_fan_in_is_in_channels_over_groups_times_kernel_area() -> None:
    conv = {"kind": "conv2d", "out_channels": 256, "kernel_size": 3, "groups": 2}
    spec = _model([conv, "flatten", {"linear": 1}], input_shape=(128, 8, 8))
    w = build_model(spec, seed=3).layers[0].op.weight
    assert w.numel() >= 100_000
    fan_in = 128 // 2 * 9
    assert abs(w.std().item() / math.sqrt(2 / fan_in) - 1) < 0.02


def test_orthogonal_preset_gives_orthonormal_rows() -> None:
    w = _hidden_weight("relu", init="orthogonal")
    eye = torch.eye(FAN_OUT)
    assert torch.allclose(w @ w.T, eye, atol=1e-4)


def test_head_is_glorot_times_a_tenth() -> None:
    spec = _model([{"linear": 1024}, {"linear": 512}], input_shape=(64,))
    model = build_model(spec)
    w = model.head.weight
    limit = 0.1 * math.sqrt(6.0 / (1024 + 512))
    assert abs(w.std().item() / (limit / math.sqrt(3)) - 1) < 0.02
    assert model.init_records["layers.1.op.weight"].reason == "head: Glorot x0.1 (INIT-9)"


def test_documented_constants() -> None:
    spec = _model(
        [
            {"kind": "linear", "out_features": 16, "norm": "layer", "bias": True},
            {"kind": "activation", "activation": {"kind": "prelu", "init": 0.3}},
            {"kind": "batch_norm"},
            {"linear": 3},
        ],
        input_shape=(8,),
    )
    sd = build_model(spec).state_dict()
    assert torch.all(sd["layers.0.op.bias"] == 0)
    assert torch.all(sd["layers.0.norm.weight"] == 1) and torch.all(sd["layers.0.norm.bias"] == 0)
    assert torch.allclose(sd["layers.1.weight"], torch.tensor([0.3]))
    assert torch.all(sd["layers.2.weight"] == 1) and torch.all(sd["layers.2.bias"] == 0)
    assert torch.all(sd["layers.3.op.bias"] == 0)


def test_embedding_is_standard_normal_with_a_zero_padding_row() -> None:
    emb = {"kind": "embedding", "num_embeddings": 1000, "embedding_dim": 128, "padding_idx": 0}
    spec = _model([emb, "flatten", {"linear": 2}], input_shape=(4,))
    w = build_model(spec).layers[0].weight
    assert torch.all(w[0] == 0)
    assert abs(w[1:].std().item() - 1.0) < 0.02


EVERY_PARAM_OWNER: list[Any] = [
    {"kind": "conv1d", "out_channels": 4, "kernel_size": 3, "norm": "instance"},
    {"kind": "conv1d", "out_channels": 4, "kernel_size": 1, "norm": "group", "activation": "prelu"},
    {"kind": "batch_norm"},
    {"kind": "instance_norm"},
    {"kind": "group_norm", "num_groups": 2},
    {"kind": "layer_norm"},
    {"kind": "activation", "activation": {"kind": "prelu", "num_parameters": "channel"}},
    "flatten",
    {"kind": "reshape", "shape": [1, 4, 4]},
    {"kind": "conv2d", "out_channels": 4, "kernel_size": 1, "norm": "layer"},
    {"kind": "conv2d", "out_channels": 4, "kernel_size": 1, "norm": "batch"},
    "flatten",
    {"kind": "linear", "out_features": 6, "norm": "batch"},
    {"kind": "linear", "out_features": 6, "norm": "layer"},
    {"kind": "linear", "out_features": 6, "norm": "group"},
    {"linear": 2},
]


def test_every_parameter_has_an_init_record() -> None:
    model = build_model(_model(EVERY_PARAM_OWNER, input_shape=(3, 6)))
    names = [n for n, _ in model.named_parameters()]
    assert len(names) > 20
    assert set(names) == set(model.init_records)
    for name in names:
        assert model.init_records[name].source in {"auto", "head", "explicit", "constant"}, name


def test_every_built_in_parameter_differs_from_torch_default() -> None:
    # INIT-11: torch's default is U(+-1/sqrt(fan_in)); nnspec's He draw for this layer is wider.
    spec = _model([{"linear": 256}, {"linear": 1}], input_shape=(512,))
    w = build_model(spec).layers[0].op.weight
    assert w.abs().max().item() > 1 / math.sqrt(512)


@pytest.mark.parametrize("init", ["zeros", {"kind": "constant", "value": 0.5}])
def test_constant_init_refused_on_a_hidden_layer(init: Any) -> None:
    spec = _model(
        [{"kind": "linear", "out_features": 4, "init": init}, {"linear": 1}], input_shape=(3,)
    )
    with pytest.raises(SpecError) as info:
        infer_shapes(spec)
    (problem,) = info.value.problems
    assert problem.path == ("model", "layers", 0, "init")
    assert "INIT-6" in problem.message
    with pytest.raises(SpecError):
        build_model(spec)


def test_constant_init_inherited_from_defaults_is_reported_once_at_defaults() -> None:
    spec = _model(
        [{"linear": 4}, {"linear": 4}, {"linear": 1}], input_shape=(3,), defaults={"init": "zeros"}
    )
    with pytest.raises(SpecError) as info:
        infer_shapes(spec)
    assert [p.path for p in info.value.problems] == [("model", "defaults", "init")]


def test_zeros_allowed_on_the_head() -> None:
    spec = _model(
        [{"linear": 4}, {"kind": "linear", "out_features": 2, "init": "zeros"}], input_shape=(3,)
    )
    model = build_model(spec)
    assert torch.all(model.head.weight == 0)
    assert model.init_records["layers.1.op.weight"].source == "explicit"
