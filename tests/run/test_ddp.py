"""DDP under torchrun (gloo, CPU): 2 ranks compute what one process computes, rank 0 alone
writes, checkpoints move between the two, and a killed rank ends the job without harm."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from ddp_worker import Record
from runhelp import tiny

from nnspec.io import dump
from nnspec.run import fit
from nnspec.run.checkpoint import load_checkpoint
from nnspec.spec import ExperimentSpec

pytestmark = pytest.mark.slow

WORKER = Path(__file__).parent / "ddp_worker.py"
# 301 samples: 210 training rows, 7 steps of 32 a epoch, the last one of 18 rows
N_SAMPLES, STEPS_PER_EPOCH = 301, 7


def _spec(tmp: Path, **train: Any) -> ExperimentSpec:
    """The tiny MLP without BatchNorm or dropout: nothing random once the order is fixed."""
    return tiny(tmp, data={"n_samples": N_SAMPLES, "batch_size": 32},
                train={"epochs": 4, "early_stopping": {"enabled": False}, **train})  # fmt: skip


def torchrun(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``torchrun --standalone --nproc_per_node=2 ARGS`` (a free port each time)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           *args]  # fmt: skip
    full = {**os.environ, "PYTHONPATH": str(Path(__file__).parent), **(env or {})}
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        full.pop(var, None)
    return subprocess.run(cmd, capture_output=True, text=True, env=full, timeout=timeout)


def ddp_runs(tmp: Path, spec: ExperimentSpec, *flags: str) -> list[dict[str, Any]]:
    spec_file, out = tmp / "spec.json", tmp / "out.json"
    tmp.mkdir(parents=True, exist_ok=True)
    spec_file.write_text(spec.model_dump_json())
    done = torchrun(str(WORKER), str(spec_file), str(out), *flags)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())  # type: ignore[no-any-return]


def weights(run_dir: str | Path) -> dict[str, torch.Tensor]:
    return torch.load(Path(run_dir) / "model.pt", weights_only=True)["model"]  # type: ignore[no-any-return]


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()  # no "module." prefix from DDP's wrapper
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=k)


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("single")
    record = Record()
    result = fit(_spec(tmp), callbacks=[record])
    return {"losses": record.losses, "run_dir": result.run_dir, "test": result.test_metrics}


def test_two_ranks_equal_one_process_ten_times(tmp_path: Path, single: dict[str, Any]) -> None:
    """Losses per step within 1e-5 relative, final weights allclose, metrics equal; ten runs
    in one launch (each its own process group, barrier and teardown) end without an abort."""
    runs = ddp_runs(tmp_path, _spec(tmp_path), "--repeat", "10")
    assert len(runs) == 10
    reference = torch.tensor(single["losses"], dtype=torch.float64)
    assert len(reference) == 4 * STEPS_PER_EPOCH
    for run in runs:
        losses = torch.tensor(run["losses"], dtype=torch.float64)
        torch.testing.assert_close(losses, reference, rtol=1e-5, atol=0)
        assert_same_weights(weights(run["run_dir"]), weights(single["run_dir"]))
        assert run["test"]["accuracy"] == single["test"]["accuracy"]
        assert run["test"]["loss"] == pytest.approx(single["test"]["loss"], rel=1e-5)
    assert len({run["run_dir"] for run in runs}) == 10


def test_rank_zero_alone_writes_through_the_cli(tmp_path: Path, single: dict[str, Any]) -> None:
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(dump(_spec(tmp_path, progress="plain")))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    done = torchrun("-m", "nnspec", "train", str(spec_file), env={"TMPDIR": str(scratch)})
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs" / "tiny").iterdir()  # one run folder, rank 0's
    assert not list(scratch.glob("nnspec-*"))  # rank 1's Hydra bookkeeping was removed
    assert done.stdout.count("epoch 4/4") == 1  # rank 0 alone prints
    single_files = {p.name for p in Path(single["run_dir"]).iterdir()}
    assert single_files <= {p.name for p in run_dir.iterdir()}
    assert_same_weights(weights(run_dir), weights(single["run_dir"]))


def test_checkpoints_move_between_ddp_and_one_process(
    tmp_path: Path, single: dict[str, Any]
) -> None:
    """A single-process run stopped after 2 epochs resumes under DDP, and a DDP run stopped
    after 2 epochs resumes in one process; both end where the uninterrupted run ends."""
    one = fit(_spec(tmp_path / "a"), callbacks=[Record(stop_at=2)])
    (ddp,) = ddp_runs(tmp_path, _spec(tmp_path / "a", resume=str(one.run_dir)))
    assert ddp["run_dir"] == str(one.run_dir) and ddp["epochs"] == 4
    assert_same_weights(weights(one.run_dir), weights(single["run_dir"]))

    (stopped,) = ddp_runs(tmp_path, _spec(tmp_path / "b"), "--stop-at", "2")
    assert stopped["epochs"] == 2
    resumed = fit(_spec(tmp_path / "b", resume=stopped["run_dir"]))
    assert resumed.epochs_run == 4
    assert_same_weights(weights(resumed.run_dir), weights(single["run_dir"]))


def test_a_killed_rank_ends_the_job_and_the_run_resumes(tmp_path: Path) -> None:
    """Rank 1 dies in epoch 3 while rank 0 still writes epoch 2's checkpoint (held back 3 s, as
    on a busy disk): rank 0 finishes that write before it ends (gloo's error or torchrun's
    SIGTERM reaches it during the wait), so the run resumes from epoch 2."""
    spec_file, out = tmp_path / "spec.json", tmp_path / "out.json"
    spec_file.write_text(_spec(tmp_path).model_dump_json())
    kill_at = 2 * STEPS_PER_EPOCH + 2  # inside epoch 3: epochs 1 and 2 are saved
    started = time.time()
    done = torchrun(str(WORKER), str(spec_file), str(out), "--kill-at", str(kill_at),
                    "--slow-write", "checkpoints/epoch-0002.pt")  # fmt: skip
    ended = time.time()
    assert done.returncode != 0
    killed = float(out.with_suffix(".killed").read_text())
    assert started < killed < ended
    assert ended - killed < 30, f"torchrun took {ended - killed:.1f} s to end the job"
    (run_dir,) = (tmp_path / "runs" / "tiny").iterdir()
    last = load_checkpoint(run_dir / "checkpoints" / "epoch-0002.pt")  # intact
    assert last["epoch"] == 2
    (resumed,) = ddp_runs(tmp_path, _spec(tmp_path, resume=str(run_dir)))
    assert resumed["epochs"] == 4 and resumed["run_dir"] == str(run_dir)
    assert len(resumed["losses"]) == 2 * STEPS_PER_EPOCH  # epochs 3 and 4 only
