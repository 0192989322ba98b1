"""Defects a new user hit, one regression test (or two) per defect.

Each test fails on the code before its fix; the names say which behaviour they pin.
"""

from __future__ import annotations

import csv
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from run.runhelp import tiny  # tests/run's small specs (tests/ is on the path)

import nnspec
from nnspec.errors import DataError, SpecError
from nnspec.io import load_with_source, validate

IRIS_MLP = {
    "task": "classification",
    "data": {"source": "sklearn:iris"},
    "model": {"input_shape": [4], "layers": [{"linear": 16}, {"linear": 3}]},
}


def _user_run(tmp: Path, y: np.ndarray, task: str = "classification", width: int = 3) -> Path:
    x = np.random.default_rng(0).normal(size=(len(y), 8)).astype(np.float32)
    x[:, 0] += np.asarray(np.unique(y, return_inverse=True)[1], dtype=np.float32) * 3
    spec = tiny(
        tmp,
        task=task,
        data={"source": "user"},
        model={"input_shape": [8], "layers": [{"linear": 16}, {"linear": width}]},
    )
    return nnspec.train(spec, data=(x, y)).run_dir


# ---- labels come back as they came in; binary predict_proba has two columns ----


def test_integer_labels_come_back_as_integers(tmp_path: Path) -> None:
    y = np.tile(np.array([3, 7, 9], dtype=np.int64), 100)
    predictor = nnspec.load_run(_user_run(tmp_path, y))
    x = np.random.default_rng(1).normal(size=(6, 8))
    pred = predictor.predict(x)
    assert pred.dtype == np.int64 and set(pred.tolist()) <= {3, 7, 9}
    assert (pred == pred.astype(np.int64)).all() and pred.dtype.kind == "i"


@pytest.mark.parametrize(
    "labels", [np.array([False, True]), np.array(["no", "yes"]), np.array([0, 1], dtype=np.int32)]
)
def test_binary_labels_keep_their_type_and_predict_proba_has_two_columns(
    tmp_path: Path, labels: np.ndarray
) -> None:
    y = np.tile(labels, 150)
    predictor = nnspec.load_run(_user_run(tmp_path, y, task="binary", width=1))
    x = np.random.default_rng(1).normal(size=(5, 8))
    pred, proba = predictor.predict(x), predictor.predict_proba(x)
    assert pred.dtype == labels.dtype and set(pred.tolist()) <= set(labels.tolist())
    assert proba.shape == (5, 2) and np.allclose(proba.sum(1), 1, atol=1e-6)
    assert (pred == labels[proba.argmax(1)]).all()


def test_cli_predict_writes_one_probability_column_per_binary_class(tmp_path: Path) -> None:
    from nnspec.cli.main import main

    rng = np.random.default_rng(0)
    rows = [
        (float(a), float(b), "yes" if a + b > 0 else "no") for a, b in rng.normal(size=(200, 2))
    ]
    data = tmp_path / "d.csv"
    with data.open("w", newline="") as fh:
        csv.writer(fh).writerows([("a", "b", "y"), *rows])
    spec = tiny(
        tmp_path,
        task="binary",
        data={"source": f"csv:{data}", "target": "y"},
        model={"input_shape": [2], "layers": [{"linear": 8}, {"linear": 1}]},
    )
    run_dir = nnspec.train(spec).run_dir
    assert main(["predict", str(run_dir), str(data), f"--out={tmp_path / 'p.csv'}"]) == 0
    out = list(csv.reader((tmp_path / "p.csv").read_text().splitlines()))
    assert out[0] == ["prediction", "p_no", "p_yes"]
    assert {r[0] for r in out[1:]} <= {"no", "yes"}
    assert all(abs(float(r[1]) + float(r[2]) - 1) < 1e-5 for r in out[1:])


# ---- class_weights: balanced on a binary task weighs the positives ----


