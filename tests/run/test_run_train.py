"""End-to-end runs on tiny models: outputs, reproducibility, early stopping, guards, inference."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from runhelp import tiny

from nnspec.errors import SpecError, TrainError
from nnspec.run import load_run
from nnspec.run.api import RunResult
from nnspec.run.data import DataInfo
from nnspec.run.model import init_head_bias
from nnspec.run.predict import evaluate_run
from nnspec.workflow import train


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "model.pt", weights_only=True)["model"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    tmp = tmp_path_factory.mktemp("run")
    return train(tiny(tmp, train={"checkpoint": {"keep_last": 2}}))


def test_run_writes_every_output(run: RunResult) -> None:
    d = run.run_dir
    for name in ("spec.yaml", "metrics.csv", "metrics.jsonl", "summary.json", "model.pt",
                 "preprocess.json", "plots/curves.png", "plots/lr.png", "plots/confusion.png",
                 "checkpoints/best.pt"):  # fmt: skip
        assert (d / name).is_file(), name
    assert sorted(p.name for p in (d / "checkpoints").glob("epoch-*.pt")) == [
        "epoch-0003.pt",
        "epoch-0004.pt",
    ]  # keep_last: 2
    assert not list(d.rglob("*.tmp"))  # atomic writes leave no temp files
    rows = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert {"train_loss", "val_loss", "val_accuracy", "val_macro_f1", "lr", "time"} <= set(rows[0])
    header = (d / "metrics.csv").read_text().splitlines()[0].split(",")
    assert header[:5] == ["epoch", "epochs", "step", "lr", "train_loss"]


def test_summary_json_has_the_run_result_fields(run: RunResult) -> None:
    summary = json.loads((run.run_dir / "summary.json").read_text())
    for f in dataclasses.fields(RunResult):
        assert f.name in summary, f.name
    assert summary["test_metrics"] == pytest.approx(run.test_metrics)
    assert summary["epochs_run"] == 4 and summary["mode"] == "min"
    assert set(summary["test_report"]["per_class"]) == {"0", "1", "2"}
    assert run.test_metrics["accuracy"] > 0.5  # learns something in 4 epochs
    assert run.n_params == 8 * 16 + 16 + 16 * 3 + 3


def test_resolved_spec_loads_back(run: RunResult) -> None:
    from nnspec.io import load

    assert load(run.run_dir / "spec.yaml").name == "tiny"


def test_same_seed_gives_bitwise_identical_weights(run: RunResult, tmp_path: Path) -> None:
    # REPRO-1: CPU, same spec + seed => identical final weights; another seed differs.
    again = train(tiny(tmp_path))
    a, b = _weights(run.run_dir), _weights(again.run_dir)
    assert all(torch.equal(a[k], b[k]) for k in a)
    other = train(tiny(tmp_path, seed=1))
    c = _weights(other.run_dir)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_predictor_round_trip(run: RunResult) -> None:
    predictor = load_run(run.run_dir)
    x = np.random.default_rng(0).normal(size=(5, 8))
    proba = predictor.predict_proba(x)
    assert proba.shape == (5, 3) and np.allclose(proba.sum(1), 1, atol=1e-6)
    assert list(predictor.predict(x)) == list(proba.argmax(1))  # the data's own int labels
    # REPRO-3: recomputed test metrics equal the recorded ones
    assert evaluate_run(run.run_dir) == pytest.approx(run.test_metrics)


def test_early_stopping_restores_the_best_epoch(tmp_path: Path) -> None:
    # Random labels: the validation loss rises once the MLP starts memorising the training set.
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(300, 8)).astype(np.float32), rng.integers(0, 3, 300)
    spec = tiny(
        tmp_path,
        data={"source": "user"},
        model={"input_shape": [8], "layers": [{"linear": 128}, {"linear": 3}]},
        optim={"kind": "adam", "lr": 0.02},
        train={"epochs": 40, "early_stopping": {"patience": 3}, "checkpoint": {"keep_last": 40}},
    )
    result = train(spec, data=(x, y))
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["stopped"] == "early_stopping"
    assert result.epochs_run == result.best_epoch + 3
    best = torch.load(result.run_dir / "checkpoints/best.pt", weights_only=True)
    assert best["epoch"] == result.best_epoch
    final = _weights(result.run_dir)
    assert all(torch.equal(final[k], best["model"][k]) for k in final)
    last = torch.load(
        result.run_dir / f"checkpoints/epoch-{result.epochs_run:04d}.pt", weights_only=True
    )
    assert not all(torch.equal(final[k], last["model"][k]) for k in final)
    rows = [
        json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()
    ]
    assert min(r["val_loss"] for r in rows) == pytest.approx(result.best_value)


def test_nan_guard_names_step_loss_and_parameter(tmp_path: Path) -> None:
    # read every step: the guard stops before the bad step's update, its gradients at hand
    spec = tiny(tmp_path, optim={"kind": "sgd", "lr": 1e6, "momentum": 0.9},
                train={"log_every_steps": 1})  # fmt: skip
    with pytest.raises(TrainError) as e:
        train(spec)
    msg = e.value.problems[0].message
    assert msg.startswith("NaN guard: non-finite loss")
    assert "at step" in msg and "first parameter with a non-finite gradient: layers." in msg
    assert "lower optim.lr" in (e.value.problems[0].fix or "")


def test_divergence_guard_stops_adam_with_a_huge_lr(tmp_path: Path) -> None:
    spec = tiny(tmp_path, optim={"kind": "adam", "lr": 1e6})
    with pytest.raises(TrainError) as e:
        train(spec)
    msg = e.value.problems[0].message
    assert msg.startswith("divergence guard: the smoothed loss")
    assert "10x its initial value" in msg and "20 consecutive steps" in msg


def test_output_width_must_fit_the_classes(tmp_path: Path) -> None:
    spec = tiny(tmp_path, model={"input_shape": [8], "layers": [{"linear": 16}, {"linear": 4}]})
    with pytest.raises(SpecError) as e:
        train(spec)
    p = e.value.problems[0]
    assert p.path == ("model", "layers", 1, "out_features")
    assert p.expected == "3 classes" and p.found == "4"
    assert not (tmp_path / "runs").exists()  # nothing written for a spec that cannot run


def test_head_bias_from_training_targets() -> None:
    # INIT-8: 100 positives / 1000 negatives -> ln(0.1); INIT-7: regression mean.
    head = torch.nn.Linear(4, 1)
    model = torch.nn.Module()
    model.head = head  # type: ignore[assignment]
    info = DataInfo(task="binary", input_shape=(4,), n_outputs=1)
    y = torch.cat([torch.ones(100, 1), torch.zeros(1000, 1)])
    init_head_bias(model, info, y, "bce_with_logits")
    assert head.bias.item() == pytest.approx(-2.302585, abs=1e-4)
    info = DataInfo(task="classification", input_shape=(4,), n_outputs=3)
    head3 = torch.nn.Linear(4, 3)
    model.head = head3  # type: ignore[assignment]
    init_head_bias(model, info, torch.tensor([0] * 50 + [1] * 30 + [2] * 20), "cross_entropy")
    assert torch.softmax(head3.bias, 0).tolist() == pytest.approx([0.5, 0.3, 0.2], abs=1e-6)
    model.head = head  # type: ignore[assignment]
    init_head_bias(
        model, DataInfo("regression", (4,), 1), torch.tensor([[1.0], [2.0], [6.0]]), "mse"
    )
    assert head.bias.item() == pytest.approx(3.0)


def test_regression_run_reports_metrics_in_original_units(tmp_path: Path) -> None:
    spec = tiny(
        tmp_path,
        task="regression",
        data={"source": "synthetic:regression", "options": {"n_features": 8}},
        model={"input_shape": [8], "layers": [{"linear": 16}, {"linear": 1}]},
    )
    result = train(spec)
    assert set(result.test_metrics) == {"loss", "mae", "rmse", "r2"}
    assert result.test_metrics["r2"] > 0.5
    pred = load_run(result.run_dir).predict(np.zeros((2, 8)))
    assert pred.shape == (2, 1)


def test_binary_run_with_auroc_and_accumulation(tmp_path: Path) -> None:
    spec = tiny(
        tmp_path,
        task="binary",
        data={"options": {"n_features": 8, "n_informative": 5, "n_classes": 2}},
        model={"input_shape": [8], "layers": [{"linear": 16}, {"linear": 1}]},
        train={"accumulate": 2, "epochs": 2},
    )
    result = train(spec)
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["steps"] == 2 * 4  # 210 samples / 32 = 7 batches -> 4 optimizer steps
    assert set(result.test_metrics) == {"loss", "accuracy", "f1", "auroc"}


def test_max_steps_caps_the_run(tmp_path: Path) -> None:
    result = train(tiny(tmp_path, train={"max_steps": 10}))
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["steps"] == 10 and summary["stopped"] == "max_steps"


def test_overrides_and_explicit_run_dir(tmp_path: Path) -> None:
    result = train(tiny(tmp_path), ["train.epochs=1"], run_dir=tmp_path / "job")
    assert result.run_dir == tmp_path / "job" and result.epochs_run == 1


def test_plain_progress_prints_one_line_per_epoch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train(tiny(tmp_path, train={"epochs": 2, "progress": "auto"}))  # not a TTY here -> plain
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[:2] for ln in lines[:2]] == [["epoch", "1/2"], ["epoch", "2/2"]]
    assert "test_accuracy" in lines[-1]


def test_bf16_autocast_run(tmp_path: Path) -> None:
    result = train(tiny(tmp_path, train={"precision": "bf16", "epochs": 1}))
    assert np.isfinite(result.test_metrics["loss"])


def test_global_torch_settings_are_restored(tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    train(tiny(tmp_path, train={"deterministic": True, "epochs": 1, "num_threads": 1}))
    assert torch.get_num_threads() == threads
    assert not torch.are_deterministic_algorithms_enabled()


def test_multilabel_run_with_user_arrays(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 8)).astype(np.float32)
    y = np.stack([x[:, 0] > 0, x[:, 1] > 0, x[:, 2] + x[:, 3] > 0], axis=1).astype(np.int64)
    spec = tiny(tmp_path, task="multilabel", data={"source": "user"}, train={"epochs": 8})
    result = train(spec, data={"x": x, "y": y})
    assert set(result.test_metrics) == {"loss", "accuracy", "micro_f1"}
    assert result.test_metrics["micro_f1"] > 0.7
    assert load_run(result.run_dir).predict(x[:4]).shape == (4, 3)


def test_rich_progress_bar_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train(tiny(tmp_path, train={"epochs": 1, "progress": "bar"}))
    assert "epoch 1/1" in capsys.readouterr().out


def test_dataloader_path_gives_the_same_weights(run: RunResult, tmp_path: Path) -> None:
    # data.in_memory: no collates through a DataLoader, in the same (seed, epoch) order
    other = train(tiny(tmp_path, data={"in_memory": "no"}))
    a, b = _weights(run.run_dir), _weights(other.run_dir)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_plots_are_real_pngs_and_pyplot_is_never_imported(tmp_path: Path) -> None:
    """Plots go through a bare Figure: the user's matplotlib backend (a notebook's inline one) is
    never switched and pyplot never imported."""
    import subprocess
    import sys

    code = (
        "import sys, matplotlib; from runhelp import tiny; from nnspec.workflow import train\n"
        "matplotlib.use('svg'); before = matplotlib.get_backend()\n"
        f"r = train(tiny(__import__('pathlib').Path({str(tmp_path)!r})))\n"
        "assert matplotlib.get_backend() == before, matplotlib.get_backend()\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
        "print(r.run_dir)\n"
    )
    tests_dir = str(Path(__file__).resolve().parent)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={
            **__import__("os").environ, "PYTHONPATH": tests_dir}, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    run_dir = Path(out.stdout.strip().splitlines()[-1])
    for name in ("curves", "lr", "confusion"):
        data = (run_dir / "plots" / f"{name}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000, name


def test_a_failing_plot_is_a_warning_not_a_failed_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nnspec.run.plots as plots

    def broken(*args: object) -> None:
        raise RuntimeError("no font cache")

    monkeypatch.setattr(plots, "plot_curves", broken)
    with pytest.warns(UserWarning, match=r"plots/curves.png was not written \(RuntimeError"):
        result = train(tiny(tmp_path))
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["plot_errors"] == ["plots/curves.png: RuntimeError: no font cache"]
    assert not (result.run_dir / "plots/curves.png").exists()
    assert (result.run_dir / "plots/lr.png").is_file()  # the other plots are still drawn
    assert (result.run_dir / "model.pt").is_file() and result.test_metrics
