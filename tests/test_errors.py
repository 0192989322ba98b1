"""Broken specs: every one gives an nnspec error with its class, field path and line (issue 2).

Each case is a small YAML file; the error must name the path and the 1-based line of the
offending node. Shape errors come from shape inference, with lines attached from the source map.
A Hypothesis test mutates valid specs and checks that nothing but SpecError ever escapes.
"""

from __future__ import annotations

import random
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import experiment_data

from nnspec.compile import infer_shapes
from nnspec.errors import NNSpecError, ShapeError, SpecError
from nnspec.io import apply_overrides, attach_source, dumps_data, load_with_source, loads

BASE = """\
name: t
model:
  input_shape: [4]
  layers:
    - {kind: linear, out_features: 8}
    - {kind: linear, out_features: 2}
"""


def _with(old: str, new: str) -> str:
    assert old in BASE
    return BASE.replace(old, new, 1)


L0 = "- {kind: linear, out_features: 8}"  # line 5
L1 = "- {kind: linear, out_features: 2}"  # line 6
CNN = """\
model:
  input_shape: [1, 4, 4]
  layers:
    - {kind: conv2d, out_channels: 4, kernel_size: 3}
    - flatten
    - {kind: linear, out_features: 2}
"""

# (id, yaml, error class, field path, line, a phrase the message must contain)
CASES: list[tuple[str, str, type[NNSpecError], str, int, str]] = [
    ("misspelt-kind", _with(L0, "- {kind: lineer, out_features: 8}"), SpecError,
     "model.layers.0.kind", 5, "did you mean 'linear'?"),
    ("misspelt-shorthand-kind", _with(L0, "- {lineer: 8}"), SpecError,
     "model.layers.0", 5, "did you mean 'linear'?"),
    ("negative-width", _with(L0, "- {kind: linear, out_features: -8}"), SpecError,
     "model.layers.0.out_features", 5, "greater than 0"),
    ("zero-width-shorthand", _with(L0, "- linear: 0"), SpecError,
     "model.layers.0.out_features", 5, "greater than 0"),
    ("unknown-activation", _with(L0, "- {kind: linear, out_features: 8, activation: rleu}"),
     SpecError, "model.layers.0.activation", 5, "unknown activation 'rleu'; did you mean 'relu'?"),
    ("unknown-default-activation", _with("  layers:", "  defaults: {activation: tanhh}\n  layers:"),
     SpecError, "model.defaults.activation", 4, "did you mean 'tanh'?"),
    ("bad-activation-param",
     _with(L0, "- {kind: linear, out_features: 8, "
               "activation: {kind: leaky_relu, negative_slope: -1}}"),
     SpecError, "model.layers.0.activation.negative_slope", 5, "at least 0"),
    ("misspelt-init", _with(L0, "- {kind: linear, out_features: 8, init: he_normall}"), SpecError,
     "model.layers.0.init", 5, "did you mean 'he_normal'?"),
    ("bad-init-mode",
     _with(L0, "- {kind: linear, out_features: 8, init: {kind: variance_scaling, mode: fan_inn}}"),
     SpecError, "model.layers.0.init.mode", 5, "did you mean 'fan_in'?"),
    ("misspelt-norm", _with(L0, "- {kind: linear, out_features: 8, norm: btach}"), SpecError,
     "model.layers.0.norm", 5, "did you mean 'batch'?"),
    ("wrong-type-width", _with(L0, "- {kind: linear, out_features: eight}"), SpecError,
     "model.layers.0.out_features", 5, "must be an integer"),
    ("wrong-type-seed", "seed: abc\n" + BASE, SpecError, "seed", 1, "must be an integer"),
    ("missing-input-shape", _with("  input_shape: [4]\n", ""), SpecError, "model.input_shape", 2,
     "input_shape"),
    ("missing-width", _with(L0, "- {kind: linear}"), SpecError, "model.layers.0.out_features", 5,
     "missing required field 'out_features'"),
    ("missing-model", "name: t\nseed: 1\n", SpecError, "model", 1,
     "missing required field 'model'"),
    ("zero-in-input-shape", _with("[4]", "[0]"), SpecError, "model.input_shape.0", 3,
     "greater than 0"),
    ("no-layers", _with(f"  layers:\n    {L0}\n    {L1}\n", "  layers: []\n"), SpecError,
     "model.layers", 4, "at least one layer"),
    ("dropout-on-head", _with(L1, "- {kind: linear, out_features: 2, dropout: 0.5}"), SpecError,
     "model.layers.1.dropout", 6, "OUT-5"),
    ("dropout-layer-last", BASE + "    - {kind: dropout, p: 0.5}\n", SpecError,
     "model.layers.2.kind", 7, "OUT-5"),
    ("extra-field", _with(L0, "- {kind: linear, out_features: 8, activaton: relu}"), SpecError,
     "model.layers.0.activaton", 5, "unknown field 'activaton'; did you mean 'activation'?"),
    ("extra-top-level-field", BASE + "optimizer: {kind: adam}\n", SpecError, "optimizer", 7,
     "did you mean 'optim'?"),
    ("extra-data-field", BASE + "data: {batchsize: 32}\n", SpecError, "data.batchsize", 7,
     "did you mean 'batch_size'?"),
    ("bad-layer-name", _with(L0, "- {kind: linear, out_features: 8, name: 1fc}"), SpecError,
     "model.layers.0.name", 5, "not a valid name"),
    ("shorthand-without-field", _with(L0, "- {flatten: 3}"), SpecError, "model.layers.0", 5,
     "no one-value shorthand"),
    ("python-tag", "name: !!python/object/apply:os.system [ls]\n" + BASE.split("\n", 1)[1],
     SpecError, "name", 1, "YAML tag '!!python/object/apply:os.system' is not allowed"),
    ("custom-tag", BASE + "seed: !env SEED\n", SpecError, "seed", 7, "YAML tag '!env'"),
    ("target-key", BASE + "optim: {_target_: torch.optim.SGD, lr: 0.1}\n", SpecError,
     "optim._target_", 7, "'_target_' is not allowed"),
    ("component-key", BASE + "loss:\n  _component_: torch.nn.MSELoss\n", SpecError,
     "loss._component_", 8, "'_component_' is not allowed"),
    ("hydra-section", BASE + "hydra:\n  run: {dir: x}\n", SpecError, "hydra", 7, "'hydra:'"),
    ("duplicate-key", BASE + "name: u\n", SpecError, "name", 7, "duplicate key 'name'"),
    ("duplicate-key-in-layer", _with(L0, "- {kind: linear, out_features: 8, out_features: 9}"),
     SpecError, "model.layers.0.out_features", 5, "duplicate key 'out_features'"),
    ("split-sum", BASE + "data:\n  split: {train: 0.5, val: 0.2, test: 0.1}\n", SpecError,
     "data.split.train", 8, "sum to 1"),
    ("split-fraction-above-one", BASE + "data:\n  split: {train: 1.5, val: 0.2, test: 0.1}\n",
     SpecError, "data.split.train", 8, "less than 1"),
    ("unknown-data-source", BASE + "data: {source: 'http://example.com/x.csv'}\n", SpecError,
     "data.source", 7, "unknown data source"),
    ("unknown-task", "task: multiclass\n" + BASE, SpecError, "task", 1,
     "unknown task 'multiclass'"),
    ("unknown-optimizer", BASE + "optim: {kind: adamm}\n", SpecError, "optim.kind", 7,
     "unknown optimizer 'adamm'; did you mean 'adam'?"),
    ("negative-lr", BASE + "optim: {kind: adam, lr: -0.1}\n", SpecError, "optim.lr", 7,
     "a number > 0 or 'auto'"),
    ("optim-without-kind", BASE + "optim: {lr: 0.1}\n", SpecError, "optim", 7,
     "add `kind: adamw` (the default)"),
    ("unknown-optim-field", BASE + "optim: {kind: sgd, lrr: 0.1}\n", SpecError, "optim.lrr", 7,
     "did you mean 'lr'?"),
    ("bad-schedule-kind", BASE + "schedule: {kind: cosin}\n", SpecError, "schedule.kind", 7,
     "did you mean 'cosine'?"),
    ("bad-schedule-value", BASE + "schedule:\n  kind: step\n  gamma: 2\n", SpecError,
     "schedule.gamma", 9, "at most 1"),
    ("unknown-loss", BASE + "loss: {kind: cross_entropyy}\n", SpecError, "loss.kind", 7,
     "did you mean 'cross_entropy'?"),
    ("zero-epochs", BASE + "train: {epochs: 0}\n", SpecError, "train.epochs", 7, "greater than 0"),
    ("tab-indent", BASE + "train:\n\tepochs: 3\n", SpecError, "", 8, "tab"),
    ("invalid-yaml", BASE + "optim: {kind: adam\n", SpecError, "", 8, "invalid YAML"),
    ("empty-file", "", SpecError, "", 1, "empty"),
    ("comments-only", "# nothing here\n", SpecError, "", 1, "empty"),
    ("top-level-list", "- linear: 3\n", SpecError, "", 1, "mapping"),
    ("kernel-larger-than-input", CNN.replace("kernel_size: 3", "kernel_size: 5"), ShapeError,
     "model.layers.0.kernel_size", 4, "kernel larger than its input"),
    ("conv-after-flatten",
     CNN.replace("    - flatten\n", "    - flatten\n    - {conv2d: 4, kernel_size: 1}\n"),
     ShapeError, "model.layers.2", 6, "3-D input"),
]  # fmt: skip


