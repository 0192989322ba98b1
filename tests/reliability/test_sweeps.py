"""Sweep faults: a journal torn by a killed sweep, a sweep that cannot run a trial."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import count

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
    spec.write_text("model: {input_shape: [4], layers: [{linear: 3}]}\n"
                    f"train: {{output_dir: '{tmp_path}/runs'}}\n")  # fmt: skip
    count("sweep_faults")
    code = main(["train", str(spec), "-m", "hydra/sweeper=nnspec_optuna",
                 "hydra.sweeper.n_trials=-5", "optim.lr=interval(1e-3,1e-2)"])  # fmt: skip
    assert code == 2
    assert "n_trials" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
    count("sweep_faults_ok")
