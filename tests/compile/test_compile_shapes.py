"""Shape inference: every built-in kind agrees with torch, error texts are golden, nothing is
allocated, and random valid MLP/CNN specs build to exactly the inferred shape and size."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnspec.compile import SHAPE_FNS, build_model, infer_shapes
from nnspec.compile.layers import LAYER_BUILDERS
from nnspec.errors import ShapeError, SpecError
from nnspec.spec import ModelSpec
from nnspec.spec.activations import ACTIVATION_NAMES

BUILTIN = [
    "linear",
    "conv1d",
    "conv2d",
    "max_pool1d",
    "max_pool2d",
    "avg_pool1d",
    "avg_pool2d",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "flatten",
    "reshape",
    "dropout",
    "dropout2d",
    "alpha_dropout",
    "batch_norm",
    "layer_norm",
    "group_norm",
    "instance_norm",
    "activation",
    "embedding",
    "identity",
]


def _model(input_shape: tuple[int, ...], layers: list[Any], **kw: Any) -> ModelSpec:
    return ModelSpec.model_validate({"input_shape": input_shape, "layers": layers, **kw})


def _error(input_shape: tuple[int, ...], layers: list[Any]) -> ShapeError:
    with pytest.raises(ShapeError) as info:
        infer_shapes(_model(input_shape, layers))
    return info.value


def test_every_built_in_kind_has_a_shape_fn_and_a_builder() -> None:
    assert set(BUILTIN) <= set(SHAPE_FNS)
    assert set(BUILTIN) <= set(LAYER_BUILDERS)
    assert set(SHAPE_FNS) == set(LAYER_BUILDERS)


# One spec per built-in kind (input shape, the layer); the built module must agree with inference.
KIND_CASES: dict[str, tuple[tuple[int, ...], Any]] = {
    "linear": ((5,), {"linear": 7}),
    "conv1d": ((3, 11), {"kind": "conv1d", "out_channels": 4, "kernel_size": 3, "stride": 2}),
    "conv2d": (
        (3, 9, 7),
        {
            "kind": "conv2d",
            "out_channels": 6,
            "kernel_size": [3, 2],
            "padding": 1,
            "dilation": 2,
            "groups": 3,
        },
    ),
    "max_pool1d": ((2, 9), {"max_pool1d": 2}),
    "max_pool2d": ((2, 9, 8), {"kind": "max_pool2d", "kernel_size": 3, "stride": 2, "padding": 1}),
    "avg_pool1d": ((2, 9), {"kind": "avg_pool1d", "kernel_size": 4, "stride": 1}),
    "avg_pool2d": ((2, 6, 6), {"avg_pool2d": 2}),
    "adaptive_avg_pool1d": ((2, 9), {"adaptive_avg_pool1d": 3}),
    "adaptive_avg_pool2d": ((2, 9, 5), {"adaptive_avg_pool2d": [2, 3]}),
    "flatten": ((2, 3, 4), "flatten"),
    "reshape": ((24,), {"kind": "reshape", "shape": [2, -1, 3]}),
    "dropout": ((5,), {"dropout": 0.2}),
    "dropout2d": ((2, 4, 4), {"dropout2d": 0.2}),
    "alpha_dropout": ((5,), {"alpha_dropout": 0.2}),
    "batch_norm": ((3, 4, 4), "batch_norm"),
    "layer_norm": ((3, 4, 5), {"kind": "layer_norm", "ndim": 2}),
    "group_norm": ((6, 4), {"group_norm": 3}),
    "instance_norm": ((3, 7), "instance_norm"),
    "activation": (
        (4, 3),
        {"kind": "activation", "activation": {"kind": "prelu", "num_parameters": "channel"}},
    ),
    "embedding": ((6,), {"kind": "embedding", "num_embeddings": 50, "embedding_dim": 4}),
    "identity": ((5,), "identity"),
}


def test_kind_cases_cover_every_built_in_kind() -> None:
    assert set(KIND_CASES) == set(BUILTIN)


@pytest.mark.parametrize("kind", sorted(KIND_CASES))
def test_built_module_matches_inferred_shape_and_params(kind: str) -> None:
    shape, layer = KIND_CASES[kind]
    spec = _model(shape, [layer, "flatten", {"linear": 2}])
    info = infer_shapes(spec)[0]
    model = build_model(spec).eval()
    x = torch.randint(0, 50, (3, *shape)) if kind == "embedding" else torch.randn(3, *shape)
    out = model.layers[0](x)
    assert tuple(out.shape[1:]) == info.out_shape
    assert sum(p.numel() for p in model.layers[0].parameters()) == info.params


def test_inference_allocates_nothing_for_a_width_of_a_billion() -> None:
    spec = _model((30,), [{"linear": 10**9}, {"linear": 10**9}, {"linear": 1}])
    tracemalloc.start()
    infos = infer_shapes(spec)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert infos[1].params == 10**18 + 10**9  # exact arithmetic, no tensor
    assert peak < 1_000_000


def test_layer_info_fields() -> None:
    spec = _model(
        (1, 8, 8),
        [
            {
                "kind": "conv2d",
                "out_channels": 4,
                "kernel_size": 3,
                "name": "stem",
                "activation": {"kind": "leaky_relu", "negative_slope": 0.1},
            },
            "flatten",
            {"linear": 10},
        ],
        defaults={"norm": "batch"},
    )
    stem, flat, head = infer_shapes(spec)
    assert stem.path == ("model", "layers", 0) and stem.name == "stem"
    assert (stem.in_shape, stem.out_shape) == ((1, 8, 8), (4, 6, 6))
    assert stem.params == 4 * 9 + 2 * 4  # no bias before batch norm (NORM-2), BN scale + shift
    assert stem.init == "he_normal(scale=2/(1+0.1^2))"
    assert stem.init_reason == "auto: leaky_relu(0.1) -> He (INIT-2)"
    assert (stem.norm, stem.activation, stem.trainable, stem.depth) == (
        "batch",
        "leaky_relu(0.1)",
        True,
        0,
    )
    assert flat.init is None and flat.name == "1"
    assert head.activation == "identity" and head.norm == "none"
    assert head.init == "glorot_uniform(scale=1) x0.1" and head.params == 144 * 10 + 10


def test_gelu_reason_says_convention() -> None:
    info = infer_shapes(
        _model((4,), [{"kind": "linear", "out_features": 3, "activation": "gelu"}, {"linear": 1}])
    )
    assert info[0].init_reason == "auto: gelu -> He (INIT-1; convention)"


# ---- golden error texts (error text is API, STYLE §6) ----------------------------------------


def test_golden_conv_after_flatten() -> None:
    err = _error(
        (1, 8, 8),
        [
            {"conv2d": 8, "kernel_size": 3},
            "flatten",
            {"linear": 128},
            {"conv2d": 8, "kernel_size": 3},
            {"linear": 10},
        ],
    )
    assert str(err) == (
        "model.layers.3: conv2d: wrong input rank (expected a 3-D input (C, H, W); "
        "found (128,) from layers.2 (linear))\n"
        "  fix: move conv2d before flatten, or insert {kind: reshape, shape: [8, 4, 4]}"
    )


def test_golden_kernel_larger_than_input() -> None:
    err = _error(
        (1, 8, 8),
        [
            {"conv2d": 8, "kernel_size": 3},
            {"max_pool2d": 2},
            {"conv2d": 8, "kernel_size": 5},
            "flatten",
            {"linear": 10},
        ],
    )
    assert str(err) == (
        "model.layers.2.kernel_size: conv2d: kernel larger than its input (expected a kernel span "
        "<= 3 (input 3 + padding 2x0); found kernel span 5 on input (8, 3, 3) from layers.1 "
        "(max_pool2d))\n"
        "  fix: use a smaller kernel_size, add padding, or remove an earlier pooling layer"
    )


def test_golden_groups() -> None:
    err = _error(
        (6, 8, 8), [{"conv2d": 8, "kernel_size": 3, "groups": 4}, "flatten", {"linear": 10}]
    )
    assert [p.path for p in err.problems] == [("model", "layers", 0, "groups")]
    assert str(err.problems[0]) == (
        "model.layers.0.groups: conv2d: groups must divide in_channels (expected a divisor of "
        "in_channels 6; found groups 4 (input (6, 8, 8) from model.input_shape))\n"
        "  fix: use groups in [1, 2, 3, 6]"
    )


def test_golden_reshape() -> None:
    err = _error((64,), [{"kind": "reshape", "shape": [3, 4, 4]}, "flatten", {"linear": 10}])
    assert str(err) == (
        "model.layers.0.shape: reshape: cannot reshape (64,) from model.input_shape (64 elements) "
        "to [3, 4, 4] (expected positive sizes (at most one -1) whose product is 64; "
        "found [3, 4, 4])\n"
        "  fix: for example shape: [4, 4, 4]"
    )


def test_golden_same_padding_with_stride() -> None:
    err = _error(
        (1, 8, 8),
        [
            {"conv2d": 8, "kernel_size": 3, "stride": 2, "padding": "same"},
            "flatten",
            {"linear": 10},
        ],
    )
    assert str(err) == (
        "model.layers.0.padding: conv2d: padding 'same' needs stride 1 (expected stride 1 with "
        "padding 'same'; found stride 2)\n"
        "  fix: keep stride 1 with padding 'same' and downsample with a pool, "
        "or give padding as an int"
    )


def test_golden_linear_on_a_feature_map() -> None:
    err = _error((3, 8, 8), [{"conv2d": 4, "kernel_size": 3}, {"linear": 10}])
    assert str(err) == (
        "model.layers.1: linear: wrong input rank (expected a 1-D input (features,) or a 2-D input "
        "(C, L); found (4, 6, 6) from layers.0 (conv2d))\n"
        "  fix: insert {kind: flatten} before it"
    )


def test_all_problems_are_collected_and_sorted() -> None:
    err = _error(
        (6, 8, 8),
        [
            {"kind": "conv2d", "out_channels": 6, "kernel_size": 3, "groups": 4, "name": "a"},
            {"group_norm": 4},
            {"kind": "linear", "out_features": 10, "name": "a"},
        ],
    )
    assert [p.path for p in err.problems] == [
        ("model", "layers", 0, "groups"),
        ("model", "layers", 0, "groups"),
        ("model", "layers", 1, "num_groups"),
        ("model", "layers", 2),
        ("model", "layers", 2, "name"),
    ]
    assert str(err).startswith("5 problems found:\n")


@pytest.mark.parametrize(
    ("shape", "layers", "path"),
    [
        ((3, 8), [{"kind": "conv2d", "out_channels": 2, "kernel_size": 1}], ("model", "layers", 0)),
        (
            (3, 8, 8),
            [{"kind": "conv1d", "out_channels": 2, "kernel_size": 1}],
            ("model", "layers", 0),
        ),
        (
            (3, 8, 8),
            [
                {"kind": "conv2d", "out_channels": 2, "kernel_size": [1, 1, 1]},
                "flatten",
                {"linear": 1},
            ],
            ("model", "layers", 0, "kernel_size"),
        ),
        (
            (3, 8, 8),
            [{"kind": "max_pool2d", "kernel_size": 2, "padding": 2}, "flatten", {"linear": 1}],
            ("model", "layers", 0, "padding"),
        ),
        ((8,), [{"dropout2d": 0.1}, {"linear": 1}], ("model", "layers", 0)),
        ((8,), ["instance_norm", {"linear": 1}], ("model", "layers", 0)),
        ((8,), [{"kind": "layer_norm", "ndim": 2}, {"linear": 1}], ("model", "layers", 0, "ndim")),
        (
            (8,),
            [{"kind": "reshape", "shape": [-1, -1]}, {"linear": 1}],
            ("model", "layers", 0, "shape"),
        ),
        ((3, 1, 1), ["instance_norm", "flatten", {"linear": 1}], ("model", "layers", 0)),
        (
            (3, 2, 2),
            [
                {"kind": "conv2d", "out_channels": 2, "kernel_size": 2, "norm": "instance"},
                "flatten",
            ],
            ("model", "layers", 0, "norm"),
        ),
        (
            (8,),
            [{"kind": "linear", "out_features": 4, "norm": "instance"}, {"linear": 1}],
            ("model", "layers", 0, "norm"),
        ),
        (
            (3, 8),
            [{"kind": "linear", "out_features": 4, "norm": "batch"}, {"linear": 1}],
            ("model", "layers", 0, "norm"),
        ),
    ],
)
def test_shape_problem_paths(shape: tuple[int, ...], layers: list[Any], path: tuple) -> None:
    assert _error(shape, layers).problems[0].path == path


def test_shape_error_is_a_spec_error() -> None:
    assert issubclass(ShapeError, SpecError) and issubclass(ShapeError, ValueError)


# ---- property: built == inferred ----------------------------------------------------------


ACTS = st.sampled_from(ACTIVATION_NAMES)
NORMS = st.sampled_from(["none", "batch", "layer", "group"])


@st.composite
def mlp_specs(draw: st.DrawFn) -> ModelSpec:
    hidden = draw(st.lists(st.integers(1, 48), max_size=4))
    layers: list[Any] = [
        {
            "kind": "linear",
            "out_features": w,
            "activation": draw(ACTS),
            "norm": draw(NORMS),
            "dropout": draw(st.sampled_from([0.0, 0.3])),
        }
        for w in hidden
    ]
    layers.append({"linear": draw(st.integers(1, 10))})
    return _model((draw(st.integers(1, 40)),), layers)


@st.composite
def cnn_specs(draw: st.DrawFn) -> ModelSpec:
    c, h, w = draw(st.integers(1, 4)), draw(st.integers(4, 14)), draw(st.integers(4, 14))
    layers: list[Any] = []
    for _ in range(draw(st.integers(1, 3))):
        k = draw(st.integers(1, 3))
        stride = draw(st.integers(1, 2))
        # torch warns (a padded copy) for 'same' with an even kernel: keep 'same' to odd kernels
        same_ok = stride == 1 and k % 2 == 1
        padding = draw(st.sampled_from(["same", 0, 1] if same_ok else [0, 1]))
        layers.append(
            {
                "kind": "conv2d",
                "out_channels": draw(st.integers(1, 12)),
                "kernel_size": k,
                "stride": stride,
                "padding": padding,
                "activation": draw(ACTS),
                "norm": draw(st.sampled_from(["none", "batch", "layer", "group", "instance"])),
            }
        )
        if draw(st.booleans()):
            layers.append(
                {"kind": draw(st.sampled_from(["max_pool2d", "avg_pool2d"])), "kernel_size": 2}
            )
    layers += [draw(st.sampled_from(["flatten", {"adaptive_avg_pool2d": 1}]))]
    if layers[-1] != "flatten":
        layers.append("flatten")
    layers.append({"linear": draw(st.integers(1, 10))})
    return _model((c, h, w), layers)


def _check_built_equals_inferred(spec: ModelSpec) -> None:
    try:
        infos = infer_shapes(spec)
    except ShapeError:
        return  # e.g. a pool on a 1x1 map: a correct refusal, not this property's business
    rng = torch.random.get_rng_state()
    model = build_model(spec, seed=5).eval()
    again = build_model(spec, seed=5).state_dict()
    assert torch.equal(rng, torch.random.get_rng_state())  # building is pure
    assert all(torch.equal(t, again[k]) for k, t in model.state_dict().items())  # same seed
    out = model(torch.randn(2, *spec.input_shape))
    assert tuple(out.shape[1:]) == infos[-1].out_shape == model.output_shape
    assert sum(p.numel() for p in model.parameters()) == sum(i.params for i in infos)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mlp_specs())
def test_random_mlps_build_to_the_inferred_shape(spec: ModelSpec) -> None:
    _check_built_equals_inferred(spec)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cnn_specs())
def test_random_cnns_build_to_the_inferred_shape(spec: ModelSpec) -> None:
    _check_built_equals_inferred(spec)


def test_shape_inference_does_not_import_torch() -> None:
    # `nnspec validate` runs shape inference; it must stay as light as the spec layer.
    code = (
        "import sys\n"
        "from nnspec.compile import infer_shapes\n"
        "from nnspec.spec import ModelSpec\n"
        "spec = ModelSpec(input_shape=(1, 8, 8), layers=[{'conv2d': 4, 'kernel_size': 3}, "
        "'flatten', {'linear': 10}])\n"
        "assert infer_shapes(spec)[-1].out_shape == (10,)\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