def _load_and_infer(text: str) -> None:
    spec, source = load_with_source(text)
    try:
        infer_shapes(spec.model)
    except NNSpecError as e:
        raise attach_source(e, source) from e


def test_there_are_at_least_30_distinct_cases() -> None:
    assert len({c[0] for c in CASES}) == len(CASES) >= 30
    assert len({c[1] for c in CASES}) == len(CASES)


@pytest.mark.parametrize(("text", "cls", "path", "line", "phrase"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])  # fmt: skip
def test_broken_spec_gives_error_with_path_and_line(
    text: str, cls: type[NNSpecError], path: str, line: int, phrase: str
) -> None:
    with pytest.raises(cls) as info:
        _load_and_infer(text)
    err = info.value
    assert isinstance(err, SpecError)  # every spec problem is a SpecError (and a ValueError)
    match = [p for p in err.problems if ".".join(map(str, p.path)) == path]
    assert match, f"no problem at {path!r}: {err}"
    assert match[0].line == line, str(err)
    assert match[0].col is not None and match[0].col >= 1
    assert phrase.lower() in str(err).lower()


def test_all_problems_are_reported_at_once() -> None:
    text = _with(L0, "- {kind: lineer, out_features: 8}") + "optim: {kind: adam, lr: -1}\nseed: x\n"
    with pytest.raises(SpecError) as info:
        loads(text)
    paths = [".".join(map(str, p.path)) for p in info.value.problems]
    assert paths == ["model.layers.0.kind", "optim.lr", "seed"]  # sorted by line