def test_balanced_class_weights_on_binary_weigh_positives_by_neg_over_pos() -> None:
    from nnspec.compile.losses import TargetStats
    from nnspec.compile.plan import compile_plan

    spec = nnspec.ExperimentSpec.model_validate(
        {**IRIS_MLP, "task": "binary", "loss": {"class_weights": "balanced"},
         "model": {"input_shape": [4], "layers": [{"linear": 4}, {"linear": 1}]}}
    )  # fmt: skip
    stats = TargetStats(class_counts=torch.tensor([20]), n=100)  # 20 positives, 80 negatives
    loss_fn = compile_plan(spec).make_loss(1, stats)
    z = torch.tensor([[0.3], [-1.2], [2.0], [0.0]])
    y = torch.tensor([[1.0], [0.0], [1.0], [0.0]])
    p = torch.sigmoid(z)
    by_hand = -(4.0 * y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()  # 80 / 20 = 4
    assert float(loss_fn(z, y)) == pytest.approx(float(by_hand), rel=1e-6)
    plain = torch.nn.functional.binary_cross_entropy_with_logits(z, y)
    assert float(loss_fn(z, y)) != pytest.approx(float(plain), rel=1e-3)


def test_class_weights_a_loss_would_ignore_are_refused() -> None:
    binary = {**IRIS_MLP, "task": "binary", "loss": {"class_weights": [1.0, 3.0]}}
    with pytest.raises(SpecError) as e:
        validate(binary)
    (p,) = e.value.problems
    assert p.path == ("loss", "class_weights") and "pos_weight" in (p.message + (p.fix or ""))
    with pytest.raises(SpecError, match="pos_weight applies to bce_with_logits"):
        validate({**IRIS_MLP, "loss": {"pos_weight": 2.0}})


# ---- train.resume=auto says why no earlier run matched ----


def test_resume_auto_without_a_match_names_the_runs_and_differing_fields(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nnspec.train(tiny(tmp_path, train={"epochs": 1}))
    capsys.readouterr()
    changed = tiny(
        tmp_path,
        optim={"kind": "adamw", "lr": 0.003},
        train={"epochs": 1, "resume": "auto", "progress": "plain"},
    )
    result = nnspec.train(changed)
    err = capsys.readouterr().err
    first = sorted(p.name for p in (tmp_path / "runs" / "tiny").iterdir())[0]
    assert "train.resume=auto" in err and "starting a new run" in err
    assert f"{first}: differs in optim.lr: 0.01 -> 0.003" in err
    assert result.run_dir.name != first


def test_resume_auto_takes_the_newest_matching_run_whatever_its_folder_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tiny(tmp_path, train={"epochs": 1})
    first = nnspec.train(spec).run_dir
    second = nnspec.train(spec).run_dir
    runs = tmp_path / "runs" / "tiny"
    # a later run named in Hydra's format sorts before the Python API's by name; an empty job
    # folder (Hydra's, for the run being started) and a sweep folder are not runs
    newer = runs / "2000-01-01_00-00-00"
    second.rename(newer)
    (runs / "multirun_2099-01-01_00-00-00").mkdir()
    (runs / "2099-12-31_23-59-59" / ".hydra").mkdir(parents=True)
    os.utime(first / "hash.txt", ns=(1, 1))
    capsys.readouterr()
    resumed = nnspec.train(
        tiny(tmp_path, train={"epochs": 1, "resume": "auto", "progress": "plain"})
    )
    assert resumed.run_dir == newer
    changed = tiny(tmp_path, optim={"kind": "adamw", "lr": 0.003},
                   train={"epochs": 1, "resume": "auto", "progress": "plain"})  # fmt: skip
    capsys.readouterr()
    nnspec.train(changed)
    err = capsys.readouterr().err
    assert "multirun_" not in err and "2099-12-31" not in err
    assert err.index(newer.name) < err.index(first.name)  # newest first


# ---- output files and folders honour the umask ----


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
@pytest.mark.parametrize(
    ("umask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)]
)
def test_atomic_writes_honour_the_umask(
    tmp_path: Path, umask: int, file_mode: int, dir_mode: int
) -> None:
    from nnspec.files import atomic_write

    old = os.umask(umask)
    try:
        target = tmp_path / "new" / "out.txt"
        atomic_write(target, "x")
        atomic_write(target, "y")  # a rewrite gets the same mode
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == file_mode
    assert stat.S_IMODE(target.parent.stat().st_mode) == dir_mode


# ---- error texts: braces as written, the found value once, a fix for `- relu` ----


def test_bare_activation_layer_message_and_fix() -> None:
    layers = [{"linear": 16}, "relu", {"linear": 3}]
    with pytest.raises(SpecError) as e:
        validate({**IRIS_MLP, "model": {"input_shape": [4], "layers": layers}})
    text = str(e.value)
    assert "{{" not in text and text.count("'relu'") == 2  # once as found, once in the fix
    (p,) = e.value.problems
    assert p.path == ("model", "layers", 1) and p.found == "'relu'"
    assert "{kind: linear, out_features: 64}" in (p.expected or "")
    assert p.fix is not None and "activation: relu` on model.layers.0 (linear)" in p.fix


def test_rule_messages_keep_their_braces() -> None:
    from nnspec.spec.base import field_error

    err = field_error(("x",), "write {kind: linear, out_features: 64}")
    assert err.errors()[0]["msg"] == "write {kind: linear, out_features: 64}"


# ---- spec_version, and an override replacing a whole layer ----


def test_unsupported_spec_version_names_the_supported_one() -> None:
    with pytest.raises(SpecError) as e:
        validate({**IRIS_MLP, "spec_version": 2})
    (p,) = e.value.problems
    assert p.path == ("spec_version",) and p.expected == "1" and p.found == "2"


def test_an_override_replacing_a_layer_is_blamed_for_its_bad_kind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from nnspec.cli.main import main

    spec = tmp_path / "s.yaml"
    spec.write_text(
        "model:\n  input_shape: [4]\n  layers:\n    - {kind: linear, out_features: 16}\n"
        "    - {kind: linear, out_features: 3}\n"
    )
    override = "model.layers.0={kind: linearr, out_features: 3}"
    assert main(["validate", str(spec), override]) == 2
    err = capsys.readouterr().err
    assert f"override '{override}' model.layers.0.kind: unknown layer kind 'linearr'" in err
    assert "s.yaml:4" not in err


# ---- the run name follows what the user chose ----


def _fake_train(spec: Any, *, run_dir: Path, base_dir: Path | None = None) -> Any:
    from nnspec.run.api import RunResult

    run_dir.mkdir(parents=True, exist_ok=True)
    return RunResult(run_dir, {}, {}, 1, "val_loss", 0.1, "min", 0.01, 10, 1)


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (["data=iris", "model=iris_mlp"], "iris-iris_mlp"),
        (["data=wine"], "wine-cnn_small"),
        (["experiment=iris_mlp"], "iris_mlp"),
        (["data=iris", "model=iris_mlp", "name=mine"], "mine"),
        (["SPEC"], "my_spec"),
    ],
)
def test_a_composed_run_is_named_after_what_was_chosen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], name: str
) -> None:
    from nnspec.cli.train import main as run

    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "my_spec.yaml"
    spec.write_text(nnspec.io.dump(nnspec.ExperimentSpec.model_validate(IRIS_MLP)).replace(
        "name: experiment\n", ""))  # fmt: skip
    args = [str(spec) if a == "SPEC" else a for a in args]
    assert run([*args, "train.output_dir=runs"], train_fn=_fake_train) == 0
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [name]


