"""``nnspec lint``: exit status 0 / 1 (error findings) / 2 (invalid spec), --strict, overrides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nnspec.cli.main import main as nnspec_main


def main(argv: list[str]) -> int:
    return nnspec_main(["lint", *argv])


SPEC = """\
task: classification
data: {source: sklearn:iris}
model:
  input_shape: [4]
  layers:
    - {kind: linear, out_features: 16, dropout: 0.05}
    - linear: 3
"""


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC)
    return path


def test_warnings_only_exit_0_and_name_file_line(spec_file: Path, capsys) -> None:
    assert main([str(spec_file)]) == 0
    out = capsys.readouterr().out
    assert f"{spec_file}:6 model.layers.0.dropout: warning REG-4 (dropout-out-of-range)" in out
    assert out.rstrip().endswith("1 warning")


def test_strict_exits_1(spec_file: Path) -> None:
    assert main([str(spec_file), "--strict"]) == 1


def test_override_fixes_the_finding_and_ignore_shows_silence(spec_file: Path, capsys) -> None:
    assert main([str(spec_file), "--strict", "model.layers.0.dropout=0.2"]) == 0
    assert main([str(spec_file), "--strict", "lint.ignore=[REG-4]"]) == 0
    assert "silenced by lint.ignore: REG-4" in capsys.readouterr().out


def test_error_finding_exits_1(tmp_path: Path, capsys) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        SPEC.replace("    - linear: 3", "    - linear: 3\n    - dropout: 0.2\n    - flatten")
    )
    assert main([str(path)]) == 1
    assert "error OUT-5 (dropout-on-output)" in capsys.readouterr().out


def test_double_softmax_is_an_invalid_spec_exit_2(tmp_path: Path, capsys) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SPEC.replace("linear: 3", "{linear: 3, activation: softmax}"))
    assert main([str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:7" in err and "double activation" in err and "OUT-3/4" in err


def test_missing_file_and_bad_override_exit_2(tmp_path: Path, spec_file: Path) -> None:
    assert main([str(tmp_path / "nope.yaml")]) == 2
    assert main([str(spec_file), "optim.lrr=1"]) == 2


def test_json_output_lists_active_and_silenced(spec_file: Path, capsys) -> None:
    assert main([str(spec_file), "--json", "lint.ignore=[REG-4]"]) == 0
    (item,) = json.loads(capsys.readouterr().out)
    assert item["rule"] == "REG-4" and item["silenced"] is True and item["line"] == 6


def test_rules_table_lists_every_rule(capsys) -> None:
    assert main(["--rules"]) == 0
    out = capsys.readouterr().out
    assert "init-activation-mismatch" in out and "OPT-9" in out


def test_shape_error_is_an_invalid_spec_with_its_line(tmp_path: Path, capsys) -> None:
    path = tmp_path / "s.yaml"
    conv = "- {kind: conv2d, out_channels: 4, kernel_size: 3}"
    path.write_text(SPEC.replace("- linear: 3", conv))
    assert main([str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:7" in err and "conv2d" in err
