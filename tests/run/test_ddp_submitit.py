"""One DDP job of two tasks through Hydra's submitit launcher (``submitit_local``: the same
launcher code as ``submitit_slurm``, tasks started on this machine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from runhelp import tiny
from test_ddp import N_SAMPLES, assert_same_weights, weights

from nnspec.io import dump
from nnspec.run import fit

pytestmark = pytest.mark.slow


def test_a_two_task_submitit_job_trains_one_ddp_run(tmp_path: Path) -> None:
    spec = tiny(tmp_path, data={"n_samples": N_SAMPLES, "batch_size": 32},
                train={"epochs": 3, "progress": "plain"})  # fmt: skip
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(dump(spec))
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    # train.strategy=ddp: the run fails unless nnspec found the job's two ranks
    cmd = [sys.executable, "-m", "nnspec", "train", str(spec_file), "-m",
           "hydra/launcher=submitit_local", "hydra.launcher.tasks_per_node=2",
           "hydra.launcher.timeout_min=10", "train.strategy=ddp"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (sweep,) = (tmp_path / "runs" / "tiny").glob("multirun_*")
    (job,) = (sweep / ".submitit").glob("[0-9]*")
    logs = {p.name.split("_")[1]: p.read_text() for p in job.glob("*_log.out")}
    assert "global_rank=1(2)" in logs["1"]  # two tasks of one job
    assert "epoch 3/3" in logs["0"] and "epoch 3/3" not in logs["1"]  # rank 0 alone prints
    record = json.loads((sweep / "0" / "trial.json").read_text())
    assert record["status"] == "ok" and record["epochs_run"] == 3
    single = fit(spec.model_copy(update={"name": "single"}))
    assert_same_weights(weights(sweep / "0"), weights(single.run_dir))
