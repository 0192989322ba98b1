"""Layer names that torch's containers already use are errors naming the layer, never torch's
bare KeyError: the spec refuses a short stable list (with the YAML line), the compiler checks
every name against the torch that runs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nnspec.compile.model import build_model
from nnspec.compile.names import torch_attributes
from nnspec.errors import CompileError, SpecError
from nnspec.io import loads
from nnspec.spec import ModelSpec
from nnspec.spec.reserved import RESERVED_LAYER_NAMES, is_reserved


def test_the_spec_list_is_attributes_of_this_torch() -> None:
    # every name on the torch-free list is one this torch refuses (the list only holds names that
    # torch has had for years; names torch adds are the compiler's check, below)
    assert RESERVED_LAYER_NAMES <= set(dir(nn.Sequential()))
    assert is_reserved("__init__") and is_reserved("__future_dunder__")
    assert not is_reserved("fc1") and not is_reserved("_private") and not is_reserved("head")


def _spec_text(*layers: str) -> str:
    body = "".join(f"    - {layer}\n" for layer in layers)
    return f"name: t\ntask: classification\nmodel:\n  input_shape: [4]\n  layers:\n{body}"


@pytest.mark.parametrize("name", ["_apply", "get_submodule", "register_full_backward_hook"])
def test_a_name_only_this_torch_has_is_a_compile_error_with_path_and_fix(name: str) -> None:
    assert not is_reserved(name) and name in torch_attributes()
    spec = loads(_spec_text(f"{{linear: 8, name: {name}}}", "{linear: 2}"))  # the spec accepts it
    with pytest.raises(CompileError) as err:
        build_model(spec)
    (problem,) = err.value.problems
    assert problem.path == ("model", "layers", 0, "name")
    assert f"layer name {name!r} is an attribute of nn.Module in torch {torch.__version__}" in (
        problem.message
    )
    assert problem.fix == f"rename the layer, e.g. name: {name.strip('_')}_layer"


def test_the_compiler_checks_names_inside_blocks_and_graphs_once_each() -> None:
    text = (
        "name: t\ntask: classification\nmodel:\n  input_shape: [4]\n"
        "  blocks:\n    pair:\n      layers:\n        - {linear: 8, name: get_submodule}\n"
        "        - {linear: 8}\n"
        "  layers:\n    - {block: pair, repeat: 3}\n    - {linear: 8, name: _apply}\n"
        "    - {linear: 2}\n"
    )
    with pytest.raises(CompileError) as err:
        build_model(loads(text))
    assert [p.path for p in err.value.problems] == [
        ("model", "blocks", "pair", "layers", 0, "name"),
        ("model", "layers", 1, "name"),
    ]


@pytest.mark.parametrize("name", ["training", "forward", "to", "append", "_modules"])
def test_a_clashing_name_is_a_spec_error_with_line_and_fix(name: str) -> None:
    text = (
        "name: t\ntask: classification\nmodel:\n  input_shape: [4]\n  layers:\n"
        f"    - {{linear: 8, name: {name}}}\n    - {{linear: 2}}\n"
    )
    with pytest.raises(SpecError) as err:
        loads(text, filename="spec.yaml")
    (problem,) = err.value.problems
    assert problem.path == ("model", "layers", 0, "name")
    assert problem.line == 6
    assert f"layer name {name!r} is an attribute of torch's nn.Module" in problem.message
    assert f"name: {name.strip('_')}_layer" in problem.message


def test_graph_layers_are_checked_too() -> None:
    text = (
        "name: t\ntask: classification\nmodel:\n  input_shape: [4]\n  layers:\n"
        "    - {linear: 8, name: eval}\n    - {linear: 8, inputs: [input], name: b}\n"
        "    - {concat: 1, inputs: [eval, b]}\n    - {linear: 2}\n"
    )
    with pytest.raises(SpecError) as err:
        loads(text)
    assert [p.path for p in err.value.problems] == [("model", "layers", 0, "name")]


def test_the_compiler_checks_against_the_torch_that_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """A newer torch with a new Module attribute: a CompileError at the layer's name."""
    spec = ModelSpec(input_shape=(4,), layers=[{"linear": 8, "name": "shiny"}, {"linear": 2}])
    monkeypatch.setattr(nn.Sequential, "shiny", lambda self: None, raising=False)
    torch_attributes.cache_clear()  # read once per process; this test changes torch under it
    try:
        with pytest.raises(CompileError) as err:
            build_model(spec)
        assert err.value.problems[0].path == ("model", "layers", 0, "name")
    finally:
        monkeypatch.undo()
        torch_attributes.cache_clear()
    assert build_model(spec).layers.shiny.op.out_features == 8


def test_names_inside_blocks_are_checked() -> None:
    text = (
        "name: t\ntask: classification\nmodel:\n  input_shape: [4]\n"
        "  blocks:\n    pair:\n      layers:\n        - {linear: 8, name: training}\n"
        "        - {linear: 8}\n"
        "  layers:\n    - {block: pair}\n    - {linear: 2}\n"
    )
    with pytest.raises(SpecError) as err:
        loads(text)
    messages = [p.message for p in err.value.problems]
    assert any("'training' is an attribute of torch's nn.Module" in m for m in messages)


def test_every_clash_is_reported_at_once() -> None:
    text = (
        "name: t\ntask: classification\nmodel:\n  input_shape: [4]\n  layers:\n"
        "    - {linear: 8, name: to}\n    - {linear: 8, name: cuda}\n    - {linear: 2}\n"
    )
    with pytest.raises(SpecError) as err:
        loads(text)
    assert [p.path for p in err.value.problems] == [
        ("model", "layers", 0, "name"),
        ("model", "layers", 1, "name"),
    ]