# -- golden texts: error text is API (STYLE §6) ---------------------------------------------------


def _message(text: str, filename: str = "spec.yaml") -> str:
    with pytest.raises(SpecError) as info:
        loads(text, filename=filename)
    return str(info.value)


def test_golden_unknown_activation() -> None:
    text = _with(L0, "- {kind: linear, out_features: 8, activation: rleu}")
    assert _message(text) == (
        "spec.yaml:5:51 model.layers.0.activation: unknown activation 'rleu'; did you mean 'relu'? "
        "(expected one of 'relu', 'leaky_relu', 'prelu', 'rrelu', 'elu', 'selu', 'gelu', 'silu', "
        "'mish', 'tanh', 'sigmoid', 'softplus', 'softmax', 'log_softmax', 'identity'; "
        "found 'rleu')"
    )


def test_golden_union_value() -> None:
    assert _message(BASE + "optim: {kind: adam, lr: -1}\n") == (
        "spec.yaml:7:25 optim.lr: invalid value (expected a number > 0 or 'auto'; found -1)"
    )


def test_golden_missing_field() -> None:
    assert _message(_with(L0, "- {kind: linear}")) == (
        "spec.yaml:5:7 model.layers.0.out_features: missing required field 'out_features'\n"
        "  fix: add `out_features: ...` (Output width)"
    )


