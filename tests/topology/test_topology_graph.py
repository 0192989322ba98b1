"""Branch/merge graphs: exact error texts, multi-input/multi-output models, fx tracing, purity."""

from __future__ import annotations

import pytest
import torch

import nnspec
from nnspec.errors import DataError, ShapeError, SpecError
from nnspec.io import attach_source, load_with_source, loads
from nnspec.spec import ModelSpec


def _problem(text: str, error: type = SpecError):
    """The single problem of a spec that fails validation or shape inference."""
    with pytest.raises(error) as info:
        spec, source = load_with_source(text)
        try:
            nnspec.infer_shapes(spec.model)
        except ShapeError as e:
            raise attach_source(e, source) from None
    (problem,) = info.value.problems
    return problem


def test_cycle_is_reported_with_the_nodes_in_data_flow_order() -> None:
    p = _problem("""
model:
  input_shape: [4]
  layers:
    - {linear: 8, name: a, inputs: [c]}
    - {linear: 8, name: b}
    - {linear: 8, name: c}
""")
    assert p.path == ("model", "layers", 0, "inputs")
    assert p.message == "cycle in the layer graph: a -> b -> c -> a"
    assert p.line == 5


def test_unknown_input_name_suggests_the_closest() -> None:
    p = _problem("""
model:
  input_shape: [4]
  layers:
    - {linear: 8, name: feat}
    - {linear: 8, name: other, inputs: [input]}
    - {add: null, inputs: [feat, fet]}
    - {linear: 2}
""")
    assert p.path == ("model", "layers", 2, "inputs", 1)
    assert (
        p.message == "unknown input 'fet'; did you mean 'feat'? (known names: feat, input, other)"
    )
    assert p.line == 7


def test_concat_of_incompatible_shapes_names_both_producers() -> None:
    p = _problem(
        """
model:
  inputs: {image: [1, 8, 8], tabular: [4]}
  layers:
    - {conv2d: 4, kernel_size: 3, padding: 1, inputs: [image], name: img}
    - {linear: 8, inputs: [tabular], name: tab}
    - {concat: 1, inputs: [img, tab]}
    - flatten
    - {linear: 2}
""",
        ShapeError,
    )
    assert p.path == ("model", "layers", 2, "dim")
    assert p.message == "concat: cannot concatenate along dim 1"
    assert p.expected == "inputs of equal rank whose sizes agree except in dim 1"
    assert p.found == "(4, 8, 8) from img (conv2d) and (8,) from tab (linear)"
    assert p.fix == "flatten the inputs first, or concatenate along another dim"
    assert p.line == 7


def test_residual_add_that_cannot_be_projected() -> None:
    p = _problem(
        """
model:
  input_shape: [8, 7, 7]
  blocks:
    shrink:
      residual: true
      layers:
        - {conv2d: 8, kernel_size: 3}
  layers:
    - {block: shrink}
    - flatten
    - {linear: 2}
""",
        ShapeError,
    )
    assert p.path == ("model", "blocks", "shrink", "residual", "shortcut")
    assert p.message == (
        "residual add: no 1x1 projection maps the block input onto the body output "
        "(in block 'shrink' used at model.layers.0, repetition 1 of 1 (layers.0.0))"
    )
    assert p.found == "body output (8, 5, 5)"
    assert p.line == 6  # the `residual:` line of the block definition


def test_identity_shortcut_refuses_a_shape_change() -> None:
    p = _problem(
        """
model:
  input_shape: [16]
  blocks:
    wide:
      residual: {shortcut: identity}
      layers: [{linear: 32}]
  layers:
    - {block: wide}
    - {linear: 2}
""",
        ShapeError,
    )
    assert p.message.startswith(
        "residual add: the body changes the shape and the shortcut is identity"
    )
    assert p.found == "body output (32,)"


def test_shape_error_in_third_repetition_names_block_repetition_layer_and_line() -> None:
    p = _problem(
        """
model:
  input_shape: [1, 16, 16]
  blocks:
    down:
      params: {c: int}
      layers:
        - {conv2d: $c, kernel_size: 3, stride: 2}
  layers:
    - {block: down, args: {c: 4}, repeat: 4}
    - flatten
    - {linear: 2}
""",
        ShapeError,
    )
    assert p.path == ("model", "blocks", "down", "layers", 0, "kernel_size")
    assert p.message == (
        "conv2d: kernel larger than its input (in block 'down' used at model.layers.0, "
        "repetition 4 of 4 (layers.0.3))"
    )
    assert p.found == "kernel span 3 on input (4, 1, 1) from layers.0.2.0 (conv2d)"
    assert p.line == 8


