"""Extending a finished or stopped run (``nnspec train RUN_DIR --extend``, ``extend=True``)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from runhelp import bitwise_equal, tiny

import nnspec
from nnspec.cli.main import main
from nnspec.compile.plan import compile_plan
from nnspec.errors import CheckpointError
from nnspec.hydra.trial import TrialRecord, read_record, write_record
from nnspec.io import dump, dump_data, load
from nnspec.run.callbacks import Callback, FitState
from nnspec.run.checkpoint import spec_hash
from nnspec.run.manifest import manifest_table, verified_bytes
from nnspec.spec import ExperimentSpec
from nnspec.workflow import train

BASE_LR = 0.01
SPE = 7  # 210 training samples / batch 32: optimizer steps per epoch


def _spec(tmp: Path, **train_section: Any) -> ExperimentSpec:
    # dropout makes the result depend on the torch RNG stream, so a wrong restore would show
    layers = [{"linear": 32, "dropout": 0.2}, {"linear": 3}]
    return tiny(tmp, model={"input_shape": [8], "layers": layers},
                optim={"kind": "adamw", "lr": BASE_LR}, schedule={"kind": "cosine"},
                train={"epochs": 3, "deterministic": True, **train_section})  # fmt: skip


def _ckpt(run_dir: Path, epoch: int) -> dict[str, Any]:
    return torch.load(run_dir / "checkpoints" / f"epoch-{epoch:04d}.pt", weights_only=True)


def _rows(run_dir: Path) -> list[dict[str, Any]]:
    """metrics.jsonl without the wall-clock column."""
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "time"} for line in lines]


def _copy(run_dir: Path, tmp: Path) -> Path:
    return Path(shutil.copytree(run_dir, tmp / "run"))


class LrAtEpochStart(Callback):
    """The LR the first step of each epoch uses (set by then: a segment starts before the
    epoch)."""

    def __init__(self) -> None:
        self.lrs: dict[int, float] = {}

    def on_epoch_start(self, state: FitState) -> None:
        self.lrs[state.epoch] = state.optimizer.param_groups[0]["lr"]


class Interrupt(Callback):
    """Stops the process's training with an exception once ``step`` steps are done."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, state: FitState) -> None:
        if state.step >= self.step:
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 3-epoch run."""
    return train(_spec(tmp_path_factory.mktemp("base"))).run_dir


@pytest.fixture(scope="module")
def extended(base: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, LrAtEpochStart]:
    """``base`` extended to 5 epochs (the spec's cosine, restarted)."""
    run_dir = _copy(base, tmp_path_factory.mktemp("extended"))
    lrs = LrAtEpochStart()
    assert train(run_dir, ["train.epochs=5"], extend=True, callbacks=[lrs]).run_dir == run_dir
    return run_dir, lrs


@pytest.mark.slow
def test_extension_appends_epochs_after_a_warm_restart(
    base: Path, extended: tuple[Path, LrAtEpochStart]
) -> None:
    run_dir, lrs = extended
    old, new = _rows(base), _rows(run_dir)
    assert new[:3] == old  # the first three epochs' rows are untouched
    assert [r["epoch"] for r in new] == [1, 2, 3, 4, 5] and new[3]["epochs"] == 5
    assert lrs.lrs[4] == BASE_LR  # the segment's first step: the base LR again
    assert old[-1]["lr"] < 1e-6  # where the cosine of the first three epochs had ended
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["epochs_run"] == 5 and summary["steps"] == 5 * SPE
    (ext,) = summary["extensions"]
    assert (ext["from_epoch"], ext["to_epoch"], ext["previous_epochs"]) == (3, 5, 3)
    assert ext["schedule"]["kind"] == "cosine" and ext["at"].endswith("Z")
    spec = load(run_dir / "spec.yaml")
    assert spec.train.epochs == 5 and spec.schedule.kind == "cosine"
    assert spec.train.extensions[0].from_hash == spec_hash(load(base / "spec.yaml"))
    assert (run_dir / "hash.txt").read_text().strip() == spec_hash(spec)
    for rel in manifest_table(run_dir):  # every tracked file matches the rewritten manifest
        verified_bytes(run_dir, run_dir / rel)
    best = json.loads((run_dir / "summary.json").read_text())["best_epoch"]
    saved = torch.load(run_dir / "model.pt", weights_only=True)
    best_ckpt = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)
    assert best_ckpt["epoch"] == best
    assert bitwise_equal(saved["model"], best_ckpt["model"])


