"""Models with named inputs and several outputs (examples/multi_io.yaml): the spec, the weighted
loss and per-output metrics, embedded categorical columns, and in the slow tier the example's
training, early stopping on a named output's metric, bitwise resume after SIGKILL and predict."""

from __future__ import annotations

import csv
import json
import os
import runpy
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from runhelp import bitwise_equal
from torch import nn

from nnspec.io import dump, load, loads
from nnspec.spec import ExperimentSpec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ROWS = 1500  # the tests' table: enough for a few epochs on one thread
FAST = ["train.num_threads=1", "train.progress=none"]


def _model(**outputs: Any) -> dict[str, Any]:
    return {
        "inputs": {"tabular": "auto", "city": "auto"},
        "outputs": outputs or {"segment": {}, "spend": {"task": "regression", "weight": 0.5}},
        "layers": [
            {"kind": "linear", "name": "tab", "out_features": 8, "inputs": ["tabular"]},
            {"kind": "embedding", "name": "emb", "num_embeddings": "auto", "embedding_dim": 3,
             "inputs": ["city"]},
            {"kind": "flatten", "name": "flat"},
            {"kind": "concat", "name": "joined", "inputs": ["tab", "flat"]},
            {"kind": "linear", "name": "segment", "out_features": "auto", "inputs": ["joined"]},
            {"kind": "linear", "name": "spend", "out_features": "auto", "inputs": ["joined"]},
        ],
    }  # fmt: skip


# ---- the spec ----


def test_declared_outputs_round_trip_and_one_output_specs_dump_as_before() -> None:
    spec = ExperimentSpec(model=_model(), train={"early_stopping": {"monitor": "val_spend_mae"}})
    assert loads(dump(spec)) == spec
    text = dump(spec)
    assert "spend:\n      task: regression" in text and "weight: 0.5" in text
    plain = ExperimentSpec(model={"input_shape": [4], "layers": [{"linear": 3}]})
    assert "  outputs: null\n" in dump(plain)  # the one-output form is unchanged


def test_monitors_name_an_output_and_its_task_metrics() -> None:
    with pytest.raises(ValidationError) as err:
        ExperimentSpec(model=_model(), train={"early_stopping": {"monitor": "val_spend_accuracy"}})
    text = str(err.value)
    assert "unknown monitor 'val_spend_accuracy'" in text and "val_segment_accuracy" in text
    with pytest.raises(ValidationError, match="unknown metric 'r2' for task 'classification'"):
        ExperimentSpec(model=_model(segment={"metrics": ["r2"]}, spend={"task": "regression"}))
    with pytest.raises(ValidationError, match="loss 'mse' does not fit task 'classification'"):
        ExperimentSpec(model=_model(segment={"loss": {"kind": "mse"}}, spend={}))
    with pytest.raises(ValidationError, match="lists metrics per output"):
        ExperimentSpec(model=_model(), train={"metrics": ["accuracy"]})
    with pytest.raises(ValidationError, match=r"model.outputs.<name>.target"):
        ExperimentSpec(model=_model(), data={"target": "segment"})


def test_the_plan_resolves_each_outputs_metrics_and_the_monitor_mode() -> None:
    from nnspec.compile.plan import compile_plan

    spec = ExperimentSpec(
        model=_model(segment={"metrics": ["accuracy"]}, spend={"task": "regression"}),
        train={"early_stopping": {"monitor": "val_spend_mae"}},
    )
    plan = compile_plan(spec)
    assert plan.outputs["segment"] == ("accuracy",)
    assert "mae" in plan.outputs["spend"] and plan.mode == "min"
    assert plan.metrics[0] == "segment_accuracy"


def test_checks_and_the_lr_range_test_refuse_named_models_clearly() -> None:
    from nnspec.check.context import CheckContext
    from nnspec.errors import SpecError

    spec = ExperimentSpec(model=_model(), optim={"kind": "adamw", "lr": "auto"})
    with pytest.raises(SpecError, match=r"optim\.lr: auto") as err:
        CheckContext(spec)  # before any data is read
    assert err.value.problems[0].fix and "optim.lr" in err.value.problems[0].fix


# ---- loss and metrics ----