def test_unused_branch_is_an_error() -> None:
    p = _problem("""
model:
  input_shape: [4]
  layers:
    - {linear: 8, name: a}
    - {linear: 8, inputs: [input]}
    - {linear: 2}
""")
    assert p.path == ("model", "layers", 0)
    assert p.message == (
        "the output of a (linear) is never used; "
        "feed it to a later layer (inputs: [...]) or list it in model.outputs"
    )


def test_merge_needs_two_inputs_and_plain_layers_one() -> None:
    with pytest.raises(SpecError) as info:
        loads("""
model:
  input_shape: [4]
  layers:
    - {linear: 8, name: a}
    - {linear: 8, inputs: [a, input]}
    - {add: null}
    - {linear: 2}
""")
    messages = {p.message for p in info.value.problems}
    assert (
        "layer kind 'linear' takes one input, found 2; "
        "merge them first with add, concat or multiply" in messages
    )
    assert "add merges two or more inputs; name them: inputs: [a, b]" in messages


MULTI = """
model:
  inputs: {image: [1, 8, 8], tabular: [5]}
  outputs: [digit, parity]
  defaults: {norm: batch}
  layers:
    - {conv2d: 4, kernel_size: 3, padding: 1, inputs: [image]}
    - flatten
    - {linear: 16, name: img}
    - {linear: 16, inputs: [tabular], name: tab}
    - {concat: 1, inputs: [img, tab], name: both}
    - {linear: 10, name: digit}
    - {linear: 16, inputs: [both], activation: tanh}
    - {linear: 1, name: parity}
"""


def test_multi_input_multi_output_model_takes_and_returns_dicts() -> None:
    model = nnspec.build_model(loads(MULTI).model).eval()
    out = model({"image": torch.randn(3, 1, 8, 8), "tabular": torch.randn(3, 5)})
    assert set(out) == {"digit", "parity"}
    assert out["digit"].shape == (3, 10) and out["parity"].shape == (3, 1)
    assert model.output_shape == {"digit": (10,), "parity": (1,)}
    assert model.input_shape == {"image": (1, 8, 8), "tabular": (5,)}
    assert set(model.head_names) == {"layers.digit", "layers.parity"}
    infos = nnspec.infer_shapes(loads(MULTI).model)
    assert sum(i.params for i in infos) == sum(p.numel() for p in model.parameters())


def test_graph_model_is_fx_traceable_and_matches_eager() -> None:
    model = nnspec.build_model(loads(MULTI).model).eval()
    traced = torch.fx.symbolic_trace(model)
    x = {"image": torch.randn(2, 1, 8, 8), "tabular": torch.randn(2, 5)}
    for key, value in model(x).items():
        torch.testing.assert_close(traced(x)[key], value)


def test_build_is_pure_and_reproducible() -> None:
    spec = loads(MULTI).model
    before = torch.random.get_rng_state()
    a, b = nnspec.build_model(spec, seed=3), nnspec.build_model(spec, seed=3)
    assert torch.equal(before, torch.random.get_rng_state())
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    c = nnspec.build_model(spec, seed=4).state_dict()
    assert not torch.equal(sa["layers.img.op.weight"], c["layers.img.op.weight"])


def test_every_parameter_has_an_init_record() -> None:
    spec = loads(MULTI).model
    model = nnspec.build_model(spec)
    assert {n for n, _ in model.named_parameters()} == set(model.init_records)


def test_heads_get_the_head_rules() -> None:
    model = nnspec.build_model(loads(MULTI).model)
    assert model.init_records["layers.digit.op.weight"].source == "head"
    # a layer feeding another (not an output) keeps the hidden rules
    assert model.init_records["layers.img.op.weight"].source == "auto"


def test_sequential_model_with_names_only_stays_on_the_plain_compiler() -> None:
    spec = ModelSpec(input_shape=(4,), layers=[{"linear": 8, "name": "fc1"}, {"linear": 2}])
    assert not spec.is_graph


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@st.composite
def _block_specs(draw: st.DrawFn) -> ModelSpec:
    conv = draw(st.booleans())
    width = draw(st.integers(2, 6))
    block = {
        "params": {"w": "int", "s": 1},
        "residual": draw(
            st.sampled_from([False, True, {"style": "pre"}, {"shortcut": "projection"}])
        ),
        "layers": [
            {"conv2d": "$w", "kernel_size": 3, "padding": 1, "stride": "$s"}
            if conv
            else {"linear": "$w"},
            {"conv2d": "$w", "kernel_size": 1} if conv else {"linear": "$w", "activation": "tanh"},
        ],
    }
    uses = [
        {"block": "b", "args": {"w": draw(st.integers(2, 6))}, "repeat": draw(st.integers(1, 3)),
         "first": {"s": draw(st.integers(1, 2))} if conv else {}}
        for _ in range(draw(st.integers(1, 2)))
    ]  # fmt: skip
    tail = ["flatten", {"linear": 3}] if conv else [{"linear": 3}]
    return ModelSpec.model_validate({
        "input_shape": [width, 6, 6] if conv else [width],
        "defaults": {"norm": draw(st.sampled_from(["none", "batch", "layer"]))},
        "blocks": {"b": block},
        "layers": uses + tail,
    })  # fmt: skip


