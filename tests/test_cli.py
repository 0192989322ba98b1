"""The ``nnspec`` command frame: validate, summary, schema, exit codes, no tracebacks."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from nnspec.cli import main as cli_main
from nnspec.cli import parser as cli_parser
from nnspec.cli.parser import build_parser, split_positionals
from nnspec.cli.schema import spec_json_schema
from nnspec.cli.summary import render_summary, totals
from nnspec.defaults import default_experiment
from nnspec.spec.layers import LAYER_SPECS

GOOD = """\
name: tiny
model:
  input_shape: [4]
  layers:
    - {kind: linear, out_features: 8}
    - {kind: linear, out_features: 3}
"""


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli_main.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = tmp_path / "good.yaml"
    path.write_text(GOOD)
    return path


# -- grammar ---------------------------------------------------------------------------------------


def parse(argv: list[str]) -> argparse.Namespace:
    """``argv`` (command first) parsed by the one tree, as ``nnspec`` parses it."""
    _, parsers = build_parser(descriptions={argv[0]: ""})
    return parsers[argv[0]].parse_intermixed_args(argv[1:])


def test_grammar_splits_specs_overrides_and_flags_in_any_order() -> None:
    ns = parse(["validate", "a.yaml", "--json", "optim.lr=1", "b.yml", "~seed"])
    assert ns.json and not ns.no_shapes
    assert split_positionals(ns.args) == (["a.yaml", "b.yml"], ["optim.lr=1", "~seed"])


def test_one_tree_parses_every_command() -> None:
    _, parsers = build_parser()
    assert set(parsers) == set(cli_parser.COMMANDS)
    assert parse(["plan", "a.yaml", "--out", "x.png", "optim.lr=1"]) == parse(
        ["plan", "a.yaml", "--out=x.png", "optim.lr=1"]
    )
    ns = parse(["train", "my.yaml", "optim=sgd", "-m", "--cfg", "job", "--dry-run", "seed=1,2",
                "--config-dir", "myconf", "--dry-run-trials", "3"])  # fmt: skip
    assert ns.multirun and ns.dry_run and ns.cfg == "job" and ns.config_dir == "myconf"
    assert ns.args == ["my.yaml", "optim=sgd", "seed=1,2"] and ns.dry_run_trials == 3
    assert parse(["list", "optimizers"]).kind == "optimizers"
    assert parse(["predict", "run", "d.csv", "--out", "p.csv"]).out == Path("p.csv")


def test_every_command_names_a_module_with_run_and_a_docstring() -> None:
    import importlib

    for name, command in cli_parser.COMMANDS.items():
        module = importlib.import_module(command.module)
        assert callable(module.run), name
        assert module.__doc__ and module.__doc__.lstrip("`").startswith(f"nnspec {name}"), name


def test_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    for name in cli_parser.COMMANDS:
        assert f"    {name}" in out
    assert run([], capsys)[0] == 2  # no command: usage, exit 2
    code, out, _ = run(["validate", "--help"], capsys)
    assert code == 0 and "--json" in out and "Exit status: 0 when every spec is valid" in out


def test_train_help_lists_groups_and_hydra_flags(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["train", "--help"], capsys)
    assert code == 0
    assert "optim: " in out and "adamw" in out and "experiment: " in out
    assert "--config-dir" in out and "--config-name" in out and "--hydra-help" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["valdate"], "unknown command 'valdate'; did you mean 'validate'?"),
        (["validate", "--jsn"], "unrecognized arguments: --jsn"),
        (["summary", "a.yaml", "b.yaml"], "nnspec summary takes one SPEC, got 2"),
        (["train", "--dry-run-trials", "0"], "expected a positive whole number"),
        (["train", "nosuchthing"], "neither a SPEC.yaml file nor a run directory"),
        (["list", "optimisers"], "invalid choice: 'optimisers'"),
        (["eval"], "the following arguments are required: RUN_DIR"),
    ],
)
def test_user_mistakes_exit_2_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(argv, capsys)
    assert code == 2 and message in err and "Traceback" not in err


def test_adding_a_command_is_one_table_row(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    module = ModuleType("fake_cmd")
    module.__doc__ = "nnspec fake X\n\nDoes fake things."
    module.run = lambda ns: 7 if ns.x == "x" else 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_cmd", module)
    add = lambda p: p.add_argument("x")  # noqa: E731
    table = {**cli_parser.COMMANDS, "fake": cli_parser.Command("fake_cmd", "a fake", add)}
    monkeypatch.setattr(cli_parser, "COMMANDS", table)
    monkeypatch.setattr(cli_main, "COMMANDS", table)
    assert run(["fake", "x"], capsys)[0] == 7
    assert "a fake" in run(["--help"], capsys)[1]


# -- list ------------------------------------------------------------------------------------------


def test_list_names_what_specs_can_use(capsys: pytest.CaptureFixture[str]) -> None:
    from nnspec.spec.optim import OPTIM_CLASSES

    code, out, _ = run(["list"], capsys)
    assert code == 0
    for kind in cli_parser.LIST_KINDS:
        assert f"{kind}:\n" in out
    names = {line.split()[0] for line in out.splitlines() if line.startswith("  ")}
    assert set(LAYER_SPECS) | set(OPTIM_CLASSES) | {"he_normal", "gelu", "cross_entropy"} <= names
    assert {"sklearn:digits", "synthetic:classification", "csv:PATH"} <= names
    code, out, _ = run(["list", "groups"], capsys)
    assert code == 0 and "layers:" not in out
    assert any(line.split()[0] == "experiment" and "iris_mlp" in line for line in out.splitlines())


# -- validate --------------------------------------------------------------------------------------


def test_validate_default_and_file(good: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["validate"], capsys)
    assert code == 0 and "ok: <default experiment> (digits-cnn: 6 layers" in out
    code, out, _ = run(["validate", "--no-shapes", "experiment=iris_mlp"], capsys)
    assert code == 0 and "ok: experiment=iris_mlp (iris_mlp: 3 layers)" in out
    code, out, _ = run(["validate", str(good)], capsys)
    assert code == 0 and f"ok: {good} (tiny: 2 layers, 67 parameters)" in out


def test_validate_reports_every_problem_with_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        GOOD.replace("out_features: 8", "out_features: 8, activation: rleu") + "seed: x\n"
    )
    code, out, err = run(["validate", str(bad)], capsys)
    assert code == 2
    assert f"error: {bad}: 2 problems (SpecError)" in err
    assert f"{bad}:5:51 model.layers.0.activation: unknown activation 'rleu'" in err
    assert f"{bad}:7:7 seed: must be an integer" in err
    assert "Traceback" not in err + out


@pytest.mark.parametrize(
    ("content", "phrase"),
    [
        (None, "file not found"),
        ("", "the spec is empty"),
        ("model: [\n", "invalid YAML"),
        ("model:\n\tinput_shape: [4]\n", "indent with spaces"),
        ("- 1\n", "must be a mapping"),
        ("x: !!python/object/apply:os.system [echo hi]\n", "is not allowed"),
        ("_target_: os.system\n", "'_target_' is not allowed"),
        ("a: 1\na: 2\n", "duplicate key 'a'"),
    ],
)
def test_validate_bad_input_exits_2_without_traceback(
    tmp_path: Path, content: str | None, phrase: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "spec.yaml"
    if content is not None:
        path.write_text(content)
    code, out, err = run(["validate", str(path)], capsys)
    assert code == 2
    assert phrase in err
    assert "Traceback" not in out + err


def test_validate_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["validate", str(tmp_path)], capsys)
    assert code == 2 and "is a directory" in err


def test_validate_several_specs_and_overrides(
    good: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("out_features: 3", "out_features: 0"))
    code, out, err = run(["validate", str(good), str(bad)], capsys)
    assert code == 2 and f"ok: {good}" in out and f"{bad}:6:36" in err
    code, out, _ = run(["validate", str(bad), "model.layers.1.out_features=5"], capsys)
    assert code == 0, out
    code, _, err = run(["validate", str(good), "optim.lr=-1"], capsys)
    assert code == 2 and "override 'optim.lr=-1' optim.lr: invalid value" in err


def test_validate_runs_shape_inference_with_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cnn.yaml"
    path.write_text(
        GOOD.replace("- {kind: linear, out_features: 8}", "- {conv2d: 4, kernel_size: 3}")
    )
    code, _, err = run(["validate", str(path)], capsys)
    assert code == 2 and "(ShapeError)" in err and f"{path}:5:" in err
    assert run(["validate", str(path), "--no-shapes"], capsys)[0] == 0


def test_validate_huge_width_without_allocating(capsys: pytest.CaptureFixture[str]) -> None:
    # 10**8 wide: ~51 billion parameters (under the 1 TiB bound), inferred without a weight
    code, out, _ = run(["validate", "model.layers.4.out_features=100000000"], capsys)
    assert code == 0 and "parameters" in out  # shape functions only: no 10**8-wide weight


def test_validate_json(good: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD + "name: again\n")
    code, out, _ = run(["validate", str(good), str(bad), "--json"], capsys)
    records = json.loads(out)
    assert code == 2
    assert records[0]["ok"] is True and records[0]["params"] == 67
    assert records[1]["problems"][0] == {
        "path": ["name"], "message": "duplicate key 'name'",
        "expected": "each key once per mapping", "found": None, "fix": "remove one of them",
        "file": str(bad), "line": 7, "col": 1,
    }  # fmt: skip


# -- internal errors -------------------------------------------------------------------------------


def test_internal_error_is_one_line_unless_debug(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom(args: argparse.Namespace) -> int:
        raise RuntimeError("kaput")

    monkeypatch.setattr("nnspec.cli.validate.run", boom)
    monkeypatch.delenv("NNSPEC_DEBUG", raising=False)
    code, _, err = run(["validate"], capsys)
    assert code == 1
    assert err.strip().count("\n") == 0
    assert "internal error (RuntimeError: kaput)" in err and "NNSPEC_DEBUG=1" in err
    monkeypatch.setenv("NNSPEC_DEBUG", "1")
    code, _, err = run(["validate"], capsys)
    assert code == 1 and "Traceback" in err and "kaput" in err


# -- summary ---------------------------------------------------------------------------------------


@dataclass
class StubInfo:
    path: tuple[str | int, ...]
    name: str
    kind: str
    out_shape: tuple[int, ...]
    params: int
    trainable: bool = True
    activation: str | None = None
    init: str | None = None
    init_reason: str | None = None
    norm: str | None = None
    depth: int = 0
    children: tuple[Any, ...] = field(default_factory=tuple)


def test_render_summary_against_the_layer_info_contract() -> None:
    from rich.console import Console

    child = StubInfo(("model", "layers", 0, "layers", 0), "0", "linear", (8,), 40, depth=1,
                     activation="relu", init="he_normal(scale=2)",
                     init_reason="auto: relu -> He (INIT-2)", norm="batch")  # fmt: skip
    infos = [
        StubInfo(("model", "layers", 0), "stem", "block", (8,), 40, children=(child,)),
        StubInfo(("model", "layers", 1), "1", "linear", (3,), 27, trainable=False),
    ]
    t = totals(infos)
    assert (t.trainable, t.frozen, t.total) == (40, 27, 67)
    assert t.size_mb == pytest.approx(67 * 4 / 1e6)
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(render_summary("stub", (4,), infos))
    text = console.export_text()
    assert "layers.0 (stem)" in text
    assert "  layers.0.layers.0" in text  # the child, indented
    assert "he_normal(scale=2) (auto: relu -> He (INIT-2))" in text
    assert "27 frozen" in text
    assert "trainable 40  frozen 27  size 0.00 MB" in text


def test_summary_of_the_default_matches_plain_torch(capsys: pytest.CaptureFixture[str]) -> None:
    import torch
    from torch import nn

    code, out, _ = run(["summary"], capsys)
    assert code == 0
    # The digits CNN written by hand: conv(no bias)+BN twice, pool, flatten, linear+BN, head.
    hand = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.LeakyReLU(0.1),
        nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(512, 128, bias=False), nn.BatchNorm1d(128), nn.ReLU(), nn.Dropout(0.3),
        nn.Linear(128, 10),
    )  # fmt: skip
    expected = sum(p.numel() for p in hand.parameters())
    assert hand(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    assert f"trainable {expected:,}  frozen 0" in out
    for column in ("layer", "kind", "output shape", "params", "activation", "init (why)", "norm"):
        assert column in out
    assert "head: Glorot x0.1 (INIT-9)" in out


def test_summary_of_a_file_with_overrides(good: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["summary", str(good), "model.layers.0.out_features=16"], capsys)
    assert code == 0 and "(16,)" in out and f"{4 * 16 + 16 + 16 * 3 + 3:,}" in out


# -- schema ----------------------------------------------------------------------------------------


def test_schema_lists_every_registered_layer_kind(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["schema"], capsys)
    assert code == 0
    schema = json.loads(out)
    assert schema["$schema"].startswith("https://json-schema.org/")
    layer = schema["$defs"]["LayerBase"]
    assert set(layer["discriminator"]["mapping"]) == set(LAYER_SPECS)
    assert len(layer["oneOf"]) == len(LAYER_SPECS)
    assert schema["properties"]["model"] == {"$ref": "#/$defs/ModelSpec"}


def test_schema_accepts_bare_activation_names() -> None:
    schema = spec_json_schema()
    activation = json.dumps(schema["$defs"]["Linear"]["properties"]["activation"])
    assert '"enum": ["relu", "leaky_relu"' in activation


def test_schema_describes_the_default_experiment() -> None:
    # A small structural check (no jsonschema dependency): every field the default experiment
    # writes is a property of the schema of its section.
    schema = spec_json_schema()
    data = json.loads(json.dumps(default_experiment().model_dump(mode="json")))
    assert set(data) <= set(schema["properties"])
    assert set(data["model"]) <= set(schema["$defs"]["ModelSpec"]["properties"])
    for layer in data["model"]["layers"]:
        ref = schema["$defs"]["LayerBase"]["discriminator"]["mapping"][layer["kind"]]
        props = schema["$defs"][ref.rsplit("/", 1)[1]]["properties"]
        assert set(layer) <= set(props)


def test_schema_of_one_layer_kind(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["schema", "--layer=conv2d"], capsys)
    assert code == 0 and json.loads(out)["properties"]["kind"]["const"] == "conv2d"
    code, _, err = run(["schema", "--layer=conv2dd"], capsys)
    assert code == 2 and "did you mean 'conv2d'?" in err


# -- the installed entry point ---------------------------------------------------------------------


def test_console_script_exit_codes(good: Path, tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("nnspec")
    if not exe.exists():
        pytest.skip("the nnspec console script is not installed in this environment")
    ok = subprocess.run([exe, "validate", good], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {input_shape: [4], layers: [{linear: -1}]}\n")
    res = subprocess.run([exe, "validate", bad], capture_output=True, text=True)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "model.layers.0.out_features" in res.stderr


def test_group_selection_goes_through_hydra_composition(
    good: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["validate", "optim=sgd", "optim.lr=0.05"], capsys)
    assert code == 0, err
    code, out, err = run(["summary", str(good), "optim=sgd"], capsys)
    assert code == 0 and "trainable 67" in out, err
    code, _, err = run(["validate", "optim=sgd", "optim.lr=-1"], capsys)
    assert code == 2 and "optim.lr" in err and "Traceback" not in err


def test_python_dash_m_nnspec_validates_an_example() -> None:
    root = Path(__file__).resolve().parents[1]
    res = subprocess.run(
        [sys.executable, "-m", "nnspec", "validate", "examples/iris_mlp.yaml"],
        capture_output=True, text=True, cwd=root, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("ok: examples/iris_mlp.yaml (iris_mlp: 3 layers")


def test_validate_imports_no_torch() -> None:
    root = Path(__file__).resolve().parents[1]
    code = (
        "import sys; from nnspec.cli.main import main; "
        "code = main(['validate', 'examples/iris_mlp.yaml', 'experiment=iris_mlp']); "
        "print(code, 'torch' in sys.modules)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert res.stdout.split()[-2:] == ["0", "False"], res.stderr


# -- a closed stdout -------------------------------------------------------------------------------


class _ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_stdout_ends_the_command_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    code = cli_main.main(["schema"])
    assert code == cli_main.EXIT_BROKEN_PIPE == 141
    assert capsys.readouterr().err == ""


def test_schema_into_a_closed_pipe_exits_141_without_a_message() -> None:
    import os

    read, write = os.pipe()
    os.close(read)  # the reader went away, as `nnspec schema | head` once head has its lines
    try:
        res = subprocess.run(
            [sys.executable, "-m", "nnspec", "schema"], stdout=write, stderr=subprocess.PIPE,
            text=True, timeout=120,
        )  # fmt: skip
    finally:
        os.close(write)
    assert res.returncode == 141, res.stderr
    assert res.stderr == ""


def test_the_error_printer_heads_with_the_errors_title(capsys: pytest.CaptureFixture[str]) -> None:
    from nnspec.cli.common import print_error
    from nnspec.errors import DataError, Problem

    problems = [Problem(("data", "source"), "bad cell"), Problem(("data", "source"), "bad name")]
    print_error(DataError(problems, title="t[1].csv: 2 problems in the data file"))
    print_error(DataError(problems))
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "error: t[1].csv: 2 problems in the data file (DataError)"
    assert err[3] == "error: 2 problems (DataError)" and "bad name" in err[5]
