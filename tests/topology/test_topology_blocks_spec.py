"""Block definitions, `$param` substitution, repeat/first, residual expansion (spec side)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from omegaconf import OmegaConf
from pydantic import ValidationError

from nnspec.spec import ModelSpec
from nnspec.spec.blocks import BlockDef, substitute
from nnspec.spec.graph import Shortcut


def _model(layers: list, blocks: dict | None = None, **kw: object) -> ModelSpec:
    return ModelSpec.model_validate(
        {"input_shape": [3, 16, 16], "blocks": blocks or {}, "layers": layers, **kw}
    )


BASIC = {
    "params": {"channels": "int", "stride": 1},
    "residual": True,
    "layers": [
        {"conv2d": "$channels", "kernel_size": 3, "stride": "$stride", "padding": 1},
        {"conv2d": "$channels", "kernel_size": 3, "padding": 1, "activation": "identity"},
    ],
}


def test_param_shorthands_give_types_and_defaults() -> None:
    block = BlockDef.model_validate(BASIC)
    assert block.params["channels"].type == "int" and block.params["channels"].is_required
    assert block.params["stride"].type == "int" and block.params["stride"].default == 1
    assert not block.params["stride"].is_required


def test_substitute_replaces_whole_values_and_unescapes_double_dollar() -> None:
    out = substitute({"conv2d": "$c", "name": "$$c", "k": ["$c", 3]}, {"c": 64})
    assert out == {"conv2d": 64, "name": "$c", "k": [64, 3]}


def test_repeat_and_first_arguments_expand_in_order() -> None:
    spec = _model(
        [{"block": "basic", "args": {"channels": 8}, "first": {"stride": 2}, "repeat": 3}],
        {"basic": BASIC},
    )
    convs = [n for n in spec.graph().nodes if n.layer.kind == "conv2d"]
    assert [n.id for n in convs[:2]] == ["layers.0.0.body.0", "layers.0.0.body.1"]
    assert len(convs) == 6
    strides = [n.layer.stride for n in convs[::2]]
    assert strides == [2, 1, 1]  # only the first repetition takes `first`
    assert all(n.layer.out_channels == 8 for n in convs)
    assert convs[5].context.endswith("repetition 3 of 3 (layers.0.2)")


def test_residual_block_expands_to_body_shortcut_add_post() -> None:
    spec = _model(
        [{"block": "basic", "args": {"channels": 3}}, "flatten", {"linear": 2}], {"basic": BASIC}
    )
    ids = [n.id for n in spec.graph().nodes]
    assert ids[:5] == [
        "layers.0.0.body.0",
        "layers.0.0.body.1",
        "layers.0.0.shortcut",
        "layers.0.0.add",
        "layers.0.0.post",
    ]
    by_id = spec.graph().by_id
    assert isinstance(by_id["layers.0.0.shortcut"].layer, Shortcut)
    assert by_id["layers.0.0.shortcut"].inputs == ("inputs.input",)
    assert by_id["layers.0.0.add"].inputs == ("layers.0.0.body.1", "layers.0.0.shortcut")
    assert by_id["layers.0.0.post"].layer.activation.kind == "relu"  # model.defaults.activation


def test_pre_activation_style_has_no_post_activation() -> None:
    pre = {**BASIC, "residual": {"style": "pre"}}
    spec = _model(
        [{"block": "basic", "args": {"channels": 3}}, "flatten", {"linear": 2}], {"basic": pre}
    )
    assert not any(n.id.endswith(".post") for n in spec.graph().nodes)


def test_zero_init_marks_the_last_norm_of_the_body() -> None:
    zero = {**BASIC, "residual": {"zero_init_last_norm": True}}
    spec = _model(
        [{"block": "basic", "args": {"channels": 3}}, "flatten", {"linear": 2}],
        {"basic": zero},
        defaults={"norm": "batch"},
    )
    marked = [n.id for n in spec.graph().nodes if n.zero_init_scale]
    assert marked == ["layers.0.0.body.1"]


def test_block_use_trainable_and_lr_scale_apply_to_every_layer() -> None:
    spec = _model(
        [
            {"block": "basic", "args": {"channels": 3}, "trainable": False, "lr_scale": 0.5},
            "flatten",
            {"linear": 2},
        ],
        {"basic": BASIC},
    )
    inner = [n for n in spec.graph().nodes if n.depth == 1 and n.layer.kind == "conv2d"]
    assert inner and all(not n.layer.trainable and n.layer.lr_scale == 0.5 for n in inner)


def _errors(fn) -> list[dict]:
    with pytest.raises(ValidationError) as info:
        fn()
    return info.value.errors()


def test_unknown_parameter_in_template_is_named_with_suggestion() -> None:
    bad = {"params": {"channels": "int"}, "layers": [{"conv2d": "$chanels", "kernel_size": 3}]}
    (err,) = _errors(lambda: BlockDef.model_validate(bad))
    assert err["loc"] == ("layers", 0, "conv2d")
    assert err["msg"] == (
        "unknown block parameter '$chanels'; did you mean 'channels'? (parameters: $channels)"
    )


def test_block_argument_errors_are_collected() -> None:
    errors = _errors(
        lambda: _model(
            [{"block": "basic", "args": {"chanels": 8, "stride": "two"}}, {"linear": 2}],
            {"basic": BASIC},
        )
    )
    msgs = {(e["loc"], e["msg"]) for e in errors}
    assert (
        ("layers", 0, "args", "chanels"),
        "block 'basic' has no parameter 'chanels'; did you mean 'channels'? "
        "(parameters: channels, stride)",
    ) in msgs
    assert (("layers", 0, "args"), "block 'basic' needs the argument 'channels'") in msgs
    assert (
        ("layers", 0, "args", "stride"),
        "argument 'stride' of block 'basic' must be of type int",
    ) in msgs


def test_unknown_block_name_suggests() -> None:
    (err,) = _errors(lambda: _model([{"block": "basci"}, {"linear": 2}], {"basic": BASIC}))
    assert err["loc"] == ("layers", 0, "block")
    assert err["msg"] == "unknown block 'basci'; did you mean 'basic'? (blocks: basic)"


def test_invalid_layer_after_substitution_points_at_the_template() -> None:
    errors = _errors(
        lambda: _model([{"block": "basic", "args": {"channels": -4}}], {"basic": BASIC})
    )
    locs = {e["loc"] for e in errors}
    assert ("blocks", "basic", "layers", 0, "out_channels") in locs
    assert "used at model.layers.0, repetition 1 of 1" in errors[0]["msg"]
    assert "with channels=-4, stride=1" in errors[0]["msg"]


def test_recursive_block_is_an_error() -> None:
    loop = {"layers": [{"block": "loop"}]}
    errors = _errors(lambda: _model([{"block": "loop"}, {"linear": 2}], {"loop": loop}))
    assert any(e["msg"] == "block uses itself: loop -> loop" for e in errors)


def test_block_params_survive_omegaconf_resolution() -> None:
    # `$name` is not OmegaConf interpolation (`${...}`): a spec with blocks composes under Hydra.
    cfg = OmegaConf.create({"model": {"blocks": {"basic": BASIC}}})
    data = OmegaConf.to_container(cfg, resolve=True)
    assert data["model"]["blocks"]["basic"]["layers"][0]["conv2d"] == "$channels"


def test_topology_specs_do_not_import_torch() -> None:
    code = (
        "import sys; from nnspec.spec import ModelSpec; "
        "ModelSpec.model_validate({'input_shape': [4, 3], 'layers': [{'lstm': 8}, "
        "{'block': 'b'}, {'linear': 2}], 'blocks': {'b': {'layers': [{'linear': 3}]}}}); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_graph_cache_follows_model_copy_updates() -> None:
    from nnspec.spec.layers import Linear

    spec = _model([{"block": "basic", "args": {"channels": 3}}, "flatten", {"linear": 2}],
                  {"basic": BASIC})  # fmt: skip
    assert spec.graph() is spec.graph()
    wider = spec.model_copy(update={"layers": (*spec.layers[:2], Linear(out_features=7))})
    assert wider.graph().by_id["layers.2"].layer.out_features == 7
    assert spec.graph().by_id["layers.2"].layer.out_features == 2
