"""build_model: module structure (NORM-2 order, head rules, REG-5/6), naming, purity, seeds."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest
import torch
from torch import nn

import nnspec
from nnspec.compile import NNSpecModel, build_model, infer_shapes
from nnspec.compile.layers import WeightBlock
from nnspec.errors import SpecError
from nnspec.spec import ExperimentSpec, ModelSpec


def _model(input_shape: tuple[int, ...], layers: list[Any], **kw: Any) -> ModelSpec:
    return ModelSpec.model_validate({"input_shape": input_shape, "layers": layers, **kw})


MLP = _model(
    (6,),
    [{"kind": "linear", "out_features": 8, "name": "fc1"}, {"linear": 8}, {"linear": 3}],
    defaults={"norm": "batch", "dropout": 0.1, "activation": "tanh"},
)


def test_public_names_are_exported_lazily() -> None:
    assert nnspec.build_model is build_model
    assert nnspec.infer_shapes is infer_shapes
    assert callable(nnspec.register_layer)


def test_weight_layer_order_is_op_norm_act_drop() -> None:
    block = build_model(MLP).layers.fc1
    assert isinstance(block, WeightBlock)
    assert [n for n, _ in block.named_children()] == ["op", "norm", "act", "drop"]
    assert isinstance(block.norm, nn.BatchNorm1d) and isinstance(block.act, nn.Tanh)
    assert block.op.bias is None  # dropped before batch norm (NORM-2)


def test_explicit_bias_survives_batch_norm() -> None:
    spec = _model(
        (6,), [{"kind": "linear", "out_features": 4, "norm": "batch", "bias": True}, {"linear": 1}]
    )
    assert build_model(spec).layers[0].op.bias is not None


def test_head_ignores_defaults() -> None:
    head = build_model(MLP).layers[2]
    assert [n for n, _ in head.named_children()] == ["op"]
    assert isinstance(head.op, nn.Linear) and head.op.bias is not None


def test_head_takes_explicit_settings() -> None:
    spec = _model(
        (6,), [{"linear": 4}, {"kind": "linear", "out_features": 1, "activation": "sigmoid"}]
    )
    head = build_model(spec).layers[1]
    assert isinstance(head.act, nn.Sigmoid)
    assert build_model(spec).init_records["layers.1.op.weight"].source == "head"


def test_state_dict_keys_follow_names_and_indices() -> None:
    keys = set(build_model(MLP).state_dict())
    assert {
        "layers.fc1.op.weight",
        "layers.fc1.norm.weight",
        "layers.fc1.norm.running_mean",
    } <= keys
    assert {"layers.1.op.weight", "layers.2.op.weight", "layers.2.op.bias"} <= keys


def test_selu_dropout_becomes_alpha_dropout() -> None:
    spec = _model(
        (6,),
        [
            {"kind": "linear", "out_features": 4, "activation": "selu", "dropout": 0.2},
            {"linear": 1},
        ],
    )
    assert isinstance(build_model(spec).layers[0].drop, nn.AlphaDropout)  # REG-6


def test_conv_dropout_is_spatial() -> None:
    spec = _model(
        (2, 6, 6),
        [
            {"kind": "conv2d", "out_channels": 4, "kernel_size": 3, "dropout": 0.2},
            "flatten",
            {"linear": 1},
        ],
    )
    assert isinstance(build_model(spec).layers[0].drop, nn.Dropout2d)  # REG-5


@pytest.mark.parametrize(("channels", "groups"), [(64, 32), (48, 24), (20, 20), (7, 7), (66, 22)])
def test_group_norm_groups_are_the_largest_divisor_up_to_32(channels: int, groups: int) -> None:
    spec = _model(
        (3, 4, 4),
        [
            {"kind": "conv2d", "out_channels": channels, "kernel_size": 1, "norm": "group"},
            "flatten",
            {"linear": 1},
        ],
    )
    assert build_model(spec).layers[0].norm.num_groups == groups


def test_prelu_per_channel() -> None:
    act = {"kind": "prelu", "num_parameters": "channel"}
    spec = _model(
        (3, 5, 5),
        [
            {"kind": "conv2d", "out_channels": 6, "kernel_size": 1, "activation": act},
            "flatten",
            {"linear": 1},
        ],
    )
    assert build_model(spec).layers[0].act.weight.shape == (6,)


def test_layer_norm_after_conv_is_group_norm_with_one_group() -> None:
    spec = _model(
        (3, 5, 5),
        [
            {"kind": "conv2d", "out_channels": 6, "kernel_size": 1, "norm": "layer"},
            "flatten",
            {"linear": 1},
        ],
    )
    norm = build_model(spec).layers[0].norm
    assert isinstance(norm, nn.GroupNorm) and norm.num_groups == 1


def test_same_seed_same_state_dict_and_different_seed_differs() -> None:
    a, b = build_model(MLP, seed=7).state_dict(), build_model(MLP, seed=7).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    g = torch.Generator().manual_seed(7)
    c = build_model(MLP, generator=g).state_dict()
    assert all(torch.equal(a[k], c[k]) for k in a)
    d = build_model(MLP, seed=8).state_dict()
    assert not torch.equal(a["layers.fc1.op.weight"], d["layers.fc1.op.weight"])


def test_building_leaves_the_global_rng_alone() -> None:
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    build_model(MLP)
    assert torch.equal(before, torch.random.get_rng_state())
    expected = torch.rand(3, generator=torch.Generator().manual_seed(123))
    assert torch.equal(torch.rand(3), expected)


# Every built-in kind, across two models (2-D maps and 1-D sequences; token ids).
EVERY_KIND = [
    _model(
        (3, 8, 8),
        [
            {"kind": "conv2d", "out_channels": 4, "kernel_size": 3, "norm": "group"},
            {"kind": "batch_norm"},
            {"kind": "group_norm", "num_groups": 2},
            {"kind": "instance_norm"},
            {"kind": "activation", "activation": {"kind": "prelu", "num_parameters": "channel"}},
            {"kind": "dropout2d", "p": 0.1},
            {"kind": "max_pool2d", "kernel_size": 2},
            {"kind": "avg_pool2d", "kernel_size": 1},
            {"kind": "adaptive_avg_pool2d", "output_size": 2},
            "flatten",
            {"kind": "reshape", "shape": [4, 4]},
            {"kind": "conv1d", "out_channels": 6, "kernel_size": 3, "padding": "same"},
            {"kind": "max_pool1d", "kernel_size": 2},
            {"kind": "avg_pool1d", "kernel_size": 1},
            {"kind": "adaptive_avg_pool1d", "output_size": 1},
            "flatten",
            {"kind": "layer_norm"},
            {"kind": "linear", "out_features": 8, "activation": "selu", "dropout": 0.1},
            {"kind": "alpha_dropout", "p": 0.1},
            {"kind": "dropout", "p": 0.1},
            "identity",
            {"linear": 3},
        ],
    ),
    _model(
        (5,),
        [
            {"kind": "embedding", "num_embeddings": 11, "embedding_dim": 4, "padding_idx": 0},
            "flatten",
            {"linear": 2},
        ],
    ),
]


def test_every_kind_covers_the_built_in_kinds() -> None:
    """Drift guard: a new built-in kind must join EVERY_KIND (its constructor might draw from the
    global RNG, which built-in builds no longer fork)."""
    from nnspec.compile.layers import BUILTIN_KINDS

    covered = {layer.kind for spec in EVERY_KIND for layer in spec.layers}
    assert covered == set(BUILTIN_KINDS)


@pytest.mark.parametrize("spec", EVERY_KIND, ids=["maps", "tokens"])
def test_built_in_kinds_skip_torchs_default_init_and_leave_the_global_rng_alone(
    spec: ModelSpec,
) -> None:
    """Built-in kinds skip torch's default init (no global-RNG draw, no wasted fill), so the build
    takes no RNG fork: every parameter still gets nnspec's rule, and the result is plain torch."""
    torch.manual_seed(99)
    before = torch.random.get_rng_state()
    model = build_model(spec, seed=3)
    assert torch.equal(before, torch.random.get_rng_state())
    names = dict(model.named_parameters())
    assert set(names) == set(model.init_records)
    again = build_model(spec, seed=3).state_dict()
    assert all(torch.equal(t, again[k]) for k, t in model.state_dict().items())
    for name, p in names.items():
        assert torch.isfinite(p).all(), name  # no uninitialised memory left behind
    # plain torch classes, not nnspec's no-reset subclasses (quantisation maps match exact types)
    from nnspec.compile.layers import Reshape, WeightBlock

    for m in model.modules():
        if not isinstance(m, (NNSpecModel, WeightBlock, Reshape)):
            assert type(m).__module__.startswith("torch."), type(m)
    skipped = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Embedding)
    ops = [m for m in model.modules() if isinstance(m, skipped)]
    assert ops and all(type(m) in skipped for m in ops)
    for m in model.modules():
        if isinstance(m, nn.Embedding):
            assert torch.equal(m.weight[0], torch.zeros(4))  # padding row, as torch
            assert abs(m.weight[1:].std().item() - 1.0) < 0.5  # N(0, 1) as torch