def test_the_loss_is_the_weighted_sum_and_val_loss_its_mean() -> None:
    from nnspec.run.data import DataInfo
    from nnspec.run.heads import OutputLoss, OutputMetrics

    loss = OutputLoss({"a": nn.CrossEntropyLoss(), "b": nn.MSELoss()}, {"a": 1.0, "b": 0.25})
    out = {"a": torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 0.0]]),
           "b": torch.tensor([[1.0], [2.0], [3.0]])}  # fmt: skip
    y = {"a": torch.tensor([0, 0, 0]), "b": torch.tensor([[1.0], [1.0], [1.0]])}
    ce = nn.functional.cross_entropy(out["a"], y["a"])
    assert torch.allclose(loss(out, y), ce + 0.25 * torch.tensor(5.0 / 3.0))

    class _Plan:
        outputs = {"a": ("accuracy",), "b": ("mae",)}
        train = ExperimentSpec(model={"input_shape": [1], "layers": [{"linear": 1}]}).train

    info = DataInfo(task="classification", input_shape=(1,), n_outputs=2, outputs={
        "a": DataInfo(task="classification", input_shape=(), n_outputs=2),
        "b": DataInfo(task="regression", input_shape=(), n_outputs=1)})  # fmt: skip
    metrics = OutputMetrics(_Plan(), info, loss)  # type: ignore[arg-type]
    for i in range(3):  # one sample per batch: the means must still be over all three
        one = {k: v[i : i + 1] for k, v in out.items()}
        yi = {k: v[i : i + 1] for k, v in y.items()}
        metrics.update(one, yi, loss(one, yi), torch.tensor(1))
    values = metrics.compute()
    assert values["a_accuracy"] == pytest.approx(2 / 3)
    assert values["b_mae"] == pytest.approx(1.0)
    assert values["b_loss"] == pytest.approx(5 / 3)
    assert values["a_loss"] == pytest.approx(float(ce))
    assert metrics.compute_loss() == pytest.approx(float(ce) + 0.25 * 5 / 3)


# ---- embedded categorical columns ----


def _table(tmp: Path, rows: int = ROWS) -> Path:
    path = tmp / "multi_io.csv"
    runpy.run_path(str(EXAMPLES / "multi_io_data.py"))["write"](path, rows)
    return path


def test_an_embedded_column_is_ids_with_an_unknown_slot(tmp_path: Path) -> None:
    import pyarrow as pa

    from nnspec.run.column_fit import fit_columns
    from nnspec.spec.data import DataSpec

    table = pa.table({"city": ["a", "b", "a", None, "c"], "x": [1.0, 2, 3, 4, 5]})
    cols = fit_columns(table, np.array([0, 1, 2, 3]), DataSpec(max_categories=1), (), "t",
                       frozenset({"city"}))  # fmt: skip
    city = cols.embedded[0]
    assert city.categories == ("a", "b") and city.vocab_size == 4  # a, b, unknown, missing
    assert cols.names == ("x",)  # the dense inputs leave the embedded column out
    ids = cols.encode_ids(pa.table({"city": ["b", "zzz", None, "a"]}))["city"]
    assert ids[:, 0].tolist() == [1, 2, 3, 0] and ids.dtype == np.int64
    assert "embedding input 'city'" in city.encoding()


