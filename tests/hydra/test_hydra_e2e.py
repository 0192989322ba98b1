"""Real sweeps through the `nnspec` command (tiny iris MLP, 1 epoch) and the packaged wheel."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
TINY = ["experiment=iris_mlp", "train.epochs=1", "train.checkpoint.enabled=false"]


def nnspec(cwd: Path, *args: str, python: str = sys.executable) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [python, "-m", "nnspec.cli.main", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def rows(sweep: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((sweep / "sweep_summary.csv").read_text().splitlines()))


def test_grid_2x2(tmp_path: Path) -> None:
    res = nnspec(tmp_path, "train", "-m", *TINY, "optim=adam,adamw", "optim.lr=1e-3,3e-3",
                 "hydra.sweep.dir=grid")  # fmt: skip
    assert res.returncode == 0, res.stderr
    sweep = tmp_path / "grid"
    for i in range(4):
        summary = json.loads((sweep / str(i) / "summary.json").read_text())
        assert summary["epochs_run"] == 1
    table = rows(sweep)
    assert len(table) == 4 and {r["status"] for r in table} == {"ok"}
    objectives = [float(r["objective"]) for r in table]
    assert objectives == sorted(objectives)  # val_loss: lower first
    assert (sweep / "best_spec.yaml").is_file() and (sweep / "sweep_plot.png").is_file()


def test_optuna_4_trials_and_resume(tmp_path: Path) -> None:
    args = ["train", "-m", *TINY, "hydra/sweeper=nnspec_optuna", "hydra.sweep.dir=study",
            "optim.lr=tag(log, interval(1e-4, 1e-1))", "optim=choice(adam, sgd)"]  # fmt: skip
    # the first two trials go to joblib as one batch of 2; the resumed run is sequential
    parallel = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    first = nnspec(tmp_path, *args, *parallel, "hydra.sweeper.n_trials=2")
    assert first.returncode == 0, first.stderr
    assert "Launching jobs, sweep output dir" in first.stdout + first.stderr  # joblib's log line
    second = nnspec(tmp_path, *args, "hydra.sweeper.n_trials=4")
    assert second.returncode == 0, second.stderr
    table = rows(tmp_path / "study")
    assert sorted(r["trial"] for r in table) == ["0", "1", "2", "3"]
    assert len({r["overrides"] for r in table}) == 4
    assert all(r["status"] == "ok" for r in table)


def test_joblib_two_jobs_with_seed_replicates(tmp_path: Path) -> None:
    res = nnspec(tmp_path, "train", "-m", *TINY, "hydra/launcher=joblib",
                 "hydra.launcher.n_jobs=2", "seed=0,1", "hydra.sweep.dir=par")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert len(rows(tmp_path / "par")) == 2
    # parallel workers share the cores: one torch thread each unless the spec sets it
    assert "num_threads: 1" in (tmp_path / "par" / "0" / "spec.yaml").read_text()
    md = (tmp_path / "par" / "sweep_summary.md").read_text()
    assert "Seed replicates" in md and "| (base) | 2 |" in md


PARALLEL = {
    "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
    # forkserver pickles the task (with the spec's folder) to each trial's process
    "pool-forkserver": ["hydra/launcher=nnspec_pool", "hydra.launcher.n_jobs=2",
                        "hydra.launcher.start_method=forkserver"],
    "pool-fork": ["hydra/launcher=nnspec_pool", "hydra.launcher.n_jobs=2"],
}  # fmt: skip


@pytest.mark.parametrize("launcher", PARALLEL)
def test_parallel_workers_resolve_relative_data_against_the_spec_folder(
    tmp_path: Path, launcher: str
) -> None:
    """A parallel worker is another process: the spec file's folder must travel with the job."""
    proj = tmp_path / "proj"
    proj.mkdir()
    lines = "\n".join(f"{i % 7},{(i * 3) % 5},{'ab'[i % 2]}" for i in range(60))
    (proj / "points.csv").write_text("x1,x2,label\n" + lines + "\n")
    (proj / "spec.yaml").write_text(
        "name: csv-mlp\ntask: classification\n"
        "data: {source: 'csv:points.csv', target: label, batch_size: 16}\n"
        "model: {input_shape: [2], layers: [{linear: 8}, {linear: 2}]}\n"
        "train: {epochs: 1, checkpoint: {enabled: false}}\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    res = nnspec(elsewhere, "train", "../proj/spec.yaml", "-m", *PARALLEL[launcher],
                 "seed=0,1", "hydra.sweep.dir=par")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert [r["status"] for r in rows(elsewhere / "par")] == ["ok", "ok"]
    assert "num_threads: 1" in (elsewhere / "par" / "1" / "spec.yaml").read_text()


def test_submitit_local_launcher(tmp_path: Path) -> None:
    res = nnspec(tmp_path, "train", "-m", *TINY, "hydra/launcher=submitit_local",
                 "hydra.launcher.timeout_min=5", "seed=0,1", "hydra.sweep.dir=sub")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert [r["status"] for r in rows(tmp_path / "sub")] == ["ok", "ok"]


def test_invalid_override_fails_one_trial_only(tmp_path: Path) -> None:
    res = nnspec(tmp_path, "train", "-m", *TINY, "optim.lr=1e-3,-1", "hydra.sweep.dir=bad")
    assert res.returncode == 1
    table = rows(tmp_path / "bad")
    assert [r["status"] for r in table] == ["ok", "failed"]
    assert "optim.lr" in table[1]["reason"] and "-1" in table[1]["reason"]
    assert (tmp_path / "bad" / "0" / "summary.json").is_file()


def test_wheel_installs_and_runs_from_another_directory(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(wheels), str(REPO)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("nnspec-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=True, with_pip=True)
    python = str(env_dir / "bin" / "python")
    # torch and friends come from this interpreter's site-packages, added as a plain path (its
    # .pth files, such as the editable nnspec hook, are not run), so nothing is downloaded.
    site = next(p for p in sys.path if p.endswith("site-packages"))
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    target = subprocess.run(
        [python, "-c", purelib], capture_output=True, text=True, check=True
    ).stdout.strip()
    Path(target, "outer_site.pth").write_text(site + "\n")
    install = subprocess.run([python, "-m", "pip", "install", "--no-deps", "-q", str(wheel)],
                             capture_output=True, text=True)  # fmt: skip
    assert install.returncode == 0, install.stderr
    where = tmp_path / "elsewhere"
    where.mkdir()
    which = "import nnspec.conf; print(nnspec.conf.__file__)"
    found = subprocess.run(
        [python, "-c", which], cwd=where, capture_output=True, text=True, check=True
    ).stdout
    assert str(env_dir) in found
    cfg = nnspec(where, "train", "--cfg", "job", "optim=sgd", python=python)
    assert cfg.returncode == 0, cfg.stderr
    assert "kind: sgd" in cfg.stdout
    one = nnspec(where, "train", *TINY, "hydra.run.dir=one", python=python)
    assert one.returncode == 0, one.stderr
    assert json.loads((where / "one" / "trial.json").read_text())["status"] == "ok"
    # the launcher plugin is found by Hydra's own scan of the installed `hydra_plugins`
    pool = nnspec(where, "train", "-m", *TINY, "hydra/launcher=nnspec_pool", "seed=0,1",
                  "hydra.sweep.dir=pool", python=python)  # fmt: skip
    assert pool.returncode == 0, pool.stderr
    assert [r["status"] for r in rows(where / "pool")] == ["ok", "ok"]