def test_model_attributes_and_head() -> None:
    model = build_model(MLP)
    assert isinstance(model, NNSpecModel)
    assert model.spec is MLP
    assert (model.input_shape, model.output_shape) == ((6,), (3,))
    assert [i.name for i in model.layer_info] == ["fc1", "1", "2"]
    assert model.head is model.layers[2].op
    with torch.no_grad():
        model.head.bias.fill_(2.0)  # the trainer sets it from data (INIT-7/8)
    assert torch.all(model.eval()(torch.zeros(4, 6)) == 2.0)


def test_model_deepcopies_and_pickles() -> None:
    model = build_model(MLP)
    clone = copy.deepcopy(model)
    again = pickle.loads(pickle.dumps(model))
    for other in (clone, again):
        assert other.init_records == model.init_records and other.spec == model.spec
        assert all(torch.equal(t, other.state_dict()[k]) for k, t in model.state_dict().items())


def test_trainable_false_freezes_the_layer() -> None:
    spec = _model((6,), [{"kind": "linear", "out_features": 4, "trainable": False}, {"linear": 1}])
    model = build_model(spec)
    assert not any(p.requires_grad for p in model.layers[0].parameters())
    assert all(p.requires_grad for p in model.layers[1].parameters())


def test_experiment_spec_means_its_model_and_other_types_are_refused() -> None:
    exp = ExperimentSpec.model_validate({"model": {"input_shape": [4], "layers": [{"linear": 2}]}})
    assert build_model(exp).output_shape == (2,)
    assert infer_shapes(exp)[-1].out_shape == (2,)
    with pytest.raises(SpecError, match="needs a ModelSpec"):
        infer_shapes("model.yaml")  # type: ignore[arg-type]
    with pytest.raises(SpecError):
        build_model({"input_shape": [4]})  # type: ignore[arg-type]
