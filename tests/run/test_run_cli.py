"""The trainer's commands: nnspec plan, predict, eval."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from runhelp import tiny

from nnspec.cli.main import main
from nnspec.cli.plan import key_points
from nnspec.errors import DataError
from nnspec.io import dump
from nnspec.run import load_run
from nnspec.workflow import train


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("iris")
    spec = tiny(
        tmp,
        data={"source": "sklearn:iris", "options": {}},
        model={"input_shape": [4], "layers": [{"linear": 16}, {"linear": 3}]},
        train={"epochs": 30},
    )
    return train(spec).run_dir


def test_plan_prints_steps_and_lr_and_writes_the_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec_file = tmp_path / "s.yaml"
    spec = tiny(tmp_path, schedule={"kind": "cosine", "warmup": {"epochs": 1}})
    spec_file.write_text(dump(spec))
    png = tmp_path / "lr.png"
    assert main(["plan", str(spec_file), f"--out={png}"]) == 0
    out = capsys.readouterr().out
    assert "7 steps/epoch x 4 epochs = 28 steps (warmup 7)" in out
    assert "end of warmup" in out and png.stat().st_size > 1000


def test_key_points() -> None:
    curve = [float(i) for i in range(100)]
    points = key_points(curve, 10)
    assert [p[1] for p in points] == [0, 10, 25, 50, 75, 99]


def test_predict_writes_labels_and_probabilities(iris_run: Path, tmp_path: Path) -> None:
    from sklearn.datasets import load_iris

    iris = load_iris()
    data = tmp_path / "in.csv"
    with data.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(iris.feature_names)
        w.writerows(iris.data[[0, 60, 140]].tolist())
    out = tmp_path / "pred.csv"
    assert main(["predict", str(iris_run), str(data), f"--out={out}"]) == 0
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert [r["prediction"] for r in rows] == ["setosa", "versicolor", "virginica"]
    probs = np.array([[float(r[f"p_{n}"]) for n in iris.target_names] for r in rows])
    assert np.allclose(probs.sum(1), 1, atol=1e-5)


def test_predict_reports_a_bad_cell(
    iris_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sklearn.datasets import load_iris

    data = tmp_path / "bad.csv"
    data.write_text(",".join(load_iris().feature_names) + "\n1,2,x,4\n")
    assert main(["predict", str(iris_run), str(data)]) == 2
    assert "bad.csv:2 data: column 'petal length (cm)': not a number" in capsys.readouterr().err


def test_predict_reports_a_missing_data_file(
    iris_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # was an internal error (FileNotFoundError, exit 1) until 2026-12-05
    assert main(["predict", str(iris_run), str(tmp_path / "nope.csv")]) == 2
    err = capsys.readouterr().err
    assert f"data: data file not found: {tmp_path / 'nope.csv'}" in err
    assert "fix: check the path" in err
    with pytest.raises(DataError, match="data file not found"):  # the same from Python
        load_run(iris_run).predict(tmp_path / "nope.csv")


def test_eval_recomputes_the_recorded_metrics(
    iris_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", str(iris_run)]) == 0
    out = capsys.readouterr().out
    acc = json.loads((iris_run / "summary.json").read_text())["test_metrics"]["accuracy"]
    assert out.count(f"{acc:.6g}") >= 2  # recomputed and recorded columns agree


def test_eval_of_a_folder_that_is_not_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", str(tmp_path)]) == 2
    assert "not a finished nnspec run" in capsys.readouterr().err
