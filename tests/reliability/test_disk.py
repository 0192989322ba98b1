"""Disk faults: a full file system, a read-only one, a file-size limit.

Root ignores file permissions, so ``chmod`` proves nothing: the tests mount a small tmpfs or a
read-only bind mount where they may (root with the right to mount), and skip with the reason
otherwise; the file-size limit (``RLIMIT_FSIZE``) needs no privilege. Each fault must give a clear
error (exit 2 from the command line) and lose no good checkpoint.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from reliability_counts import count
from run.runhelp import tiny

import nnspec
from nnspec.cli.main import main
from nnspec.errors import OutputError
from nnspec.run.callbacks import Callback, FitState

ROOT = Path(__file__).resolve().parents[2]


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (skipped where this process may not mount one)."""
    where = tmp_path / "fs"
    where.mkdir()
    try:
        _mount("-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where))
    except (OSError, subprocess.SubprocessError) as e:
        pytest.skip(f"cannot mount a tmpfs here ({type(e).__name__}); RLIMIT_FSIZE covers it")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=30)


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A read-only bind mount of an empty folder (skipped where this process may not mount)."""
    where = tmp_path / "ro"
    where.mkdir()
    try:
        _mount("--bind", str(where), str(where))
    except (OSError, subprocess.SubprocessError) as e:
        pytest.skip(f"cannot bind-mount here ({type(e).__name__})")
    try:
        _mount("-o", "remount,ro,bind", str(where))
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=30)


class FillDisk(Callback):
    """Fills the run's file system at the end of ``epoch`` (before its checkpoint is written)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.filler: Path | None = None

    def on_epoch_end(self, state: FitState) -> None:
        if state.epoch != self.epoch:
            return
        # the previous epoch's checkpoint is written on the writer's thread: the disk fills once
        # it is durable and verified (on a loaded machine the thread can lag a whole tiny epoch)
        from nnspec.errors import CheckpointError
        from nnspec.run.checkpoint import load_checkpoint

        previous = state.run_dir / "checkpoints" / f"epoch-{self.epoch - 1:04d}.pt"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                load_checkpoint(previous)
                break
            except CheckpointError:
                time.sleep(0.05)
        self.filler = state.run_dir.parents[2] / "filler"  # the file system's root
        with self.filler.open("wb") as fh:
            try:
                while True:
                    fh.write(b"\0" * 65536)
                    fh.flush()
            except OSError:
                pass


def test_a_full_disk_loses_no_good_checkpoint(small_fs: Path) -> None:
    from nnspec.run.checkpoint import load_checkpoint

    spec = tiny(small_fs, train={"epochs": 4, "checkpoint": {"keep_last": 1}})
    fill = FillDisk(epoch=2)
    count("disk_faults")
    with pytest.raises(OutputError, match="No space left") as info:
        nnspec.train(spec, callbacks=[fill])
    assert "free space" in str(info.value)
    (run,) = (small_fs / "runs" / "tiny").iterdir()
    assert load_checkpoint(run / "checkpoints" / "epoch-0001.pt")["epoch"] == 1  # still verified
    assert fill.filler is not None
    fill.filler.unlink()  # space again: the run resumes from its last good checkpoint
    resumed = spec.model_copy(update={"train": spec.train.model_copy(update={"resume": str(run)})})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert nnspec.train(resumed).epochs_run == 4
    count("disk_faults_ok")


def test_a_read_only_output_dir_is_exit_2(read_only: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    spec = tmp_path / "s.yaml"
    spec.write_text("model: {input_shape: [4], layers: [{linear: 3}]}\n")
    count("disk_faults")
    assert main(["train", str(spec), f"train.output_dir={read_only}/runs"]) == 2
    err = capsys.readouterr().err
    assert "Read-only file system" in err and "train.output_dir" in err
    count("disk_faults_ok")


CHILD = """
import resource, sys
sys.path.insert(0, {tests!r})
from pathlib import Path
from run.runhelp import tiny
import nnspec
from nnspec.errors import OutputError
spec = tiny(Path({tmp!r}), train={{"epochs": 2}})
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # a checkpoint is larger
try:
    nnspec.train(spec)
except OutputError as e:
    print("OUTPUT-ERROR", e)
"""


@pytest.mark.slow
def test_a_file_size_limit_is_a_clear_error(tmp_path: Path) -> None:
    code = CHILD.format(tests=str(ROOT / "tests"), tmp=str(tmp_path))
    child = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT / "tests")},
    )
    count("disk_faults")
    assert "OUTPUT-ERROR" in child.stdout, child.stderr[-2000:]
    assert "ulimit" in child.stdout
    (run,) = (tmp_path / "runs" / "tiny").iterdir()
    manifest = json.loads((run / "manifest.json").read_text())["files"]
    assert all((run / rel).is_file() for rel in manifest)  # nothing listed that is not there
    count("disk_faults_ok")


FULL_AT_EPOCH_2 = """
import resource, sys, time
sys.path.insert(0, {tests!r})
from pathlib import Path
from run.runhelp import tiny
import nnspec
from nnspec.errors import OutputError
from nnspec.run.callbacks import Callback

class Limit(Callback):
    def on_epoch_end(self, state):  # before epoch 2's checkpoint is written
        if state.epoch == 2:
            first = state.run_dir / "checkpoints" / "epoch-0001.pt"
            for _ in range(200):  # the writer thread may still be renaming it
                if first.is_file():
                    break
                time.sleep(0.05)
            size = first.stat().st_size // 2
            resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

spec = tiny(Path({tmp!r}), train={{"epochs": 4, "checkpoint": {{"keep_last": 1}}}})
try:
    nnspec.train(spec, callbacks=[Limit()])
except OutputError as e:
    print("OUTPUT-ERROR", e)
"""


@pytest.mark.slow
def test_keep_last_1_under_a_file_size_limit_keeps_the_only_checkpoint(tmp_path: Path) -> None:
    """The unprivileged twin of the full-disk test: epoch 2's checkpoint cannot be written, so
    epoch 1's (the only one ``keep_last: 1`` keeps) must stay, verified, and resume from it."""
    from nnspec.run.checkpoint import load_checkpoint

    code = FULL_AT_EPOCH_2.format(tests=str(ROOT / "tests"), tmp=str(tmp_path))
    child = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT / "tests")},
    )
    count("disk_faults")
    assert "OUTPUT-ERROR" in child.stdout, child.stderr[-2000:]
    (run,) = (tmp_path / "runs" / "tiny").iterdir()
    assert load_checkpoint(run / "checkpoints" / "epoch-0001.pt")["epoch"] == 1
    assert not (run / "model.pt").exists()  # no finished-looking run
    spec = tiny(tmp_path, train={"epochs": 4, "checkpoint": {"keep_last": 1}, "resume": str(run)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert nnspec.train(spec).epochs_run == 4
    assert [p.name for p in (run / "checkpoints").glob("epoch-*.pt")] == ["epoch-0004.pt"]
    count("disk_faults_ok")
