"""``nnspec check`` command: exit status, --only, --json, failure advice."""

from __future__ import annotations

import json
from pathlib import Path

from nnspec.cli.main import main as nnspec_main


def check_main(argv: list[str]) -> int:
    return nnspec_main(["check", *argv])


def lint_main(argv: list[str]) -> int:
    return nnspec_main(["lint", *argv])


PLANTED = Path(__file__).parent / "planted"


def test_only_and_json_report_numbers(capsys) -> None:
    spec = str(PLANTED / "healthy_digits_mlp.yaml")
    assert check_main([spec, "--only", "init-loss,batch-independence", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    assert [c["name"] for c in report["checks"]] == ["init-loss", "batch-independence"]
    init = report["checks"][0]["numbers"]
    assert abs(init["loss"] - init["ln_C"]) < 0.1  # CHECK-2: ln 10 for balanced digits


def test_failed_check_exits_1_with_meaning_and_tries(capsys) -> None:
    spec = str(PLANTED / "sgd_lr10.yaml")
    assert nnspec_main(["check", spec, "--only=overfit-batch"]) == 1
    out = capsys.readouterr().out
    assert "overfit-batch" in out and "fail" in out
    assert "try 1: lower the learning rate" in out and "some checks FAILED" in out


def test_unknown_check_name_exits_2(capsys) -> None:
    assert check_main([str(PLANTED / "healthy_digits_mlp.yaml"), "--only", "overfit"]) == 2
    assert "did you mean 'overfit-batch'" in capsys.readouterr().err


def test_lint_with_data_statistics(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "s.yaml"
    text = (PLANTED / "healthy_digits_mlp.yaml").read_text()
    spec.write_text(text.replace("batch_size: 64}", "batch_size: 64, standardize: false}"))
    assert lint_main([str(spec), "--data"]) == 0
    out = capsys.readouterr().out
    assert "DATA-4" not in out  # raw digit pixels (0-16) are within the scaling thresholds
    assert lint_main([str(spec)]) == 0
    assert "DATA-4 (unscaled-input)" in capsys.readouterr().out  # statically: tabular, unscaled


def test_layers_flag_prints_the_per_layer_gradient_table(capsys) -> None:
    spec = str(PLANTED / "healthy_digits_mlp.yaml")
    assert check_main([spec, "--only", "gradient-flow", "--layers"]) == 0
    out = capsys.readouterr().out
    assert "update/weight" in out and "layers.0.op" in out and "dead" in out