@pytest.mark.slow
def test_extension_equals_a_run_trained_with_the_same_segments(
    extended: tuple[Path, LrAtEpochStart], tmp_path: Path
) -> None:
    """Bitwise: 3 epochs then an extension to 5 == 5 epochs from scratch whose spec restarts
    the schedule at epoch 3 (the extended run's own spec.yaml)."""
    run_dir, _ = extended
    data = dump_data(load(run_dir / "spec.yaml"))
    data["train"].update(resume=None, output_dir=str(tmp_path))
    scratch = train(ExperimentSpec.model_validate(data)).run_dir
    a, b = _ckpt(run_dir, 5), _ckpt(scratch, 5)
    for key in ("model", "optimizer", "schedule", "early_stopping", "step"):
        assert bitwise_equal(a[key], b[key]), key
    planned = [{k: v for k, v in r.items() if k != "epochs"} for r in _rows(scratch)]
    assert [{k: v for k, v in r.items() if k != "epochs"} for r in _rows(run_dir)] == planned
    curve = compile_plan(load(run_dir / "spec.yaml")).lr_curve(SPE)
    assert curve[3 * SPE] == BASE_LR and len(curve) == 5 * SPE


@pytest.mark.slow
@pytest.mark.parametrize("stop_at", [3 * SPE + 2, 4 * SPE + 3], ids=["epoch4", "epoch5"])
def test_interrupted_extension_resumes_bitwise(
    base: Path, extended: tuple[Path, LrAtEpochStart], tmp_path: Path, stop_at: int
) -> None:
    run_dir = _copy(base, tmp_path)
    with pytest.raises(KeyboardInterrupt):
        train(run_dir, ["train.epochs=5"], extend=True, callbacks=[Interrupt(stop_at)])
    assert load(run_dir / "spec.yaml").train.extensions  # recorded before the first step
    resumed = train(run_dir / "spec.yaml", [f"train.resume={run_dir}"])
    assert resumed.epochs_run == 5
    a, b = _ckpt(extended[0], 5), _ckpt(run_dir, 5)
    for key in ("model", "optimizer", "schedule", "step"):
        assert bitwise_equal(a[key], b[key]), key
    assert _rows(extended[0]) == _rows(run_dir)


@pytest.mark.slow
def test_interrupted_extension_refuses_a_changed_spec(base: Path, tmp_path: Path) -> None:
    run_dir = _copy(base, tmp_path)
    with pytest.raises(KeyboardInterrupt):
        train(run_dir, ["train.epochs=5"], extend=True, callbacks=[Interrupt(3 * SPE + 1)])
    with pytest.raises(CheckpointError, match="different spec"):
        train(run_dir / "spec.yaml", [f"train.resume={run_dir}", "optim.lr=0.5"])


@pytest.mark.slow
def test_extension_restarts_patience_after_early_stopping(tmp_path: Path) -> None:
    # min_delta 100: no epoch after the first improves, so patience 1 stops the run at epoch 2
    stopping = {"patience": 1, "min_delta": 100.0}
    run_dir = train(_spec(tmp_path, epochs=6, early_stopping=stopping)).run_dir
    assert json.loads((run_dir / "summary.json").read_text())["stopped"] == "early_stopping"
    again = train(run_dir, ["train.epochs=8"], extend=True)
    assert again.epochs_run == 3  # patience restarted: one more epoch without improvement
    longer = train(run_dir, ["train.epochs=8", "train.early_stopping.patience=10"], extend=True)
    assert longer.epochs_run == 8 and longer.best_epoch == 1  # the best epoch so far is kept
    exts = load(run_dir / "spec.yaml").train.extensions
    assert [(e.from_epoch, e.previous_epochs) for e in exts] == [(2, 6), (3, 8)]


