"""Trackers as callbacks (train.trackers): TensorBoard, MLflow, W&B offline; missing extras;
rank 0 only; the old train.tensorboard key."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from runhelp import tiny

from nnspec.errors import SpecError
from nnspec.run import checkpoint as ck
from nnspec.run import trackers as tr
from nnspec.run.callbacks import FitState
from nnspec.workflow import train


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def test_the_old_tensorboard_key_names_its_replacement(tmp_path: Path) -> None:
    from nnspec.io import validate

    with pytest.raises(SpecError, match=r"train\.tensorboard was replaced by train\.trackers"):
        validate({"model": {"input_shape": [4], "layers": [{"linear": 2}]},
                  "train": {"tensorboard": True}})  # fmt: skip


def test_unknown_and_repeated_trackers_are_refused() -> None:
    from nnspec.io import validate

    base = {"model": {"input_shape": [4], "layers": [{"linear": 2}]}}
    with pytest.raises(SpecError, match="unknown tracker 'mlfow'; did you mean 'mlflow'"):
        validate({**base, "train": {"trackers": ["mlfow"]}})
    with pytest.raises(SpecError, match="tracker listed more than once: wandb"):
        validate({**base, "train": {"trackers": ["wandb", "wandb"]}})


def test_a_missing_extra_names_the_install_command_before_any_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        tr.importlib.util, "find_spec", lambda name, *a: None if name in ("mlflow", "wandb")
        else real(name, *a)
    )  # fmt: skip
    with pytest.raises(SpecError) as e:
        train(tiny(tmp_path, train={"trackers": ["mlflow", "wandb"]}))
    text = str(e.value)
    assert "train.trackers.0: tracker 'mlflow' needs the mlflow package" in text
    assert "fix: pip install 'nnspec[mlflow]'" in text and "pip install 'nnspec[wandb]'" in text
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow  # runs nnspec in a subprocess
def test_the_cli_exits_2_on_a_missing_extra(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("model: {input_shape: [64], layers: [{linear: 10}]}\n"
                    "train: {trackers: [wandb], output_dir: runs}\n")  # fmt: skip
    # a Python whose import system cannot see wandb: an empty meta path finder placed first
    code = (
        "import sys, importlib.abc\n"
        "class Hide(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] == 'wandb': raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Hide())\n"
        "from nnspec.cli.main import main\n"
        f"sys.exit(main(['train', {str(spec)!r}]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 2, done.stderr
    assert "pip install 'nnspec[wandb]'" in done.stderr
    assert not (tmp_path / "runs").exists()


def test_trackers_stay_silent_off_the_main_process(tmp_path: Path) -> None:
    spec = tiny(tmp_path)
    state = FitState(model=None, optimizer=None, run_dir=tmp_path, max_epochs=1,  # type: ignore[arg-type]
                     steps_per_epoch=1, is_main_process=False)  # fmt: skip
    made: list[str] = []
    trackers = [tr.TensorBoard(made.append, spec), tr.MLflow(spec), tr.WandB(spec)]
    for t in trackers:
        t.on_fit_start(state)
        t.on_epoch_end(state)
        t.on_run_end(tmp_path)
    assert made == [] and trackers[1].run_id is None and trackers[2].run is None
    assert list(tmp_path.iterdir()) == []


def test_trackers_leave_the_spec_hash_alone(tmp_path: Path) -> None:
    plain, tracked = tiny(tmp_path), tiny(tmp_path, train={"trackers": ["mlflow"]})
    assert ck.spec_hash(plain) == ck.spec_hash(tracked)


def test_tensorboard_logs_each_epochs_numbers_and_closes(tmp_path: Path) -> None:
    class FakeWriter:
        def __init__(self, log_dir: str) -> None:
            self.log_dir, self.scalars, self.closed = log_dir, [], False
            made.append(self)

        def add_scalar(self, key: str, value: float, step: int) -> None:
            self.scalars.append((key, step))

        def close(self) -> None:
            self.closed = True

    made: list[FakeWriter] = []
    spec = tiny(tmp_path, train={"epochs": 2})
    result = train(spec, callbacks=[tr.TensorBoard(FakeWriter, spec)])
    (writer,) = made
    assert writer.log_dir == str(result.run_dir / "tensorboard") and writer.closed
    assert ("val_loss", 2) in writer.scalars and ("train_loss", 1) in writer.scalars
    assert not any(key in ("epoch", "epochs", "step") for key, _ in writer.scalars)


def test_flat_spec_has_every_leaf_under_its_dotted_path(tmp_path: Path) -> None:
    flat = tr.flat_spec(tiny(tmp_path))
    assert flat["optim.lr"] == 0.01 and flat["model.layers.1.out_features"] == 3
    assert flat["data.options.n_classes"] == 3 and flat["train.trackers"] == []


@pytest.mark.slow
@pytest.mark.skipif(not _has("tensorboard"), reason="needs nnspec[tensorboard]")
def test_tensorboard_event_file_reads_back(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = train(tiny(tmp_path, train={"epochs": 3, "trackers": ["tensorboard"]}))
    events = EventAccumulator(str(result.run_dir / "tensorboard"))
    events.Reload()
    val_loss = events.Scalars("val_loss")
    assert [e.step for e in val_loss] == [1, 2, 3]
    rows = [
        json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()
    ]
    assert [e.value for e in val_loss] == pytest.approx([r["val_loss"] for r in rows], rel=1e-6)


def _check_mlflow_run(client: Any, result: Any, epochs: int) -> None:
    (run,) = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == result.run_dir.name
    assert run.data.params["optim.lr"] == "0.01" and run.data.params["optim.kind"] == "adamw"
    history = client.get_metric_history(run.info.run_id, "val_loss")
    assert sorted(m.step for m in history) == list(range(1, epochs + 1))
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"model.pt", "preprocess.json", "spec.yaml", "metrics.csv", "summary.json"} <= artifacts
    assert "checkpoints" not in artifacts


@pytest.mark.slow
@pytest.mark.skipif(not _has("mlflow"), reason="needs nnspec[mlflow]")
def test_mlflow_default_store_is_sqlite_in_the_output_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = train(tiny(tmp_path, train={"epochs": 2, "trackers": ["mlflow"]}))
    db = tmp_path / "runs" / "mlflow.db"
    assert db.is_file()
    with tr._quiet_store():
        _check_mlflow_run(MlflowClient(f"sqlite:///{db}"), result, 2)


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = Path(sys.executable).with_name("mlflow")
    server = subprocess.Popen(
        [str(exe), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--artifacts-destination", str(tmp_path / "server-artifacts")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"mlflow server did not start (exit {server.poll()})")
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.skipif(not _has("mlflow"), reason="needs nnspec[mlflow]")
def test_mlflow_tracking_uri_wins_and_a_real_server_has_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlflow_server: str
) -> None:
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    result = train(tiny(tmp_path, train={"epochs": 2, "trackers": ["mlflow"]}))
    assert not (tmp_path / "runs" / "mlflow.db").exists()
    _check_mlflow_run(MlflowClient(mlflow_server), result, 2)


@pytest.mark.slow
@pytest.mark.skipif(not _has("wandb"), reason="needs nnspec[wandb]")
def test_wandb_writes_an_offline_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    result = train(tiny(tmp_path, train={"epochs": 2, "trackers": ["wandb"]}))
    (run_file,) = (result.run_dir / "wandb").glob("offline-run-*/run-*.wandb")
    # protobuf records (config, history, artifacts), written by wandb's own service process,
    # which may still be flushing when finish() has returned
    wanted = (b"optim.lr", b"val_loss", b"tiny-model")
    deadline = time.monotonic() + 60
    while not all(w in run_file.read_bytes() for w in wanted) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert all(w in run_file.read_bytes() for w in wanted)
