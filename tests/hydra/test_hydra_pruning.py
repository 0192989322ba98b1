"""Pruned Optuna studies: each epoch reported through the trainer's callbacks, PRUNED not FAIL."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from nnspec.cli.train import main as train
from nnspec.hydra.pruning import PruneCallback, make_pruner
from nnspec.run.api import RunResult
from nnspec.run.callbacks import Callback, FitState

EPOCHS = 10


def _curve(lr: float, epoch: int) -> float:
    """A learning curve whose level rises with the distance of log10(lr) from -2."""
    return abs(math.log10(lr) + 2) + 1.0 / epoch


def fake_train(
    spec: Any, *, run_dir: Path, base_dir: Path | None = None,
    callbacks: Sequence[Callback] = (),
) -> RunResult:  # fmt: skip
    """The trainer's callback calls, epoch by epoch, without a model."""
    run_dir.mkdir(parents=True, exist_ok=True)
    state = FitState(model=None, optimizer=None, run_dir=run_dir,  # type: ignore[arg-type]
                     max_epochs=EPOCHS, steps_per_epoch=1)  # fmt: skip
    values = []
    for epoch in range(1, EPOCHS + 1):
        state.epoch, state.metrics = epoch, {"val_loss": _curve(spec.optim.lr, epoch)}
        values.append(state.metrics["val_loss"])
        for cb in callbacks:
            cb.on_validation_end(state)
        if state.should_stop:
            break
    best = min(values)
    return RunResult(run_dir, {}, {"loss": best}, values.index(best) + 1, "val_loss", best,
                     "min", 0.01, 10, len(values))  # fmt: skip


def _study(path: Path) -> Any:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return optuna.load_study(
        study_name="nnspec", storage=JournalStorage(JournalFileBackend(str(path)))
    )


@pytest.mark.parametrize("pruner", ["median", "successive_halving", "hyperband"])
def test_a_pruned_study_stops_bad_trials_and_tells_them_pruned(in_tmp: Path, pruner: str) -> None:
    argv = ["-m", "hydra/sweeper=nnspec_optuna", "hydra.sweeper.sampler=random",
            "hydra.sweeper.seed=0", "hydra.sweeper.n_trials=12", f"hydra.sweeper.pruner={pruner}",
            "optim.lr=tag(log, interval(1e-5, 1))", "hydra.sweep.dir=sw"]  # fmt: skip
    assert train(argv, train_fn=fake_train) == 0
    trials = _study(in_tmp / "sw" / "optuna_journal.log").trials
    states = [t.state.name for t in trials]
    assert "FAIL" not in states and states.count("PRUNED") >= 1, states
    for t in trials:
        assert len(t.intermediate_values) >= 1  # every epoch reported, until pruned
        if t.state.name == "PRUNED":
            assert len(t.intermediate_values) < EPOCHS
            record = json.loads((in_tmp / "sw" / str(t.number) / "trial.json").read_text())
            assert record["reason"].startswith("pruned at epoch") and record["status"] == "ok"
    overrides = (in_tmp / "sw" / "0" / ".hydra" / "overrides.yaml").read_text()
    assert "NNSPEC_OPTUNA_TRIAL" not in overrides  # the link is hidden from the trial's own


def test_without_a_pruner_every_trial_runs_to_its_end(in_tmp: Path) -> None:
    argv = ["-m", "hydra/sweeper=nnspec_optuna", "hydra.sweeper.n_trials=3",
            "optim.lr=tag(log, interval(1e-5, 1))", "hydra.sweep.dir=sw"]  # fmt: skip
    assert train(argv, train_fn=fake_train) == 0
    trials = _study(in_tmp / "sw" / "optuna_journal.log").trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3


def test_an_unknown_pruner_is_refused() -> None:
    with pytest.raises(ValueError, match="expected one of median, successive_halving, hyperband"):
        make_pruner("medain")
    assert issubclass(PruneCallback, Callback)


def fake_train_sized(
    spec: Any, *, run_dir: Path, base_dir: Path | None = None,
    callbacks: Sequence[Callback] = (),
) -> RunResult:  # fmt: skip
    """Loss falls with the first layer's width: a trade-off between val_loss and n_params."""
    run_dir.mkdir(parents=True, exist_ok=True)
    width = spec.model.layers[0].out_features
    loss = 1.0 / width + abs(math.log10(spec.optim.lr) + 2) / 10
    return RunResult(run_dir, {"loss": loss}, {"loss": loss}, 1, "val_loss", loss, "min", 0.01,
                     width * 100, 1)  # fmt: skip


def test_a_two_objective_study_reports_its_pareto_front(in_tmp: Path) -> None:
    argv = ["-m", "experiment=breast_cancer_mlp", "hydra/sweeper=nnspec_optuna",
            "hydra.sweeper.sampler=random", "hydra.sweeper.n_trials=8",
            "hydra.sweeper.objectives=[val_loss,n_params]",
            "optim.lr=tag(log, interval(1e-4, 1))", "model.layers.0.out_features=choice(4, 16, 64)",
            "hydra.sweep.dir=sw"]  # fmt: skip
    assert train(argv, train_fn=fake_train_sized) == 0
    front = json.loads((in_tmp / "sw" / "pareto_front.json").read_text())
    study = _study(in_tmp / "sw" / "optuna_journal.log")
    assert {p["trial"] for p in front} == {t.number for t in study.best_trials} != set()
    values = [(p["values"]["val_loss"], p["values"]["n_params"]) for p in front]
    for a in values:  # no point of the front dominates another
        assert not any(b != a and b[0] <= a[0] and b[1] <= a[1] for b in values)
    md = (in_tmp / "sw" / "sweep_summary.md").read_text()
    assert "## Pareto front (val_loss, n_params)" in md


def test_a_multi_objective_study_cannot_be_pruned(in_tmp: Path) -> None:
    argv = ["-m", "hydra/sweeper=nnspec_optuna", "hydra.sweeper.objectives=[val_loss,n_params]",
            "hydra.sweeper.pruner=median", "optim.lr=tag(log, interval(1e-4, 1))"]  # fmt: skip
    assert train(argv, train_fn=fake_train_sized) == 2


def test_trials_over_max_params_never_start(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["-m", "experiment=breast_cancer_mlp", "hydra/sweeper=nnspec_optuna",
            "hydra.sweeper.sampler=random", "hydra.sweeper.n_trials=6",
            "hydra.sweeper.max_params=1000", "model.layers.0.out_features=choice(4, 64)",
            "hydra.sweep.dir=sw"]  # fmt: skip
    assert train([*argv, "--dry-run"]) == 2  # 30*64+64 + ... > 1000: invalid in the dry run
    out = capsys.readouterr().out
    assert "over budget" in out and "param memory" in out and "activations" in out
    assert train(argv, train_fn=fake_train_sized) == 0
    study = _study(in_tmp / "sw" / "optuna_journal.log")
    started = {int(p.name) for p in (in_tmp / "sw").iterdir() if p.name.isdigit()}
    wide = {t.number for t in study.trials if t.params["model.layers.0.out_features"] == "64"}
    assert wide and not wide & started  # no over-budget trial got a job directory
    assert all(study.trials[n].state.name == "FAIL" for n in wide)