def test_named_inputs_are_bound_by_name_with_training_vocabulary(tmp_path: Path) -> None:
    from nnspec.run.batches import target_key
    from nnspec.run.data import prepare_data
    from nnspec.run.heads import train_targets
    from nnspec.run.model import build_for_data, resolve_sizes

    _table(tmp_path, 600)
    spec = ExperimentSpec(data={"source": "csv:multi_io.csv"}, model=_model())
    bundle = prepare_data(spec, base=tmp_path)
    info = bundle.info
    assert info.inputs == {"city": (1,), "tabular": (7,)}  # 3 numbers + channel one-hot (3 + unk)
    assert set(info.outputs) == {"segment", "spend"}
    assert info.outputs["segment"].class_names == ("budget", "premium", "regular")
    vocab = info.extra["vocab"]["city"]
    train = bundle.train.tensors  # type: ignore[union-attr]
    assert int(train["city"].max()) < vocab and train["city"].dtype == torch.int64
    # the vocabulary is the training split's: the validation split has ids of unseen cities
    val_ids = bundle.val.tensors["city"]  # type: ignore[union-attr]
    assert int(train["city"].max()) + 1 == vocab - 1  # ids 0..k-1 seen, k = unknown
    assert (val_ids == vocab - 1).any()
    spend = train[target_key("spend")]
    assert abs(float(spend.mean())) < 1e-5  # standardised on the training split
    resolved = resolve_sizes(spec, info).model
    assert resolved.layers[1].num_embeddings == vocab
    assert resolved.layers[4].out_features == 3 and resolved.layers[5].out_features == 1
    # INIT-7/8 per output: log class priors, the mean of the (standardised) targets
    model = build_for_data(spec, info, train_targets(bundle))
    counts = torch.bincount(train[target_key("segment")], minlength=3).double()
    prior = (counts / counts.sum()).log().float()
    assert torch.allclose(model.get_submodule("layers.segment.op").bias, prior)
    assert torch.allclose(model.get_submodule("layers.spend.op").bias, spend.mean())


# ---- the example (slow) ----


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("multi_io")
    _table(folder)
    (folder / "multi_io.yaml").write_text((EXAMPLES / "multi_io.yaml").read_text())
    return folder / "multi_io.yaml"