def test_golden_duplicate_key_and_tag_together() -> None:
    assert _message(BASE + "name: u\nseed: !!python/name:os.getpid\n") == (
        "2 problems found:\n"
        "  spec.yaml:7:1 name: duplicate key 'name' (expected each key once per mapping)\n"
        "    fix: remove one of them\n"
        "  spec.yaml:8:7 seed: YAML tag '!!python/name:os.getpid' is not allowed: specs are plain "
        "data (expected plain YAML (mappings, lists, strings, numbers); found "
        "!!python/name:os.getpid)\n"
        "    fix: remove the tag"
    )


def test_golden_override_error() -> None:
    with pytest.raises(SpecError) as info:
        apply_overrides({"optim": {"kind": "adamw"}}, ["optim.lrr=1"])
    problem = info.value.problems[0]
    assert f"{problem.where}: {problem.message}" == (
        "override 'optim.lrr=1' optim.lrr: unknown field 'lrr'; did you mean 'lr'?"
    )


def test_golden_shape_error_with_line() -> None:
    with pytest.raises(ShapeError) as info:
        _load_and_infer(CNN.replace("kernel_size: 3", "kernel_size: 5"))
    assert str(info.value).startswith(
        "<spec>:4:52 model.layers.0.kernel_size: conv2d: kernel larger than its input"
    )


# -- mutation: nothing but SpecError escapes ------------------------------------------------------

JUNK: list[Any] = [None, "junk", -1, 0, 1.5, 1e309, [], {}, True, [1, "a"], {"kind": "?"}, "relu"]


