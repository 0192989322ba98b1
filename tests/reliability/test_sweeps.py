"""Sweep faults: a journal torn by a killed sweep, a sweep that cannot run a trial."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from reliability_counts import count

from nnspec.cli.main import main

optuna = pytest.importorskip("optuna")


def _study(path: Path) -> object:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(path)))
    return optuna.create_study(study_name="s", storage=storage, load_if_exists=True)


def _trials(path: Path, n: int) -> None:
    study = _study(path)
    for i in range(n):
        study.add_trial(optuna.trial.create_trial(params={}, distributions={}, value=float(i)))


def test_a_torn_last_record_is_cut_off_and_the_study_goes_on(tmp_path: Path) -> None:
    from hydra_plugins.nnspec_optuna_sweeper.journal import repair_journal

    journal = tmp_path / "optuna_journal.log"
    _trials(journal, 2)
    good = journal.read_bytes()
    last = good.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    journal.write_bytes(good + last[: len(last) // 2])  # a kill in the middle of an append
    count("sweep_faults")
    assert repair_journal(journal) == len(last) // 2
    assert journal.read_bytes() == good
    assert (tmp_path / "optuna_journal.log.torn").read_bytes() == last[: len(last) // 2]
    _trials(journal, 1)  # appends after the repair load back
    assert len(_study(journal).trials) == 3  # type: ignore[attr-defined]
    assert repair_journal(journal) == 0
    count("sweep_faults_ok")


def test_without_the_repair_the_torn_journal_breaks_for_good(tmp_path: Path) -> None:
    """What the repair prevents: the next append lands on the fragment's line."""
    journal = tmp_path / "optuna_journal.log"
    _trials(journal, 2)
    with journal.open("ab") as fh:
        fh.write(b'{"op_code": 5, "worker_id": "x", "trial_id": 0, "stat')
    with pytest.raises((ValueError, json.JSONDecodeError)):
        _trials(journal, 1)  # appended on the fragment's line
        _trials(journal, 1)  # and the study no longer loads


def test_a_sweep_of_no_trials_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "model: {input_shape: [4], layers: [{linear: 3}]}\n"
        f"train: {{output_dir: '{tmp_path}/runs'}}\n"
    )
    count("sweep_faults")
    code = main(
        [
            "train",
            str(spec),
            "-m",
            "hydra/sweeper=nnspec_optuna",
            "hydra.sweeper.n_trials=-5",
            "optim.lr=interval(1e-3,1e-2)",
        ]
    )
    assert code == 2
    assert "n_trials" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
    count("sweep_faults_ok")


def _children(pid: int, same_command: bool) -> list[int]:
    """The trial processes of a launcher: its children with the same command line (a forked
    pool) or every child but multiprocessing's and loky's resource trackers (loky's workers)."""
    own = (Path("/proc") / str(pid) / "cmdline").read_bytes()
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        trial = command == own if same_command else b"resource_tracker" not in command
        if int(fields[1]) == pid and trial:
            kids.append(int(stat.parent.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


LAUNCHERS = {
    "nnspec_pool": ["hydra/launcher=nnspec_pool", "hydra.launcher.n_jobs=2"],
    "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
}


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
@pytest.mark.parametrize("launcher_kind", list(LAUNCHERS))
def test_trials_die_with_their_launcher(tmp_path: Path, launcher_kind: str) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    spec = tmp_path / "s.yaml"
    spec.write_text(
        "data: {source: 'synthetic:classification', n_samples: 2000, "
        "options: {n_features: 8, n_informative: 5, n_classes: 3}}\n"
        "model: {input_shape: [8], layers: [{linear: 64}, {linear: 3}]}\n"
        f"train: {{epochs: 1000, progress: none, output_dir: '{tmp_path}/runs'}}\n"
    )
    launcher = subprocess.Popen(
        [sys.executable, "-m", "nnspec", "train", str(spec), "-m", *LAUNCHERS[launcher_kind],
         "seed=0,1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    count("sweep_faults")
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # both trials are training in their job folders
            jobs = list(tmp_path.glob("runs/*/multirun_*/[01]/metrics.jsonl"))
            if len(jobs) == 2:
                break
            time.sleep(0.5)
        trials = _children(launcher.pid, same_command=launcher_kind == "nnspec_pool")
        assert len(jobs) == 2 and len(trials) >= 2, "the trials did not start"
        launcher.send_signal(signal.SIGKILL)
        launcher.wait(timeout=30)
        deadline = time.monotonic() + 30
        while any(_alive(t) for t in trials) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not any(_alive(t) for t in trials), "trials outlived their launcher"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(launcher.pid, signal.SIGKILL)
    count("sweep_faults_ok")