@pytest.mark.slow
def test_extension_with_a_new_schedule_through_the_cli(
    base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = _copy(base, tmp_path)
    write_record(run_dir, TrialRecord(overrides=["seed=0"], status="ok", epochs_run=3))
    assert main(["train", str(run_dir), "--extend", "train.epochs=4", "schedule=constant"]) == 0
    record = read_record(run_dir)  # a Hydra job's record follows the run
    assert (record.overrides, record.epochs_run, record.status) == (["seed=0"], 4, "ok")
    out = capsys.readouterr().out
    assert "extension: epochs 4-4 (7 steps) with schedule constant" in out
    spec = load(run_dir / "spec.yaml")
    assert spec.schedule.kind == "cosine"  # the first segment's, as trained
    assert spec.train.extensions[-1].schedule.kind == "constant"
    assert all(r["lr"] == BASE_LR for r in _rows(run_dir)[3:])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train.epochs=3"], "expected train.epochs larger than 3"),
        (["train.epochs=5", "optim.lr=0.5"], "optim.lr: an extension may change only"),
        (["train.epochs=5", "data.batch_size=8"], "data.batch_size: an extension may change"),
        (["train.epochs=5", "train.early_stopping.monitor=val_accuracy"], "best epoch was chosen"),
        (["train.epochs=5", "-m"], "-m cannot be used"),
        (["train.epochs=5", "hydra.run.dir=elsewhere"], "Hydra settings"),
        (["schedule=constant"], "needs the new number of epochs"),
    ],
)
def test_cli_refuses_with_exit_2_and_changes_nothing(
    base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    run_dir = _copy(base, tmp_path)
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    assert main(["train", str(run_dir), "--extend", *args]) == 2
    assert message in " ".join(capsys.readouterr().err.split())
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before


@pytest.mark.slow
def test_cli_refuses_a_run_without_checkpoints(
    base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = _copy(base, tmp_path)
    shutil.rmtree(run_dir / "checkpoints")
    assert main(["train", str(run_dir), "--extend", "train.epochs=5"]) == 2
    assert "has no checkpoint to extend from" in capsys.readouterr().err


def test_cli_refuses_a_folder_that_is_not_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", str(tmp_path), "--extend", "train.epochs=5"]) == 2
    assert "is not an nnspec run directory" in capsys.readouterr().err


def test_extensions_must_form_one_history(tmp_path: Path) -> None:
    ext = {"from_epoch": 3, "previous_epochs": 3, "schedule": {"kind": "cosine"},
           "from_hash": "0123456789abcdef", "at": "2026-01-01T00:00:00Z"}  # fmt: skip
    spec = _spec(tmp_path, epochs=5, extensions=[ext])
    segments = compile_plan(spec).segments()
    assert [(s.start, s.stop, s.planned) for s in segments] == [(0, 3, 3), (3, 5, 2)]
    with pytest.raises(ValueError, match="must be larger than 3"):
        _spec(tmp_path, epochs=3, extensions=[ext])
    with pytest.raises(ValueError, match="not after the previous extension"):
        _spec(tmp_path, epochs=9, extensions=[ext, {**ext, "previous_epochs": 5}])
    assert "extensions" in dump(spec)


@pytest.mark.slow
def test_readme_python_snippet_extends_a_run(base: Path, tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("### Extending a finished run") :]
    section = section[: section.index("\n### ", 1)]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.S)
    run_dir = _copy(base, tmp_path)
    code = code.replace("runs/iris_mlp/RUN", str(run_dir))
    exec(compile(code, "README.md", "exec", dont_inherit=True), {"nnspec": nnspec})
    assert load(run_dir / "spec.yaml").train.extensions[0].from_epoch == 3