@pytest.mark.slow
def test_the_example_early_stops_on_a_named_outputs_metric(example: Path, tmp_path: Path) -> None:
    from nnspec.run.predict import evaluate_run_data
    from nnspec.workflow import train

    over = [*FAST, "train.epochs=60", "train.early_stopping.patience=2"]
    result = train(example, over, run_dir=tmp_path / "run")
    assert result.monitor == "val_segment_accuracy" and result.mode == "max"
    summary = __import__("json").loads((result.run_dir / "summary.json").read_text())
    assert summary["stopped"] == "early_stopping" and result.epochs_run < 60
    with open(result.run_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    best = max(float(r["val_segment_accuracy"]) for r in rows)
    assert result.best_value == pytest.approx(best)
    for r in rows:  # the total is the weighted sum of the outputs' mean losses
        total = float(r["val_segment_loss"]) + 0.5 * float(r["val_spend_loss"])
        assert float(r["val_loss"]) == pytest.approx(total, rel=1e-5)
    # well above chance (1/3; r2 0) although patience 2 stops early on a small table
    assert result.test_metrics["segment_accuracy"] > 0.5 and result.test_metrics["spend_r2"] > 0.5
    # the test report is per output (classification only), its confusion matrix plotted
    assert set(summary["test_report"]) == {"segment"}
    matrix = np.array(summary["test_report"]["segment"]["confusion_matrix"])
    assert matrix.trace() / matrix.sum() == pytest.approx(result.test_metrics["segment_accuracy"])
    assert (result.run_dir / "plots" / "confusion_segment.png").is_file()
    again, digest = evaluate_run_data(result.run_dir)  # nnspec eval: the same figures, data
    assert digest and digest == summary["test_data_sha256"]
    for k, v in result.test_metrics.items():
        assert again[k] == pytest.approx(v, rel=1e-5), k


@pytest.mark.slow
def test_predict_writes_every_output(example: Path, tmp_path: Path) -> None:
    from nnspec.cli.main import main
    from nnspec.workflow import train

    run = train(example, [*FAST, "train.epochs=2"], run_dir=tmp_path / "run").run_dir
    rows = tmp_path / "rows.csv"
    rows.write_text("age,income,visits,channel,city\n30,20000,2,web,city_001\n"
                    "61,90000,12,moon,atlantis\n,,,,\n")  # fmt: skip
    out = tmp_path / "pred.csv"
    assert main(["predict", str(run), str(rows), f"--out={out}"]) == 0
    with open(out) as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == ["segment", "segment_p_budget", "segment_p_premium",
                              "segment_p_regular", "spend"]  # fmt: skip
    assert len(table) == 3 and {r["segment"] for r in table} <= {"budget", "premium", "regular"}
    for r in table:
        p = [float(r[k]) for k in r if k.startswith("segment_p_")]
        assert sum(p) == pytest.approx(1.0, abs=1e-5) and np.isfinite(float(r["spend"]))
    # every export format takes and returns the tensors by name (export_run checks each file
    # against the eager model to 1e-4); predicting with the ONNX file gives the run's rows
    from nnspec.run.export import export_run

    for fmt in ("exported-program", "torchscript", "onnx"):
        export_run(run, fmt, out=tmp_path / fmt)
    meta = json.loads((tmp_path / "onnx" / "preprocess.json").read_text())["export"]
    inputs = {i["name"]: i for i in meta["inputs"]}
    assert set(inputs) == {"tabular", "city"} and inputs["tabular"]["dtype"] == "float32"
    assert inputs["city"] == {"name": "city", "dtype": "int64", "shape": ["batch", 1]}
    assert [o["name"] for o in meta["outputs"]] == ["segment", "spend"]
    onnx_out = tmp_path / "pred_onnx.csv"
    assert main(["predict", str(tmp_path / "onnx" / "model.onnx"), str(rows),
                 f"--out={onnx_out}"]) == 0  # fmt: skip
    with open(onnx_out) as f:
        by_onnx = list(csv.DictReader(f))
    assert [r["segment"] for r in by_onnx] == [r["segment"] for r in table]
    for mine, theirs in zip(by_onnx, table, strict=True):
        for k in mine:
            if k != "segment":
                assert float(mine[k]) == pytest.approx(float(theirs[k]), rel=1e-4, abs=1e-5), k


KILL_AT = 12  # 9 optimizer steps per epoch: dies inside epoch 2, after epoch 1 was saved


def _final(run_dir: Path) -> dict[str, Any]:
    return torch.load(run_dir / "checkpoints" / "epoch-0003.pt", weights_only=True)


@pytest.mark.slow
def test_the_example_resumes_bitwise_after_sigkill(example: Path, tmp_path: Path) -> None:
    from nnspec.workflow import train

    over = [*FAST, "train.epochs=3"]  # the trunk's dropout: the RNG must be restored too
    reference = train(example, over, run_dir=tmp_path / "ref").run_dir
    run_dir = tmp_path / "killed"
    code = (
        "from runhelp import KillAt; from nnspec.workflow import train; "
        f"train({str(example)!r}, {over!r}, run_dir={str(run_dir)!r}, "
        f"callbacks=[KillAt({KILL_AT})])"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert not (run_dir / "summary.json").exists()
    train(example, [*over, f"train.resume={run_dir}"])
    a, b = _final(reference), _final(run_dir)
    for key in ("model", "optimizer"):
        assert bitwise_equal(a[key], b[key]), key
    assert a["step"] == b["step"] and a["early_stopping"] == b["early_stopping"]
    assert (run_dir / "metrics.csv").read_text().count("\n") == 1 + 3


def test_the_example_spec_validates() -> None:
    spec = load(EXAMPLES / "multi_io.yaml")
    assert spec.train.early_stopping.monitor == "val_segment_accuracy"
    assert set(spec.model.outputs) == {"segment", "spend"}  # type: ignore[arg-type]


@pytest.mark.slow
def test_a_sweep_reports_each_outputs_metrics(example: Path) -> None:
    args = ["train", "-m", str(example), "train.epochs=2", "train.progress=none",
            "train.num_threads=1", "train.checkpoint.enabled=false", "optim.lr=1e-3,3e-3",
            "hydra.sweep.dir=sweep"]  # fmt: skip
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    res = subprocess.run([sys.executable, "-m", "nnspec.cli.main", *args], cwd=example.parent,
                         capture_output=True, text=True, env=env, timeout=600)  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    sweep = example.parent / "sweep"
    with open(sweep / "sweep_summary.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 2 and {r["status"] for r in table} == {"ok"}
    for r in table:  # the objective is the monitored output's metric; every output is shown
        assert r["objective"] == r["val_segment_accuracy"]
        assert r["val_spend_r2"] and r["val_loss"]
    objectives = [float(r["objective"]) for r in table]
    assert objectives == sorted(objectives, reverse=True)  # accuracy: higher first
    assert "Objective: val_segment_accuracy (max)" in (sweep / "sweep_summary.md").read_text()


def test_nnspec_data_shows_the_embedded_column_and_each_input_and_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from nnspec.cli.main import main

    _table(tmp_path, 600)
    spec = tmp_path / "multi_io.yaml"
    spec.write_text((EXAMPLES / "multi_io.yaml").read_text())
    assert main(["data", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "embedding input 'city': ids of" in out
    assert "inputs: city [1], tabular [7]" in out
    assert "outputs: segment (classification, 3), spend (regression, 1)" in out


@pytest.mark.slow
def test_one_input_with_several_outputs_trains_and_predicts(tmp_path: Path) -> None:
    from nnspec.run.predict import load_run
    from nnspec.workflow import train

    _table(tmp_path, 600)
    spec = ExperimentSpec.model_validate({
        "data": {"source": "csv:multi_io.csv", "max_categories": 8},
        "model": {
            "input_shape": "auto",
            "outputs": {"segment": {}, "spend": {"task": "regression", "loss": {"kind": "mae"}}},
            "layers": [
                {"kind": "linear", "name": "trunk", "out_features": 16},
                {"kind": "linear", "name": "segment", "out_features": "auto", "inputs": ["trunk"]},
                {"kind": "linear", "name": "spend", "out_features": "auto", "inputs": ["trunk"]},
            ],
        },
        "train": {"epochs": 2, "progress": "none", "num_threads": 1,
                  "early_stopping": {"monitor": "val_spend_loss"}},
    })  # fmt: skip
    result = train(spec, run_dir=tmp_path / "run", base_dir=tmp_path)
    assert result.monitor == "val_spend_loss" and result.mode == "min"
    assert {"segment_accuracy", "spend_mae", "spend_loss"} <= set(result.test_metrics)
    # an L1 loss on standardised targets: the output's loss is its MAE over the target's std
    predictor = load_run(result.run_dir)
    std = float(predictor.info.outputs["spend"].y_std)
    spend = result.test_metrics
    assert spend["spend_loss"] * std == pytest.approx(spend["spend_mae"], rel=1e-4)
    rows = {"age": [40.0], "income": [50000.0], "visits": [3.0], "channel": ["web"],
            "city": ["city_000"]}  # fmt: skip
    out = predictor.predict(rows)
    assert set(out) == {"segment", "spend"} and out["spend"].shape == (1, 1)  # type: ignore[union-attr]


@pytest.mark.slow
def test_two_ranks_train_several_outputs(tmp_path: Path) -> None:
    """DDP (gloo, CPU): every named tensor of a batch is sliced by rank, each output's metric
    states are synced: losses per step, final weights and each output's test metrics equal one
    process's."""
    from ddp_worker import Record
    from test_ddp import assert_same_weights, ddp_runs, weights

    from nnspec.run import fit

    table = _table(tmp_path, 600)
    spec = ExperimentSpec.model_validate({
        "name": "ddp_multi", "data": {"source": f"csv:{table}", "batch_size": 32},
        "model": _model(),
        "train": {"epochs": 2, "progress": "none", "num_threads": 1,
                  "early_stopping": {"enabled": False}, "output_dir": str(tmp_path / "runs")},
    })  # fmt: skip
    record = Record()
    single = fit(spec, callbacks=[record])
    (run,) = ddp_runs(tmp_path / "ddp", spec)
    reference = torch.tensor(record.losses, dtype=torch.float64)
    torch.testing.assert_close(torch.tensor(run["losses"], dtype=torch.float64), reference,
                               rtol=1e-5, atol=0)  # fmt: skip
    assert_same_weights(weights(run["run_dir"]), weights(single.run_dir))
    for k, v in single.test_metrics.items():
        assert run["test"][k] == pytest.approx(v, rel=1e-5), k
    assert len(run["losses"]) == 2 * 14  # 420 training rows: 13 global batches of 32, one of 4
    assert set(run["test"]) == {"loss", "segment_loss", "segment_accuracy", "segment_macro_f1",
                                "spend_loss", "spend_mae", "spend_rmse", "spend_r2"}  # fmt: skip
    total = run["test"]["segment_loss"] + 0.5 * run["test"]["spend_loss"]
    assert run["test"]["loss"] == pytest.approx(total, rel=1e-5)  # synced over both ranks
    assert (Path(run["run_dir"]) / "summary.json").is_file()
