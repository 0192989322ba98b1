"""The documented SLURM launcher config (examples/conf/hydra/launcher/slurm_gpu.yaml).

No SLURM here: the example composes through ``--config-dir`` into Hydra's submitit SLURM
launcher with its values, and submitit accepts every one of them as Hydra's launcher passes them.
A real sweep through submitit (``submitit_local``) is in test_hydra_e2e.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from nnspec.cli.train import main as train

pytestmark = pytest.mark.slow  # each composes nnspec's config through Hydra (about 2 s)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "conf"


def _launcher(capsys: pytest.CaptureFixture[str], *overrides: str) -> dict:
    argv = ["--config-dir", str(EXAMPLE), "-m", "hydra/launcher=slurm_gpu",
            "experiment=iris_mlp", *overrides, "--cfg", "hydra"]  # fmt: skip
    assert train(argv) == 0
    out = "\n".join(x for x in capsys.readouterr().out.splitlines() if not x.startswith("#"))
    return yaml.safe_load(out)["hydra"]["launcher"]


def test_the_slurm_example_composes_into_submitits_slurm_launcher(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    launcher = _launcher(capsys)
    assert launcher["_target_"].endswith("submitit_launcher.SlurmLauncher")
    wanted = {"partition": "gpu", "gpus_per_node": 1, "tasks_per_node": 1, "timeout_min": 120,
              "array_parallelism": 8, "cpus_per_task": 8}  # fmt: skip
    assert {k: launcher[k] for k in wanted} == wanted
    over = _launcher(capsys, "hydra.launcher.partition=a100", "hydra.launcher.timeout_min=30")
    assert (over["partition"], over["timeout_min"]) == ("a100", 30)


FAKE_SBATCH = """#!/bin/sh
# the last argument is the batch script; keep it and answer as sbatch does
for last; do :; done
cp "$last" "$SBATCH_SEEN"
echo "Submitted batch job 4242"
"""


def test_the_example_becomes_the_sbatch_script_hydra_would_submit(
    in_tmp: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hydra's SlurmLauncher.launch passes the values to submitit like this (an unknown key
    raises); a fake sbatch keeps the script of a 10-trial job array."""
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from omegaconf import OmegaConf

    launcher = _launcher(capsys)
    bin_dir = in_tmp / "bin"
    bin_dir.mkdir()
    for name, text in (("sbatch", FAKE_SBATCH), ("srun", "#!/bin/sh\n")):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("SBATCH_SEEN", str(in_tmp / "seen.sh"))
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    skip = {"_target_", "submitit_folder", "max_num_timeout"}
    params = {k if k in base else f"slurm_{k}": v for k, v in launcher.items() if k not in skip}
    params["name"] = "nnspec"  # ${hydra.job.name}, resolved by Hydra in a real launch
    executor = submitit.AutoExecutor(folder=in_tmp / "submitit", cluster="slurm")
    executor.update_parameters(**params)
    jobs = executor.map_array(abs, range(-10, 0))  # 10 trials, 8 at a time
    assert [j.job_id for j in jobs] == [f"4242_{i}" for i in range(10)]
    script = (in_tmp / "seen.sh").read_text()
    for line in ("--partition=gpu", "--gpus-per-node=1", "--time=120", "--array=0-9%8",
                 "--cpus-per-task=8", "--ntasks-per-node=1"):  # fmt: skip
        assert f"#SBATCH {line}\n" in script, line
