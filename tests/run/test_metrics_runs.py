"""Metrics in whole runs: chosen metrics and a user metric reach metrics.csv and summary.json,
drive early stopping, and equal scikit-learn's values on the run's own outputs; the streamed
values equal the whole-split computation nnspec used before (the examples' outputs)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sklearn.metrics as skm
import torch
from runhelp import tiny
from test_run_metrics import reference

import nnspec
from nnspec.run.data import prepare_data
from nnspec.run.metrics import Metric, MetricContext, unregister_metric
from nnspec.run.predict import load_run
from nnspec.workflow import train

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FAST = ["train.num_threads=1", "train.progress=none"]


def rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


def run_outputs(run_dir: Path) -> tuple[torch.Tensor, torch.Tensor, Any]:
    """The saved model's outputs on the run's own test split (same data, same split)."""
    predictor = load_run(run_dir)
    bundle = prepare_data(predictor.spec)
    with torch.inference_mode():
        return predictor.model(bundle.test.x).float(), bundle.test.y, bundle


class Worst(Metric):
    """A streaming user metric: the largest absolute error of the positive probability."""

    def __init__(self, context: MetricContext) -> None:
        super().__init__()
        self.add_state("errors", None, "cat")

    def update(self, target: torch.Tensor, prediction: torch.Tensor) -> None:
        self.errors.append((target - prediction).abs())  # type: ignore[attr-defined]

    def compute(self) -> float:
        return float(self.rows("errors").max())


@pytest.fixture
def user_metrics() -> Any:
    nnspec.register_metric("test_brier", tasks=["binary"], higher_is_better=False)(
        lambda y, p: float(skm.brier_score_loss(y, p))
    )
    nnspec.register_metric("test_worst", tasks=["binary"], higher_is_better=False)(Worst)
    yield
    unregister_metric("test_brier")
    unregister_metric("test_worst")


@pytest.mark.slow
def test_pr_auc_and_user_metrics_log_drive_stopping_and_equal_sklearn(
    tmp_path: Path, user_metrics: Any
) -> None:
    run = tmp_path / "run"
    result = train(
        EXAMPLES / "breast_cancer_mlp.yaml",
        [*FAST, "train.epochs=12", "train.metrics=[accuracy,pr_auc,test_brier,test_worst]",
         "train.early_stopping.monitor=val_test_brier", "train.early_stopping.patience=2",
         "optim.lr=0.05", "train.threshold=0.4"],
        run_dir=run,
    )  # fmt: skip
    table = rows(run)
    for column in ("val_pr_auc", "val_test_brier", "val_test_worst", "val_accuracy"):
        assert column in table[0]
    brier = [float(r["val_test_brier"]) for r in table]
    assert result.monitor == "val_test_brier" and result.mode == "min"
    assert result.best_epoch == int(table[int(np.argmin(brier))]["epoch"])
    assert result.best_value == pytest.approx(min(brier))
    out, y, _ = run_outputs(run)
    p, yy = torch.sigmoid(out)[:, 0].double().numpy(), y[:, 0].numpy()
    expected = {
        "pr_auc": skm.average_precision_score(yy, p),
        "test_brier": skm.brier_score_loss(yy, p),
        "test_worst": float(np.abs(yy - p).max()),
        "accuracy": skm.accuracy_score(yy, p > 0.4),
    }
    for name, value in expected.items():
        assert result.test_metrics[name] == pytest.approx(value, abs=1e-6), name
    summary = json.loads((run / "summary.json").read_text())
    assert summary["test_report"]["threshold"] == 0.4


@pytest.mark.slow
def test_top_5_accuracy_drives_stopping_and_equals_sklearn(tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = train(
        EXAMPLES / "digits_cnn.yaml",
        [*FAST, "train.epochs=3", "train.metrics=[top_5_accuracy,macro_f1]",
         "train.early_stopping.monitor=val_top_5_accuracy"],
        run_dir=run,
    )  # fmt: skip
    table = rows(run)
    top5 = [float(r["val_top_5_accuracy"]) for r in table]
    assert result.best_epoch == int(table[int(np.argmax(top5))]["epoch"]) and result.mode == "max"
    out, y, _ = run_outputs(run)
    p = torch.softmax(out, 1).double().numpy()
    expected = skm.top_k_accuracy_score(y.numpy(), p, k=5, labels=list(range(10)))
    assert result.test_metrics["top_5_accuracy"] == pytest.approx(expected, abs=1e-6)


@pytest.mark.slow
def test_multilabel_run_writes_a_per_label_report(tmp_path: Path) -> None:
    g = np.random.default_rng(0)
    x = g.normal(size=(400, 6)).astype(np.float32)
    y = np.stack([x[:, 0] > 0, x[:, 1] + x[:, 2] > 0, x[:, 3] > 1], 1).astype(np.float32)
    spec = tiny(tmp_path, task="multilabel", data={"source": "user"},
                model={"input_shape": [6], "layers": [{"linear": 16}, {"linear": 3}]},
                train={"metrics": ["macro_f1", "pr_auc"], "threshold": 0.6})  # fmt: skip
    result = nnspec.train(spec, data=(x, y), run_dir=tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    report = summary["test_report"]
    assert summary["plot_errors"] == []
    assert set(report) == {"per_label", "micro_f1", "macro_f1", "threshold"}
    assert len(report["per_label"]) == 3 and report["threshold"] == 0.6
    assert report["macro_f1"] == pytest.approx(result.test_metrics["macro_f1"], abs=1e-12)
    assert sum(r["support"] for r in report["per_label"].values()) > 0
    assert not (tmp_path / "run" / "plots" / "confusion.png").exists()
    predictor = load_run(tmp_path / "run")  # predictions decide at the run's threshold too
    proba = predictor.predict_proba(x)
    assert ((proba > 0.5) != (proba > 0.6)).any()
    assert (predictor.predict(x) == (proba > 0.6)).all()


# ---- the streamed values equal the whole-split computation nnspec used before ----

EXAMPLE_NAMES = ["breast_cancer_mlp", "diabetes_mlp", "digits_cnn", "iris_mlp", "wine_mlp",
                 "synthetic_mlp", "seq_lstm", "seq_transformer"]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_streamed_metrics_equal_the_whole_split_path_on_the_examples(
    name: str, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    # a small eval batch: several batches per split, the last one short
    result = train(EXAMPLES / f"{name}.yaml",
                   [*FAST, "train.epochs=2", "train.max_steps=8", "data.eval_batch_size=37"],
                   run_dir=run)  # fmt: skip
    out, y, bundle = run_outputs(run)
    from nnspec.compile.plan import compile_plan
    from nnspec.run.loop import target_stats

    plan = compile_plan(load_run(run).spec)
    loss_fn = plan.make_loss(bundle.info.n_outputs, target_stats(bundle))
    assert result.test_metrics["loss"] == pytest.approx(float(loss_fn(out, y)), rel=1e-6)
    for metric in plan.metrics:
        old = reference(out, y, bundle.info, metric)
        new = result.test_metrics[metric]
        assert math.isclose(new, old, rel_tol=1e-6, abs_tol=1e-6), (metric, new, old)


@pytest.mark.slow
def test_readme_metric_snippet_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    root = Path(__file__).resolve().parents[2]
    text = (root / "README.md").read_text()
    section = text[text.index("### Metrics") :]
    code = section[section.index("```python\n") + 10 : section.index("```\n", 10)]
    (tmp_path / "examples").mkdir()
    shutil.copy(root / "examples" / "breast_cancer_mlp.yaml", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)  # the snippet's relative paths and its runs/ folder
    try:
        exec(compile(code, "README.md", "exec", dont_inherit=True), {"__name__": "readme"})
    finally:
        unregister_metric("brier")
    (summary,) = (tmp_path / "runs").glob("*/*/summary.json")
    recorded = json.loads(summary.read_text())
    assert {"pr_auc", "brier", "accuracy"} <= set(recorded["test_metrics"])
    assert recorded["monitor"] == "val_pr_auc" and recorded["test_report"]["threshold"] == 0.4


@pytest.mark.slow
def test_a_chosen_metric_is_a_sweep_objective(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    args = ["train", "-m", "experiment=iris_mlp", "train.epochs=2",
            "train.checkpoint.enabled=false", "train.metrics=[top_2_accuracy,macro_recall]",
            "train.early_stopping.monitor=val_macro_recall", "optim.lr=1e-3,3e-2",
            "hydra.sweep.dir=sweep"]  # fmt: skip
    res = subprocess.run([sys.executable, "-m", "nnspec.cli.main", *args], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})  # fmt: skip
    assert res.returncode == 0, res.stderr
    text = (tmp_path / "sweep" / "sweep_summary.csv").read_text()
    table = list(csv.DictReader(text.splitlines()))
    objectives = [float(r["objective"]) for r in table]
    assert len(table) == 2 and objectives == sorted(objectives, reverse=True)  # max first
    for row in table:
        summary = json.loads((tmp_path / "sweep" / row["trial"] / "summary.json").read_text())
        assert summary["monitor"] == "val_macro_recall"
        assert float(row["objective"]) == pytest.approx(summary["best_value"], abs=1e-4)
        assert "top_2_accuracy" in summary["test_metrics"]
