"""`nnspec init DIR`: the scaffold validates, trains and sweeps as generated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nnspec.cli.main import main as cli
from nnspec.cli.train import main as train

EXPERIMENT = ["--config-dir", "conf", "experiment=my_experiment"]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    assert cli(["init", str(tmp_path / "proj")]) == 0
    monkeypatch.chdir(tmp_path / "proj")
    return tmp_path / "proj"


def test_the_scaffold_validates_and_its_sweep_expands(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    groups = {p.parent.name for p in (project / "conf").glob("*/*.yaml")}
    assert groups == {"data", "model", "optim", "schedule", "train", "experiment", "sweep"}
    assert cli(["validate", *EXPERIMENT]) == 0
    assert "ok: experiment=my_experiment (my-experiment: 3 layers, 259 parameters)" in (
        capsys.readouterr().out
    )
    assert train([*EXPERIMENT, "-m", "sweep=my_sweep", "--dry-run"]) == 0
    assert "dry run: 8 trials" in capsys.readouterr().out
    for line in (project / "README.md").read_text().splitlines():
        if line.startswith("nnspec validate"):
            assert cli(line.split()[1:]) == 0


def test_init_never_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    assert cli(["init", str(tmp_path / "mine")]) == 2
    assert "exists and is not an empty folder" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]  # no temporary folder left
    (tmp_path / "empty").mkdir()
    assert cli(["init", str(tmp_path / "empty")]) == 0
    assert (tmp_path / "empty" / "conf" / "sweep" / "my_sweep.yaml").is_file()


@pytest.mark.slow
def test_the_scaffold_trains_and_sweeps(project: Path) -> None:
    assert train([*EXPERIMENT, "train.epochs=1"]) == 0
    argv = [*EXPERIMENT, "-m", "sweep=my_sweep", "hydra.sweeper.n_trials=2", "train.epochs=1"]
    assert train(argv) == 0
    (sweep,) = (project / "runs" / "my-experiment").glob("multirun_*")
    records = [json.loads(p.read_text()) for p in sweep.glob("*/trial.json")]
    assert [r["status"] for r in records] == ["ok", "ok"]
    assert (sweep / "best_spec.yaml").is_file()
