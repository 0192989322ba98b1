"""nnspec.io: safe reading with a source map, validation, overrides, import lightness."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nnspec.errors import Problem, ShapeError, SpecError
from nnspec.io import (
    apply_overrides,
    attach_source,
    dump,
    dump_data,
    load,
    load_with_source,
    loads,
    override_origins,
    read_yaml,
    validate,
)
from nnspec.spec import ExperimentSpec, ModelSpec

SPEC = """\
name: small
model:
  input_shape: [4]
  layers:
    - {kind: linear, out_features: 8, activation: relu}
    - linear: 2
optim: {kind: sgd, lr: 0.1}
"""


# -- reading and the source map --------------------------------------------------------------------


def test_read_yaml_returns_plain_data_and_marks() -> None:
    data, source = read_yaml(SPEC)
    assert data["model"]["layers"][1] == {"linear": 2}
    assert type(data["optim"]["lr"]) is float  # no ruamel wrapper types leak out
    assert source.locate(("model",)) == (None, 2, 1)  # block mapping: marked at its key
    assert source.locate(("model", "input_shape")) == (None, 3, 16)  # value on the key's line
    assert source.locate(("model", "layers", 0)) == (None, 5, 7)
    assert source.locate(("model", "layers", 0, "activation")) == (None, 5, 51)
    assert source.locate(("optim", "lr")) == (None, 7, 24)


def test_locate_falls_back_to_the_nearest_existing_ancestor() -> None:
    _, source = read_yaml(SPEC)
    assert source.locate(("model", "layers", 1, "out_features")) == (None, 6, 7)
    assert source.locate(("model", "layers", 0, "init", "mode")) == (None, 5, 7)
    assert source.locate(("train", "epochs")) == (None, 1, 1)  # absent section: the file start


def test_yaml_1_2_scalars() -> None:
    data, _ = read_yaml("a: yes\nb: 1e-3\nc: on\nd: 2024-01-01\ne: .inf\nf: 0x10\ng: ~\n")
    assert data == {"a": "yes", "b": 0.001, "c": "on", "d": "2024-01-01", "e": float("inf"),
                    "f": 16, "g": None}  # fmt: skip


def test_anchors_aliases_and_merge_keys_are_plain_data() -> None:
    text = (
        "base: &hidden {kind: linear, out_features: 8, activation: tanh}\n"
        "model:\n  input_shape: [4]\n  layers:\n"
        "    - *hidden\n"
        "    - {<<: *hidden, out_features: 2, activation: identity}\n"
    )
    data, _ = read_yaml(text)
    data.pop("base")
    spec = validate(data)
    assert spec.model.layers[0].activation.kind == "tanh"
    assert spec.model.layers[1].out_features == 2


def test_path_or_text(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SPEC)
    assert load(path) == load(str(path)) == loads(SPEC)
    with pytest.raises(SpecError) as info:
        load(str(tmp_path / "missing.yaml"))  # ends with .yaml: a path, not YAML text
    assert info.value.problems[0].message == "file not found"
    with pytest.raises(SpecError, match="is a directory"):
        load(tmp_path)


def test_errors_from_a_file_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(SPEC.replace("relu", "rleu"))
    with pytest.raises(SpecError) as info:
        load(path)
    assert str(info.value).startswith(f"{path}:5:51 model.layers.0.activation: unknown activation")


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(SpecError, match="not UTF-8"):
        load(path)


def test_alias_bomb_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("nnspec.io.reader.MAX_NODES", 20_000)  # keep the test fast
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]
    with pytest.raises(SpecError, match="too large"):
        read_yaml("\n".join(lines) + "\n")


def test_tags_anywhere_are_refused_and_all_reported() -> None:
    text = "a: !!python/name:os.system x\nb: [1, !x 2]\nc: {d: !!binary aGk=}\n"
    with pytest.raises(SpecError) as info:
        read_yaml(text)
    assert [(p.path, p.line) for p in info.value.problems] == [
        (("a",), 1), (("b", 1), 2), (("c", "d"), 3)
    ]  # fmt: skip


def test_harmless_explicit_tags_that_change_nothing_pass() -> None:
    data, _ = read_yaml("name: !!str abc\n")  # the value is the same string without the tag
    assert data == {"name": "abc"}


def test_forbidden_keys_at_any_depth() -> None:
    text = "model:\n  layers:\n    - {_target_: os.system}\n_partial_: true\n"
    with pytest.raises(SpecError) as info:
        read_yaml(text)
    assert {p.path for p in info.value.problems} == {
        ("model", "layers", 0, "_target_"),
        ("_partial_",),
    }


# -- validation ------------------------------------------------------------------------------------


def test_validate_a_section_with_a_prefix() -> None:
    data, source = read_yaml(SPEC.replace("out_features: 8", "out_features: -8"))
    with pytest.raises(SpecError) as info:
        validate(data["model"], source, model=ModelSpec, prefix=("model",))
    problem = info.value.problems[0]
    assert (problem.path, problem.line) == (("model", "layers", 0, "out_features"), 5)


def test_validate_returns_the_spec() -> None:
    spec, source = load_with_source(SPEC)
    assert isinstance(spec, ExperimentSpec)
    assert spec.model.layers[1].out_features == 2
    assert source.file is None


def test_unknown_field_suggestion_uses_the_fields_of_that_layer_kind() -> None:
    text = SPEC.replace("linear: 2", "{kind: conv1d, out_channel: 2, kernel_size: 1}")
    with pytest.raises(SpecError) as info:
        loads(text)
    assert "did you mean 'out_channels'?" in str(info.value)


# -- attaching sources to compiler errors --------------------------------------------------------


def test_attach_source_fills_only_missing_locations() -> None:
    _, source = read_yaml(SPEC)
    located = Problem(("model",), "kept", file="other.yaml", line=99)
    err = ShapeError([Problem(("model", "layers", 1), "bad"), located])
    out = attach_source(err, source)
    assert isinstance(out, ShapeError)
    assert (out.problems[0].line, out.problems[0].col) == (6, 7)
    assert out.problems[1] == located
    assert "6:7 model.layers.1: bad" in str(out)
    assert err.problems[0].line is None  # the original is not modified
    assert attach_source(err, None) is err


def test_override_origins_win_in_the_source_map() -> None:
    _, source = read_yaml(SPEC)
    source = source.with_origins(override_origins(["optim.lr=-1"]))
    assert source.locate(("optim", "lr")) == ("override 'optim.lr=-1'", None, None)
    assert source.locate(("optim", "kind")) == (None, 7, 15)


# -- overrides -------------------------------------------------------------------------------------


def test_overrides_set_values_of_every_kind() -> None:
    data, _ = read_yaml(SPEC)
    out = apply_overrides(
        data,
        [
            "optim.lr=3e-4",
            "model.layers.1.out_features=3",  # into a shorthand layer
            "model.layers.0.activation.kind=leaky_relu",  # a bare name becomes a mapping
            "model.layers.0.activation.negative_slope=0.2",
            "model.input_shape=[4]",
            "schedule.warmup.epochs=2",  # a section left out starts from its default kind
            "name=with spaces",
            "~model.layers.0.activation.negative_slope",
        ],
    )
    spec = validate(out)
    assert spec.optim.lr == 3e-4
    assert spec.model.layers[1].out_features == 3
    assert spec.model.layers[0].activation.kind == "leaky_relu"
    assert spec.schedule.kind == "constant" and spec.schedule.warmup.epochs == 2
    assert spec.name == "with spaces"
    assert data["optim"]["lr"] == 0.1  # the input is not modified


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.lrr=1", "unknown field 'lrr'; did you mean 'lr'?"),
        ("model.layers.7.out_features=3", "no item 7 in a list of 2"),
        ("lr", "key.path=value"),
        ("optim..lr=1", "key.path=value"),
        ("optim.lr=1,2", "a sweep is a value of `nnspec train -m`"),
        ("optim.lr=[1", "key.path=value"),
        ("model.layers.hiden.out_features=3", "no item named 'hiden' in model.layers"),
        ("name.x=1", "cannot set 'x' inside 'small'"),
    ],
)
def test_bad_overrides_name_the_override(override: str, message: str) -> None:
    data, _ = read_yaml(SPEC)
    with pytest.raises(SpecError) as info:
        apply_overrides(data, [override])
    problem = info.value.problems[0]
    assert problem.file == f"override '{override}'"
    assert message in problem.message


# -- dump ------------------------------------------------------------------------------------------


def test_dump_data_fills_every_default() -> None:
    data = dump_data(loads(SPEC))
    assert set(data) == set(ExperimentSpec.model_fields)
    assert data["model"]["layers"][1]["kind"] == "linear"
    assert data["optim"]["momentum"] == 0.9  # SGD's default, written out
    assert dump(loads(SPEC)).startswith("spec_version: 1\nname: small\n")


# -- import lightness (STYLE §1) -------------------------------------------------------------------


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_spec_and_io_do_not_import_torch() -> None:
    mods = _modules_after("import nnspec.spec, nnspec.io; nnspec.io.loads(" + repr(SPEC) + ")")
    assert "torch" not in mods


def test_import_nnspec_is_light() -> None:
    mods = _modules_after("import nnspec; nnspec.SpecError; nnspec.load")
    heavy = {"torch", "hydra", "omegaconf", "matplotlib", "optuna", "sklearn"}
    assert not heavy & mods, sorted(heavy & mods)


def test_cli_help_is_light() -> None:
    mods = _modules_after("from nnspec.cli.main import main; main(['--help'])")
    assert not {"torch", "hydra", "matplotlib", "optuna", "sklearn", "rich"} & mods


# -- the README's "Spec grammar" and "Errors" sections are run ------------------------------------

README = Path(__file__).resolve().parents[1] / "README.md"


def _section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def _blocks(section: str, lang: str) -> list[str]:
    import re

    return re.findall(rf"```{lang}\n(.*?)```", section, re.S)


def test_readme_grammar_example_is_the_default_experiment() -> None:
    from nnspec.defaults import default_experiment

    (yaml_text,) = _blocks(_section("Spec grammar"), "yaml")
    assert loads(yaml_text) == default_experiment()
    for code in _blocks(_section("Spec grammar"), "python"):
        exec(compile(code, "README.md", "exec"), {})


def test_readme_error_example_is_what_validate_prints() -> None:
    (yaml_text,) = _blocks(_section("Spec grammar"), "yaml")
    bad = (
        yaml_text.replace(
            "{linear: 128, dropout: 0.3}", "{linear: 128, dropout: 0.3, activation: rleu}"
        )
        .replace("lr: 3.0e-3", "lr: -3.0e-3")
        .replace("train: {epochs: 30}", "train: {epochs: 30, patience: 5}")
    )
    with pytest.raises(SpecError) as info:
        loads(bad, filename="digits.yaml")
    (shown,) = [b for b in _blocks(_section("Errors"), "") if b.startswith("error:")]
    lines = shown.strip().splitlines()
    assert lines[0] == "error: digits.yaml: 3 problems (SpecError)"
    for line, problem in zip(lines[1:], info.value.problems, strict=True):
        assert str(problem).startswith(line.strip().split("...")[0])


def test_readme_attach_source_snippet_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(README.parent)
    (code,) = _blocks(_section("Errors"), "python")
    exec(compile(code, "README.md", "exec"), {})


def test_yaml_directives_and_documents() -> None:
    data, _ = read_yaml("%YAML 1.1\n---\nname: yes\n")  # the file's own YAML version is honoured
    assert data == {"name": True}
    with pytest.raises(SpecError) as info:
        read_yaml("name: a\n---\nname: b\n")
    assert info.value.problems[0].line == 2
    assert "one YAML document" in str(info.value)
    data, _ = read_yaml("\ufeffname: a\r\nseed: 1\r\n")  # BOM and CRLF
    assert data == {"name": "a", "seed": 1}
