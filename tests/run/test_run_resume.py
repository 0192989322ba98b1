"""Exact resume after SIGKILL (CKPT-1, REPRO-1), corrupt checkpoints, spec-hash mismatch."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from runhelp import bitwise_equal, tiny

from nnspec.errors import CheckpointError
from nnspec.io import dump
from nnspec.run.checkpoint import CheckpointWarning, diff_fields, spec_fields, spec_hash
from nnspec.workflow import train

KILL_AT = 16  # 7 optimizer steps per epoch: dies inside epoch 3, after epochs 1 and 2 were saved


def _spec(tmp: Path, **extra: Any):
    # dropout makes the result depend on the torch RNG stream, so a wrong restore would show
    layers = [{"linear": 32, "dropout": 0.2}, {"linear": 3}]
    train_section = {"epochs": 4, **extra.pop("train", {})}
    return tiny(tmp, model={"input_shape": [8], "layers": layers}, train=train_section, **extra)


def _final(run_dir: Path) -> dict[str, Any]:
    return torch.load(run_dir / "checkpoints" / "epoch-0004.pt", weights_only=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("ref")
    return train(_spec(tmp)).run_dir


@pytest.fixture(scope="module")
def killed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run SIGKILLed by a fault-injection callback at step KILL_AT (in a subprocess: no timing
    race)."""
    tmp = tmp_path_factory.mktemp("killed")
    spec_file = tmp / "spec.yaml"
    spec_file.write_text(dump(_spec(tmp)))
    run_dir = tmp / "run"
    code = (
        "from runhelp import KillAt; from nnspec.workflow import train; "
        f"train({str(spec_file)!r}, run_dir={str(run_dir)!r}, callbacks=[KillAt({KILL_AT})])"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    names = sorted(p.name for p in (run_dir / "checkpoints").glob("epoch-*.pt"))
    # epoch 2's checkpoint is written on a background thread: the kill may beat its rename, but
    # epoch 1's was complete before epoch 2's was queued (at most one write in flight)
    assert names in (["epoch-0001.pt"], ["epoch-0001.pt", "epoch-0002.pt"])
    assert not (run_dir / "summary.json").exists()
    return run_dir


def _resume(tmp: Path, run_dir: Path) -> Path:
    return train(_spec(tmp, seed=0), [f"train.resume={run_dir}"]).run_dir


def test_resume_after_sigkill_is_bitwise_identical(
    reference: Path, killed: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(killed, run_dir)
    assert _resume(tmp_path, run_dir) == run_dir
    a, b = _final(reference), _final(run_dir)
    assert bitwise_equal(a["model"], b["model"])
    assert bitwise_equal(a["optimizer"], b["optimizer"])
    assert bitwise_equal(a["schedule"], b["schedule"]) and a["step"] == b["step"]
    rows = (run_dir / "metrics.csv").read_text().splitlines()
    assert len(rows) == 1 + 4  # header + one row per epoch, no duplicate of the replayed epoch


def test_truncated_last_checkpoint_falls_back_to_the_previous(
    reference: Path, killed: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(killed, run_dir)
    last = sorted((run_dir / "checkpoints").glob("epoch-*.pt"))[-1]
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    with pytest.warns(CheckpointWarning, match=last.name):
        _resume(tmp_path, run_dir)
    # the lost epochs are replayed from the previous checkpoint (or from scratch): the data order
    # is a function of (seed, epoch), so the result is the same
    assert bitwise_equal(_final(reference)["model"], _final(run_dir)["model"])


def test_resume_refuses_a_different_spec_and_names_the_fields(killed: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(killed, run_dir)
    other = _spec(tmp_path, optim={"kind": "adamw", "lr": 0.02})
    with pytest.raises(CheckpointError) as e:
        train(other, [f"train.resume={run_dir}"])
    assert "differing fields: optim.lr" in (e.value.problems[0].found or "")


def test_resume_auto_finds_the_newest_run_of_the_same_spec(killed: Path, tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    target = Path(spec.train.output_dir) / spec.name / "20990101-000000"
    shutil.copytree(killed, target)
    assert train(spec, ["train.resume=auto"]).run_dir == target


def test_hash_ignores_paths_progress_and_resume(tmp_path: Path) -> None:
    a = _spec(tmp_path)
    b = _spec(tmp_path / "elsewhere", name="renamed", train={"progress": "plain", "resume": "auto"})
    assert spec_hash(a) == spec_hash(b)
    c = _spec(tmp_path, seed=3)
    assert diff_fields(spec_fields(a), spec_fields(c)) == ["seed"]


def test_missing_resume_dir_is_a_checkpoint_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no run directory"):
        train(_spec(tmp_path), [f"train.resume={tmp_path / 'nope'}"])
