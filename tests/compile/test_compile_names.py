"""Layer names that torch's containers already use are spec errors, never torch's KeyError."""

from __future__ import annotations

import re

import pytest
from torch import nn

from nnspec.compile.model import build_model
from nnspec.errors import SpecError
from nnspec.io import loads
from nnspec.spec import ModelSpec
from nnspec.spec.reserved import TORCH_MODULE_ATTRS


def test_reserved_names_are_this_torchs_sequential_attributes() -> None:
    # A tripwire on purpose: a torch upgrade that adds a Module attribute fails here until
    # nnspec/spec/reserved.py is regenerated (the compiler's own check covers users meanwhile).
    here = {n for n in dir(nn.Sequential()) if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n)}
    assert here == TORCH_MODULE_ATTRS, "regenerate nnspec/spec/reserved.py (see its docstring)"


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
    """A newer torch with a new Module attribute: still a SpecError at the layer's name."""
    spec = ModelSpec(input_shape=(4,), layers=[{"linear": 8, "name": "shiny"}, {"linear": 2}])
    from nnspec.compile.model import torch_attributes

    monkeypatch.setattr(nn.Sequential, "shiny", lambda self: None, raising=False)
    torch_attributes.cache_clear()  # read once per process; this test changes torch under it
    try:
        with pytest.raises(SpecError) as err:
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
