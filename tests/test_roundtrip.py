"""YAML round trip: ``loads(dump(spec)) == spec`` for every valid spec."""

from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, given, settings
from strategies import experiment_specs, model_specs

from nnspec.defaults import default_experiment
from nnspec.io import dump, dump_data, loads, validate
from nnspec.spec import ExperimentSpec, Linear, ModelSpec

ROUND_TRIP = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@ROUND_TRIP
@given(experiment_specs())
def test_load_of_dump_is_the_same_spec(spec: ExperimentSpec) -> None:
    text = dump(spec)
    back = loads(text)
    assert back == spec
    assert dump(back) == text  # dump is canonical: a fixpoint


@ROUND_TRIP
@given(model_specs())
def test_model_section_round_trips_through_plain_data(model: ModelSpec) -> None:
    assert validate(dump_data(model), model=ModelSpec) == model


def test_python_to_yaml_to_python_is_lossless() -> None:
    spec = ExperimentSpec(
        name="py",
        model=ModelSpec(
            input_shape=(30,),
            layers=(Linear(out_features=64, dropout=0.25), Linear(out_features=1)),
        ),
    )
    assert loads(dump(spec)) == spec
    assert loads(dump(default_experiment())) == default_experiment()


def test_dump_writes_the_canonical_form() -> None:
    spec = loads("model: {input_shape: [4], layers: [{linear: 8, activation: relu}, {linear: 2}]}")
    text = dump(spec)
    assert "- kind: linear" in text  # the shorthand is never written back
    assert "activation: {kind: relu}" in text  # a bare name becomes its mapping
    assert "linear: 8" not in text
    assert "spec_version: 1" in text.splitlines()[0]  # every default is written


def test_floats_round_trip_bit_for_bit() -> None:
    for lr in (0.1, 3e-4, 1 / 3, 2.0**-40, 1e-300, 123456.789):
        model = "model: {input_shape: [2], layers: [{linear: 1}]}"
        spec = loads(f"{model}\noptim: {{kind: sgd, lr: {lr!r}}}")
        assert loads(dump(spec)).optim.lr == lr


def test_dump_data_is_plain_json() -> None:
    data = dump_data(default_experiment())
    assert json.loads(json.dumps(data)) == data
    assert data["model"]["layers"][1]["activation"] == {"kind": "leaky_relu", "negative_slope": 0.1}
    assert not math.isnan(data["optim"]["lr"])


def test_strings_that_look_like_other_types_stay_strings() -> None:
    # (names are folder names: "~", ": x" or "#" are refused by their character set)
    for name in ("yes", "no", "on", "null", "true", "1e3", "0x10", "2024-01-01", "x.y", "a b"):
        spec = ExperimentSpec.model_validate(
            {"name": name, "model": {"input_shape": [2], "layers": [{"linear": 1}]}}
        )
        assert loads(dump(spec)).name == name


def test_user_registered_layer_kinds_round_trip() -> None:
    from typing import Literal

    from nnspec.spec.layers import LAYER_SPECS, LayerBase, register_layer_spec

    class ScaleSpec(LayerBase):
        kind: Literal["rt_scale"] = "rt_scale"
        value: float = 2.0

    register_layer_spec(ScaleSpec)
    try:
        spec = loads(
            "model: {input_shape: [4], layers: [{kind: rt_scale, value: 0.5}, {linear: 2}]}"
        )
        text = dump(spec)
        assert "kind: rt_scale" in text and "value: 0.5" in text  # subclass fields are written
        assert loads(text) == spec
    finally:
        LAYER_SPECS.unregister("rt_scale")
