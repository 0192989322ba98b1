"""`nnspec export`: ONNX (run by onnxruntime), ExportedProgram and TorchScript files give the
eager model's outputs (max abs diff <= 1e-4) for an MLP, a CNN, a ResNet and an LSTM, with a
dynamic batch; `nnspec predict model.onnx` gives the run's own predictions."""

from __future__ import annotations

import csv
import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import nnspec
from nnspec.cli.main import main
from nnspec.run.export import EXPORT_FORMATS, example_input, export_run, load_exported
from nnspec.run.predict import load_run

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
pytest.importorskip("onnxscript", reason="the onnx extra is not installed")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# one short epoch each: parity is about the graph, not the accuracy
CASES = {
    "mlp": ("breast_cancer_mlp.yaml", []),
    "cnn": ("digits_cnn.yaml", []),
    "resnet": ("digits_resnet.yaml", []),
    "lstm": ("seq_lstm.yaml", ["data.n_samples=600"]),
}


def _run(tmp_path_factory: pytest.TempPathFactory, case: str) -> Path:
    name, extra = CASES[case]
    out = tmp_path_factory.mktemp(case)
    result = nnspec.train(
        EXAMPLES / name,
        ["train.epochs=1", "train.progress=none", f"train.output_dir={out}", *extra],
    )
    return result.run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {case: _run(tmp_path_factory, case) for case in CASES}


def _inputs(run: Path, batch: int) -> torch.Tensor:
    info = load_run(run).info
    if info.tokens:
        return torch.randint(
            0, 10, (batch, *info.input_shape), generator=torch.Generator().manual_seed(batch)
        )
    return torch.randn(batch, *info.input_shape, generator=torch.Generator().manual_seed(batch))


def _exported_outputs(path: Path, fmt: str, x: torch.Tensor) -> np.ndarray:
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return np.asarray(session.run(["output"], {"input": x.numpy()})[0])
    if fmt == "exported-program":
        return torch.export.load(str(path)).module()(x).detach().numpy()
    with warnings.catch_warnings():  # torch deprecates TorchScript; loading it still works
        warnings.simplefilter("ignore", DeprecationWarning)
        loaded = torch.jit.load(str(path))
    return loaded(x).detach().numpy()


@pytest.mark.slow
@pytest.mark.parametrize("fmt", list(EXPORT_FORMATS))
@pytest.mark.parametrize("case", list(CASES))
def test_exported_model_matches_the_eager_model(
    runs: dict[str, Path], case: str, fmt: str, tmp_path: Path
) -> None:
    run = runs[case]
    path = export_run(run, fmt, tmp_path / "export")
    assert path.name == EXPORT_FORMATS[fmt]
    assert {p.name for p in path.parent.iterdir()} == {path.name, "preprocess.json", "spec.yaml"}
    eager = load_run(run).model.eval()
    for batch in (1, 7):  # a batch size other than the example's: the batch dimension is dynamic
        x = _inputs(run, batch)
        with torch.inference_mode():
            want = eager(x).numpy()
        got = _exported_outputs(path, fmt, x)
        assert got.shape == want.shape
        assert np.abs(got - want).max() <= 1e-4, (case, fmt, batch)


@pytest.mark.slow
def test_predict_with_the_onnx_file_equals_predict_with_the_run(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    run = runs["mlp"]
    assert main(["export", str(run), "--out", str(tmp_path / "exp")]) == 0
    onnx = tmp_path / "exp" / "model.onnx"
    meta = json.loads((tmp_path / "exp" / "preprocess.json").read_text())
    assert meta["export"]["input"] == {"name": "input", "dtype": "float32", "shape": ["batch", 30]}
    assert len(meta["tensors"]["x_mean"]) == 30  # the standardisation travels as data
    from sklearn.datasets import load_breast_cancer

    x = load_breast_cancer().data[:50]
    predictor, exported = load_run(run), load_exported(onnx)
    np.testing.assert_array_equal(exported.predict(x), predictor.predict(x))
    np.testing.assert_allclose(exported.predict_proba(x), predictor.predict_proba(x), atol=1e-5)
    # and through the CLI, from a CSV
    data = tmp_path / "rows.csv"
    with data.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(predictor.info.feature_names)
        w.writerows(x.tolist())
    for source, out in ((onnx, tmp_path / "a.csv"), (run, tmp_path / "b.csv")):
        assert main(["predict", str(source), str(data), "--out", str(out)]) == 0
    a, b = (
        list(csv.reader(io.StringIO(p.read_text())))
        for p in (tmp_path / "a.csv", tmp_path / "b.csv")
    )
    assert [r[0] for r in a] == [r[0] for r in b]


def test_example_input_types_follow_the_model_input() -> None:
    from nnspec.run.data import DataInfo

    assert example_input(DataInfo("binary", (30,), 1, tokens=True)).dtype == torch.int64
    assert example_input(DataInfo("classification", (1, 8, 8), 10), 3).shape == (3, 1, 8, 8)
    named = DataInfo("classification", (6,), 3, inputs={"tabular": (6,), "city": (1,), "ids": (4,)},
                     extra={"vocab": {"city": 9}, "arrays": {"ids": {"kind": "ids"}}})  # fmt: skip
    batch = example_input(named, 5)
    assert isinstance(batch, dict) and list(batch) == ["tabular", "city", "ids"]
    assert [t.dtype for t in batch.values()] == [torch.float32, torch.int64, torch.int64]
    assert [tuple(t.shape) for t in batch.values()] == [(5, 6), (5, 1), (5, 4)]


def test_export_of_a_missing_run_exits_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", str(tmp_path / "nope")]) == 2
    assert "is not a finished nnspec run" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_predict_with_a_file_that_is_not_an_export_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bogus = tmp_path / "model.onnx"
    bogus.write_bytes(b"not onnx")
    data = tmp_path / "d.csv"
    data.write_text("a\n1\n")
    assert main(["predict", str(bogus), str(data)]) == 2
    assert "is not an ONNX export of an nnspec run" in capsys.readouterr().err
