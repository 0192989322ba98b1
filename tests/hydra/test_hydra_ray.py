"""A sweep through Hydra's Ray launcher (``hydra/launcher=ray``, the ``nnspec[ray]`` extra).

hydra-ray-launcher pins cloudpickle<3, so it is not in the main test environment: ``make test-ray``
builds ``.venv-ray`` with the extra and runs this file there (CI calls it after ``make test``);
elsewhere it is skipped. Ray keeps its session files under ``RAY_TMPDIR`` and some state in the
home folder: both point into the test's temporary folder, so nothing reaches the real ones.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="needs nnspec[ray]: make test-ray")


SWEEP = ["-m", "experiment=iris_mlp", "train.epochs=1", "train.checkpoint.enabled=false",
         "hydra/launcher=ray", "+hydra.launcher.ray.init.num_cpus=2",
         "+hydra.launcher.ray.init.include_dashboard=false", "seed=0,1,2,3",
         "hydra.sweep.dir=ray"]  # fmt: skip


def test_a_ray_sweep_completes_four_trials(tmp_path: Path) -> None:
    # Ray's socket paths must stay short (AF_UNIX's 107 bytes): its temp folder is a fresh one
    # directly under the system's temp folder, removed afterwards.
    with tempfile.TemporaryDirectory(prefix="ray", dir="/tmp") as ray_tmp:
        env = {**os.environ, "HOME": str(tmp_path), "RAY_TMPDIR": ray_tmp,
               "PYTHONWARNINGS": "ignore", "RAY_USAGE_STATS_ENABLED": "0"}  # fmt: skip
        cmd = [sys.executable, "-m", "nnspec.cli.main", "train", *SWEEP]
        res = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=env,
                             timeout=600)  # fmt: skip
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        assert any(Path(ray_tmp).rglob("session_*")), "the trials did not run on Ray"
    summary = (tmp_path / "ray" / "sweep_summary.csv").read_text().splitlines()
    rows = list(csv.DictReader(summary))
    assert len(rows) == 4 and {r["status"] for r in rows} == {"ok"}, rows
    assert sorted(r["overrides"].split("seed=")[1].split()[0] for r in rows) == ["0", "1", "2", "3"]
    assert all(float(r["objective"]) > 0 for r in rows)