# ---- a run that fails before training: its error once, not as a "trial" ----


def test_a_single_run_failure_is_printed_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from nnspec.cli.train import main as run
    from nnspec.errors import Problem

    def failing(spec: Any, *, run_dir: Path, base_dir: Path | None = None) -> Any:
        raise DataError(Problem(("data", "source"), "the data do not fit"))

    monkeypatch.chdir(tmp_path)
    assert run(["train.epochs=1"], train_fn=failing) == 2
    out, err = capfd.readouterr()
    assert (out + err).count("the data do not fit") == 1
    assert "trial" not in out + err
    # a user mistake leaves nothing half-written: the job folder Hydra made for it is gone
    assert list(tmp_path.iterdir()) == []


# ---- a field error does not hide the cross-field errors it has no part in ----


def test_field_and_cross_field_errors_are_reported_together() -> None:
    text = (
        "task: classification\ndata: {source: 'sklearn:iris'}\nmodel:\n  input_shape: [4]\n"
        "  layers: [{linear: 8}, {linear: 3}]\nloss: {kind: mse}\noptim: {kind: adamw, lr: -1}\n"
    )
    with pytest.raises(SpecError) as e:
        load_with_source(text)
    paths = [p.path for p in e.value.problems]
    assert paths == [("loss", "kind"), ("optim", "lr")]
    assert e.value.problems[0].line == 6 and "does not fit task" in e.value.problems[0].message


def test_a_cross_field_rule_reading_the_bad_section_stays_quiet() -> None:
    data = {**IRIS_MLP, "model": {"input_shape": [4], "layers": [{"linear": -8},
            {"linear": 3, "activation": "softmax"}]}}  # fmt: skip
    with pytest.raises(SpecError) as e:
        validate(data)
    assert [p.path for p in e.value.problems] == [("model", "layers", 0, "out_features")]


# ---- lint: NORM-6 through the next layer's batch norm, NORM-3 ----


def _lint(text: str) -> list[tuple[str, tuple[str | int, ...]]]:
    spec, source = load_with_source(text)
    return [(f.rule, f.path) for f in nnspec.lint(spec, source)]


def test_norm6_dropout_default_feeding_the_next_layers_batch_norm() -> None:
    text = (
        "task: classification\ndata: {source: 'sklearn:iris'}\nmodel:\n  input_shape: [4]\n"
        "  defaults: {norm: batch, dropout: 0.3}\n  layers: [{linear: 16}, {linear: 16}, "
        "{linear: 3}]\n"
    )
    assert ("NORM-6", ("model", "defaults", "dropout")) in _lint(text)
    assert not [r for r, _ in _lint(text.replace("norm: batch", "norm: layer")) if r == "NORM-6"]


def test_norm3_batch_norm_on_an_lstm_sequence_output() -> None:
    text = (
        "task: classification\ndata: {source: 'sklearn:iris'}\nmodel:\n  input_shape: [2, 2]\n"
        "  layers:\n    - {lstm: 8, output: sequence}\n    - batch_norm\n    - flatten\n"
        "    - linear: 3\n"
    )
    assert ("NORM-3", ("model", "layers", 1)) in _lint(text)
    assert not [r for r, _ in _lint(text.replace("output: sequence", "output: last").replace(
        "    - flatten\n", "")) if r == "NORM-3"]  # fmt: skip
