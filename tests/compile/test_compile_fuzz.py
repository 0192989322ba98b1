"""Mutated specs through validation and shape inference: only nnspec errors ever come out."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnspec.compile import infer_shapes
from nnspec.errors import NNSpecError
from nnspec.io import validate

BASE: list[dict[str, Any]] = [
    {
        "model": {
            "input_shape": [1, 8, 8],
            "defaults": {"activation": "relu", "norm": "batch"},
            "layers": [
                {"kind": "conv2d", "out_channels": 8, "kernel_size": 3, "padding": "same"},
                {"kind": "max_pool2d", "kernel_size": 2},
                {"kind": "conv2d", "out_channels": 8, "kernel_size": 3, "groups": 2},
                {"kind": "flatten"},
                {"kind": "linear", "out_features": 16, "dropout": 0.2},
                {"kind": "linear", "out_features": 10},
            ],
        }
    },
    {
        "model": {
            "input_shape": [12],
            "layers": [
                {"kind": "linear", "out_features": 6, "activation": "selu", "norm": "layer"},
                {"kind": "reshape", "shape": [2, 3]},
                {"kind": "group_norm", "num_groups": 2},
                {"kind": "conv1d", "out_channels": 4, "kernel_size": 2},
                {"kind": "adaptive_avg_pool1d", "output_size": 1},
                {"kind": "flatten"},
                {"kind": "linear", "out_features": 1},
            ],
        }
    },
]

KINDS = [
    "linear",
    "conv1d",
    "conv2d",
    "max_pool1d",
    "max_pool2d",
    "avg_pool2d",
    "flatten",
    "reshape",
    "dropout",
    "dropout2d",
    "batch_norm",
    "layer_norm",
    "group_norm",
    "instance_norm",
    "embedding",
    "adaptive_avg_pool2d",
    "identity",
    "activation",
]
VALUES = st.one_of(
    st.integers(-3, 40),
    st.sampled_from([0, 1, 10**9, -1, 2.5, "same", "valid", None, True, [], [3, 3], [2, 2, 2]]),
    st.sampled_from(["relu", "rleu", "zeros", "he_normal", "batch", "group", "instance"]),
)
FIELDS = [
    "kind",
    "out_features",
    "out_channels",
    "kernel_size",
    "stride",
    "padding",
    "dilation",
    "groups",
    "shape",
    "num_groups",
    "ndim",
    "activation",
    "norm",
    "init",
    "dropout",
    "bias",
    "output_size",
    "p",
    "num_embeddings",
    "embedding_dim",
    "name",
]


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    data = copy.deepcopy(draw(st.sampled_from(BASE)))
    model = data["model"]
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["set", "delete", "kind", "input", "insert"]))
        layers = model["layers"]
        i = draw(st.integers(0, len(layers) - 1))
        if op == "set":
            layers[i][draw(st.sampled_from(FIELDS))] = draw(VALUES)
        elif op == "delete" and len(layers[i]) > 1:
            layers[i].pop(draw(st.sampled_from(sorted(layers[i]))))
        elif op == "kind":
            layers[i]["kind"] = draw(st.sampled_from(KINDS))
        elif op == "input":
            model["input_shape"] = draw(st.lists(st.integers(-1, 12), min_size=0, max_size=4))
        else:
            layers.insert(
                i,
                {"kind": draw(st.sampled_from(KINDS)), draw(st.sampled_from(FIELDS)): draw(VALUES)},
            )
    return data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_only_nnspec_errors_come_out(data: dict[str, Any]) -> None:
    try:
        spec = validate(data)
        infos = infer_shapes(spec.model)
    except NNSpecError as e:
        assert e.problems and all(p.path for p in e.problems)
        return
    assert infos and all(all(d > 0 for d in i.out_shape) for i in infos)