@settings(max_examples=10, deadline=None)
@given(_block_specs())
def test_built_block_models_match_inferred_shapes_and_params(spec: ModelSpec) -> None:
    infos = nnspec.infer_shapes(spec)
    model = nnspec.build_model(spec).eval()
    x = torch.randn(2, *spec.input_shape)
    with torch.no_grad():
        assert tuple(model(x).shape) == (2, *model.output_shape) == (2, *infos[-1].out_shape)
    assert sum(i.params for i in infos) == sum(p.numel() for p in model.parameters())


BRANCHY = """
model:
  input_shape: [3, 8, 8]
  defaults: {norm: batch}
  blocks:
    inception:                      # two branches from the block input, concatenated
      params: {c: int}
      layers:
        - {conv2d: $c, kernel_size: 1, name: a}
        - {conv2d: $c, kernel_size: 3, padding: 1, inputs: [input], name: b}
        - {concat: 1, inputs: [a, b]}
    stage:                          # a block using a block, with an explicit shortcut
      params: {c: int}
      residual: {shortcut: [{conv2d: $c, kernel_size: 1, activation: identity}]}
      layers:
        - {block: inception, args: {c: $c}}
        - {conv2d: $c, kernel_size: 1, activation: identity}
  layers:
    - {block: stage, args: {c: 4}, repeat: 2}
    - adaptive_avg_pool2d
    - flatten
    - {linear: 5}
"""


def test_branches_inside_blocks_nested_blocks_and_explicit_shortcut() -> None:
    spec = loads(BRANCHY)
    ids = [n.id for n in spec.model.graph().nodes]
    assert "layers.0.0.body.0.0.a" in ids and "layers.0.0.body.0.0.b" in ids
    assert "layers.0.0.shortcut.0" in ids
    by_id = spec.model.graph().by_id
    assert by_id["layers.0.0.body.0.0.b"].inputs == ("inputs.input",)
    assert by_id["layers.0.1.body.0.0.b"].inputs == ("layers.0.0.post",)
    assert by_id["layers.0.0.body.0.0.b"].depth == 2
    model = nnspec.build_model(spec.model).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 8, 8)).shape == (2, 5)
    infos = nnspec.infer_shapes(spec.model)
    assert sum(i.params for i in infos) == sum(p.numel() for p in model.parameters())
    assert {i.out_shape for i in infos if i.kind == "concat"} == {(8, 8, 8)}


def test_graph_specs_round_trip_through_yaml() -> None:
    for text in (BRANCHY, MULTI):
        spec = loads(text)
        assert loads(nnspec.dump(spec)) == spec


def test_cli_summary_of_a_multi_input_model(tmp_path, capsys) -> None:
    from nnspec.cli.main import main

    path = tmp_path / "multi.yaml"
    path.write_text(MULTI)
    assert main(["summary", str(path)]) in (0, None)
    out = capsys.readouterr().out
    assert "image (1, 8, 8), tabular (5,)" in out and "concat" in out


def test_training_a_multi_input_model_on_arrays_is_a_clear_error(tmp_path) -> None:
    # named inputs bind to a table's columns (tests/run/test_multi_io.py) or to arrays passed by
    # name (tests/run/test_named_arrays.py); a synthetic source has neither
    spec = loads(MULTI)
    with pytest.raises(DataError) as info:
        nnspec.train(spec, overrides=[f"train.output_dir={tmp_path}"])
    problem = info.value.problems[0]
    assert problem.message == (
        "a model with named inputs or several outputs trains on a table or on arrays by name"
    )
    assert problem.path == ("data", "source")
    assert not list(tmp_path.iterdir())  # nothing written


def test_every_merge_kind_has_a_merge_function() -> None:
    # drift test: the graph's merge node kinds and the compiler's table name the same kinds
    from nnspec.compile.topology_modules import MERGES, Merge
    from nnspec.spec.graph import Add, Concat, Multiply

    kinds = {cls.model_fields["kind"].default for cls in (Add, Multiply, Concat)}
    assert set(MERGES) == kinds
    a, b, c = torch.full((2, 3), 2.0), torch.full((2, 3), 3.0), torch.full((2, 3), 5.0)
    assert torch.equal(Merge("add")(a, b, c), torch.full((2, 3), 10.0))
    assert torch.equal(Merge("multiply")(a, b, c), torch.full((2, 3), 30.0))
    assert Merge("concat", 1)(a, b, c).shape == (2, 9)
