"""Trusted plugin loading: --plugins MODULE|FILE.py and the nnspec.plugins entry points, seen by the
CLI and by every sweep trial (forked and forkserver pool launcher)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nnspec.run.plugins import PluginError, load_plugins, plugin_list

PLUGIN = Path(__file__).parent / "plugins" / "parts_plugin.py"

SPEC = """\
name: plug
data: {source: "blobs:240", batch_size: 32}
model:
  input_shape: [4]
  layers: [{linear: 16, activation: relu}, {linear: 2}]
loss: {kind: focal, gamma: 1.0}
optim: {kind: heavy_ball, lr: 0.05}
schedule: {kind: halving}
train:
  epochs: 2
  progress: none
  num_threads: 1
  output_dir: runs
  callbacks: [{kind: mark_epochs, file: marks.txt}]
  metrics: [accuracy, error_rate]
"""


def _nnspec(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nnspec", *args], cwd=cwd, capture_output=True, text=True,
        env={**os.environ, **(env or {})}, timeout=600,
    )  # fmt: skip


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "plug.yaml"
    path.write_text(SPEC)
    return path


@pytest.mark.slow  # runs nnspec in a subprocess
def test_without_the_plugin_every_user_name_is_refused(spec_file: Path) -> None:
    done = _nnspec("validate", str(spec_file), cwd=spec_file.parent)
    assert done.returncode == 2
    for name in ("loss 'focal'", "optimizer 'heavy_ball'", "schedule 'halving'",
                 "data source 'blobs:240'", "callback 'mark_epochs'"):  # fmt: skip
        assert f"unknown {name}" in done.stdout + done.stderr
    assert "error_rate" in done.stderr  # the metric, unknown too


@pytest.mark.slow  # runs nnspec in a subprocess
def test_with_the_plugin_the_spec_validates_and_names_are_listed(spec_file: Path) -> None:
    done = _nnspec("validate", str(spec_file), "--plugins", str(PLUGIN), cwd=spec_file.parent)
    assert done.returncode == 0, done.stderr
    listed = _nnspec("list", "losses", "--plugins", str(PLUGIN), cwd=spec_file.parent)
    assert "focal" in listed.stdout and "(registered)" in listed.stdout
    bad = spec_file.read_text().replace("kind: focal", "kind: focl")
    spec_file.write_text(bad)
    done = _nnspec("validate", str(spec_file), "--plugins", str(PLUGIN), cwd=spec_file.parent)
    assert done.returncode == 2 and "unknown loss 'focl'; did you mean 'focal'?" in done.stderr


@pytest.mark.slow  # runs nnspec in a subprocess
def test_a_missing_or_failing_plugin_is_a_user_error(tmp_path: Path) -> None:
    done = _nnspec("list", "losses", "--plugins", "no_such_plugin_module", cwd=tmp_path)
    assert done.returncode == 2
    assert "plugin 'no_such_plugin_module' failed to load: ModuleNotFoundError" in done.stderr
    broken = tmp_path / "broken.py"
    broken.write_text("import nnspec\nnnspec.register_optimizer('adamw', object)\n")
    done = _nnspec("list", "--plugins", str(broken), cwd=tmp_path)
    assert done.returncode == 2 and "optimizer 'adamw' is already registered" in done.stderr


def test_plugins_load_once_and_paths_become_absolute(tmp_path: Path) -> None:
    counter = tmp_path / "count_loads_plugin.py"  # registers nothing: no other test sees it
    counter.write_text("import builtins\nbuiltins.nnspec_test_loads = "
                       "getattr(builtins, 'nnspec_test_loads', 0) + 1\n")  # fmt: skip
    names = plugin_list([f"{counter},json"], entry_points=False)
    assert names == (str(counter.resolve()), "json")
    assert load_plugins(names) == load_plugins(names) == ("count_loads_plugin", "json")
    import builtins

    assert builtins.nnspec_test_loads == 1  # type: ignore[attr-defined]
    del builtins.nnspec_test_loads  # type: ignore[attr-defined]
    with pytest.raises(PluginError, match="no such file"):
        load_plugins([str(tmp_path / "absent.py")])


def _entry_point_dist(root: Path) -> Path:
    """A distribution on ``root`` declaring the test plugin in the nnspec.plugins group."""
    root.mkdir()
    (root / "ep_parts.py").write_text(PLUGIN.read_text())
    info = root / "ep_parts-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-parts\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[nnspec.plugins]\nparts = ep_parts\n")
    return root


@pytest.mark.slow  # runs nnspec in a subprocess
def test_an_installed_entry_point_plugin_is_loaded_without_flags(tmp_path: Path) -> None:
    site = _entry_point_dist(tmp_path / "site")
    done = _nnspec("list", "optimizers", cwd=tmp_path, env={"PYTHONPATH": str(site)})
    assert done.returncode == 0, done.stderr
    assert "heavy_ball" in done.stdout


@pytest.mark.slow
def test_nnspec_train_uses_every_plugin_component(spec_file: Path) -> None:
    done = _nnspec("train", str(spec_file), "--plugins", str(PLUGIN), cwd=spec_file.parent)
    assert done.returncode == 0, done.stderr
    (run_dir,) = (spec_file.parent / "runs" / "plug").iterdir()
    assert (run_dir / "marks.txt").read_text().split() == ["1", "2"]  # the callback
    spec = (run_dir / "spec.yaml").read_text()
    assert "kind: focal" in spec and "kind: heavy_ball" in spec and "blobs:240" in spec
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["test_metrics"]["accuracy"] > 0.8  # blobs, focal loss, heavy_ball all ran
    lines = (run_dir / "metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    assert "val_error_rate" in header  # the metric
    lrs = [float(line.split(",")[header.index("lr")]) for line in lines[1:]]
    assert lrs[0] < 0.05  # halving ran


@pytest.mark.slow
@pytest.mark.parametrize(
    "launcher",
    [
        ["hydra/launcher=nnspec_pool", "hydra.launcher.start_method=fork"],
        ["hydra/launcher=nnspec_pool", "hydra.launcher.start_method=forkserver"],
        ["hydra/launcher=joblib"],  # loky: every trial a fresh interpreter
    ],
    ids=["pool-fork", "pool-forkserver", "joblib-loky"],
)
def test_a_sweep_sees_the_plugin_in_every_trial(spec_file: Path, launcher: list[str]) -> None:
    done = _nnspec(
        "train", str(spec_file), "--plugins", str(PLUGIN), "-m", *launcher,
        "hydra.launcher.n_jobs=2", "seed=0,1", cwd=spec_file.parent,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    trials = sorted((spec_file.parent / "runs" / "plug").glob("multirun_*/[01]"))
    assert len(trials) == 2
    for trial in trials:
        assert json.loads((trial / "trial.json").read_text())["status"] == "ok"
        assert (trial / "marks.txt").read_text().split() == ["1", "2"]
        assert "val_error_rate" in (trial / "metrics.csv").read_text().splitlines()[0]
