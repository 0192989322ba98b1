"""The user's own config folder, named layers and `${` in spec files, through every command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nnspec.cli.main import main as cli
from nnspec.cli.train import main as train
from nnspec.run.api import RunResult

FAST = "defaults:\n  - adamw\n  - _self_\nlr: 0.02\n"  # extends a built-in option
WIDE = """# @package _global_
model:
  input_shape: [30]
  layers:
    - {kind: linear, name: hidden, out_features: 64}
    - {kind: linear, name: head, out_features: 1}
"""
MINE = """# @package _global_
defaults:
  - override /data: breast_cancer
  - override /model: wide
  - _self_
name: mine
train:
  epochs: 2
"""


@pytest.fixture
def conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for rel, text in {"optim/fast.yaml": FAST, "model/wide.yaml": WIDE,
                      "experiment/mine.yaml": MINE}.items():  # fmt: skip
        (tmp_path / "conf" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "conf" / rel).write_text(text)
    return tmp_path / "conf"


def _recording(seen: list[Any]) -> Any:
    def fake(spec: Any, *, run_dir: Path, base_dir: Path | None = None) -> RunResult:
        seen.append(spec)
        run_dir.mkdir(parents=True, exist_ok=True)
        return RunResult(run_dir, {}, {}, 1, "val_loss", 0.5, "min", 0.01, 2, 1)

    return fake


def test_validate_and_train_use_the_users_folder(
    conf: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(["validate", "--config-dir", "conf", "experiment=mine", "optim=fast"]) == 0
    assert "ok: experiment=mine optim=fast (mine: 2 layers" in capsys.readouterr().out
    seen: list[Any] = []
    argv = ["--config-dir", "conf", "experiment=mine", "optim=fast", "-m", "model=wide,mlp"]
    assert train([*argv, "--dry-run"]) == 0
    assert "2 trials" in capsys.readouterr().out
    assert train(argv, train_fn=_recording(seen)) == 0
    assert [s.model.layers[0].out_features for s in seen] == [64, 32]
    assert {(s.optim.kind, s.optim.lr) for s in seen} == {("adamw", 0.02)}  # extends adamw


def test_a_mistake_in_a_user_file_names_the_file_and_line(
    conf: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (conf / "optim" / "fast.yaml").write_text("defaults:\n  - adamw\n  - _self_\nlr: -1\n")
    assert cli(["validate", "--config-dir", "conf", "optim=fast"]) == 2
    err = capsys.readouterr().err
    assert f"{conf / 'optim' / 'fast.yaml'}:4:1 optim.lr" in err
    assert train(["--config-dir", "conf", "optim=fast"], train_fn=_recording([])) == 2
    assert f"{conf / 'optim' / 'fast.yaml'}:4:1 optim.lr" in capsys.readouterr().err
    assert not Path("runs").exists()


def test_a_user_option_named_like_a_built_in_one_wins(conf: Path) -> None:
    (conf / "optim" / "adam.yaml").write_text("kind: sgd\nlr: 0.3\n")
    seen: list[Any] = []
    argv = ["optim=adam", "hydra.run.dir=out"]
    assert train(["--config-dir", "conf", *argv], train_fn=_recording(seen)) == 0
    assert train([f"hydra.searchpath=[file://{conf}]", *argv], train_fn=_recording(seen)) == 0
    assert train(argv, train_fn=_recording(seen)) == 0
    assert [s.optim.kind for s in seen] == ["sgd", "sgd", "adam"]


def test_cfg_and_info_show_which_file_was_used(
    conf: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (conf / "optim" / "adam.yaml").write_text("kind: sgd\nlr: 0.3\n")
    capsys.readouterr()
    assert train(["--config-dir", "conf", "optim=adam", "model=wide", "--cfg", "job"]) == 0
    out = capsys.readouterr().out
    assert f"# optim: {conf / 'optim' / 'adam.yaml'}" in out
    assert f"# model: {conf / 'model' / 'wide.yaml'}" in out
    assert "# data: nnspec:data/digits.yaml" in out
    assert train(["--config-dir", "conf", "optim=fast", "--info", "defaults"]) == 0
    assert f"# optim: {conf / 'optim' / 'fast.yaml'}" in capsys.readouterr().out


def test_layers_are_addressed_by_name_in_every_command(
    conf: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--config-dir", "conf", "experiment=mine", "model.layers.hidden.out_features=8"]
    assert cli(["validate", *argv]) == 0
    assert "(mine: 2 layers, 257 parameters)" in capsys.readouterr().out  # 30*8+8 + 8+1
    seen: list[Any] = []
    assert train([*argv, "hydra.run.dir=out"], train_fn=_recording(seen)) == 0
    assert seen[0].model.layers[0].out_features == 8
    assert cli(["validate", *argv[:3], "model.layers.hiden.p=1"]) == 2
    err = capsys.readouterr().err
    assert "no item named 'hiden' in model.layers; did you mean 'hidden'?" in err


def test_interpolation_in_a_spec_file_is_refused_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NNSPEC_SECRET", "leaked")
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "name: ${oc.env:NNSPEC_SECRET}\nmodel:\n  input_shape: [4]\n  layers:\n    - linear: 3\n"
    )
    for argv in (["validate", str(spec)], ["validate", str(spec), "seed=1"]):
        assert cli(argv) == 2
        assert f"{spec}:1:7 name: '${{' is not allowed in a spec" in capsys.readouterr().err
    assert train([str(spec), "hydra.run.dir=out"], train_fn=_recording([])) == 2
    err = capsys.readouterr().err
    assert "YAML anchor" in err and "leaked" not in err
    seen: list[Any] = []  # the command line is the user's own: Hydra interpolation stays
    assert train(["name=${optim.kind}_run", "hydra.run.dir=out"], train_fn=_recording(seen)) == 0
    assert seen[0].name.endswith("_run") and "$" not in seen[0].name