def _nodes(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(data, dict):
        for k, v in data.items():
            found += _nodes(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            found += _nodes(v, (*path, i))
    return found


def _mutate(data: Any, rng: random.Random) -> Any:
    paths = [p for p in _nodes(data) if p]
    path = rng.choice(paths)
    parent = data
    for item in path[:-1]:
        parent = parent[item]
    key = path[-1]
    action = rng.choice(["delete", "junk", "insert", "rename", "wrap"])
    if action == "delete":
        del parent[key]
    elif action == "junk":
        parent[key] = rng.choice(JUNK)
    elif action == "insert" and isinstance(parent, dict):
        parent[rng.choice(["junk", "kind", "_x", "layers", "1"])] = rng.choice(JUNK)
    elif action == "rename" and isinstance(parent[key], str):
        text = parent[key]
        parent[key] = text[::-1] if rng.random() < 0.5 else text + "x"
    else:
        parent[key] = [parent[key]] if rng.random() < 0.5 else {"kind": parent[key]}
    return data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(experiment_data(), st.randoms(use_true_random=False), st.integers(1, 4))
def test_mutated_specs_only_raise_spec_errors(
    data: dict[str, Any], rng: random.Random, n: int
) -> None:
    for _ in range(n):
        data = _mutate(data, rng)
    try:
        _load_and_infer(dumps_data(data))
    except SpecError:
        pass  # ShapeError is a SpecError too


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_only_raises_spec_errors(text: str) -> None:
    try:
        _load_and_infer(text)
    except SpecError:
        pass


@settings(max_examples=100, deadline=None)
@given(
    experiment_data(),
    st.integers(0, 10_000),
    st.sampled_from(["\t", ":", "-", "[", "{", "&", "*", "!", "\n ", "#", "'", '"', "%"]),
)
def test_corrupted_yaml_text_only_raises_spec_errors(
    data: dict[str, Any], where: int, char: str
) -> None:
    text = dumps_data(data)
    where %= len(text)
    try:
        _load_and_infer(text[:where] + char + text[where:])
    except SpecError:
        pass


def test_spec_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        loads(textwrap.dedent("model: {input_shape: [4], layers: []}"))


def test_a_spec_class_called_from_python_raises_pydantic_validation_error() -> None:
    # plain pydantic models: the call raises pydantic's own error, which is a ValueError
    from pydantic import ValidationError

    from nnspec.spec import ExperimentSpec, Linear, ModelSpec

    with pytest.raises(ValidationError) as info:
        Linear(out_features=-1)
    assert not isinstance(info.value, SpecError) and isinstance(info.value, ValueError)
    assert [e["loc"] for e in info.value.errors()] == [("out_features",)]
    with pytest.raises(ValidationError, match="out_featurs"):
        Linear(out_featurs=3)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="dropout on the output layer"):
        ModelSpec(input_shape=(4,), layers=({"linear": 3, "dropout": 0.5},))
    with pytest.raises(ValidationError, match="adamm"):
        ExperimentSpec(model=ModelSpec(input_shape=(4,), layers=(Linear(out_features=3),)),
                       optim={"kind": "adamm"})  # fmt: skip


def test_io_validate_translates_for_the_class_that_was_validated() -> None:
    from nnspec.io import validate
    from nnspec.spec import Linear, TrainSpec

    with pytest.raises(SpecError) as info:
        validate({"out_features": -1}, model=Linear)
    (problem,) = info.value.problems
    assert problem.path == ("out_features",) and problem.found == "-1"
    with pytest.raises(SpecError, match="unknown field 'out_featurs'; did you mean 'out_features'"):
        validate({"out_featurs": 3}, model=Linear)
    with pytest.raises(SpecError, match=r"did you mean 'early_stopping\.patience'"):
        validate({"patience": 5}, model=TrainSpec)


def test_a_mapping_passed_to_compile_gives_a_spec_error_with_paths() -> None:
    import nnspec
    from nnspec.layers import Linear

    data = {"model": {"input_shape": [4], "layers": [{"linear": 3, "activation": "rleu"}]},
            "optim": {"kind": "adamm"}}  # fmt: skip
    with pytest.raises(SpecError) as info:
        nnspec.compile(data)
    found = {(p.where, p.message) for p in info.value.problems}
    assert ("optim.kind", "unknown optimizer 'adamm'; did you mean 'adam'?") in found
    assert any(where == "model.layers.0.activation" for where, _ in found)
    # a cross-field rule inside the experiment: the path goes into the model, also when the model
    # is a spec object
    head = {"linear": 3, "activation": "softmax"}
    with pytest.raises(SpecError, match=r"model\.layers\.0\.activation: double activation"):
        nnspec.compile({"model": {"input_shape": [4], "layers": [head]}})
    softmax_head = Linear(out_features=3, activation="softmax")
    model = nnspec.ModelSpec(input_shape=(4,), layers=(softmax_head,))
    with pytest.raises(SpecError, match=r"model\.layers\.0\.activation: double activation"):
        nnspec.compile({"model": model, "optim": {"kind": "adam"}})
    with pytest.raises(TypeError, match="expected ExperimentSpec or a mapping"):
        nnspec.compile("model.yaml")  # type: ignore[arg-type]


def test_a_mapping_passed_to_train_gives_a_spec_error_with_paths(tmp_path: Path) -> None:
    import nnspec

    data = {"model": {"input_shape": [4], "layers": [{"linear": 3}]},
            "train": {"epochs": 1, "patience": 5}}  # fmt: skip
    with pytest.raises(SpecError, match=r"train\.patience: unknown field 'patience'"):
        nnspec.train(data, run_dir=tmp_path)


def test_model_validate_keeps_pydantic_errors_for_nnspec_to_translate() -> None:
    # nnspec.load translates these with file and line; validators inside nested specs rely on it
    from pydantic import ValidationError

    from nnspec.spec import Linear

    with pytest.raises(ValidationError):
        Linear.model_validate({"out_features": -1})


def test_the_spec_package_does_not_import_the_translation() -> None:
    # the translation to SpecError lives in nnspec.io, a layer above the specs: no spec module
    # imports it, at module level or inside a function
    import ast
    from pathlib import Path

    import nnspec.spec

    found = []
    for path in Path(nnspec.spec.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            found += [f"{path.name}: {n}" for n in names if n.startswith("nnspec.io")]
    assert not found
